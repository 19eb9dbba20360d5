"""The jobs: tiny functions that load an outbox entry, call the pipeline, record the outcome."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from .. import telemetry
from ..errors import RindleError
from ..logs import get_logger

if TYPE_CHECKING:
    from ..app import Rindle

log = get_logger("rindle.jobs")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class JobRetry(Exception):
    """The job failed and should run again after a backoff."""

    def __init__(self, attempt: int, error: BaseException) -> None:
        super().__init__(f"attempt {attempt} failed: {error}")
        self.attempt = attempt
        self.error = error


async def _dispatch(media: Rindle, kind: str, payload: dict[str, Any]) -> None:
    from . import pipeline, purge

    if kind == "promote_asset":
        await pipeline.promote(media, payload["asset_id"])
    elif kind == "process_variants":
        await pipeline.process_variants(media, payload["asset_id"], list(payload["variants"]))
    elif kind == "purge_asset":
        await purge.purge_asset(media, payload["asset_id"], payload.get("reason", "purged"))
    elif kind == "purge_upload":
        await purge.purge_upload(media, payload)
    else:
        raise ValueError(f"unknown job kind {kind!r}")


async def run_entry(media: Rindle, entry_id: str, *, max_attempts: int | None = None) -> None:
    """Run one outbox entry once. Done entries are skipped, so redelivery is harmless.

    Raises JobRetry when the job failed but has attempts left; marks the entry failed (and
    returns normally) when it has none.
    """
    repo = media.repo
    entry = await repo.get_outbox(entry_id)
    if entry is None or entry.state in ("done", "failed"):
        return
    limit = max_attempts or media.job_max_attempts
    attempt = await repo.start_outbox_attempt(entry_id)
    started = time.perf_counter()
    asset_id = entry.payload.get("asset_id")
    try:
        await _dispatch(media, entry.kind, entry.payload)
    except Exception as exc:
        # A corrupt file fails the same way every time: don't spend retries on it.
        final = attempt >= limit or (isinstance(exc, RindleError) and not exc.retryable)
        log.warning("job %s %s attempt %d/%d failed: %r", entry.kind, entry_id, attempt, limit,
                    exc, exc_info=final)
        await repo.mark_outbox_failed(entry_id, f"{type(exc).__name__}: {exc}", final=final)
        telemetry.emit("rindle.job", asset_id=asset_id, job=entry.kind, outcome="error",
                       attempt=attempt, duration=time.perf_counter() - started)
        if final:
            await media.on_job_exhausted(entry, exc)
            return
        raise JobRetry(attempt, exc) from exc
    await repo.mark_outbox_done(entry_id)
    telemetry.emit("rindle.job", asset_id=asset_id, job=entry.kind, outcome="ok",
                   attempt=attempt, duration=time.perf_counter() - started)


# --- rq entry point ------------------------------------------------------------------------

_worker_media: Rindle | None = None


def set_worker_runtime(media: Rindle) -> None:
    """Called by ``rindle worker`` so jobs in this process (and its forks) use ``media``."""
    global _worker_media
    _worker_media = media


def load_runtime(path: str) -> Rindle:
    """Import ``module:attribute`` (e.g. ``demo_app.media:media``) and return the runtime."""
    from ..app import Rindle

    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--app must look like 'package.module:media', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, Rindle):
        obj = obj()
    if not isinstance(obj, Rindle):
        raise TypeError(f"{path} is a {type(obj).__name__}, not a Rindle runtime")
    return obj


def rq_entry(entry_id: str, app_path: str | None = None) -> None:
    """What rq runs: rebuild the runtime from its import path, run the entry, close up.

    rq forks a work horse per job, so each job opens and closes its own connections rather
    than inheriting sockets from the parent.
    """
    media = _worker_media
    if media is None:
        if not app_path:
            raise RuntimeError("no Rindle runtime: start workers with `rindle worker --app "
                               "module:media` or pass app_path to RQQueue")
        media = load_runtime(app_path)
        set_worker_runtime(media)
    queue = media.queue
    max_attempts = getattr(queue, "max_retries", 0) + 1

    async def _main() -> None:
        async with media.connected(start_queue=False):
            try:
                await run_entry(media, entry_id, max_attempts=max_attempts)
            except JobRetry as retry:
                # Re-raise the original error so rq records it and applies its Retry policy.
                raise retry.error from None

    asyncio.run(_main())
