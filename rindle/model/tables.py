"""SQLAlchemy Core table definitions: the single source of Rindle's schema.

Identifiers are UUID strings (36 chars) so the same schema runs on SQLite and PostgreSQL;
timestamps are timezone-aware UTC; JSON columns hold dicts/lists and are normalized on read.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _asset_fk(ondelete: str = "CASCADE") -> sa.Column[str]:
    return sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("rindle_assets.id", ondelete=ondelete),
        nullable=False,
    )


assets = sa.Table(
    "rindle_assets",
    metadata,
    _id(),
    sa.Column("profile", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False, server_default="image"),
    sa.Column("storage", sa.String(100), nullable=False),
    sa.Column("storage_key", sa.String(512), nullable=False, unique=True),
    sa.Column("filename", sa.String(255)),
    # What the client said, kept apart from what sniffing found (content_type).
    sa.Column("declared_content_type", sa.String(255)),
    sa.Column("content_type", sa.String(255)),
    sa.Column("byte_size", sa.BigInteger),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("checksum", sa.String(100)),
    sa.Column("metadata", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("quarantine_reason", sa.String(100)),
    sa.Column("error_reason", sa.Text),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("state_changed_at", False),
    sa.Index(None, "state"),
    sa.Index(None, "profile", "state"),
)

variants = sa.Table(
    "rindle_variants",
    metadata,
    _id(),
    _asset_fk(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("recipe_digest", sa.String(64), nullable=False),
    sa.Column("output_kind", sa.String(20), nullable=False, server_default="image"),
    sa.Column("storage_key", sa.String(512)),
    sa.Column("content_type", sa.String(255)),
    sa.Column("byte_size", sa.BigInteger),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_reason", sa.Text),
    _ts("generated_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
    sa.UniqueConstraint("asset_id", "name"),
    sa.Index(None, "state"),
)

upload_sessions = sa.Table(
    "rindle_upload_sessions",
    metadata,
    _id(),
    _asset_fk(),
    sa.Column("profile", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    # presigned_put | presigned_post | server | multipart | resumable | tus
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("upload_key", sa.String(512), nullable=False),
    sa.Column("filename", sa.String(255)),
    sa.Column("declared_content_type", sa.String(255)),
    sa.Column("declared_byte_size", sa.BigInteger),
    # sha256:<base64> or md5:<base64>, as the client declared it (optional).
    sa.Column("declared_checksum", sa.String(100)),
    _ts("expires_at", False),
    _ts("verified_at"),
    sa.Column("failure_reason", sa.String(100)),
    sa.Column("multipart_upload_id", sa.String(1024)),
    sa.Column("multipart_parts", sa.JSON, nullable=False, server_default="{}"),
    # A resumable session URI is a bearer credential: never logged, never rendered.
    sa.Column("session_uri", sa.Text),
    _ts("session_uri_expires_at"),
    sa.Column("last_known_offset", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("resumable_protocol", sa.String(20)),
    # The lease of the one request appending to a resumable upload now (tus), if any.
    sa.Column("lease_token", sa.String(64)),
    _ts("lease_until"),
    _ts("created_at", False),
    _ts("updated_at", False),
    sa.Index(None, "state"),
    sa.Index(None, "expires_at"),
    sa.Index(None, "asset_id"),
)

attachments = sa.Table(
    "rindle_attachments",
    metadata,
    _id(),
    _asset_fk(),
    sa.Column("owner_type", sa.String(255), nullable=False),
    sa.Column("owner_id", sa.String(255), nullable=False),
    sa.Column("slot", sa.String(100), nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    sa.UniqueConstraint("owner_type", "owner_id", "slot"),
    sa.Index(None, "asset_id"),
)

processing_runs = sa.Table(
    "rindle_processing_runs",
    metadata,
    _id(),
    _asset_fk(),
    sa.Column("variant_name", sa.String(100), nullable=False),
    sa.Column("job", sa.String(50), nullable=False),
    sa.Column("worker", sa.String(255), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    _ts("started_at"),
    _ts("finished_at"),
    sa.Column("error_reason", sa.Text),
    sa.Column("timings", sa.JSON, nullable=False, server_default="{}"),
    _ts("created_at", False),
    sa.Index(None, "asset_id", "variant_name"),
    sa.Index(None, "state"),
)

provider_assets = sa.Table(
    "rindle_provider_assets",
    metadata,
    _id(),
    _asset_fk(),
    sa.Column("profile", sa.String(100), nullable=False),
    sa.Column("provider_name", sa.String(50), nullable=False),
    sa.Column("provider_asset_id", sa.String(255)),
    sa.Column("provider_upload_id", sa.String(255)),
    sa.Column("playback_ids", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("playback_policy", sa.String(20)),
    sa.Column("ingest_mode", sa.String(20)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("passthrough", sa.String(255)),
    sa.Column("last_event_id", sa.String(255)),
    _ts("last_event_at"),
    sa.Column("last_sync_error", sa.Text),
    sa.Column("raw_provider_metadata", sa.JSON, nullable=False, server_default="{}"),
    # What was handed to the provider: "original", a variant's name, or "direct_upload".
    sa.Column("source", sa.String(100)),
    _ts("created_at", False),
    _ts("updated_at", False),
    sa.UniqueConstraint("provider_name", "provider_asset_id"),
    sa.UniqueConstraint("asset_id", "profile", "provider_name"),
    sa.Index(None, "state"),
)

# Every provider webhook event applied, by its id: a replayed delivery finds its id taken and
# changes nothing (providers deliver at least once and retry).
provider_events = sa.Table(
    "rindle_provider_events",
    metadata,
    _id(),
    sa.Column("provider_name", sa.String(50), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("provider_asset_row", sa.String(36)),
    _ts("received_at", False),
    sa.UniqueConstraint("provider_name", "event_id"),
    sa.Index(None, "received_at"),
)

# The transactional outbox: every job and storage side effect is a row written in the same
# transaction as the state change that causes it, handed to the queue only after commit.
outbox = sa.Table(
    "rindle_outbox",
    metadata,
    _id(),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False, server_default="{}"),
    # pending -> dispatched -> done | failed
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    _ts("available_at", False),
    _ts("dispatched_at"),
    _ts("completed_at"),
    _ts("created_at", False),
    sa.Index(None, "state", "available_at"),
)

# What purges removed and why, so an operator can answer "where did that file go?".
purge_log = sa.Table(
    "rindle_purge_log",
    metadata,
    _id(),
    sa.Column("asset_id", sa.String(36), nullable=False),
    sa.Column("profile", sa.String(100), nullable=False),
    sa.Column("storage", sa.String(100), nullable=False),
    sa.Column("storage_keys", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("reason", sa.String(100), nullable=False),
    sa.Column("asset_state", sa.String(20)),
    _ts("purged_at", False),
    sa.Index(None, "asset_id"),
)

# Facts about the database itself. "database_id" is a random id made once (by migration 0004,
# or by the first process that finds it missing), so processes sharing a Redis can tell whether
# they serve the same database (rindle.model.identity).
meta = sa.Table(
    "rindle_meta",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    _ts("created_at", False),
)
