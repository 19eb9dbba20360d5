"""Runtime status: what the rows say about the health of uploads, variants and jobs.

``media.runtime_status()`` (and ``rindle status``) counts rows by state and looks for work
that is stuck or needs an operator: failed, cancelled, stale or missing variants, variants
queued or processing for too long, uploads abandoned past their expiry, assets stuck
between upload and promotion, jobs that failed for good, and jobs that rq workers of another
database took from this runtime's queue (read from Redis), and provider assets (streaming)
stuck on the way to the provider or errored there. Each finding carries its
count, the age of the oldest row and a few samples (oldest first); each class of finding
comes with the repair that fixes it. Reading it never changes anything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import telemetry
from ..errors import ValidationError
from ..logs import get_logger
from ..model import identity
from ..model.records import utc
from ..model.repo import OPEN_SESSION_STATES

if TYPE_CHECKING:
    from ..profile import Profile
    from ..types import Stores

__all__ = ["runtime_status"]

log = get_logger("rindle.ops")

QUEUED_TOO_LONG = 300.0  # seconds a variant may wait in the queue before it looks starved
OUTBOX_TOO_LATE = 300.0  # seconds a due job may wait undispatched before the queue looks down
IN_FLIGHT_TOO_LONG = 900.0  # seconds an asset may sit between upload and promotion

# class -> (what to do, how)
_REPAIRS: dict[str, tuple[str, str]] = {
    "failed": ("requeue", "media.requeue_variants(asset_id) once the cause is fixed"),
    "cancelled": ("requeue", "media.requeue_variants(asset_id) if the work is still wanted"),
    "missing": ("requeue", "media.requeue_variants(asset_id) rebuilds the lost file"),
    "stale": ("regenerate", "media.regenerate_variants(profile=...) rebuilds old recipes"),
    "queue_starved": ("check workers", "is a worker running for this queue? then "
                      "`rindle sweep --app ...` re-sends the jobs"),
    "stuck_processing": ("sweep", "the worker probably died; `rindle sweep --app ...` hands "
                         "the job to another worker"),
    "abandoned_uploads": ("cleanup", "`rindle cleanup --app ... --execute` expires them and "
                          "purges what they left in storage"),
    "tus_expired": ("cleanup", "`rindle cleanup --app ... --execute` expires them, aborts "
                    "their storage uploads and purges what they left (a client asking "
                    "afterwards gets 410)"),
    "outbox_backlog": ("check the queue", "due jobs are not being dispatched: is the web "
                       "process's sweeper or an rq worker running? `rindle sweep --app ...` "
                       "sends them now"),
    "stuck_assets": ("sweep", "`rindle sweep --app ...` re-sends their promotion"),
    "failed_jobs": ("inspect", "read last_error, fix the cause, then requeue the asset's "
                    "variants"),
    "streaming_stuck": ("sync", "a webhook was probably lost: media.sync_streaming() (or "
                        "`rindle streaming sync --app ...`) re-reads these from the provider"),
    "streaming_errored": ("inspect", "read the samples' error (the provider's reason); "
                          "media.sync_streaming(asset_id) re-reads one from the provider"),
    "foreign_worker": ("stop the foreign worker", "stop the worker of the other database, or "
                       "give the runtimes different rq queue names (RQQueue(name=...)); the "
                       "jobs it took were handed back to this database's workers"),
}


@runtime_checkable
class ReportsForeignTakers(Protocol):
    """A queue that knows which workers of other databases took this database's jobs."""

    async def foreign_takers(self, fingerprint: str) -> list[dict[str, Any]]: ...


