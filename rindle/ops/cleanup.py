"""Clean-up of what abandoned work leaves behind: expired uploads and scratch directories.

An upload whose client vanished keeps a staged asset row, maybe an object or the parts of a
multipart upload (which the cloud bills for until aborted). Past ``expires_at`` such a
session is expired and its asset purged through the outbox, so the storage deletes happen
after the commit and are retried until they succeed. The sweeper of a connected runtime
does this every ``sweep_interval``; ``rindle cleanup`` does it on demand, with a dry run.

A worker killed in the middle of a processing job leaves its private scratch directory in
the temporary folder (or ``scratch_dir``); those older than a day are removed here too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..logs import get_logger
from ..processing.workspace import SCRATCH_PREFIX

if TYPE_CHECKING:
    from ..model.repo import Repo
    from ..upload.broker import Broker


class Cleaning(Protocol):
    """What clean-up uses: the rows, the broker (it expires sessions) and the scratch root."""

    @property
    def repo(self) -> Repo: ...

    @property
    def broker(self) -> Broker: ...

    @property
    def scratch_dir(self) -> str | None: ...

log = get_logger("rindle.ops")

__all__ = ["CleanupReport", "expire_uploads", "sweep_scratch_dirs"]

#: Scratch directories of processing jobs (``rindle-image-`` from releases before the
#: pipeline owned them).
SCRATCH_PREFIXES = (SCRATCH_PREFIX, "rindle-image-")


@dataclass
class CleanupReport:
    """What a clean-up found and did. In a dry run nothing is changed and ``expired``
    counts what would be."""

    dry_run: bool
    sessions_found: int = 0
    sessions_expired: int = 0
    sessions_skipped: int = 0  # finished or moved by someone else in between
    scratch_dirs_removed: int = 0
    #: Streaming webhook event ids older than ``EVENT_RETENTION`` (forgotten, or would be).
    provider_events_pruned: int = 0
    errors: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "sessions_found": self.sessions_found,
                "sessions_expired": self.sessions_expired,
                "sessions_skipped": self.sessions_skipped,
                "scratch_dirs_removed": self.scratch_dirs_removed,
                "provider_events_pruned": self.provider_events_pruned, "errors": self.errors,
                "session_ids": self.session_ids}


# Webhook event ids are kept so a provider's redelivery changes nothing; Mux retries for up
# to a day, so a month is ample, and the table does not grow forever.
EVENT_RETENTION = 30 * 86400.0
# A client that was handed a ticket just before expiry may still be finishing; give it this
# long before its upload counts as abandoned.
GRACE = 300.0
# A server-side upload streams through this process and checks its expiry only at the end,
# however long the body takes; only one left open this long (its process died) is abandoned.
SERVER_GRACE = 86400.0


async def expire_uploads(media: Cleaning, *, dry_run: bool = False, limit: int = 1000,
                         batch: int = 100, now: datetime | None = None,
                         progress: Callable[[int], None] | None = None) -> CleanupReport:
    """Expire every open upload session past its ``expires_at`` (plus ``GRACE``; streamed
    server-side uploads plus ``SERVER_GRACE``) and queue its purge.

    Works in batches of ``batch`` sessions, at most ``limit`` in all; ``progress(n)`` is
    called as sessions are handled. A session finished or aborted concurrently is skipped,
    never overwritten; one that fails is reported and left for the next run.
    """
    started = time.perf_counter()
    report: CleanupReport | None = None
    try:
        report = await _expire_uploads(media, dry_run=dry_run, limit=limit, batch=batch,
                                       now=now, progress=progress)
        return report
    finally:
        outcome = ("error" if report is None else "partial" if report.errors else "ok")
        telemetry.emit("rindle.cleanup", dry_run=dry_run, outcome=outcome,
                       sessions_expired=report.sessions_expired if report else 0,
                       duration=time.perf_counter() - started)


async def _expire_uploads(media: Cleaning, *, dry_run: bool, limit: int, batch: int,
                          now: datetime | None,
                          progress: Callable[[int], None] | None) -> CleanupReport:
    at = now or datetime.now(UTC)
    window = {"before": at - timedelta(seconds=GRACE),
              "server_before": at - timedelta(seconds=SERVER_GRACE)}
    report = CleanupReport(dry_run=dry_run)
    forgotten = at - timedelta(seconds=EVENT_RETENTION)
    report.provider_events_pruned = await media.repo.prune_provider_events(
        before=forgotten, limit=limit, dry_run=dry_run)
    if dry_run:
        sessions = await media.repo.expired_open_sessions(**window, limit=limit)
        report.sessions_found = report.sessions_expired = len(sessions)
        report.session_ids = [s.id for s in sessions]
        return report
    seen: set[str] = set()  # failed or skipped but still open: each counted once
    while report.sessions_found < limit:
        room = min(batch, limit - report.sessions_found)
        sessions = [s for s in await media.repo.expired_open_sessions(
            **window, limit=room + len(seen)) if s.id not in seen][:room]
        if not sessions:
            break
        for session in sessions:
            seen.add(session.id)
            report.sessions_found += 1
            report.session_ids.append(session.id)
            try:
                if await media.broker.expire(session):
                    report.sessions_expired += 1
                else:
                    report.sessions_skipped += 1
            except Exception as exc:  # one bad row must not stop the rest
                log.exception("could not expire upload session %s", session.id)
                report.errors.append(f"session {session.id}: {type(exc).__name__}: {exc}")
            if progress is not None:
                progress(1)
    if report.sessions_expired:
        log.info("expired %d abandoned upload sessions", report.sessions_expired)
    return report


def sweep_scratch_dirs(media: Cleaning, *, older_than: float = 86400.0, dry_run: bool = False,
                       report: CleanupReport | None = None) -> CleanupReport:
    """Remove processing-job scratch directories older than ``older_than`` seconds.

    Only directories named like Rindle's own (``rindle-job-*``) at the top of the temporary
    folder and ``scratch_dir`` are considered; symlinks are never followed. Blocking:
    run it in a thread from async code.
    """
    report = report or CleanupReport(dry_run=dry_run)
    cutoff = time.time() - older_than
    for root in _scratch_roots(media):
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(SCRATCH_PREFIXES):
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                if not dry_run:
                    shutil.rmtree(entry.path)
                report.scratch_dirs_removed += 1
            except OSError as exc:
                report.errors.append(f"{entry.path}: {exc.strerror or exc}")
    return report


def _scratch_roots(media: Cleaning) -> list[Path]:
    roots = {Path(tempfile.gettempdir())}
    if media.scratch_dir:
        roots.add(Path(media.scratch_dir))
    return sorted(roots)
