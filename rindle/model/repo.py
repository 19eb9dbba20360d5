"""Every query Rindle runs: inserts, conditional state transitions, and lookups."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidTransition, NotFound
from . import states
from .db import Store
from .records import (
    Asset,
    AssetVariant,
    Attachment,
    Change,
    OutboxEntry,
    ProcessingRun,
    PurgeRecord,
    UploadSession,
    json_value,
)
from .tables import (
    assets,
    attachments,
    outbox,
    processing_runs,
    provider_assets,
    purge_log,
    upload_sessions,
    variants,
)

_TABLES: dict[str, sa.Table] = {
    "asset": assets,
    "variant": variants,
    "session": upload_sessions,
    "provider_asset": provider_assets,
}
_LABELS = {"asset": "asset", "variant": "variant", "session": "upload session",
           "provider_asset": "provider asset"}


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def _row(record: Any) -> dict[str, Any]:
    return dict(record._mapping)


class Repo:
    """The only place SQL is written. Methods are small and named for what they change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store

    # --- generic -------------------------------------------------------------------------

    async def _transition(self, entity: str, where: sa.ColumnElement[bool], label_id: str,
                          from_state: str, to_state: str, values: dict[str, Any]) -> dict[str, Any]:
        if not states.allowed(entity, from_state, to_state):
            raise InvalidTransition(_LABELS[entity], label_id, from_state, to_state)
        table = _TABLES[entity]
        ts = now()
        values = {**values, "state": to_state, "updated_at": ts}
        if entity == "asset":
            values["state_changed_at"] = ts
        stmt = (
            table.update()
            .where(where, table.c.state == from_state)
            .values(**values)
            .returning(*table.c)
        )
        rows = await self.db.fetch_all(stmt)
        if not rows:
            current = await self.db.fetch_one(sa.select(table.c.state).where(where))
            if current is None:
                raise NotFound(f"{_LABELS[entity]} {label_id} does not exist")
            raise InvalidTransition(_LABELS[entity], label_id, from_state, to_state,
                                    actual=current._mapping["state"])
        row = _row(rows[0])
        await self.store.record(
            Change(
                entity=entity,
                entity_id=row["id"],
                asset_id=row["id"] if entity == "asset" else row["asset_id"],
                from_state=from_state,
                to_state=to_state,
                at=ts,
                profile=row.get("profile"),
                name=row.get("name"),
                reason=row.get("quarantine_reason") or row.get("failure_reason")
                or row.get("error_reason"),
            )
        )
        return row

    # --- assets --------------------------------------------------------------------------

    async def insert_asset(self, **values: Any) -> Asset:
        ts = now()
        values.setdefault("id", new_id())
        values.setdefault("state", "staged")
        values.setdefault("metadata", {})
        row = {**values, "created_at": ts, "updated_at": ts, "state_changed_at": ts}
        await self.db.execute(assets.insert().values(**row))
        return Asset.from_row(row)

    async def get_asset(self, asset_id: str) -> Asset | None:
        r = await self.db.fetch_one(assets.select().where(assets.c.id == asset_id))
        return Asset.from_row(_row(r)) if r else None

    async def require_asset(self, asset_id: str) -> Asset:
        asset = await self.get_asset(asset_id)
        if asset is None:
            raise NotFound(f"asset {asset_id} does not exist")
        return asset

    async def update_asset(self, asset_id: str, **values: Any) -> None:
        await self.db.execute(
            assets.update().where(assets.c.id == asset_id).values(**values, updated_at=now())
        )

    async def merge_asset_metadata(self, asset_id: str, values: dict[str, Any]) -> None:
        """Merge keys into the asset's metadata (read-modify-write in one transaction)."""
        async with self.store.transaction():
            r = await self.db.fetch_one(sa.select(assets.c.metadata).where(assets.c.id == asset_id))
            if r is None:
                return
            current = json_value(r._mapping["metadata"], {})
            await self.db.execute(assets.update().where(assets.c.id == asset_id)
                                  .values(metadata={**current, **values}, updated_at=now()))

    async def transition_asset(self, asset_id: str, from_state: str, to_state: str,
                               **values: Any) -> Asset:
        row = await self._transition("asset", assets.c.id == asset_id, asset_id, from_state,
                                     to_state, values)
        return Asset.from_row(row)

    async def list_assets(self, *, state: str | None = None, profile: str | None = None,
                          limit: int = 100) -> list[Asset]:
        q = assets.select().order_by(assets.c.created_at).limit(limit)
        if state:
            q = q.where(assets.c.state == state)
        if profile:
            q = q.where(assets.c.profile == profile)
        return [Asset.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    async def delete_asset_rows(self, asset_id: str) -> None:
        """Remove an asset and everything hanging off it (explicitly: SQLite may not cascade)."""
        for table in (processing_runs, variants, upload_sessions, provider_assets, attachments):
            await self.db.execute(table.delete().where(table.c.asset_id == asset_id))
        await self.db.execute(assets.delete().where(assets.c.id == asset_id))

    # --- variants ------------------------------------------------------------------------

    async def plan_variants(self, asset_id: str,
                            planned: Iterable[tuple[str, str, str]]) -> list[AssetVariant]:
        """Insert ``planned`` rows for (name, recipe_digest, output_kind) not planned yet."""
        existing = {v.name for v in await self.list_variants(asset_id)}
        ts = now()
        for name, digest, kind in planned:
            if name in existing:
                continue
            await self.db.execute(
                variants.insert().values(
                    id=new_id(), asset_id=asset_id, name=name, state="planned",
                    recipe_digest=digest, output_kind=kind, attempts=0,
                    created_at=ts, updated_at=ts,
                )
            )
        return await self.list_variants(asset_id)

    async def list_variants(self, asset_id: str) -> list[AssetVariant]:
        q = variants.select().where(variants.c.asset_id == asset_id).order_by(variants.c.name)
        return [AssetVariant.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    async def get_variant(self, asset_id: str, name: str) -> AssetVariant | None:
        r = await self.db.fetch_one(
            variants.select().where(variants.c.asset_id == asset_id, variants.c.name == name)
        )
        return AssetVariant.from_row(_row(r)) if r else None

    async def transition_variant(self, asset_id: str, name: str, from_state: str,
                                 to_state: str, **values: Any) -> AssetVariant:
        where = sa.and_(variants.c.asset_id == asset_id, variants.c.name == name)
        row = await self._transition("variant", where, f"{asset_id}/{name}", from_state,
                                     to_state, values)
        return AssetVariant.from_row(row)

    async def update_variant(self, asset_id: str, name: str, **values: Any) -> None:
        await self.db.execute(
            variants.update().where(variants.c.asset_id == asset_id, variants.c.name == name)
            .values(**values, updated_at=now())
        )

    async def mark_stale(self, profile: str, name: str, digest: str) -> int:
        """Ready variants of ``profile`` named ``name`` built from another recipe -> stale."""
        ts = now()
        stale_ids = sa.select(variants.c.id).join(assets, assets.c.id == variants.c.asset_id).where(
            assets.c.profile == profile, variants.c.name == name, variants.c.state == "ready",
            variants.c.recipe_digest != digest)
        rows = await self.db.fetch_all(
            variants.update().where(variants.c.id.in_(stale_ids), variants.c.state == "ready")
            .values(state="stale", updated_at=ts).returning(variants.c.id, variants.c.asset_id)
        )
        for r in rows:
            m = r._mapping
            await self.store.record(Change(entity="variant", entity_id=m["id"],
                                           asset_id=m["asset_id"], from_state="ready",
                                           to_state="stale", at=ts, profile=profile, name=name))
        return len(rows)

    async def asset_ids_needing(self, profile: str, names: Sequence[str], *,
                                after: str | None, limit: int) -> list[str]:
        """Settled assets of ``profile`` lacking one of ``names`` or holding a stale one."""
        have = sa.select(sa.func.count()).select_from(variants).where(
            variants.c.asset_id == assets.c.id, variants.c.name.in_(list(names)),
            variants.c.state.notin_(["stale", "missing"])).scalar_subquery()
        q = (sa.select(assets.c.id)
             .where(assets.c.profile == profile,
                    assets.c.state.in_(["processing", "ready", "degraded"]),
                    have < len(set(names)))
             .order_by(assets.c.id).limit(limit))
        if after is not None:
            q = q.where(assets.c.id > after)
        return [r._mapping["id"] for r in await self.db.fetch_all(q)]

    async def abandon_runs(self, asset_id: str, name: str) -> None:
        """Close runs a dead worker left ``running`` for this variant."""
        await self.db.execute(
            processing_runs.update().where(
                processing_runs.c.asset_id == asset_id,
                processing_runs.c.variant_name == name,
                processing_runs.c.state == "running",
            ).values(state="abandoned", finished_at=now(),
                     error_reason="the worker stopped before finishing")
        )

    # --- upload sessions -----------------------------------------------------------------

    async def insert_session(self, **values: Any) -> UploadSession:
        ts = now()
        values.setdefault("id", new_id())
        values.setdefault("state", "initialized")
        values.setdefault("multipart_parts", {})
        values.setdefault("last_known_offset", 0)
        row = {**values, "created_at": ts, "updated_at": ts}
        await self.db.execute(upload_sessions.insert().values(**row))
        return UploadSession.from_row(row)

    async def get_session(self, session_id: str) -> UploadSession | None:
        r = await self.db.fetch_one(
            upload_sessions.select().where(upload_sessions.c.id == session_id)
        )
        return UploadSession.from_row(_row(r)) if r else None

    async def transition_session(self, session_id: str, from_state: str, to_state: str,
                                 **values: Any) -> UploadSession:
        row = await self._transition("session", upload_sessions.c.id == session_id, session_id,
                                     from_state, to_state, values)
        return UploadSession.from_row(row)

    async def update_session(self, session_id: str, **values: Any) -> None:
        await self.db.execute(
            upload_sessions.update().where(upload_sessions.c.id == session_id)
            .values(**values, updated_at=now())
        )

    async def sessions_for_asset(self, asset_id: str) -> list[UploadSession]:
        q = upload_sessions.select().where(upload_sessions.c.asset_id == asset_id)
        return [UploadSession.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    # --- attachments ---------------------------------------------------------------------

    async def get_attachment(self, owner_type: str, owner_id: str, slot: str, *,
                             for_update: bool = False) -> Attachment | None:
        q = attachments.select().where(
            attachments.c.owner_type == owner_type,
            attachments.c.owner_id == owner_id,
            attachments.c.slot == slot,
        )
        if for_update:
            q = q.with_for_update()
        r = await self.db.fetch_one(q)
        return Attachment.from_row(_row(r)) if r else None

    async def insert_attachment_if_absent(self, asset_id: str, owner_type: str, owner_id: str,
                                          slot: str) -> Attachment | None:
        """Insert the link; ``None`` when another actor filled the slot first."""
        ts = now()
        row = dict(id=new_id(), asset_id=asset_id, owner_type=owner_type, owner_id=owner_id,
                   slot=slot, created_at=ts, updated_at=ts)
        insert = _insert_ignore(self.store.dialect, attachments, row,
                                ["owner_type", "owner_id", "slot"])
        rows = await self.db.fetch_all(insert.returning(attachments.c.id))
        return Attachment.from_row(row) if rows else None

    async def repoint_attachment(self, attachment_id: str, asset_id: str) -> None:
        await self.db.execute(
            attachments.update().where(attachments.c.id == attachment_id)
            .values(asset_id=asset_id, updated_at=now())
        )

    async def delete_attachment(self, owner_type: str, owner_id: str,
                                slot: str) -> Attachment | None:
        rows = await self.db.fetch_all(
            attachments.delete().where(
                attachments.c.owner_type == owner_type,
                attachments.c.owner_id == owner_id,
                attachments.c.slot == slot,
            ).returning(*attachments.c)
        )
        return Attachment.from_row(_row(rows[0])) if rows else None

    async def attachments_for_asset(self, asset_id: str) -> list[Attachment]:
        q = attachments.select().where(attachments.c.asset_id == asset_id)
        return [Attachment.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    async def attachments_for_owner(self, owner_type: str, owner_id: str) -> list[Attachment]:
        q = attachments.select().where(
            attachments.c.owner_type == owner_type, attachments.c.owner_id == owner_id
        ).order_by(attachments.c.slot)
        return [Attachment.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    # --- outbox --------------------------------------------------------------------------

    async def add_outbox(self, kind: str, payload: dict[str, Any], *,
                         delay_seconds: float = 0) -> OutboxEntry:
        ts = now()
        row = dict(id=new_id(), kind=kind, payload=payload, state="pending", attempts=0,
                   available_at=ts + timedelta(seconds=delay_seconds), created_at=ts)
        await self.db.execute(outbox.insert().values(**row))
        return OutboxEntry.from_row(row)

    async def get_outbox(self, entry_id: str) -> OutboxEntry | None:
        r = await self.db.fetch_one(outbox.select().where(outbox.c.id == entry_id))
        return OutboxEntry.from_row(_row(r)) if r else None

    async def mark_outbox_dispatched(self, entry_id: str) -> None:
        await self.db.execute(
            outbox.update().where(outbox.c.id == entry_id, outbox.c.state.in_(["pending",
                                                                              "dispatched"]))
            .values(state="dispatched", dispatched_at=now())
        )

    async def start_outbox_attempt(self, entry_id: str) -> int:
        """Count one more attempt; returns the attempt number (1 for the first)."""
        rows = await self.db.fetch_all(
            outbox.update().where(outbox.c.id == entry_id)
            .values(attempts=outbox.c.attempts + 1).returning(outbox.c.attempts)
        )
        return int(rows[0]._mapping["attempts"]) if rows else 1

    async def mark_outbox_done(self, entry_id: str) -> None:
        await self.db.execute(
            outbox.update().where(outbox.c.id == entry_id)
            .values(state="done", completed_at=now(), last_error=None)
        )

    async def mark_outbox_failed(self, entry_id: str, error: str, *, final: bool,
                                 retry_in: float = 0) -> None:
        values: dict[str, Any] = {"last_error": error[:2000]}
        if final:
            values.update(state="failed", completed_at=now())
        else:
            values.update(available_at=now() + timedelta(seconds=retry_in))
        await self.db.execute(outbox.update().where(outbox.c.id == entry_id).values(**values))

    async def due_outbox(self, *, pending_before: datetime, dispatched_before: datetime,
                         limit: int = 100) -> list[OutboxEntry]:
        """Rows that should be (re)dispatched: pending ones past their time, and dispatched
        ones that no worker finished within the stale window."""
        q = (
            outbox.select()
            .where(
                sa.or_(
                    sa.and_(outbox.c.state == "pending", outbox.c.available_at <= pending_before),
                    sa.and_(outbox.c.state == "dispatched",
                            outbox.c.dispatched_at <= dispatched_before),
                )
            )
            .order_by(outbox.c.available_at)
            .limit(limit)
        )
        return [OutboxEntry.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    async def list_outbox(self, *, kind: str | None = None, state: str | None = None,
                          limit: int = 1000) -> list[OutboxEntry]:
        q = outbox.select().order_by(outbox.c.created_at).limit(limit)
        if kind:
            q = q.where(outbox.c.kind == kind)
        if state:
            q = q.where(outbox.c.state == state)
        return [OutboxEntry.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    async def count_outbox(self) -> dict[str, int]:
        q = sa.select(outbox.c.state, sa.func.count().label("n")).group_by(outbox.c.state)
        return {str(r._mapping["state"]): int(r._mapping["n"]) for r in await self.db.fetch_all(q)}

    # --- processing runs -----------------------------------------------------------------

    async def start_run(self, *, asset_id: str, variant_name: str, job: str, worker: str,
                        attempt: int) -> ProcessingRun:
        ts = now()
        row = dict(id=new_id(), asset_id=asset_id, variant_name=variant_name, job=job,
                   worker=worker, state="running", attempt=attempt, started_at=ts,
                   timings={}, created_at=ts)
        await self.db.execute(processing_runs.insert().values(**row))
        return ProcessingRun.from_row(row)

    async def finish_run(self, run_id: str, *, state: str, error_reason: str | None = None,
                         timings: dict[str, Any] | None = None) -> None:
        await self.db.execute(
            processing_runs.update().where(processing_runs.c.id == run_id).values(
                state=state, finished_at=now(), error_reason=error_reason,
                timings=timings or {},
            )
        )

    async def runs_for_asset(self, asset_id: str) -> list[ProcessingRun]:
        q = processing_runs.select().where(processing_runs.c.asset_id == asset_id).order_by(
            processing_runs.c.created_at)
        return [ProcessingRun.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    # --- purge log -----------------------------------------------------------------------

    async def log_purge(self, *, asset: Asset, keys: Sequence[str], reason: str) -> PurgeRecord:
        row = dict(id=new_id(), asset_id=asset.id, profile=asset.profile, storage=asset.storage,
                   storage_keys=list(keys), reason=reason, asset_state=asset.state,
                   purged_at=now())
        await self.db.execute(purge_log.insert().values(**row))
        return PurgeRecord.from_row(row)

    async def purges(self, *, asset_id: str | None = None, limit: int = 100) -> list[PurgeRecord]:
        q = purge_log.select().order_by(purge_log.c.purged_at.desc()).limit(limit)
        if asset_id:
            q = q.where(purge_log.c.asset_id == asset_id)
        return [PurgeRecord.from_row(_row(r)) for r in await self.db.fetch_all(q)]

    # --- counts for status ---------------------------------------------------------------

    async def count_by_state(self, entity: str) -> dict[str, int]:
        table = _TABLES[entity]
        q = sa.select(table.c.state, sa.func.count().label("n")).group_by(table.c.state)
        return {str(r._mapping["state"]): int(r._mapping["n"]) for r in await self.db.fetch_all(q)}


def _insert_ignore(dialect: str, table: sa.Table, row: dict[str, Any],
                   conflict: list[str]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(**row).on_conflict_do_nothing(index_elements=conflict)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(**row).on_conflict_do_nothing(index_elements=conflict)