async def runtime_status(media: Stores, *, profile: type[Profile] | str | None = None,
                         limit: int = 5, now: datetime | None = None,
                         streaming_stuck_after: float = 3600.0) -> dict[str, Any]:
    """A JSON-ready report of counts, findings and recommended repairs.

    ``profile`` narrows assets, variants and sessions to one profile; ``limit`` is the
    number of samples per finding; ``streaming_stuck_after``: seconds a provider asset may
    wait in pending, uploading or processing before it counts as stuck. The runtime must
    be connected.
    """
    if limit < 1:
        raise ValidationError("limit must be at least 1", code="invalid_limit")
    # An unknown name is an error, not an empty report.
    name = None if profile is None else media.profile(profile).name
    at = now or datetime.now(UTC)
    started = time.perf_counter()
    repo = media.repo
    stale_after = media.outbox.stale_after

    async def finding(cls: str, entity: str, states: Sequence[str], since: str,
                      older_than: float | None = None,
                      where: dict[str, Any] | None = None) -> dict[str, Any] | None:
        before = at - timedelta(seconds=older_than) if older_than is not None else None
        count, oldest, rows = await repo.findings(
            entity, states, since_column=since, before=before,
            profile=name if entity != "outbox" else None, limit=limit, where=where)
        if not count:
            return None
        return {"class": cls, "count": count, "oldest_age_seconds": _age(at, oldest),
                "samples": [_sample(entity, row, since, at) for row in rows]}

    variant_findings = [f for f in [
        await finding("failed", "variant", ["failed"], "updated_at"),
        await finding("cancelled", "variant", ["cancelled"], "updated_at"),
        await finding("missing", "variant", ["missing"], "updated_at"),
        await finding("stale", "variant", ["stale"], "updated_at"),
        await finding("queue_starved", "variant", ["queued"], "updated_at", QUEUED_TOO_LONG),
        await finding("stuck_processing", "variant", ["processing"], "updated_at", stale_after),
    ] if f]
    session_findings = [f for f in [
        await finding("abandoned_uploads", "session", OPEN_SESSION_STATES, "expires_at", 0),
        # The same sessions' resumable (tus) part by itself: they hold storage-side
        # multipart uploads and leases, and their clients may still be retrying.
        await finding("tus_expired", "session", OPEN_SESSION_STATES, "expires_at", 0,
                      where={"strategy": "tus"}),
    ] if f]
    asset_findings = [f for f in [
        # "staged" is left out: an asset waits there legitimately until its upload
        # session expires, and the abandoned-upload finding covers it after that.
        await finding("stuck_assets", "asset", ["validating", "analyzing", "promoting"],
                      "state_changed_at", IN_FLIGHT_TOO_LONG),
    ] if f]
    streaming_findings = [f for f in [
        await finding("streaming_stuck", "provider_asset", ["pending", "uploading", "processing"],
                      "updated_at", streaming_stuck_after),
        await finding("streaming_errored", "provider_asset", ["errored"], "updated_at"),
    ] if f]
    job_findings = [f for f in [await finding("failed_jobs", "outbox", ["failed"], "created_at"),
                                # Measured from when each became due (a delayed clean-up
                                # is not late while it waits).
                                await finding("outbox_backlog", "outbox", ["pending"],
                                              "available_at", OUTBOX_TOO_LATE),
                                await _foreign_workers(media, at, limit)] if f]

    outbox_counts = await repo.count_by_state("outbox")
    # Measured from when an entry became due: a delayed one (a staging clean-up waits for
    # its upload URL to expire) is not late while it waits.
    _, oldest_pending, _ = await repo.findings("outbox", ["pending"],
                                                since_column="available_at", before=at, limit=1)
    report: dict[str, Any] = {
        "generated_at": at.isoformat(),
        "filters": {"profile": name, "limit": limit},
        "assets": _section(await repo.count_by_state("asset", profile=name), asset_findings),
        "variants": _section(await repo.count_by_state("variant", profile=name),
                             variant_findings),
        "upload_sessions": _section(await repo.count_by_state("session", profile=name),
                                    session_findings),
        "streaming": _section(await repo.count_by_state("provider_asset", profile=name),
                              streaming_findings),
        "outbox": {**_section(outbox_counts, job_findings),
                   "oldest_pending_age_seconds": _age(at, oldest_pending)},
    }
    everything = (variant_findings + session_findings + asset_findings + streaming_findings
                  + job_findings)
    report["recommendations"] = [
        {"class": f["class"], "count": f["count"], "action": _REPAIRS[f["class"]][0],
         "how": _REPAIRS[f["class"]][1]} for f in everything]
    report["healthy"] = not any(f["class"] not in ("stale", "cancelled") for f in everything)
    telemetry.emit("rindle.runtime_status", profile=name, healthy=report["healthy"],
                   findings=len(everything), duration=time.perf_counter() - started)
    return report


