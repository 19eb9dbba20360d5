"""The console's pages (GET): each reads rows or a report and renders a template.

Nothing here changes anything. What a page shows is chosen field by field: an upload
session's URI and storage upload id, and a provider's own ids for its copy of an asset, are
credentials or handles that never reach a page.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..errors import NotFound
from ..live.sse import subscribe_token
from ..model import states
from ..model.records import Asset, AssetVariant, OutboxEntry, ProviderAsset, UploadSession
from .paging import CURSOR_LIMIT, InvalidCursor, Page, Pager, Window
from .queries import ASSET_KEYS, SESSION_KEYS, assets_page, sessions_page
from .visit import Flash, Visit

#: Rows a page of the assets list shows (``console(media, page_size=...)`` overrides both).
PAGE_SIZE = 50
#: Rows a page of the upload sessions list shows.
SESSIONS_SHOWN = 100
#: Rows each table of the jobs page shows at most (oldest first, with the total count).
JOBS_SHOWN = 100
#: Variant states the jobs page lists: work that failed, or is waiting or running.
JOB_STATES = ("failed", "queued", "processing")
#: Variant states whose row on the jobs page follows the asset's live events.
UNSETTLED = ("planned", "queued", "processing")
#: The longest filter value taken from a query string.
_FILTER_LIMIT = 200

#: What each class of finding in ``runtime_status`` is called on the overview.
FINDINGS = {
    "failed": "Failed variants",
    "cancelled": "Cancelled variants",
    "missing": "Variants whose file is missing",
    "stale": "Variants built from an old recipe",
    "queue_starved": "Variants waiting too long in the queue",
    "stuck_processing": "Variants stuck processing",
    "abandoned_uploads": "Abandoned uploads",
    "tus_expired": "Expired resumable (tus) uploads",
    "stuck_assets": "Assets stuck before promotion",
    "streaming_stuck": "Provider assets stuck on the way",
    "streaming_errored": "Provider assets the provider rejected",
    "failed_jobs": "Jobs that failed for good",
    "outbox_backlog": "Due jobs nobody dispatched",
    "foreign_worker": "Jobs taken by a worker of another database",
}
#: The sections of the status report, in the order the overview shows them.
SECTIONS = (("assets", "Assets"), ("variants", "Variants"), ("upload_sessions", "Upload sessions"),
            ("streaming", "Streaming"), ("outbox", "Jobs (outbox)"))
#: Column headings of sample fields whose names read badly as they are.
SAMPLE_LABELS = {"asset_id": "asset", "session_id": "session", "job_id": "job",
                 "age_seconds": "age"}
#: Sample fields in the order the overview's tables show them; others follow.
_SAMPLE_ORDER = ("asset_id", "variant", "session_id", "job_id", "kind", "profile", "strategy",
                 "provider", "ingest", "state", "attempts", "count", "age_seconds", "worker",
                 "where", "database", "error")


def _query(visit: Visit, name: str, *, limit: int = _FILTER_LIMIT) -> str:
    return visit.request.query_params.get(name, "").strip()[:limit]


def _read_window(visit: Visit, pager: Pager[Any]) -> tuple[Window | None, InvalidCursor | None]:
    """The window the request's ``after`` or ``before`` cursor asks for; or ``None`` and
    why the cursor was refused."""
    try:
        return pager.window(after=_query(visit, "after", limit=CURSOR_LIMIT),
                            before=_query(visit, "before", limit=CURSOR_LIMIT)), None
    except InvalidCursor as exc:
        return None, exc


def _status(errors: list[str], cursor_error: InvalidCursor | None) -> int:
    """A refused cursor is a malformed request (400); a filter value no row can have is a
    form to fix (422)."""
    if cursor_error is not None:
        return cursor_error.status_code
    return 422 if errors else 200


def _links(visit: Visit, path: str, filters: dict[str, str], page: Page[Any],
           window: Window | None) -> dict[str, str | None]:
    """The pager's links, each keeping the filters: the first page (from a page after it,
    a page emptied since its link was made, or a refused cursor), and the previous and
    the next page where there is one."""
    first = window is None or page.before is not None or (window.key is not None
                                                           and not page.rows)
    return {
        "first_url": visit.url(path, filters) if first else None,
        "prev_url": visit.url(path, {**filters, "before": page.before}) if page.before
        else None,
        "next_url": visit.url(path, {**filters, "after": page.after}) if page.after else None,
    }


# --- overview ----------------------------------------------------------------------------------


def sample_columns(samples: list[dict[str, Any]]) -> list[str]:
    """The fields of a finding's samples, known ones first (samples differ by entity)."""
    seen = {key for sample in samples for key in sample}
    return ([k for k in _SAMPLE_ORDER if k in seen]
            + sorted(k for k in seen if k not in _SAMPLE_ORDER))


