"""a database knows its own random id

Workers of two runtimes sharing one Redis could not tell each other's jobs apart: a stray
worker of another database took jobs, found no outbox row and reported success. A random id
made once here, in the database itself, lets every process say which database it serves
(``rindle.model.identity``): two databases stay apart even when their URLs are the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    meta = op.create_table('rindle_meta',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_rindle_meta'))
    )
    # Made here, not read from the server: a copy of this database made later keeps the row,
    # which is why identity.fingerprint also mixes in the database's own name.
    op.bulk_insert(meta, [{'name': 'database_id', 'value': uuid.uuid4().hex,
                           'created_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('rindle_meta')
