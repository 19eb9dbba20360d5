"""The jobs: tiny functions that load an outbox entry, call the pipeline, record the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .. import telemetry
from ..delivery.streaming import ingest
from ..errors import RindleError
from ..logs import get_logger
from ..model import identity
from ..model.urls import redact_url
from . import ownership, pipeline, purge

if TYPE_CHECKING:
    from ..delivery.streaming.base import StreamingProvider
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

    def streaming_provider(self, name: str) -> StreamingProvider: ...

    @property
    def public_url(self) -> str | None:
        """This site's address, for source URLs a streaming provider fetches."""
        ...

    async def disconnect(self) -> None:
        """Undo a connect (also one that failed half-way, which still counted)."""
        ...


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
    elif kind == "streaming_push":
        await ingest.push(media, payload["provider_asset"])
    elif kind == "streaming_delete":
        await ingest.delete_stray(media, payload["provider"], payload["provider_asset_id"])
    else:
        raise ValueError(f"unknown job kind {kind!r}")


Outcome = Literal["done", "failed", "skipped", "unknown"]


async def run_entry(media: JobRuntime, entry_id: str, *,
                    max_attempts: int | None = None) -> Outcome:
    """Run one outbox entry once. Done entries are skipped, so redelivery is harmless.

    Raises JobRetry when the job failed but has attempts left; marks the entry failed (and
    returns ``"failed"``) when it has none. ``"unknown"``: this database has no such entry
    (outbox rows are never deleted, so the job is another database's): the caller must say
    so, not report success.
    """
    repo = media.repo
    entry = await repo.get_outbox(entry_id)
    if entry is None:
        return "unknown"
    if entry.state in ("done", "failed"):
        return "skipped"
    limit = max_attempts or media.job_max_attempts
    attempt = await repo.start_outbox_attempt(entry_id)
    payload = entry.payload
    try:
        # The span times the work alone; the bookkeeping around it is the queue's cost.
        with telemetry.span("rindle.job", asset_id=payload.get("asset_id"), job=entry.kind,
                            attempt=attempt, queue=getattr(media.queue, "name", None),
                            traceparent=payload.get("traceparent")) as span:
            try:
                await _dispatch(media, entry.kind, payload)
            except Exception as exc:
                final = _final(exc, attempt, limit)
                span.set(outcome="failed" if final else "retry")
                raise
            span.set(outcome="done")
    except Exception as exc:
        final = _final(exc, attempt, limit)
        log.warning("job %s %s attempt %d/%d failed: %r", entry.kind, entry_id, attempt, limit,
                    exc, exc_info=final)
        await repo.mark_outbox_failed(entry_id, f"{type(exc).__name__}: {exc}", final=final)
        if final:
            await _exhausted(media, entry, exc)
            return "failed"
        raise JobRetry(attempt, exc) from exc
    await repo.mark_outbox_done(entry_id)
    return "done"


def _final(error: BaseException, attempt: int, limit: int) -> bool:
    """Whether a failed attempt is the job's last: out of attempts, or an error that fails
    the same way every time (a corrupt file), which is not worth retrying."""
    return attempt >= limit or (isinstance(error, RindleError) and not error.retryable)


async def _exhausted(media: JobRuntime, entry: OutboxEntry, error: BaseException) -> None:
    """A job ran out of attempts: record the failure where an operator will see it."""
    payload = entry.payload
    if entry.kind == "process_variants":
        await pipeline.fail_variants(media, payload["asset_id"], list(payload["variants"]),
                                     f"{type(error).__name__}: {error}")
    elif entry.kind == "promote_asset":
        await media.repo.update_asset(payload["asset_id"],
                                      error_reason=f"promotion failed: {error}"[:2000])
    elif entry.kind == "streaming_push":
        await ingest.mark_errored(media, payload["provider_asset"],
                                  f"the push to the provider failed: {error}")


# --- rq entry point ------------------------------------------------------------------------

_worker_media: JobRuntime | None = None


def set_worker_runtime(media: JobRuntime, *, keep_connected: bool = False) -> None:
    """Called by ``rindle worker`` so jobs in this process (and its forks) use ``media``.

    ``keep_connected``: this process runs the jobs itself (rq's SimpleWorker), so they share
    one event loop and one connected runtime instead of connecting per job.
    """
    global _worker_media, _session
    _worker_media = media
    _session = _Session(media) if keep_connected else None


