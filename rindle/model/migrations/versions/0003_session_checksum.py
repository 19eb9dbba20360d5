"""upload sessions keep the checksum the client declared

A client may declare the SHA-256 (or MD5) of a direct upload up front; the storage then
refuses other bytes where it can (S3 checks a signed Content-MD5 / x-amz-checksum-sha256),
Rindle's own upload route checks it, and promotion compares it with what was promoted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rindle_upload_sessions') as batch:
        batch.add_column(sa.Column('declared_checksum', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rindle_upload_sessions') as batch:
        batch.drop_column('declared_checksum')
