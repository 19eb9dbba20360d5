"""The console's actions (POST): each calls the runtime's public API once and answers with
an htmx fragment (when htmx sent it) or a redirect, carrying a flash message.

The console reaches these only after the Authorizer allowed ``admin`` and the CSRF token
checked out (see ``console.py``). The two actions that destroy or rebuild many things ask
for a typed confirmation first: a wrong one changes nothing and shows the form again.
"""

from __future__ import annotations

from starlette.responses import Response

from ..errors import NotFound, RindleError
from ..logs import get_logger
from . import pages
from .visit import Flash, Visit

log = get_logger("rindle.admin")

#: The reason the purge log records for a purge an operator asked for here.
PURGE_REASON = "admin_purged"


def _names(names: list[str]) -> str:
    return ", ".join(names)


async def _answer(visit: Visit, form: dict[str, str], asset_id: str, flash: Flash) -> Response:
    """The answer to a retry or cancel: the fragment the form asked for, or a redirect."""
    variant = form.get("variant", "")
    if visit.htmx and form.get("fragment") == "row" and variant:
        return await pages.job_row_fragment(visit, asset_id, variant, flash=flash)
    if visit.htmx and form.get("fragment") == "asset":
        return await pages.asset_live_fragment(visit, asset_id, flash=flash)
    return visit.redirect(_next(form, f"/assets/{asset_id}"), flash)


def _next(form: dict[str, str], default: str) -> str:
    """Where to go after the action: a path inside the console, never another site."""
    target = form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


async def retry(visit: Visit, form: dict[str, str]) -> Response:
    """Queue the asset's failed (and stale, missing, cancelled) variants again; one
    variant's, when the form names it."""
    asset_id = visit.request.path_params["asset_id"]
    variant = form.get("variant") or None
    flash: Flash
    try:
        queued = await visit.media.requeue_variants(asset_id, [variant] if variant else None)
    except RindleError as exc:
        flash = ("error", f"Nothing was queued: {exc.message}")
    else:
        log.info("admin: requeued variants %s of asset %s", queued, asset_id)
        flash = (("ok", f"Queued {_names(queued)} of asset {asset_id} again.") if queued else
                 ("info", f"Nothing to retry on asset {asset_id}: no variant is failed, "
                          "stale, missing or cancelled."))
    return await _answer(visit, form, asset_id, flash)


async def cancel(visit: Visit, form: dict[str, str]) -> Response:
    """Cancel the asset's planned, queued and running variant work."""
    asset_id = visit.request.path_params["asset_id"]
    flash: Flash
    try:
        cancelled = await visit.media.cancel_processing(asset_id)
    except RindleError as exc:
        flash = ("error", f"Nothing was cancelled: {exc.message}")
    else:
        log.info("admin: cancelled variants %s of asset %s", cancelled, asset_id)
        flash = (("ok", f"Cancelled {_names(cancelled)} of asset {asset_id}.") if cancelled
                 else ("info", f"Nothing to cancel on asset {asset_id}."))
    return await _answer(visit, form, asset_id, flash)


async def purge(visit: Visit, form: dict[str, str]) -> Response:
    """Detach the asset from its owners and queue its purge (reason ``admin_purged``), in
    one transaction, once the operator typed its id.

    It is detached too because the purge job leaves an attached asset alone (a purge must
    not pull an asset from under an owner who just attached it); here the operator was
    shown the owners and asked for exactly this.
    """
    media = visit.media
    asset_id = visit.request.path_params["asset_id"]
    if await media.repo.get_asset(asset_id) is None:
        return visit.refuse(404, f"asset {asset_id} does not exist", heading="Not found")
    typed = form.get("confirm", "").strip()
    if typed != asset_id:
        return await pages.asset_page(
            visit, asset_id, status=422, purge_value=typed,
            purge_error="Type the asset's id exactly to confirm; nothing was changed.")
    async with media.transaction():
        links = await media.repo.attachments_for_asset(asset_id)
        for link in links:
            await media.repo.delete_attachment(link.owner_type, link.owner_id, link.slot)
        await media.outbox.add("purge_asset", {"asset_id": asset_id, "reason": PURGE_REASON})
    log.warning("admin: purge of asset %s queued (%d attachment(s) removed)", asset_id,
                len(links))
    detached = f" It was detached from {len(links)} owner slot(s)." if links else ""
    return visit.redirect("/assets", ("ok", f"The purge of asset {asset_id} is queued."
                                            f"{detached} Its purge log stays on its page."))


async def regenerate(visit: Visit, form: dict[str, str]) -> Response:
    """Rebuild a profile's variants from its current recipes, once the operator typed its
    name: outdated ready variants become stale, missing ones are planned, all are queued."""
    media = visit.media
    name = form.get("profile", "").strip()
    typed = form.get("confirm", "").strip()
    try:
        profile = media.profile(name)
    except NotFound:
        return await pages.regenerate_page(visit, name)  # says the profile is unknown
    if typed != profile.name:
        return await pages.regenerate_page(
            visit, profile.name, confirm=typed, status=422,
            error="Type the profile's name exactly to confirm; nothing was changed.")
    report = await media.regenerate_variants(profile=profile.name, dry_run=False)
    log.warning("admin: regenerated profile %s: %s", profile.name, report.to_dict())
    return visit.redirect("/jobs", ("ok", (
        f"Regenerating {profile.name}: {report.marked_stale} marked stale, "
        f"{report.planned_missing} planned, {report.queued} queued.")))


__all__ = ["PURGE_REASON", "cancel", "purge", "regenerate", "retry"]