class _Session:
    """The event loop and the connected runtime that a no-fork worker's jobs share.

    Connecting per job (a pool, the broadcast client, the storages) cost tens of
    milliseconds, as much as a small job's work; a worker that does not fork connects once,
    at its first job, and again after a job that failed to connect.
    """

    def __init__(self, media: JobRuntime) -> None:
        self.media = media
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._connection: AbstractAsyncContextManager[Any] | None = None

    def run(self, job: Coroutine[Any, Any, Any]) -> Any:
        if self._connection is None:
            connection = self.media.connected(start_queue=False)
            try:
                self.loop.run_until_complete(_enter(self.media, connection))
            except BaseException:
                job.close()
                raise
            self._connection = connection
        task = self.loop.create_task(job)
        try:
            return self.loop.run_until_complete(task)
        except BaseException:
            # rq's job timeout (SIGALRM) or a cold shutdown interrupts the loop, not the
            # task: cancel it, so nothing of this job runs on inside the next one.
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(task)
            raise

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self.loop.run_until_complete(connection.__aexit__(None, None, None))
        self.loop.close()


async def _enter(media: JobRuntime, connection: AbstractAsyncContextManager[Any]) -> None:
    """Enter ``media.connected()``; if that fails, take back the connect it counted, or the
    runtime would think itself connected at the next attempt and never connect again."""
    try:
        await connection.__aenter__()
    except BaseException:
        with contextlib.suppress(Exception):
            await media.disconnect()
        raise


_session: _Session | None = None


def close_worker_runtime() -> None:
    """Disconnect the runtime a no-fork worker kept connected (``rindle worker`` on exit)."""
    global _session
    if _session is not None:
        session, _session = _session, None
        session.close()


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


def prepare_worker(media: JobRuntime) -> str | None:
    """Get an rq worker ready before its first job; returns its database's fingerprint.

    A work horse forked per job (``--fork``) imports what the job needs unless its parent
    had it already: measured, loading pyvips' bindings (cffi parsing libvips' headers) and
    the rest of a job's lazy imports were 70 % of a small job's time. So the worker loads the
    processor of every configured variant kind and goes once through connecting and
    disconnecting the runtime (the drivers, anyio's backend, the broadcast client), reading
    the fingerprint on the way. It leaves no socket open and starts no libvips thread
    (libvips starts them on first use, not on import), so a fork inherits only modules.
    """
    for profile in media.profiles.values():
        for variant in profile.variants.values():
            media.processor_for(variant.kind)

    async def _cycle() -> str | None:
        connection = media.connected(start_queue=False)
        await _enter(media, connection)
        try:
            return await identity.fingerprint(media.repo.store)
        finally:
            await connection.__aexit__(None, None, None)

    try:
        return asyncio.run(_cycle())
    except Exception as exc:  # the jobs will say what is wrong, one by one
        log.warning("could not connect the runtime before forking: %s: %s",
                    type(exc).__name__, getattr(exc, "message", exc))
        return None


def rq_entry(entry_id: str, app_path: str | None = None, owner: str | None = None) -> None:
    """What rq runs: rebuild the runtime from its import path, run the entry, close up.

    In a worker that does not fork (``rindle worker``'s default) jobs share one connected
    runtime; in a forked work horse (``--fork``, or a plain ``rq worker``) each job opens
    and closes its own connections rather than inheriting sockets. ``owner`` is the
    fingerprint of the database that enqueued the job: a job of another database, or of an
    entry this database does not know, is refused loudly (``ownership.refuse``) instead of
    being reported done.
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
    # `rindle worker` read it once before forking; a plain `rq worker` reads it below.
    mine: str | None = getattr(queue, "fingerprint", None)
    if _foreign(owner, mine):
        ownership.refuse(entry_id, owner=owner, taker=_taker(media, mine), unknown_entry=False)

    async def _job() -> tuple[Outcome | None, str | None]:
        fingerprint = mine or await identity.fingerprint(media.repo.store)
        if _foreign(owner, fingerprint):
            return None, fingerprint
        try:
            return await run_entry(media, entry_id, max_attempts=max_attempts), fingerprint
        except JobRetry as retry:
            # Re-raise the original error so rq records it and applies its Retry policy.
            raise retry.error from None

    async def _connected_job() -> tuple[Outcome | None, str | None]:
        connection = media.connected(start_queue=False)
        await _enter(media, connection)
        try:
            return await _job()
        finally:
            await connection.__aexit__(None, None, None)

    if _session is not None and _session.pid == os.getpid():
        outcome, fingerprint = _session.run(_job())
    else:  # a forked work horse, or a plain `rq worker`: connections of its own
        outcome, fingerprint = asyncio.run(_connected_job())
    if outcome is None or outcome == "unknown":
        ownership.refuse(entry_id, owner=owner, taker=_taker(media, fingerprint),
                         unknown_entry=outcome == "unknown")


def _foreign(owner: str | None, mine: str | None) -> bool:
    """Whether a job of ``owner`` is certainly another database's; in doubt (a side without
    a fingerprint) it is run, and the entry lookup decides."""
    return owner is not None and mine is not None and owner != mine


def _taker(media: JobRuntime, fingerprint: str | None) -> ownership.Taker:
    job = ownership.current_job()
    return ownership.Taker(fingerprint=fingerprint, database=redact_url(media.repo.store.url),
                           worker=str(getattr(job, "worker_name", None) or "?"),
                           where=pipeline.WORKER_ID)