async def _foreign_workers(media: Stores, at: datetime, limit: int) -> dict[str, Any] | None:
    """The ``foreign_worker`` finding: jobs of this database that a worker of another one
    took (and handed back), per worker, from the queue's record in Redis."""
    queue = getattr(media, "queue", None)
    if not isinstance(queue, ReportsForeignTakers):
        return None
    fingerprint = await identity.fingerprint(media.repo.store, create=False)
    if fingerprint is None:
        return None
    try:
        takers = await queue.foreign_takers(fingerprint)
    except Exception as exc:  # a status report must not fail because Redis is away
        log.warning("cannot read which workers took this database's jobs: %s",
                    type(exc).__name__)
        return None
    if not takers:
        return None
    first = min(float(t.get("first_at") or t.get("last_at") or 0) for t in takers)
    return {"class": "foreign_worker", "count": sum(int(t["count"]) for t in takers),
            "oldest_age_seconds": round(at.timestamp() - first, 1),
            "samples": [_taker_sample(t, at, fingerprint) for t in takers[:limit]]}


def _taker_sample(taker: dict[str, Any], at: datetime, ours: str) -> dict[str, Any]:
    # A worker with our own fingerprint that does not know our entries serves a copy of this
    # database; it cannot hand the jobs back (it listens on our queue too) and rq retries them.
    why = ("refused them as unknown to its database, a copy of this one? (delete the copy's "
           "database_id row in rindle_meta)" if taker.get("fingerprint") == ours
           else "handed them back")
    return {"state": "taken", "age_seconds": round(at.timestamp() - float(taker["last_at"]), 1),
            "job_id": taker.get("last_entry"), "count": int(taker["count"]),
            "worker": taker.get("worker"), "where": taker.get("where"),
            "fingerprint": taker.get("fingerprint"), "database": taker.get("database"),
            "error": f"{taker['count']} job(s) taken by worker {taker.get('worker')} on "
                     f"{taker.get('where')} serving {taker.get('database')} "
                     f"({taker.get('fingerprint')}); it {why}"}


def _section(counts: dict[str, int], findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"counts": dict(sorted(counts.items())), "total": sum(counts.values()),
            "findings": findings}


def _age(at: datetime, then: Any) -> float | None:
    moment = utc(then)
    return None if moment is None else round((at - moment).total_seconds(), 1)


def _sample(entity: str, row: dict[str, Any], since: str, at: datetime) -> dict[str, Any]:
    # Only identifiers, states and reasons: never a storage key's signed URL or a session URI.
    sample: dict[str, Any] = {"state": row["state"], "age_seconds": _age(at, row[since])}
    if entity == "variant":
        sample.update(asset_id=row["asset_id"], variant=row["name"],
                      attempts=row["attempts"], error=row["error_reason"])
    elif entity == "asset":
        sample.update(asset_id=row["id"], profile=row["profile"], error=row["error_reason"])
    elif entity == "provider_asset":
        # The provider's own ids stay out: only Rindle's asset id names it.
        sample.update(asset_id=row["asset_id"], profile=row["profile"],
                      provider=row["provider_name"], ingest=row["ingest_mode"],
                      error=row["last_sync_error"])
    elif entity == "session":
        sample.update(session_id=row["id"], asset_id=row["asset_id"],
                      strategy=row["strategy"])
    else:
        sample.update(job_id=row["id"], kind=row["kind"], attempts=row["attempts"],
                      error=(row["last_error"] or "")[:500] or None)
    return sample
