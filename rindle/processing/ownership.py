"""Whose job is this: what a worker does with a job of another database, and the records of it.

Every rq job carries the fingerprint of the database whose outbox entry it runs
(``rindle.model.identity``). Two runtimes whose workers listen on the same rq queue of one
Redis (the default queue name, a staging worker on production's Redis) take each other's
jobs; before fingerprints, the stray worker found no outbox row, returned success, rq counted
the job done and the entry waited out the sweeper's stale window (900 s) with nothing saying
why.

What a worker does with a job that is not its database's — the robust choice, and why:

* It must not ack it silently: that loses the job until the stale window passes.
* It must not put it back on the shared queue: rq has no nack, and the stray worker, idle
  while the owner's workers are busy, is the first to take it again — as often as it is put
  back.
* So it *hands the job to its owner*: a copy goes to ``<queue>:<owner fingerprint>``, a queue
  only the owner's workers listen on (``rindle worker`` listens on its own one and the shared
  one), and the stray worker's own copy fails, without rq's retry: rq keeps it in the
  FailedJobRegistry with a message naming both databases. A record under the owner's
  fingerprint (how many jobs, which worker, on which host) makes the owner's ``rindle
  status`` show a ``foreign_worker`` finding, and the stray worker logs one warning line.

A job without a fingerprint (enqueued by an older Rindle), or one whose entry its own
database does not know, fails just as loudly; it keeps rq's retry, because nobody knows who
owns it and another draw from the shared queue may reach the owner.

rq is imported lazily: jobs.py imports this module, and rq is an optional extra.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..logs import get_logger

__all__ = ["ForeignJob", "Taker", "current_job", "foreign_takers", "listening_workers",
           "owner_queue", "record_key", "record_taken", "refuse", "worker_fields"]

log = get_logger("rindle.jobs")

#: How long the record of taken jobs is kept after the last one (the finding fades then).
RECORD_TTL = 24 * 3600
#: A job handed back more often than this is left in the FailedJobRegistry (a loop guard).
MAX_HANDOFFS = 3
#: The fields ``rindle worker`` adds to rq's own worker hash (they live and die with it).
FINGERPRINT_FIELD = "rindle_fingerprint"
DATABASE_FIELD = "rindle_database"
APP_FIELD = "rindle_app"
REPAIR = "stop the worker of the other database, or give the runtimes different rq queue names"


class ForeignJob(Exception):
    """A job this worker must not run: it belongs to another database. The message is the
    whole story (both fingerprints, the worker, where the job went), on one line."""


@dataclass(frozen=True)
class Taker:
    """The worker that refused a job: which database it serves and where it runs."""

    fingerprint: str | None
    database: str
    worker: str
    where: str


def owner_queue(queue_name: str, fingerprint: str) -> str:
    """The queue only the workers of the database ``fingerprint`` listen on."""
    return f"{queue_name}:{fingerprint}"


def record_key(fingerprint: str) -> str:
    """The Redis hash counting jobs of the database ``fingerprint`` taken by other ones."""
    return f"rindle:foreign:{fingerprint}"


def refuse(entry_id: str, *, owner: str | None, taker: Taker, unknown_entry: bool,
           job: Any = None) -> NoReturn:
    """Refuse the current rq job loudly (see the module docstring); always raises ForeignJob.

    ``job`` is the running rq job (``rq.get_current_job()`` when not given; ``None`` outside
    a worker, where there is nothing to hand back or record).
    """
    if job is None:
        job = current_job()
    handed = None
    if job is not None and owner and owner != taker.fingerprint:
        handed = _hand_back(job, owner)
        if handed is not None:
            # The owner has its copy: rq's retry would only put this one back where this
            # worker takes it again.
            job.retries_left = 0
    if job is not None and owner:
        record_taken(job.connection, owner, entry_id, taker,
                     "unknown_entry" if unknown_entry else "fingerprint")
    if unknown_entry:
        what = (f"outbox entry {entry_id} is unknown to {taker.database} "
                f"({taker.fingerprint or 'no fingerprint'}), the database of this worker "
                f"{taker.worker} on {taker.where}")
    else:
        what = (f"it belongs to database {owner} (outbox entry {entry_id}), but this worker "
                f"{taker.worker} on {taker.where} serves {taker.database} "
                f"({taker.fingerprint})")
    if handed is not None:
        fate = f"handed to queue {handed!r} for that database's own workers"
    elif owner is None:
        fate = "the job carries no fingerprint (an older Rindle enqueued it); rq retries it"
    elif owner == taker.fingerprint:
        fate = ("the job has this database's fingerprint, so this database may be a copy of "
                "its owner: delete the copy's database_id row in rindle_meta")
    else:
        fate = "it could not be handed back; rq retries it, the owner's sweeper re-sends it"
    raise ForeignJob(f"refused job {getattr(job, 'id', None) or entry_id}: {what}; {fate}. "
                     f"Fix: {REPAIR}")


def current_job() -> Any:
    """The rq job running in this process, or ``None``."""
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - rq_entry only runs under rq
        return None
    return get_current_job()


def _hand_back(job: Any, owner: str) -> str | None:
    """Enqueue a copy of ``job`` on the owner's own queue; its name, or ``None`` if not."""
    from rq import Queue, Retry

    handoffs = int(job.meta.get("rindle_handoffs", 0)) + 1
    if handoffs > MAX_HANDOFFS:
        return None
    shared = str(job.meta.get("rindle_queue") or job.origin)
    target = Queue(owner_queue(shared, owner), connection=job.connection)
    retries = job.retries_left or 0
    retry = (Retry(max=retries, interval=list(job.retry_intervals or [0]))
             if retries > 0 else None)
    try:
        # Its own job id: this job's hash is about to be marked failed by the worker.
        target.enqueue(job.func_name, args=job.args, kwargs=job.kwargs,
                       job_id=f"{job.id}-owner", job_timeout=job.timeout,
                       description=job.description, retry=retry,
                       meta={"rindle_handoffs": handoffs, "rindle_queue": shared})
    except Exception as exc:
        log.warning("could not hand job %s back to queue %s: %s", job.id, target.name,
                    type(exc).__name__)
        return None
    return str(target.name)