async def overview(visit: Visit) -> Response:
    report = await visit.media.runtime_status()
    repairs = {r["class"]: r for r in report["recommendations"]}
    return visit.page("overview.html", {
        "report": report, "sections": SECTIONS, "repairs": repairs, "labels": FINDINGS,
        "sample_columns": sample_columns, "sample_labels": SAMPLE_LABELS},
        section="overview", title="Overview")


# --- assets ------------------------------------------------------------------------------------


def parse_owner(text: str) -> tuple[str, str] | None:
    """``type:id`` -> ``(type, id)``; ``None`` when either part is missing."""
    owner_type, sep, owner_id = text.partition(":")
    if not sep or not owner_type.strip() or not owner_id.strip():
        return None
    return owner_type.strip(), owner_id.strip()


async def assets(visit: Visit) -> Response:
    state, profile = _query(visit, "state"), _query(visit, "profile")
    owner_text = _query(visit, "owner")
    errors = []
    if state and state not in states.ASSET:
        errors.append(f"there is no asset state {state!r}")
    owner = parse_owner(owner_text) if owner_text else None
    if owner_text and owner is None:
        errors.append("the owner filter takes type:id, e.g. user:42")
    pager = Pager(visit.media.signer, ASSET_KEYS)
    window, cursor_error = _read_window(visit, pager)
    page: Page[Asset] = Page(rows=[])
    if not errors and window is not None:
        repo = visit.media.repo

        async def fetch(win: Window, limit: int) -> list[Asset]:
            return await assets_page(repo, state=state or None, profile=profile or None,
                                     owner=owner, window=win, limit=limit)

        page = await pager.page(fetch, window, size=visit.site.page_size or PAGE_SIZE)
    filters = {"state": state, "profile": profile, "owner": owner_text}
    return visit.page("assets.html", {
        "rows": page.rows, "filters": filters, "errors": errors, "cursor_error": cursor_error,
        "asset_states": list(states.ASSET), "profiles": sorted(visit.media.profiles),
        **_links(visit, "/assets", filters, page, window),
    }, status=_status(errors, cursor_error), section="assets", title="Assets")


def session_view(session: UploadSession) -> dict[str, Any]:
    """The fields of an upload session a page shows (never its URI or upload id)."""
    return {"id": session.id, "asset_id": session.asset_id, "profile": session.profile,
            "state": session.state, "strategy": session.strategy,
            "filename": session.filename, "declared_byte_size": session.declared_byte_size,
            "declared_content_type": session.declared_content_type,
            "failure_reason": session.failure_reason, "offset": session.last_known_offset,
            "created_at": session.created_at, "expires_at": session.expires_at,
            "verified_at": session.verified_at}


def provider_view(row: ProviderAsset) -> dict[str, Any]:
    """The fields of a provider asset a page shows: never the provider's own ids for it
    (they name it in the provider's API), its raw metadata or playback ids."""
    return {"provider": row.provider_name, "profile": row.profile, "state": row.state,
            "ingest": row.ingest_mode, "policy": row.playback_policy,
            "error": row.last_sync_error, "last_event_at": row.last_event_at,
            "updated_at": row.updated_at}


