"""upload sessions carry a lease: one request at a time appends to a resumable upload

A tus PATCH holds the lease (a random token and an expiry) while its body streams, across
processes and machines; a second PATCH meanwhile is refused, and a lease whose request died
lapses by itself.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rindle_upload_sessions') as batch:
        batch.add_column(sa.Column('lease_token', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rindle_upload_sessions') as batch:
        batch.drop_column('lease_until')
        batch.drop_column('lease_token')
