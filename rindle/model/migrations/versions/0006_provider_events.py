"""streaming: the provider webhook events applied, and what each provider asset was made from

Webhook deliveries are at least once; the event ids applied are kept so a replay changes
nothing. A provider asset records its source (the original or a variant's name).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rindle_provider_events',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('provider_name', sa.String(length=50), nullable=False),
        sa.Column('event_id', sa.String(length=255), nullable=False),
        sa.Column('event_type', sa.String(length=100), nullable=False),
        sa.Column('provider_asset_row', sa.String(length=36), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_provider_events')),
        sa.UniqueConstraint('provider_name', 'event_id',
                            name=op.f('uq_rindle_provider_events_provider_name_event_id')),
    )
    with op.batch_alter_table('rindle_provider_events') as batch:
        batch.create_index(batch.f('ix_rindle_provider_events_received_at'), ['received_at'],
                           unique=False)
    with op.batch_alter_table('rindle_provider_assets') as batch:
        batch.add_column(sa.Column('source', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rindle_provider_assets') as batch:
        batch.drop_column('source')
    with op.batch_alter_table('rindle_provider_events') as batch:
        batch.drop_index(batch.f('ix_rindle_provider_events_received_at'))
    op.drop_table('rindle_provider_events')