def events_url(visit: Visit, asset_id: str) -> str:
    """The asset's SSE stream (HTML fragments), with a subscribe token for this page."""
    token = subscribe_token(visit.media, asset_id)
    return f"{visit.media.router_path}/events/asset/{asset_id}?format=html&token={token}"


async def _live_context(visit: Visit, asset: Asset) -> dict[str, Any]:
    variants = await visit.media.repo.list_variants(asset.id)
    return {
        "asset": asset, "variants": variants,
        "can_retry": asset.state in ("processing", "ready", "degraded") and any(
            v.state in ("failed", "stale", "missing", "cancelled") for v in variants),
        "can_cancel": any(v.state in UNSETTLED for v in variants),
    }


async def asset_page(visit: Visit, asset_id: str, *, purge_error: str | None = None,
                     purge_value: str = "", status: int = 200) -> Response:
    """The asset's page; also what a refused purge renders again, with its error."""
    media, repo = visit.media, visit.media.repo
    asset = await repo.get_asset(asset_id)
    purges = await media.purges(asset_id=asset_id)
    if asset is None:
        # A purged asset's rows are gone, but the log says what went and why.
        return visit.page("asset_gone.html", {"asset_id": asset_id, "purges": purges},
                          status=404, section="assets", title="Asset not found")
    context = await _live_context(visit, asset)
    context.update(
        events_url=events_url(visit, asset.id),
        sessions=[session_view(s) for s in await repo.sessions_for_asset(asset.id)],
        runs=await repo.runs_for_asset(asset.id),
        providers=[provider_view(p) for p in await repo.provider_assets_for(asset.id)],
        attachments=await repo.attachments_for_asset(asset.id),
        purges=purges, purge_error=purge_error, purge_value=purge_value)
    return visit.page("asset.html", context, status=status, section="assets",
                      title=f"Asset {asset.id}")


async def asset(visit: Visit) -> Response:
    return await asset_page(visit, visit.request.path_params["asset_id"])


async def asset_live_fragment(visit: Visit, asset_id: str, *,
                              flash: Flash | None = None) -> Response:
    """The live part of the asset page (state, variants, retry and cancel), which the page
    fetches again whenever the asset's event stream says something changed."""
    found = await visit.media.repo.get_asset(asset_id)
    if found is None:
        return visit.fragment("_asset_missing.html", {"asset_id": asset_id}, flash=flash)
    return visit.fragment("_asset_live.html", await _live_context(visit, found), flash=flash)


async def asset_live(visit: Visit) -> Response:
    return await asset_live_fragment(visit, visit.request.path_params["asset_id"])


# --- upload sessions ---------------------------------------------------------------------------


async def sessions(visit: Visit) -> Response:
    state = _query(visit, "state")
    errors = [f"there is no session state {state!r}"] if state and \
        state not in states.SESSION else []
    pager = Pager(visit.media.signer, SESSION_KEYS)
    window, cursor_error = _read_window(visit, pager)
    page: Page[UploadSession] = Page(rows=[])
    if not errors and window is not None:
        repo = visit.media.repo

        async def fetch(win: Window, limit: int) -> list[UploadSession]:
            return await sessions_page(repo, state=state or None, window=win, limit=limit)

        page = await pager.page(fetch, window, size=visit.site.page_size or SESSIONS_SHOWN)
    filters = {"state": state}
    return visit.page("sessions.html", {
        "rows": [session_view(s) for s in page.rows], "state": state, "errors": errors,
        "cursor_error": cursor_error, "session_states": list(states.SESSION),
        **_links(visit, "/sessions", filters, page, window),
    }, status=_status(errors, cursor_error), section="sessions", title="Upload sessions")


# --- variants and jobs -------------------------------------------------------------------------


