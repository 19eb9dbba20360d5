"""Queue backends: an in-process asyncio queue (embedded default) and rq on Redis."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from .._backoff import backoff as _backoff
from ..logs import get_logger
from ..model import identity
from ..model.records import OutboxEntry
from . import ownership

if TYPE_CHECKING:
    from .jobs import JobRuntime

log = get_logger("rindle.queue")


class Queue(Protocol):
    """Runs outbox entries through ``rindle.processing.jobs.run_entry`` somewhere."""

    name: str

    async def start(self, media: JobRuntime) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, entry: OutboxEntry) -> None: ...


def backoff(attempt: int, base: float, cap: float = 300.0) -> float:
    """Exponential backoff with jitter, so retries of many jobs don't arrive together."""
    return _backoff(attempt, base, cap)


class InlineQueue:
    """Runs jobs as asyncio tasks in this process, at most ``concurrency`` at a time.

    Nothing survives a restart here, so on start every unfinished outbox entry is
    dispatched again; jobs are idempotent, so running one twice is harmless.
    """

    name = "inline"

    def __init__(self, *, concurrency: int = 4, retry_base: float = 1.0) -> None:
        self.concurrency = concurrency
        self.retry_base = retry_base
        self._media: JobRuntime | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def __repr__(self) -> str:
        return f"InlineQueue(concurrency={self.concurrency})"

    async def start(self, media: JobRuntime) -> None:
        self._media = media
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def enqueue(self, entry: OutboxEntry) -> None:
        if self._media is None or self._stopping:
            raise RuntimeError("the inline queue is not running (is the lifespan active?)")
        task = asyncio.get_running_loop().create_task(self._run(entry.id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self, timeout: float = 30.0) -> None:
        """Wait until no job is running or waiting (tests and CLI use this)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, entry_id: str) -> None:
        from .jobs import JobRetry, run_entry

        assert self._media is not None
        while not self._stopping:
            async with self._sem:
                try:
                    if await run_entry(self._media, entry_id) == "unknown":
                        log.warning("outbox entry %s does not exist; nothing to run", entry_id)
                    return
                except JobRetry as retry:
                    delay = backoff(retry.attempt, self.retry_base)
                except Exception:
                    log.exception("job for outbox entry %s crashed", entry_id)
                    return
            await asyncio.sleep(delay)


class RQQueue:
    """Enqueues jobs on rq; ``rindle worker --app module:media`` runs them.

    rq's API is synchronous, so every call goes through a thread. Retries and backoff are
    rq's own (``Retry``); the job id is the outbox id, so a re-dispatch replaces rather than
    duplicates a job still waiting.

    Each job carries ``owner``, the fingerprint of this runtime's database (read at start):
    a worker of another database on the same queue hands it back to ``<name>:<owner>``,
    the queue only this database's workers listen on besides ``name`` (see
    ``rindle.processing.ownership``).
    """

    def __init__(self, redis_url: str, *, name: str = "rindle", job_timeout: int = 600,
                 max_retries: int = 4, retry_intervals: tuple[int, ...] = (2, 10, 30, 120),
                 app_path: str | None = None) -> None:
        self.redis_url = redis_url
        self.name = name
        self.job_timeout = job_timeout
        self.max_retries = max_retries
        self.retry_intervals = retry_intervals
        self.app_path = app_path
        self.socket_timeout = 10.0  # seconds the web process waits on a silent Redis
        #: The database's fingerprint (``None`` until started, or when it cannot be read:
        #: jobs then go out without one and workers only check that the entry exists).
        self.fingerprint: str | None = None
        self._queue: Any = None

    def __repr__(self) -> str:
        return f"RQQueue({self.redis_url.split('@')[-1]!r}, name={self.name!r})"

    def rq_queue(self, *, for_worker: bool = False) -> Any:
        """The rq queue on its own Redis connection.

        The web process's connection gives up on a Redis that stops answering (a host that
        drops packets would otherwise hang every enqueue forever; the outbox sweeper sends
        the job again). A worker's must not: it blocks in BLPOP for minutes by design.
        """
        if self._queue is None:
            try:
                from redis import Redis
                from rq import Queue as _RQ
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError("the rq queue needs the 'rq' extra: pip install "
                                   "'rindle[rq]'") from exc
            connection = Redis.from_url(self.redis_url, socket_connect_timeout=5,
                                        socket_timeout=None if for_worker else self.socket_timeout,
                                        health_check_interval=30)
            self._queue = _RQ(self.name, connection=connection)
        return self._queue

    def worker_queues(self) -> list[Any]:
        """What a worker of this runtime listens on: its database's own queue (jobs handed
        back by workers of another database; first, since they waited already), then the
        shared one."""
        shared = self.rq_queue(for_worker=True)
        if self.fingerprint is None:
            return [shared]
        own = type(shared)(ownership.owner_queue(self.name, self.fingerprint),
                           connection=shared.connection)
        return [own, shared]

    async def start(self, media: JobRuntime) -> None:
        if self.app_path is None:
            self.app_path = media.app_path
        self.fingerprint = await identity.fingerprint(media.repo.store)
        await asyncio.to_thread(lambda: self.rq_queue().connection.ping())

    async def foreign_takers(self, fingerprint: str) -> list[dict[str, Any]]:
        """Workers of other databases that took this database's jobs lately (``rindle
        status`` shows them)."""
        conn = self.rq_queue().connection
        return await asyncio.to_thread(ownership.foreign_takers, conn, fingerprint)

    async def stop(self) -> None:
        if self._queue is not None:
            await asyncio.to_thread(self._queue.connection.close)
            self._queue = None

    async def enqueue(self, entry: OutboxEntry) -> None:
        from rq import Retry

        q = self.rq_queue()
        # Without a fingerprint the call is the one older workers know. With one, a worker
        # older than this fails the job (TypeError) and rq retries it: upgrade the workers
        # before the web processes.
        owner = {} if self.fingerprint is None else {"owner": self.fingerprint}
        await asyncio.to_thread(
            q.enqueue,
            "rindle.processing.jobs.rq_entry",
            args=(entry.id, self.app_path),
            kwargs=owner,
            job_id=f"rindle-{entry.id}",
            job_timeout=self.job_timeout,
            retry=Retry(max=self.max_retries, interval=list(self.retry_intervals)),
            description=f"rindle {entry.kind} {entry.id}",
        )
