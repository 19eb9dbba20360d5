"""The transactional outbox: side effects written with the change, queued after commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from .. import telemetry
from ..logs import get_logger
from ..model.records import OutboxEntry
from ..model.repo import Repo, now

log = get_logger("rindle.outbox")


class Enqueues(Protocol):
    """What the outbox needs of a queue (``rindle.processing.queue.Queue`` has more)."""

    async def enqueue(self, entry: OutboxEntry) -> None: ...

KINDS = ("promote_asset", "process_variants", "purge_asset", "purge_upload", "streaming_push",
         "streaming_delete")
#: How many entries one background statement marks dispatched at most.
_MARK_BATCH = 500


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
        self._unmarked: list[str] = []  # enqueued, not yet marked dispatched
        self._marking = False

    async def add(self, kind: str, payload: dict[str, Any], *,
                  delay_seconds: float = 0) -> OutboxEntry:
        """Record a job in the current transaction; it is dispatched once that commits."""
        [entry] = await self.add_many([(kind, payload, delay_seconds)])
        return entry

    async def add_many(self, jobs: Sequence[tuple[str, dict[str, Any], float]]
                       ) -> list[OutboxEntry]:
        """``add`` for several jobs of (kind, payload, delay in seconds): one INSERT.

        When a span is active (``telemetry.traceparent``), each payload carries its W3C
        ``traceparent``: the job's span continues this trace, also in an rq worker of
        another process or machine, which has nothing else to learn it from.
        """
        for kind, _, _ in jobs:
            if kind not in KINDS:
                raise ValueError(f"unknown outbox kind {kind!r}")
        parent = telemetry.traceparent()
        if parent is not None:
            jobs = [(kind, {**payload, "traceparent": parent}, delay)
                    for kind, payload, delay in jobs]
        entries = await self.repo.add_outbox_many(jobs)
        now_due = [e for e, (_, _, delay) in zip(entries, jobs, strict=True) if delay <= 0]
        if now_due:
            async def send() -> None:
                await self.dispatch(now_due, wait=False)

            await self.repo.store.after_commit(send)
        return entries

    async def dispatch(self, entries: list[OutboxEntry], *, wait: bool = True) -> int:
        """Hand entries to the queue; one that fails to enqueue stays for the sweeper.

        Each one sent is marked ``dispatched``, which tells the sweeper to leave it alone
        for ``stale_after`` rather than ``pending_grace``. With ``wait=False`` (right after
        a commit, on a request's path) the marking is left to a background task that marks
        everything sent meanwhile in one statement; until then the entry is still
        ``pending``, which the sweeper leaves alone for ``pending_grace`` anyway, and a job
        that finished first keeps its ``done``.
        """
        sent: list[str] = []
        for entry in entries:
            try:
                await self.queue.enqueue(entry)
            except Exception:
                log.exception("could not enqueue outbox entry %s (%s); the sweeper will retry",
                              entry.id, entry.kind)
                continue
            sent.append(entry.id)
        if sent:
            if wait:
                await self.repo.mark_outbox_dispatched_many(sent)
            else:
                self._unmarked += sent
                if not self._marking:
                    self._marking = True
                    self.repo.store.spawn(self._mark_unmarked())
        return len(sent)

    async def _mark_unmarked(self) -> None:
        try:
            while self._unmarked:
                ids, self._unmarked = self._unmarked[:_MARK_BATCH], self._unmarked[_MARK_BATCH:]
                try:
                    await self.repo.mark_outbox_dispatched_many(ids)
                except Exception:  # they stay pending: the sweeper sends them again
                    log.exception("could not mark %d outbox entries dispatched", len(ids))
        finally:
            self._marking = False

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