async def jobs(visit: Visit) -> Response:
    repo = visit.media.repo
    count, _, found = await repo.findings("variant", JOB_STATES, since_column="updated_at",
                                          limit=JOBS_SHOWN)
    variants = [AssetVariant.from_row(r) for r in found]
    failed_count, _, failed = await repo.findings("outbox", ["failed"],
                                                  since_column="created_at", limit=JOBS_SHOWN)
    entries = [OutboxEntry.from_row(r) for r in failed]
    ids = {v.asset_id for v in variants} | {str(e.payload["asset_id"]) for e in entries
                                            if e.payload.get("asset_id")}
    known = {a.id: a for a in await repo.get_assets(sorted(ids))}
    return visit.page("jobs.html", {
        "variants": variants, "variant_count": count, "entries": entries,
        "entry_count": failed_count, "assets": known, "shown": JOBS_SHOWN,
        "regenerable": sorted(p.name for p in visit.media.profiles.values() if p.variants),
    }, section="jobs", title="Variants and jobs")


def _row_context(visit: Visit, variant: AssetVariant | None, asset: Asset | None, *,
                 asset_id: str, name: str, live: bool) -> dict[str, Any]:
    return {"v": variant, "asset": asset, "asset_id": asset_id, "name": name,
            "live": live, "events_url": events_url(visit, asset_id) if live else None}


async def job_row_fragment(visit: Visit, asset_id: str, name: str, *,
                           flash: Flash | None = None, refresh: bool = False) -> Response:
    """One variant's row of the jobs page, as an action or a live refresh answers it.

    A row whose variant is still waiting or building holds the asset's event stream and
    refreshes its cells (an inner swap: the stream stays open, so nothing is missed and
    nothing reconnects). Once it settles the whole row is replaced by one without a stream
    (``HX-Reswap: outerHTML``), which closes the connection: a page never keeps more open
    streams than it has rows in flight.
    """
    repo = visit.media.repo
    variant = await repo.get_variant(asset_id, name)
    asset = await repo.get_asset(asset_id)
    live = variant is not None and variant.state in UNSETTLED
    context = _row_context(visit, variant, asset, asset_id=asset_id, name=name, live=live)
    if refresh and live:
        return visit.fragment("_job_cells.html", context)
    headers = {"HX-Reswap": "outerHTML"} if refresh else None
    return visit.fragment("_job_row.html", context, flash=flash, headers=headers)


async def job_row(visit: Visit) -> Response:
    params = visit.request.path_params
    return await job_row_fragment(visit, params["asset_id"], params["name"], refresh=True)


# --- regenerate --------------------------------------------------------------------------------


async def regenerate_page(visit: Visit, name: str, *, error: str | None = None,
                          confirm: str = "", status: int = 200) -> Response:
    """The profiles with variants; for one of them, what regenerating would do (a dry
    run) and the typed confirmation that does it. Also a refused confirmation's answer."""
    media = visit.media
    choices = sorted(p.name for p in media.profiles.values() if p.variants)
    preview = None
    if name:
        try:
            profile = media.profile(name)
        except NotFound:
            error, status = f"no profile named {name!r} is registered", 404
        else:
            preview = await media.regenerate_variants(profile=profile.name, dry_run=True)
    return visit.page("regenerate.html", {
        "choices": choices, "profile": name, "preview": preview, "error": error,
        "confirm": confirm}, status=status, section="jobs", title="Regenerate variants")


async def regenerate(visit: Visit) -> Response:
    return await regenerate_page(visit, _query(visit, "profile"))


# --- doctor ------------------------------------------------------------------------------------


async def doctor(visit: Visit) -> Response:
    report = await visit.media.doctor()
    return visit.page("doctor.html", {"report": report}, section="doctor", title="Doctor")


__all__ = ["asset", "asset_live", "asset_live_fragment", "asset_page", "assets", "doctor",
           "job_row", "job_row_fragment", "jobs", "overview", "regenerate", "regenerate_page",
           "sessions"]
