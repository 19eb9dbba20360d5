"""The jobs: tiny functions that load an outbox entry, call the pipeline, record the outcome."""

from __future__ import annotations

import asyncio
import importlib
import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import telemetry
from ..errors import RindleError
from ..logs import get_logger
from . import pipeline, purge

if TYPE_CHECKING:
    from ..model.records import OutboxEntry

log = get_logger("rindle.jobs")


@runtime_checkable
class JobRuntime(pipeline.Processing, Protocol):
    """What jobs use: the pipeline's view of the runtime, the queue, the attempt limit, and
    a way to connect (an rq work horse opens its own connections)."""

    @property
    def queue(self) -> object:
        """The runtime's queue (an rq one says how often rq itself retries a job)."""
        ...

    @property
    def job_max_attempts(self) -> int: ...

    @property
    def app_path(self) -> str | None:
        """How a worker process imports this runtime (``module:attribute``)."""
        ...

    def connected(self, *, start_queue: bool = True,
                  sweeper: bool = False) -> AbstractAsyncContextManager[Any]: ...


class JobRetry(Exception):
    """The job failed and should run again after a backoff."""

    def __init__(self, attempt: int, error: BaseException) -> None:
        super().__init__(f"attempt {attempt} failed: {error}")
        self.attempt = attempt
        self.error = error


async def _dispatch(media: JobRuntime, kind: str, payload: dict[str, Any]) -> None:
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


async def run_entry(media: JobRuntime, entry_id: str, *, max_attempts: int | None = None) -> None:
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
            await _exhausted(media, entry, exc)
            return
        raise JobRetry(attempt, exc) from exc
    await repo.mark_outbox_done(entry_id)
    telemetry.emit("rindle.job", asset_id=asset_id, job=entry.kind, outcome="ok",
                   attempt=attempt, duration=time.perf_counter() - started)


async def _exhausted(media: JobRuntime, entry: OutboxEntry, error: BaseException) -> None:
    """A job ran out of attempts: record the failure where an operator will see it."""
    payload = entry.payload
    if entry.kind == "process_variants":
        await pipeline.fail_variants(media, payload["asset_id"], list(payload["variants"]),
                                     f"{type(error).__name__}: {error}")
    elif entry.kind == "promote_asset":
        await media.repo.update_asset(payload["asset_id"],
                                      error_reason=f"promotion failed: {error}"[:2000])


# --- rq entry point ------------------------------------------------------------------------

_worker_media: JobRuntime | None = None


def set_worker_runtime(media: JobRuntime) -> None:
    """Called by ``rindle worker`` so jobs in this process (and its forks) use ``media``."""
    global _worker_media
    _worker_media = media


def load_runtime(path: str) -> JobRuntime:
    """Import ``module:attribute`` (e.g. ``demo_app.media:media``) and return the runtime
    (an attribute that is a factory is called)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--app must look like 'package.module:media', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, JobRuntime):
        obj = obj()
    if not isinstance(obj, JobRuntime):
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
