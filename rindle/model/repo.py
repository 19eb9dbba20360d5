"""Every query Rindle runs: inserts, conditional state transitions, and lookups."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .._entropy import RandomPool
from ..errors import InvalidTransition, NotFound
from . import states
from .db import Row, Store
from .records import (
    Asset,
    AssetVariant,
    Attachment,
    Change,
    OutboxEntry,
    ProcessingRun,
    ProviderAsset,
    PurgeRecord,
    UploadSession,
    json_value,
    utc,
)

ASSETS = "rindle_assets"
VARIANTS = "rindle_variants"
SESSIONS = "rindle_upload_sessions"
ATTACHMENTS = "rindle_attachments"
RUNS = "rindle_processing_runs"
PROVIDER_ASSETS = "rindle_provider_assets"
PROVIDER_EVENTS = "rindle_provider_events"
OUTBOX = "rindle_outbox"
PURGE_LOG = "rindle_purge_log"

_TABLES = {"asset": ASSETS, "variant": VARIANTS, "session": SESSIONS,
           "provider_asset": PROVIDER_ASSETS, "outbox": OUTBOX}
_LABELS = {"asset": "asset", "variant": "variant", "session": "upload session",
           "provider_asset": "provider asset"}
# Sessions an upload can still finish; past expires_at they are abandoned.
OPEN_SESSION_STATES = ("initialized", "signed", "resuming", "uploading", "uploaded")
# Assets whose verified bytes may still sit under their upload's staging key.
UNPROMOTED_ASSET_STATES = ("staged", "validating")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
# What a page shows of a variant: its state, file and size (``variants_of(for_display=)``).
_DISPLAY_COLUMNS = ("id, asset_id, name, state, recipe_digest, storage_key, content_type, "
                    "width, height, generated_at")


def now() -> datetime:
    return datetime.now(UTC)


_ids = RandomPool()


def new_id() -> str:
    """A random (version 4) UUID, as text.

    ``uuid.uuid4()`` makes a system call per id, and on a busy event loop each one lets
    another thread take the interpreter for a while; the same random bytes are read here
    4 KiB at a time.
    """
    raw = _ids.take(16)
    return str(uuid.UUID(bytes=raw, version=4))


def _column(name: str) -> str:
    # Column names in built statements come from keyword arguments: refuse anything that
    # is not a plain identifier rather than splice it into SQL.
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a column name: {name!r}")
    return f'"{name}"'


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...], suffix: str, prefixes: tuple[str, ...] = ("",)
                ) -> str:
    """INSERT of one row per prefix, each row's values named ``:{prefix}{column}``."""
    names = ", ".join(_column(k) for k in columns)
    rows = ", ".join("(" + ", ".join(f":{p}{k}" for k in columns) + ")" for p in prefixes)
    return f"INSERT INTO {table} ({names}) VALUES {rows}{suffix}"


def _insert(table: str, row: dict[str, Any], *, suffix: str = "") -> tuple[str, dict[str, Any]]:
    return _insert_sql(table, tuple(row), suffix), row


@functools.lru_cache(maxsize=256)
def _update_sql(table: str, columns: tuple[str, ...], keys: tuple[str, ...],
                suffix: str) -> str:
    sets = ", ".join(f"{_column(k)} = :v_{k}" for k in columns)
    conds = " AND ".join(f"{_column(k)} = :w_{k}" for k in keys)
    return f"UPDATE {table} SET {sets} WHERE {conds}{suffix}"


def _update(table: str, values: dict[str, Any], where: dict[str, Any],
            suffix: str = "") -> tuple[str, dict[str, Any]]:
    """``UPDATE table SET ... WHERE`` every ``where`` column equals its value."""
    params = {f"v_{k}": v for k, v in values.items()}
    params.update({f"w_{k}": v for k, v in where.items()})
    return _update_sql(table, tuple(values), tuple(where), suffix), params


def _asset_row(values: dict[str, Any]) -> dict[str, Any]:
    ts = now()
    values.setdefault("id", new_id())
    values.setdefault("state", "staged")
    values.setdefault("metadata", {})
    return {**values, "created_at": ts, "updated_at": ts, "state_changed_at": ts}


def _session_row(values: dict[str, Any]) -> dict[str, Any]:
    ts = now()
    values.setdefault("id", new_id())
    values.setdefault("state", "initialized")
    values.setdefault("multipart_parts", {})
    values.setdefault("last_known_offset", 0)
    return {**values, "created_at": ts, "updated_at": ts}


def _of_profile(table: str, profile: str, params: dict[str, Any]) -> str:
    """The condition "belongs to ``profile``": variants through their asset, the others by
    their own profile column; adds the value to ``params``."""
    params["profile"] = profile
    if table == VARIANTS:
        return f"asset_id IN (SELECT id FROM {ASSETS} WHERE profile = :profile)"
    return "profile = :profile"


def _in(prefix: str, items: Iterable[Any], params: dict[str, Any]) -> str:
    """``(:p0, :p1, ...)`` for an IN list, adding the values to ``params``."""
    names = []
    for i, item in enumerate(items):
        params[f"{prefix}{i}"] = item
        names.append(f":{prefix}{i}")
    return "(" + ", ".join(names or ["NULL"]) + ")"


