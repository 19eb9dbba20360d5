"""Typed, immutable records for rows, built from database rows of either dialect."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def utc(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from what either driver returns (SQLite drops the zone)."""
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def json_value(value: Any, default: Any) -> Any:
    # Defensive: some drivers hand JSON back as text rather than objects.
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def _build(cls: type[T], row: Mapping[str, Any]) -> T:
    kwargs: dict[str, Any] = {}
    for name, kind in _columns(cls):
        if name not in row:
            continue
        v = row[name]
        if kind is _PLAIN:
            kwargs[name] = v
        elif kind is _TIME:
            kwargs[name] = utc(v)
        else:
            kwargs[name] = json_value(v, {} if kind is _DICT else [])
    return cls(**kwargs)


_PLAIN, _TIME, _DICT, _LIST = "plain", "time", "dict", "list"
_COLUMNS: dict[type, tuple[tuple[str, str], ...]] = {}


def _columns(cls: type) -> tuple[tuple[str, str], ...]:
    """Each field of a record class with how its column is decoded, worked out once."""
    found = _COLUMNS.get(cls)
    if found is None:
        found = tuple(
            (f.name, _TIME if f.name.endswith("_at") else _DICT if f.name in _JSON_DICT
             else _LIST if f.name in _JSON_LIST else _PLAIN)
            for f in fields(cls))
        _COLUMNS[cls] = found
    return found


_JSON_DICT = {"metadata", "multipart_parts", "timings", "payload", "raw_provider_metadata"}
_JSON_LIST = {"playback_ids", "storage_keys"}


@dataclass(frozen=True)
class Asset:
    """One uploaded original and what is known about it."""

    id: str
    profile: str
    state: str
    storage: str
    storage_key: str
    kind: str = "image"
    filename: str | None = None
    declared_content_type: str | None = None
    content_type: str | None = None
    byte_size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    checksum: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    quarantine_reason: str | None = None
    error_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    state_changed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Asset:
        return _build(cls, row)


@dataclass(frozen=True)
class AssetVariant:
    """One derived rendition of an asset (a thumbnail, a transcode), planned or built."""

    id: str
    asset_id: str
    name: str
    state: str
    recipe_digest: str
    output_kind: str = "image"
    storage_key: str | None = None
    content_type: str | None = None
    byte_size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    attempts: int = 0
    error_reason: str | None = None
    generated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AssetVariant:
        return _build(cls, row)


@dataclass(frozen=True)
class UploadSession:
    """One attempt to get an asset's bytes into storage."""

    id: str
    asset_id: str
    profile: str
    state: str
    strategy: str
    upload_key: str
    expires_at: datetime
    filename: str | None = None
    declared_content_type: str | None = None
    declared_byte_size: int | None = None
    declared_checksum: str | None = None
    verified_at: datetime | None = None
    failure_reason: str | None = None
    multipart_upload_id: str | None = field(default=None, repr=False)
    multipart_parts: dict[str, Any] = field(default_factory=dict)
    # A bearer credential: kept out of repr so it never lands in a log line.
    session_uri: str | None = field(default=None, repr=False)
    session_uri_expires_at: datetime | None = None
    last_known_offset: int = 0
    resumable_protocol: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> UploadSession:
        return _build(cls, row)


@dataclass(frozen=True)
class ProviderAsset:
    """An asset's copy at a streaming provider (Mux): its ids there and how far it got.

    ``provider_asset_id`` and ``provider_upload_id`` are the provider's own handles: they
    name the asset in its API, so they stay out of repr, URLs and logs; only a playback id
    is public.
    """

    id: str
    asset_id: str
    profile: str
    provider_name: str
    state: str
    provider_asset_id: str | None = field(default=None, repr=False)
    provider_upload_id: str | None = field(default=None, repr=False)
    playback_ids: list[dict[str, Any]] = field(default_factory=list)
    playback_policy: str | None = None
    ingest_mode: str | None = None
    source: str | None = None
    passthrough: str | None = None
    last_event_id: str | None = None
    last_event_at: datetime | None = None
    last_sync_error: str | None = None
    raw_provider_metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def playback_id(self, policy: str | None = None) -> str | None:
        """The first playback id (of ``policy``, when given), or ``None``."""
        for entry in self.playback_ids:
            if policy is None or entry.get("policy") == policy:
                return str(entry["id"])
        return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProviderAsset:
        return _build(cls, row)


@dataclass(frozen=True)
class Attachment:
    """The link between an owner's slot and an asset."""

    id: str
    asset_id: str
    owner_type: str
    owner_id: str
    slot: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    asset: Asset | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Attachment:
        return _build(cls, row)


@dataclass(frozen=True)
class ProcessingRun:
    """One attempt of one job on one asset/variant, for operators."""

    id: str
    asset_id: str
    variant_name: str
    job: str
    worker: str
    state: str
    attempt: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_reason: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProcessingRun:
        return _build(cls, row)


@dataclass(frozen=True)
class OutboxEntry:
    """A side effect waiting for (or done by) the queue."""

    id: str
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int = 0
    last_error: str | None = None
    available_at: datetime | None = None
    dispatched_at: datetime | None = None
    completed_at: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEntry:
        return _build(cls, row)


@dataclass(frozen=True)
class PurgeRecord:
    """What a purge removed, and why."""

    id: str
    asset_id: str
    profile: str
    storage: str
    storage_keys: list[str]
    reason: str
    asset_state: str | None = None
    purged_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PurgeRecord:
        return _build(cls, row)


@dataclass(frozen=True)
class Change:
    """A committed state change, handed to listeners (live events, telemetry) after commit."""

    entity: str
    entity_id: str
    asset_id: str
    from_state: str
    to_state: str
    at: datetime
    profile: str | None = None
    name: str | None = None
    reason: str | None = None
    provider: str | None = None  # a provider asset's streaming provider
