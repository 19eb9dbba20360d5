"""index upload sessions by asset

Purges, clean-up and reconciliation look sessions up by asset_id; without an index each
lookup scanned the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_rindle_upload_sessions_asset_id', 'rindle_upload_sessions',
                    ['asset_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rindle_upload_sessions_asset_id', table_name='rindle_upload_sessions')