def record_taken(conn: Any, owner: str, entry_id: str, taker: Taker, reason: str) -> None:
    """Count the job under the owner's fingerprint, for the owner's ``rindle status``."""
    key = record_key(owner)
    who = taker.worker or taker.where
    info = {"worker": taker.worker, "where": taker.where, "fingerprint": taker.fingerprint,
            "database": taker.database, "last_entry": entry_id, "last_at": time.time(),
            "reason": reason}
    try:
        with conn.pipeline() as pipe:
            pipe.hincrby(key, f"count:{who}", 1)
            pipe.hsetnx(key, f"first:{who}", time.time())
            pipe.hset(key, f"info:{who}", json.dumps(info))
            pipe.expire(key, RECORD_TTL)
            pipe.execute()
    except Exception as exc:  # the job still fails loudly; only the record is lost
        log.warning("could not record the refused job %s: %s", entry_id, type(exc).__name__)


def foreign_takers(conn: Any, fingerprint: str) -> list[dict[str, Any]]:
    """Who took jobs of the database ``fingerprint`` lately, most jobs first. Blocking."""
    raw = conn.hgetall(record_key(fingerprint))
    takers: dict[str, dict[str, Any]] = {}
    for field, value in raw.items():
        kind, _, who = _text(field).partition(":")
        entry = takers.setdefault(who, {})
        if kind == "count":
            entry["count"] = int(value)
        elif kind == "first":
            entry["first_at"] = float(value)
        elif kind == "info":
            entry.update(json.loads(_text(value)))
    found = [t for t in takers.values() if t.get("count")]
    return sorted(found, key=lambda t: -int(t["count"]))


def worker_fields(*, fingerprint: str | None, database: str, app: str | None) -> dict[str, str]:
    """What ``rindle worker`` adds to its rq worker hash (Redis takes no ``None``)."""
    return {FINGERPRINT_FIELD: fingerprint or "", DATABASE_FIELD: database,
            APP_FIELD: app or ""}


def listening_workers(conn: Any, queue_names: Iterable[str]) -> list[dict[str, Any]]:
    """The rq workers listening on any of ``queue_names``, with the database each announced
    (``fingerprint`` ``None``: it announced none — a plain ``rq worker`` or an older Rindle).
    Blocking."""
    from rq import Queue, Worker

    seen: dict[str, dict[str, Any]] = {}
    for name in queue_names:
        for worker in Worker.all(queue=Queue(name, connection=conn)):
            if worker.name in seen:
                continue
            fingerprint, database, app = conn.hmget(worker.key, FINGERPRINT_FIELD,
                                                    DATABASE_FIELD, APP_FIELD)
            beat = worker.last_heartbeat
            if beat is not None and beat.tzinfo is None:
                beat = beat.replace(tzinfo=UTC)  # rq writes naive UTC
            seen[worker.name] = {
                "name": worker.name, "hostname": worker.hostname, "pid": worker.pid,
                "queues": worker.queue_names(), "fingerprint": _text(fingerprint) or None,
                "database": _text(database) or None, "app": _text(app) or None,
                "last_heartbeat": beat,
                "heartbeat_age": (datetime.now(UTC) - beat).total_seconds() if beat else None,
                "state": _text(worker.get_state())}
    return sorted(seen.values(), key=lambda w: str(w["name"]))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
