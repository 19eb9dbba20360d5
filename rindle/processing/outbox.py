"""The transactional outbox: side effects written with the change, queued after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from ..logs import get_logger
from ..model.records import OutboxEntry
from ..model.repo import Repo, now

log = get_logger("rindle.outbox")


class Enqueues(Protocol):
    """What the outbox needs of a queue (``rindle.processing.queue.Queue`` has more)."""

    async def enqueue(self, entry: OutboxEntry) -> None: ...

KINDS = ("promote_asset", "process_variants", "purge_asset", "purge_upload")


class Outbox:
    """Writes outbox rows inside the caller's transaction and dispatches them after commit.

    A crash between commit and dispatch leaves the row ``pending``; a crashed or lost job
    leaves it ``dispatched`` without ``completed_at``. ``sweep()`` finds both and dispatches
    them again, which is safe because every job is idempotent.
    """

    def __init__(self, repo: Repo, queue: Enqueues, *, pending_grace: float = 10.0,
                 stale_after: float = 900.0) -> None:
        self.repo = repo
        self.queue = queue
        self.pending_grace = pending_grace
        self.stale_after = stale_after

    async def add(self, kind: str, payload: dict[str, Any], *,
                  delay_seconds: float = 0) -> OutboxEntry:
        """Record a job in the current transaction; it is dispatched once that commits."""
        if kind not in KINDS:
            raise ValueError(f"unknown outbox kind {kind!r}")
        entry = await self.repo.add_outbox(kind, payload, delay_seconds=delay_seconds)
        if delay_seconds <= 0:
            async def send() -> None:
                await self.dispatch([entry])

            await self.repo.store.after_commit(send)
        return entry

    async def dispatch(self, entries: list[OutboxEntry]) -> int:
        """Hand entries to the queue; one that fails to enqueue stays for the sweeper."""
        sent = 0
        for entry in entries:
            try:
                await self.queue.enqueue(entry)
            except Exception:
                log.exception("could not enqueue outbox entry %s (%s); the sweeper will retry",
                              entry.id, entry.kind)
                continue
            await self.repo.mark_outbox_dispatched(entry.id)
            sent += 1
        return sent

    async def sweep(self, *, include_recent: bool = False, limit: int = 500) -> int:
        """Dispatch again what was left behind; returns how many entries were sent."""
        t = now()
        grace = timedelta(0) if include_recent else timedelta(seconds=self.pending_grace)
        entries = await self.repo.due_outbox(
            pending_before=t - grace,
            dispatched_before=t - timedelta(seconds=self.stale_after),
            limit=limit,
        )
        if entries:
            log.info("outbox sweep re-dispatching %d entries", len(entries))
        return await self.dispatch(entries)