class Repo:
    """The only place SQL is written. Methods are small and named for what they change.

    Statements are plain SQL in the subset SQLite and PostgreSQL share (``RETURNING``,
    ``ON CONFLICT ... DO NOTHING``), with ``:name`` placeholders; ``db.Store`` adapts them
    to the driver.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store

    # --- generic -------------------------------------------------------------------------

    async def _transition(self, entity: str, where: dict[str, Any], label_id: str,
                          from_state: str, to_state: str, values: dict[str, Any], *,
                          via: Sequence[str] = ()) -> Row:
        """One conditional UPDATE from ``from_state`` to ``to_state``; ``via`` names states
        passed through on the way, each step checked and announced as if it were its own
        UPDATE (in one transaction no one could see the row between them anyway)."""
        path = (from_state, *via, to_state)
        for a, b in zip(path, path[1:], strict=False):
            if not states.allowed(entity, a, b):
                raise InvalidTransition(_LABELS[entity], label_id, a, b)
        table = _TABLES[entity]
        ts = now()
        values = {**values, "state": to_state, "updated_at": ts}
        if entity == "asset":
            values["state_changed_at"] = ts
        sql, params = _update(table, values, {**where, "state": from_state},
                              suffix=" RETURNING *")
        rows = await self.db.fetch_all(sql, params)
        if not rows:
            conds = " AND ".join(f"{_column(k)} = :{k}" for k in where)
            current = await self.db.fetch_one(f"SELECT state FROM {table} WHERE {conds}", where)
            if current is None:
                raise NotFound(f"{_LABELS[entity]} {label_id} does not exist")
            raise InvalidTransition(_LABELS[entity], label_id, from_state, to_state,
                                    actual=current["state"])
        row = rows[0]
        for a, b in zip(path, path[1:], strict=False):
            await self.announce(entity, row, a, b, at=ts)
        return row

    async def announce(self, entity: str, row: Row, from_state: str, to_state: str, *,
                       at: datetime) -> None:
        """Record the state change of ``row`` (published after the current commit)."""
        await self.store.record(
            Change(
                entity=entity,
                entity_id=row["id"],
                asset_id=row["id"] if entity == "asset" else row["asset_id"],
                from_state=from_state,
                to_state=to_state,
                at=at,
                profile=row.get("profile"),
                name=row.get("name"),
                provider=row.get("provider_name"),
                reason=row.get("quarantine_reason") or row.get("failure_reason")
                or row.get("error_reason"),
            )
        )

    async def _select(self, table: str, where: dict[str, Any], *, order: str | None = None,
                      limit: int | None = None, lock: bool = False) -> list[Row]:
        params = dict(where)
        sql = f"SELECT * FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(f"{_column(k)} = :{k}" for k in where)
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        if lock and self.store.dialect == "postgresql":  # SQLite locks the whole file anyway
            sql += " FOR UPDATE"
        return await self.db.fetch_all(sql, params)

    # --- assets --------------------------------------------------------------------------

    async def insert_asset(self, **values: Any) -> Asset:
        row = _asset_row(values)
        await self.db.execute(*_insert(ASSETS, row))
        return Asset.from_row(row)

    async def insert_asset_and_session(self, asset: dict[str, Any], session: dict[str, Any]
                                       ) -> tuple[Asset, UploadSession]:
        """An asset and its upload session (values as for ``insert_asset`` and
        ``insert_session``), both or neither: one statement on PostgreSQL, which saves the
        BEGIN and COMMIT round trips of a transaction; a transaction on SQLite."""
        a, u = _asset_row(dict(asset)), _session_row(dict(session))
        if self.store.dialect == "postgresql":
            params = {f"a_{k}": v for k, v in a.items()}
            params.update({f"s_{k}": v for k, v in u.items()})
            await self.db.execute(  # (a second run would only find the ids taken)
                f"WITH a AS ({_insert_sql(ASSETS, tuple(a), '', ('a_',))}) "
                f"{_insert_sql(SESSIONS, tuple(u), '', ('s_',))}", params, replayable=True)
        else:
            async with self.store.transaction():
                await self.db.execute(*_insert(ASSETS, a))
                await self.db.execute(*_insert(SESSIONS, u))
        return Asset.from_row(a), UploadSession.from_row(u)

    async def get_asset(self, asset_id: str, *, for_update: bool = False) -> Asset | None:
        """The asset row; ``for_update`` locks it until the transaction ends (PostgreSQL;
        SQLite's transactions hold the whole database's write lock already)."""
        rows = await self._select(ASSETS, {"id": asset_id}, lock=for_update)
        return Asset.from_row(rows[0]) if rows else None

    async def require_asset(self, asset_id: str) -> Asset:
        asset = await self.get_asset(asset_id)
        if asset is None:
            raise NotFound(f"asset {asset_id} does not exist")
        return asset

    async def update_asset(self, asset_id: str, **values: Any) -> None:
        await self.db.execute(*_update(ASSETS, {**values, "updated_at": now()}, {"id": asset_id}))

    async def merge_asset_metadata(self, asset_id: str, values: dict[str, Any]) -> None:
        """Merge keys into the asset's metadata (read-modify-write in one transaction)."""
        async with self.store.transaction():
            r = await self.db.fetch_one(f"SELECT metadata FROM {ASSETS} WHERE id = :id",
                                        {"id": asset_id})
            if r is None:
                return
            current = json_value(r["metadata"], {})
            await self.db.execute(*_update(
                ASSETS, {"metadata": {**current, **values}, "updated_at": now()},
                {"id": asset_id}))

    async def transition_asset(self, asset_id: str, from_state: str, to_state: str,
                               **values: Any) -> Asset:
        row = await self._transition("asset", {"id": asset_id}, asset_id, from_state,
                                     to_state, values)
        return Asset.from_row(row)

    async def list_assets(self, *, state: str | None = None, profile: str | None = None,
                          limit: int = 100) -> list[Asset]:
        where = {k: v for k, v in (("state", state), ("profile", profile)) if v}
        rows = await self._select(ASSETS, where, order="created_at", limit=limit)
        return [Asset.from_row(r) for r in rows]

    async def delete_asset_rows(self, asset_id: str) -> None:
        """Remove an asset and everything hanging off it (explicitly: SQLite may not cascade)."""
        for table in (RUNS, VARIANTS, SESSIONS, PROVIDER_ASSETS, ATTACHMENTS):
            await self.db.execute(f"DELETE FROM {table} WHERE asset_id = :id", {"id": asset_id})
        await self.db.execute(f"DELETE FROM {ASSETS} WHERE id = :id", {"id": asset_id})

    # --- provider assets (streaming) ----------------------------------------------------

    async def insert_provider_asset(self, *, asset_id: str, profile: str, provider_name: str,
                                    ingest_mode: str, playback_policy: str,
                                    source: str | None) -> tuple[ProviderAsset, bool]:
        """The asset's row at ``provider_name`` (``pending``), and whether it is new: an
        asset has at most one per profile and provider, so a second call finds the first."""
        ts = now()
        row_id = new_id()
        values: dict[str, Any] = dict(
            id=row_id, asset_id=asset_id, profile=profile, provider_name=provider_name,
            state="pending", ingest_mode=ingest_mode, playback_policy=playback_policy,
            source=source, passthrough=row_id, playback_ids=[], raw_provider_metadata={},
            created_at=ts, updated_at=ts)
        inserted = await self.db.fetch_one(*_insert(
            PROVIDER_ASSETS, values,
            suffix=" ON CONFLICT (asset_id, profile, provider_name) DO NOTHING RETURNING id"))
        if inserted is not None:
            return ProviderAsset.from_row(values), True
        rows = await self._select(PROVIDER_ASSETS, {"asset_id": asset_id, "profile": profile,
                                                    "provider_name": provider_name})
        return ProviderAsset.from_row(rows[0]), False

    async def get_provider_asset(self, row_id: str, *,
                                 for_update: bool = False) -> ProviderAsset | None:
        rows = await self._select(PROVIDER_ASSETS, {"id": row_id}, lock=for_update)
        return ProviderAsset.from_row(rows[0]) if rows else None

    async def provider_assets_for(self, asset_id: str) -> list[ProviderAsset]:
        rows = await self._select(PROVIDER_ASSETS, {"asset_id": asset_id}, order="created_at")
        return [ProviderAsset.from_row(r) for r in rows]

    async def find_provider_asset(self, provider_name: str, *, asset: str | None = None,
                                  upload: str | None = None, for_update: bool = False
                                  ) -> ProviderAsset | None:
        """The row the provider's own asset id or upload id names."""
        where: dict[str, Any] = {"provider_name": provider_name}
        if asset is not None:
            where["provider_asset_id"] = asset
        elif upload is not None:
            where["provider_upload_id"] = upload
        else:
            return None
        rows = await self._select(PROVIDER_ASSETS, where, lock=for_update)
        return ProviderAsset.from_row(rows[0]) if rows else None

    async def transition_provider_asset(self, row_id: str, from_state: str, to_state: str,
                                        *, via: Sequence[str] = (),
                                        **values: Any) -> ProviderAsset:
        row = await self._transition("provider_asset", {"id": row_id}, row_id, from_state,
                                     to_state, values, via=via)
        return ProviderAsset.from_row(row)

    async def update_provider_asset(self, row_id: str, **values: Any) -> None:
        await self.db.execute(*_update(PROVIDER_ASSETS, {**values, "updated_at": now()},
                                       {"id": row_id}))

    async def prune_provider_events(self, *, before: datetime, limit: int,
                                    dry_run: bool = False) -> int:
        """Forget (or, with ``dry_run``, count) up to ``limit`` webhook event ids received
        before ``before``."""
        old = (f"SELECT id FROM {PROVIDER_EVENTS} WHERE received_at < :before"
               " ORDER BY received_at LIMIT :limit")
        params = {"before": before, "limit": limit}
        if dry_run:
            return len(await self.db.fetch_all(old, params))
        gone = await self.db.fetch_all(
            f"DELETE FROM {PROVIDER_EVENTS} WHERE id IN ({old}) RETURNING id", params)
        return len(gone)

    async def record_provider_event(self, provider_name: str, event_id: str, event_type: str,
                                    row_id: str | None) -> bool:
        """Note a webhook event as applied; ``False`` when it was applied before."""
        inserted = await self.db.fetch_one(*_insert(
            PROVIDER_EVENTS, dict(id=new_id(), provider_name=provider_name, event_id=event_id,
                                  event_type=event_type, provider_asset_row=row_id,
                                  received_at=now()),
            suffix=" ON CONFLICT (provider_name, event_id) DO NOTHING RETURNING id"))
        return inserted is not None

    # --- variants ------------------------------------------------------------------------

    async def plan_variants(self, asset_id: str,
                            planned: Iterable[tuple[str, str, str]]) -> list[AssetVariant]:
        """Insert ``planned`` rows for (name, recipe_digest, output_kind) not planned yet."""
        existing = {v.name for v in await self.list_variants(asset_id)}
        ts = now()
        for name, digest, kind in planned:
            if name in existing:
                continue
            await self.db.execute(*_insert(VARIANTS, dict(
                id=new_id(), asset_id=asset_id, name=name, state="planned",
                recipe_digest=digest, output_kind=kind, attempts=0,
                created_at=ts, updated_at=ts,
            )))
        return await self.list_variants(asset_id)

    async def list_variants(self, asset_id: str) -> list[AssetVariant]:
        rows = await self._select(VARIANTS, {"asset_id": asset_id}, order="name")
        return [AssetVariant.from_row(r) for r in rows]

    async def get_variant(self, asset_id: str, name: str) -> AssetVariant | None:
        rows = await self._select(VARIANTS, {"asset_id": asset_id, "name": name})
        return AssetVariant.from_row(rows[0]) if rows else None

    async def transition_variant(self, asset_id: str, name: str, from_state: str,
                                 to_state: str, **values: Any) -> AssetVariant:
        row = await self._transition("variant", {"asset_id": asset_id, "name": name},
                                     f"{asset_id}/{name}", from_state, to_state, values)
        return AssetVariant.from_row(row)

    async def update_variant(self, asset_id: str, name: str, **values: Any) -> None:
        await self.db.execute(*_update(VARIANTS, {**values, "updated_at": now()},
                                       {"asset_id": asset_id, "name": name}))

    async def mark_stale(self, profile: str, name: str, digest: str) -> int:
        """Ready variants of ``profile`` named ``name`` built from another recipe -> stale."""
        ts = now()
        rows = await self.db.fetch_all(
            f"UPDATE {VARIANTS} SET state = 'stale', updated_at = :ts"
            " WHERE state = 'ready' AND name = :name AND recipe_digest <> :digest"
            f" AND asset_id IN (SELECT id FROM {ASSETS} WHERE profile = :profile)"
            " RETURNING id, asset_id",
            {"ts": ts, "name": name, "digest": digest, "profile": profile})
        for r in rows:
            await self.store.record(Change(entity="variant", entity_id=r["id"],
                                           asset_id=r["asset_id"], from_state="ready",
                                           to_state="stale", at=ts, profile=profile, name=name))
        return len(rows)

    async def count_outdated(self, profile: str, name: str, digest: str) -> int:
        """How many ready variants ``mark_stale`` would mark (built from another recipe)."""
        row = await self.db.fetch_one(
            f"SELECT count(*) AS n FROM {VARIANTS}"
            " WHERE state = 'ready' AND name = :name AND recipe_digest <> :digest"
            f" AND asset_id IN (SELECT id FROM {ASSETS} WHERE profile = :profile)",
            {"name": name, "digest": digest, "profile": profile})
        return int(row["n"]) if row else 0

    async def asset_ids_needing(self, profile: str, names: Sequence[str], *,
                                after: str | None, limit: int) -> list[str]:
        """Settled assets of ``profile`` lacking one of ``names`` or holding a stale one."""
        params: dict[str, Any] = {"profile": profile, "need": len(set(names)), "limit": limit}
        sql = (f"SELECT a.id FROM {ASSETS} a"
               " WHERE a.profile = :profile"
               " AND a.state IN ('processing', 'ready', 'degraded')"
               f" AND (SELECT count(*) FROM {VARIANTS} v WHERE v.asset_id = a.id"
               f" AND v.name IN {_in('n', names, params)}"
               " AND v.state NOT IN ('stale', 'missing')) < :need")
        if after is not None:
            sql += " AND a.id > :after"
            params["after"] = after
        sql += " ORDER BY a.id LIMIT :limit"
        return [r["id"] for r in await self.db.fetch_all(sql, params)]

    async def asset_ids_with_variants_in(self, states: Sequence[str], *,
                                         profile: str | None = None, after: str | None = None,
                                         limit: int = 200) -> list[str]:
        """Assets (by id, ascending, after ``after``) holding a variant in one of ``states``."""
        params: dict[str, Any] = {"limit": limit}
        sql = (f"SELECT DISTINCT v.asset_id FROM {VARIANTS} v"
               f" WHERE v.state IN {_in('s', states, params)}")
        if profile is not None:
            sql += f" AND {_of_profile(VARIANTS, profile, params)}"
        if after is not None:
            sql += " AND v.asset_id > :after"
            params["after"] = after
        sql += " ORDER BY v.asset_id LIMIT :limit"
        return [r["asset_id"] for r in await self.db.fetch_all(sql, params)]

    async def abandon_runs(self, asset_id: str, name: str) -> None:
        """Close runs a dead worker left ``running`` for this variant."""
        await self.db.execute(*_update(
            RUNS, {"state": "abandoned", "finished_at": now(),
                   "error_reason": "the worker stopped before finishing"},
            {"asset_id": asset_id, "variant_name": name, "state": "running"}))

    # --- upload sessions -----------------------------------------------------------------

    async def get_session(self, session_id: str, *,
                          for_update: bool = False) -> UploadSession | None:
        """The session row; ``for_update`` locks it until the transaction ends (as for
        ``get_asset``)."""
        rows = await self._select(SESSIONS, {"id": session_id}, lock=for_update)
        return UploadSession.from_row(rows[0]) if rows else None

    async def transition_session(self, session_id: str, from_state: str, to_state: str, *,
                                 via: Sequence[str] = (), **values: Any) -> UploadSession:
        """``via``: states the session passes through on the way (see ``_transition``)."""
        row = await self._transition("session", {"id": session_id}, session_id,
                                     from_state, to_state, values, via=via)
        return UploadSession.from_row(row)

    async def update_session(self, session_id: str, **values: Any) -> None:
        await self.db.execute(*_update(SESSIONS, {**values, "updated_at": now()},
                                       {"id": session_id}))

    async def sessions_for_asset(self, asset_id: str) -> list[UploadSession]:
        rows = await self._select(SESSIONS, {"asset_id": asset_id}, order="created_at")
        return [UploadSession.from_row(r) for r in rows]

    # --- attachments ---------------------------------------------------------------------

    async def get_attachment(self, owner_type: str, owner_id: str, slot: str, *,
                             for_update: bool = False) -> Attachment | None:
        rows = await self._select(ATTACHMENTS, {"owner_type": owner_type, "owner_id": owner_id,
                                                "slot": slot}, lock=for_update)
        return Attachment.from_row(rows[0]) if rows else None

    async def insert_attachment_if_absent(self, asset_id: str, owner_type: str, owner_id: str,
                                          slot: str) -> Attachment | None:
        """Insert the link; ``None`` when another actor filled the slot first."""
        ts = now()
        row = dict(id=new_id(), asset_id=asset_id, owner_type=owner_type, owner_id=owner_id,
                   slot=slot, created_at=ts, updated_at=ts)
        rows = await self.db.fetch_all(*_insert(
            ATTACHMENTS, row,
            suffix=" ON CONFLICT (owner_type, owner_id, slot) DO NOTHING RETURNING id"))
        return Attachment.from_row(row) if rows else None

    async def repoint_attachment(self, attachment_id: str, asset_id: str) -> None:
        await self.db.execute(*_update(ATTACHMENTS, {"asset_id": asset_id, "updated_at": now()},
                                       {"id": attachment_id}))

    async def delete_attachment(self, owner_type: str, owner_id: str,
                                slot: str) -> Attachment | None:
        rows = await self.db.fetch_all(
            f"DELETE FROM {ATTACHMENTS} WHERE owner_type = :owner_type"
            " AND owner_id = :owner_id AND slot = :slot RETURNING *",
            {"owner_type": owner_type, "owner_id": owner_id, "slot": slot})
        return Attachment.from_row(rows[0]) if rows else None

    async def attachments_for_asset(self, asset_id: str) -> list[Attachment]:
        rows = await self._select(ATTACHMENTS, {"asset_id": asset_id}, order="created_at")
        return [Attachment.from_row(r) for r in rows]

    async def attachments_for_owner(self, owner_type: str, owner_id: str) -> list[Attachment]:
        rows = await self._select(ATTACHMENTS, {"owner_type": owner_type, "owner_id": owner_id},
                                  order="slot")
        return [Attachment.from_row(r) for r in rows]

    # --- outbox --------------------------------------------------------------------------

    async def add_outbox(self, kind: str, payload: dict[str, Any], *,
                         delay_seconds: float = 0) -> OutboxEntry:
        [entry] = await self.add_outbox_many([(kind, payload, delay_seconds)])
        return entry

    async def add_outbox_many(self, items: Sequence[tuple[str, dict[str, Any], float]]
                              ) -> list[OutboxEntry]:
        """Outbox rows of (kind, payload, delay in seconds), in one INSERT."""
        ts = now()
        rows = [dict(id=new_id(), kind=kind, payload=payload, state="pending", attempts=0,
                     available_at=ts + timedelta(seconds=delay), created_at=ts)
                for kind, payload, delay in items]
        if not rows:
            return []
        if len(rows) == 1:
            await self.db.execute(*_insert(OUTBOX, rows[0]))
        else:
            prefixes = tuple(f"r{i}_" for i in range(len(rows)))
            params = {f"{p}{k}": v for p, row in zip(prefixes, rows, strict=True)
                      for k, v in row.items()}
            await self.db.execute(_insert_sql(OUTBOX, tuple(rows[0]), "", prefixes), params)
        return [OutboxEntry.from_row(row) for row in rows]

    async def get_outbox(self, entry_id: str) -> OutboxEntry | None:
        rows = await self._select(OUTBOX, {"id": entry_id})
        return OutboxEntry.from_row(rows[0]) if rows else None

    async def mark_outbox_dispatched_many(self, entry_ids: Sequence[str]) -> None:
        """Entries handed to the queue -> dispatched (one that already ran keeps its state).

        One statement for any number of ids: the ids travel as one array value, so the SQL
        (and the prepared statement asyncpg caches for it) is always the same.
        """
        if not entry_ids:
            return
        if self.store.dialect == "postgresql":
            ids = "ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:ids AS jsonb))))"
            cond = f"id = {ids}"
        else:
            cond = "id IN (SELECT value FROM json_each(:ids))"
        await self.db.execute(  # (both drivers send a list as JSON text)
            f"UPDATE {OUTBOX} SET state = 'dispatched', dispatched_at = :ts"
            f" WHERE {cond} AND state IN ('pending', 'dispatched')",
            {"ts": now(), "ids": list(entry_ids)}, replayable=True)

    async def start_outbox_attempt(self, entry_id: str) -> int:
        """Count one more attempt; returns the attempt number (1 for the first)."""
        rows = await self.db.fetch_all(
            f"UPDATE {OUTBOX} SET attempts = attempts + 1 WHERE id = :id RETURNING attempts",
            {"id": entry_id})
        return int(rows[0]["attempts"]) if rows else 1

    async def mark_outbox_done(self, entry_id: str) -> None:
        await self.db.execute(*_update(
            OUTBOX, {"state": "done", "completed_at": now(), "last_error": None},
            {"id": entry_id}))

    async def mark_outbox_failed(self, entry_id: str, error: str, *, final: bool,
                                 retry_in: float = 0) -> None:
        values: dict[str, Any] = {"last_error": error[:2000]}
        if final:
            values.update(state="failed", completed_at=now())
        else:
            values.update(available_at=now() + timedelta(seconds=retry_in))
        await self.db.execute(*_update(OUTBOX, values, {"id": entry_id}))

    async def due_outbox(self, *, pending_before: datetime, dispatched_before: datetime,
                         limit: int = 100) -> list[OutboxEntry]:
        """Rows that should be (re)dispatched: pending ones past their time, and dispatched
        ones that no worker finished within the stale window."""
        rows = await self.db.fetch_all(
            f"SELECT * FROM {OUTBOX}"
            " WHERE (state = 'pending' AND available_at <= :pending_before)"
            " OR (state = 'dispatched' AND dispatched_at <= :dispatched_before)"
            " ORDER BY available_at LIMIT :limit",
            {"pending_before": pending_before, "dispatched_before": dispatched_before,
             "limit": limit})
        return [OutboxEntry.from_row(r) for r in rows]

    async def list_outbox(self, *, kind: str | None = None, state: str | None = None,
                          limit: int = 1000) -> list[OutboxEntry]:
        where = {k: v for k, v in (("kind", kind), ("state", state)) if v}
        rows = await self._select(OUTBOX, where, order="created_at", limit=limit)
        return [OutboxEntry.from_row(r) for r in rows]

    async def count_outbox(self) -> dict[str, int]:
        return await self.count_by_state("outbox")

    # --- processing runs -----------------------------------------------------------------

    async def start_run(self, *, asset_id: str, variant_name: str, job: str, worker: str,
                        attempt: int) -> ProcessingRun:
        ts = now()
        row = dict(id=new_id(), asset_id=asset_id, variant_name=variant_name, job=job,
                   worker=worker, state="running", attempt=attempt, started_at=ts,
                   timings={}, created_at=ts)
        await self.db.execute(*_insert(RUNS, row))
        return ProcessingRun.from_row(row)

    async def finish_run(self, run_id: str, *, state: str, error_reason: str | None = None,
                         timings: dict[str, Any] | None = None) -> None:
        await self.db.execute(*_update(
            RUNS, {"state": state, "finished_at": now(), "error_reason": error_reason,
                   "timings": timings or {}}, {"id": run_id}))

    async def runs_for_asset(self, asset_id: str) -> list[ProcessingRun]:
        rows = await self._select(RUNS, {"asset_id": asset_id}, order="created_at")
        return [ProcessingRun.from_row(r) for r in rows]

    # --- purge log -----------------------------------------------------------------------

    async def log_purge(self, *, asset: Asset, keys: Sequence[str], reason: str) -> PurgeRecord:
        row = dict(id=new_id(), asset_id=asset.id, profile=asset.profile, storage=asset.storage,
                   storage_keys=list(keys), reason=reason, asset_state=asset.state,
                   purged_at=now())
        await self.db.execute(*_insert(PURGE_LOG, row))
        return PurgeRecord.from_row(row)

    async def purges(self, *, asset_id: str | None = None, limit: int = 100) -> list[PurgeRecord]:
        where = {"asset_id": asset_id} if asset_id else {}
        rows = await self._select(PURGE_LOG, where, order="purged_at DESC", limit=limit)
        return [PurgeRecord.from_row(r) for r in rows]

    # --- counts and findings for status and clean-up -------------------------------------

    async def count_by_state(self, entity: str, *, profile: str | None = None) -> dict[str, int]:
        """How many rows of ``entity`` are in each state (of one profile, if given)."""
        table = _TABLES[entity]
        params: dict[str, Any] = {}
        where = f" WHERE {_of_profile(table, profile, params)}" if profile is not None else ""
        rows = await self.db.fetch_all(
            f"SELECT state, count(*) AS n FROM {table}{where} GROUP BY state", params)
        return {str(r["state"]): int(r["n"]) for r in rows}

    async def findings(self, entity: str, states: Sequence[str], *, since_column: str,
                       before: datetime | None = None, profile: str | None = None,
                       limit: int = 5, where: dict[str, Any] | None = None,
                       ) -> tuple[int, datetime | None, list[Row]]:
        """Rows of ``entity`` in ``states`` whose ``since_column`` is before ``before``
        (and whose columns equal ``where``'s values): how many, the oldest
        ``since_column``, and up to ``limit`` of them, oldest first."""
        table = _TABLES[entity]
        column = _column(since_column)
        params: dict[str, Any] = {}
        conds = [f"state IN {_in('s', states, params)}"]
        for key, value in (where or {}).items():
            conds.append(f"{_column(key)} = :w_{key}")
            params[f"w_{key}"] = value
        if before is not None:
            conds.append(f"{column} < :before")
            params["before"] = before
        if profile is not None:
            conds.append(_of_profile(table, profile, params))
        cond = " AND ".join(conds)
        head = await self.db.fetch_one(
            f"SELECT count(*) AS n, min({column}) AS oldest FROM {table} WHERE {cond}", params)
        count = int(head["n"]) if head else 0
        if not count:
            return 0, None, []
        rows = await self.db.fetch_all(
            f"SELECT * FROM {table} WHERE {cond} ORDER BY {column} LIMIT :limit",
            {**params, "limit": limit})
        return count, utc(head["oldest"]) if head else None, rows

    async def expired_open_sessions(self, *, before: datetime, server_before: datetime,
                                    limit: int) -> list[UploadSession]:
        """Upload sessions that nobody finished or aborted, expired before ``before``
        (streamed server-side uploads: before ``server_before``), oldest first."""
        params: dict[str, Any] = {"before": before, "server_before": server_before,
                                  "limit": limit}
        rows = await self.db.fetch_all(
            f"SELECT * FROM {SESSIONS} WHERE state IN {_in('s', OPEN_SESSION_STATES, params)}"
            " AND ((strategy <> 'server' AND expires_at < :before)"
            " OR (strategy = 'server' AND expires_at < :server_before))"
            " ORDER BY expires_at LIMIT :limit", params)
        return [UploadSession.from_row(r) for r in rows]

    # --- storage reconciliation ----------------------------------------------------------

    # --- named markers (rindle_meta): where a long operator command got to -------------

    async def get_marker(self, name: str) -> str | None:
        row = await self.db.fetch_one("SELECT value FROM rindle_meta WHERE name = :name",
                                      {"name": name})
        return None if row is None else str(row["value"])

    async def set_marker(self, name: str, value: str) -> None:
        """Write ``name`` = ``value`` (insert or replace): one statement on either database."""
        await self.db.execute(
            "INSERT INTO rindle_meta (name, value, created_at) VALUES (:name, :value, :at)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            {"name": name, "value": value, "at": now()})

    async def clear_marker(self, name: str) -> None:
        await self.db.execute("DELETE FROM rindle_meta WHERE name = :name", {"name": name})

    async def assets_page(self, *, states: Sequence[str], profile: str | None = None,
                          after: str | None = None, limit: int = 500) -> list[Asset]:
        """Assets in ``states`` (of one profile, if given) by id, after ``after``: one page
        of a walk through the table that never loads it whole."""
        params: dict[str, Any] = {"limit": limit}
        sql = f"SELECT * FROM {ASSETS} WHERE state IN {_in('s', states, params)}"
        if profile is not None:
            sql += f" AND {_of_profile(ASSETS, profile, params)}"
        if after is not None:
            sql += " AND id > :after"
            params["after"] = after
        sql += " ORDER BY id LIMIT :limit"
        return [Asset.from_row(r) for r in await self.db.fetch_all(sql, params)]

    async def get_assets(self, asset_ids: Sequence[str]) -> list[Asset]:
        """The assets with these ids (those that exist), in one query."""
        if not asset_ids:
            return []
        params: dict[str, Any] = {}
        rows = await self.db.fetch_all(
            f"SELECT * FROM {ASSETS} WHERE id IN {_in('a', asset_ids, params)}", params)
        return [Asset.from_row(r) for r in rows]

    async def variants_of(self, asset_ids: Sequence[str], *,
                          names: Sequence[str] | None = None,
                          for_display: bool = False) -> dict[str, list[AssetVariant]]:
        """The variants of these assets (only ``names``, when given), by asset id in name
        order, in one query. ``for_display``: only the columns a page renders from (no
        attempts, error or created/updated times): a page of 50 pictures builds 150 rows,
        and most of each row's cost was decoding columns nobody shows."""
        found: dict[str, list[AssetVariant]] = {a: [] for a in asset_ids}
        if not asset_ids:
            return found
        params: dict[str, Any] = {}
        columns = (_DISPLAY_COLUMNS if for_display else "*")
        sql = (f"SELECT {columns} FROM {VARIANTS} WHERE asset_id IN "
               f"{_in('a', asset_ids, params)}")
        if names is not None:
            sql += f" AND name IN {_in('n', names, params)}"
        rows = await self.db.fetch_all(sql + " ORDER BY asset_id, name", params)
        for r in rows:
            found.setdefault(r["asset_id"], []).append(AssetVariant.from_row(r))
        return found

    async def variants_in_state(self, asset_ids: Sequence[str],
                                state: str) -> list[AssetVariant]:
        """The variants of these assets that are in ``state``."""
        if not asset_ids:
            return []
        params: dict[str, Any] = {"state": state}
        rows = await self.db.fetch_all(
            f"SELECT * FROM {VARIANTS} WHERE asset_id IN {_in('a', asset_ids, params)}"
            " AND state = :state ORDER BY asset_id, name", params)
        return [AssetVariant.from_row(r) for r in rows]

    async def referenced_keys(self, asset_ids: Sequence[str]) -> set[str]:
        """Every storage key that rows of these assets name: the original, each variant's
        file (in any state), the staging key of each open upload session, and those of
        assets whose bytes promotion has not moved yet."""
        if not asset_ids:
            return set()
        params: dict[str, Any] = {}
        ids = _in("a", asset_ids, params)
        rows = await self.db.fetch_all(
            f"SELECT storage_key AS k FROM {ASSETS} WHERE id IN {ids}"
            f" UNION SELECT storage_key AS k FROM {VARIANTS} WHERE asset_id IN {ids}"
            " AND storage_key IS NOT NULL"
            f" UNION SELECT s.upload_key AS k FROM {SESSIONS} s JOIN {ASSETS} a"
            f" ON a.id = s.asset_id WHERE s.asset_id IN {ids}"
            f" AND (s.state IN {_in('s', OPEN_SESSION_STATES, params)}"
            f" OR a.state IN {_in('p', UNPROMOTED_ASSET_STATES, params)})", params)
        return {str(r["k"]) for r in rows}

    async def key_in_use(self, asset_id: str, key: str) -> bool:
        """Whether the asset or one of its variants is stored under ``key``."""
        row = await self.db.fetch_one(
            f"SELECT 1 AS x FROM {ASSETS} WHERE storage_key = :k"
            f" UNION SELECT 1 AS x FROM {VARIANTS} WHERE asset_id = :a AND storage_key = :k",
            {"k": key, "a": asset_id})
        return row is not None

    async def completed_session(self, asset_id: str) -> UploadSession | None:
        """The upload session whose verified bytes became this asset, if any."""
        rows = await self._select(SESSIONS, {"asset_id": asset_id, "state": "completed"},
                                  order="created_at DESC", limit=1)
        return UploadSession.from_row(rows[0]) if rows else None

    # --- resumable uploads: the lease of the one request appending now ------------------

    async def acquire_session_lease(self, session_id: str, token: str, until: datetime, *,
                                    offset: int | None = None) -> bool:
        """Take the session's lease, if it still takes bytes, unless another holder's is
        still running, and (with
        ``offset``) only while the upload still holds exactly that many bytes: the offset a
        request checked before asking may have moved on under another request's lease."""
        where = ""
        params: dict[str, Any] = {"token": token, "until": until, "id": session_id,
                                  "now": now()}
        if offset is not None:
            where, params["offset"] = " AND last_known_offset = :offset", offset
        rows = await self.db.fetch_all(
            f"UPDATE {SESSIONS} SET lease_token = :token, lease_until = :until"
            " WHERE id = :id AND state IN ('signed', 'uploading')"
            " AND (lease_token IS NULL OR lease_until IS NULL"
            f" OR lease_until < :now){where} RETURNING id", params)
        return bool(rows)

    async def renew_session_lease(self, session_id: str, token: str, until: datetime, *,
                                  expires_at: datetime | None = None) -> bool:
        """Push the lease's expiry out (and the session's, with ``expires_at``), if ``token``
        still holds it."""
        values: dict[str, Any] = {"lease_until": until}
        if expires_at is not None:
            values["expires_at"] = expires_at
        # Only while it takes bytes: an ended upload's expiry must not move on.
        sql, params = _update(SESSIONS, values, {"id": session_id, "lease_token": token},
                              suffix=" AND state IN ('signed', 'uploading') RETURNING id")
        rows = await self.db.fetch_all(sql, params)
        return bool(rows)

    async def release_session_lease(self, session_id: str, token: str) -> None:
        await self.db.execute(
            f"UPDATE {SESSIONS} SET lease_token = NULL, lease_until = NULL"
            " WHERE id = :id AND lease_token = :token", {"id": session_id, "token": token})

    async def record_append(self, session_id: str, token: str, *, offset: int,
                            parts: dict[str, Any], expires_at: datetime,
                            byte_size: int | None = None,
                            release: bool = False) -> UploadSession | None:
        """Record what an append made of the upload, if ``token`` still holds its lease and
        the session is still ``uploading`` (``None`` otherwise: another request took it
        over, or it was terminated or expired meanwhile, and this one's bytes are void).
        ``release`` gives the lease up in the same statement."""
        values: dict[str, Any] = {"last_known_offset": offset, "multipart_parts": parts,
                                  "expires_at": expires_at, "updated_at": now()}
        if release:
            values.update(lease_token=None, lease_until=None)
        if byte_size is not None:
            values["declared_byte_size"] = byte_size
        sql, params = _update(SESSIONS, values, {"id": session_id, "lease_token": token,
                                                "state": "uploading"},
                              suffix=" RETURNING *")
        rows = await self.db.fetch_all(sql, params)
        return UploadSession.from_row(rows[0]) if rows else None
