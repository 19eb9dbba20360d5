"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rindle_assets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('profile', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), server_default='image', nullable=False),
    sa.Column('storage', sa.String(length=100), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('declared_content_type', sa.String(length=255), nullable=True),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('byte_size', sa.BigInteger(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=100), nullable=True),
    sa.Column('metadata', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('quarantine_reason', sa.String(length=100), nullable=True),
    sa.Column('error_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_assets')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_rindle_assets_storage_key'))
    )
    with op.batch_alter_table('rindle_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_assets_profile_state'), ['profile', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_rindle_assets_state'), ['state'], unique=False)

    op.create_table('rindle_outbox',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('payload', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_outbox'))
    )
    with op.batch_alter_table('rindle_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_outbox_state_available_at'), ['state', 'available_at'], unique=False)

    op.create_table('rindle_purge_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('profile', sa.String(length=100), nullable=False),
    sa.Column('storage', sa.String(length=100), nullable=False),
    sa.Column('storage_keys', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=False),
    sa.Column('asset_state', sa.String(length=20), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_purge_log'))
    )
    with op.batch_alter_table('rindle_purge_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_purge_log_asset_id'), ['asset_id'], unique=False)

    op.create_table('rindle_attachments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('owner_type', sa.String(length=255), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('slot', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['rindle_assets.id'], name=op.f('fk_rindle_attachments_asset_id_rindle_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_attachments')),
    sa.UniqueConstraint('owner_type', 'owner_id', 'slot', name=op.f('uq_rindle_attachments_owner_type_owner_id_slot'))
    )
    with op.batch_alter_table('rindle_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_attachments_asset_id'), ['asset_id'], unique=False)

    op.create_table('rindle_processing_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('variant_name', sa.String(length=100), nullable=False),
    sa.Column('job', sa.String(length=50), nullable=False),
    sa.Column('worker', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), server_default='1', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_reason', sa.Text(), nullable=True),
    sa.Column('timings', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['rindle_assets.id'], name=op.f('fk_rindle_processing_runs_asset_id_rindle_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_processing_runs'))
    )
    with op.batch_alter_table('rindle_processing_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_processing_runs_asset_id_variant_name'), ['asset_id', 'variant_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_rindle_processing_runs_state'), ['state'], unique=False)

    op.create_table('rindle_provider_assets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('profile', sa.String(length=100), nullable=False),
    sa.Column('provider_name', sa.String(length=50), nullable=False),
    sa.Column('provider_asset_id', sa.String(length=255), nullable=True),
    sa.Column('provider_upload_id', sa.String(length=255), nullable=True),
    sa.Column('playback_ids', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('playback_policy', sa.String(length=20), nullable=True),
    sa.Column('ingest_mode', sa.String(length=20), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('passthrough', sa.String(length=255), nullable=True),
    sa.Column('last_event_id', sa.String(length=255), nullable=True),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.Column('raw_provider_metadata', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['rindle_assets.id'], name=op.f('fk_rindle_provider_assets_asset_id_rindle_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_provider_assets')),
    sa.UniqueConstraint('asset_id', 'profile', 'provider_name', name=op.f('uq_rindle_provider_assets_asset_id_profile_provider_name')),
    sa.UniqueConstraint('provider_name', 'provider_asset_id', name=op.f('uq_rindle_provider_assets_provider_name_provider_asset_id'))
    )
    with op.batch_alter_table('rindle_provider_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_provider_assets_state'), ['state'], unique=False)

    op.create_table('rindle_upload_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('profile', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('strategy', sa.String(length=20), nullable=False),
    sa.Column('upload_key', sa.String(length=512), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('declared_content_type', sa.String(length=255), nullable=True),
    sa.Column('declared_byte_size', sa.BigInteger(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.String(length=100), nullable=True),
    sa.Column('multipart_upload_id', sa.String(length=1024), nullable=True),
    sa.Column('multipart_parts', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('session_uri', sa.Text(), nullable=True),
    sa.Column('session_uri_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_known_offset', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('resumable_protocol', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['rindle_assets.id'], name=op.f('fk_rindle_upload_sessions_asset_id_rindle_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_upload_sessions'))
    )
    with op.batch_alter_table('rindle_upload_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_upload_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rindle_upload_sessions_state'), ['state'], unique=False)

    op.create_table('rindle_variants',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('asset_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('recipe_digest', sa.String(length=64), nullable=False),
    sa.Column('output_kind', sa.String(length=20), server_default='image', nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('byte_size', sa.BigInteger(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error_reason', sa.Text(), nullable=True),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['rindle_assets.id'], name=op.f('fk_rindle_variants_asset_id_rindle_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rindle_variants')),
    sa.UniqueConstraint('asset_id', 'name', name=op.f('uq_rindle_variants_asset_id_name'))
    )
    with op.batch_alter_table('rindle_variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rindle_variants_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rindle_variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_variants_state'))

    op.drop_table('rindle_variants')
    with op.batch_alter_table('rindle_upload_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_upload_sessions_state'))
        batch_op.drop_index(batch_op.f('ix_rindle_upload_sessions_expires_at'))

    op.drop_table('rindle_upload_sessions')
    with op.batch_alter_table('rindle_provider_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_provider_assets_state'))

    op.drop_table('rindle_provider_assets')
    with op.batch_alter_table('rindle_processing_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_processing_runs_state'))
        batch_op.drop_index(batch_op.f('ix_rindle_processing_runs_asset_id_variant_name'))

    op.drop_table('rindle_processing_runs')
    with op.batch_alter_table('rindle_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_attachments_asset_id'))

    op.drop_table('rindle_attachments')
    with op.batch_alter_table('rindle_purge_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_purge_log_asset_id'))

    op.drop_table('rindle_purge_log')
    with op.batch_alter_table('rindle_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_outbox_state_available_at'))

    op.drop_table('rindle_outbox')
    with op.batch_alter_table('rindle_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rindle_assets_state'))
        batch_op.drop_index(batch_op.f('ix_rindle_assets_profile_state'))

    op.drop_table('rindle_assets')
