"""Repairs an operator or adopter asks for: reprobe, requeue, cancel, regenerate stale variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import telemetry
from ..errors import InvalidTransition, NotFound
from ..logs import get_logger
from ..model.records import Asset
from . import pipeline

if TYPE_CHECKING:
    from ..profile import Profile
    from .pipeline import Processing

log = get_logger("rindle.repair")

_REQUEUABLE = ("failed", "stale", "missing", "cancelled")


async def reprobe(media: Processing, asset_id: str) -> Asset:
    """Read the stored original again: type, size, dimensions and analyzer facts.

    It updates what is known and never changes the asset's state; a file that would now be
    refused is reported in ``metadata["reprobe_problem"]`` for the operator to act on.
    """
    asset = await media.repo.require_asset(asset_id)
    profile = media.profile(asset.profile)
    result = await pipeline.inspect(media, profile, asset)
    metadata = {**asset.metadata, **(result.metadata or {})}
    if result.reason:
        metadata["reprobe_problem"] = {"reason": result.reason, "detail": result.detail}
    else:
        metadata.pop("reprobe_problem", None)
    await media.repo.update_asset(
        asset_id, content_type=result.content_type or asset.content_type,
        kind=result.kind or asset.kind, byte_size=result.byte_size or asset.byte_size,
        width=result.width, height=result.height, metadata=metadata)
    _repaired("reprobe", asset.id, asset.profile, 1,
              "flagged" if result.reason else "ok")
    return await media.repo.require_asset(asset_id)


def _repaired(action: str, asset_id: str | None, profile: str | None, count: int,
              outcome: str = "ok") -> None:
    telemetry.emit("rindle.repair", action=action, asset_id=asset_id, profile=profile,
                   count=count, outcome=outcome)


async def requeue_variants(media: Processing, asset_id: str, variant_names: list[str] | None = None,
                           *, force: bool = False) -> list[str]:
    """Queue failed, stale, missing and cancelled variants again (with ``force``, ready ones
    too). Variants the profile defines but the asset lacks are planned. Returns the names
    queued; variants already queued or building are left alone."""
    repo = media.repo
    asset = await media.repo.require_asset(asset_id)
    profile = media.profile(asset.profile)
    if asset.state not in ("processing", "ready", "degraded"):
        raise InvalidTransition("asset", asset_id, asset.state, "processing")
    names = list(variant_names) if variant_names is not None else list(profile.variants)
    for name in names:
        profile.variant(name)  # unknown names fail loudly, before anything changes
    queued: list[str] = []
    async with media.transaction():
        await repo.plan_variants(asset_id, [(n, profile.variants[n].digest,
                                             profile.variants[n].kind) for n in names])
        for name in names:
            row = await repo.get_variant(asset_id, name)
            assert row is not None
            digest = profile.variants[name].digest
            state = row.state
            if state == "ready" and force:
                await repo.transition_variant(asset_id, name, "ready", "stale")
                state = "stale"
            if state in _REQUEUABLE or state == "planned":
                await repo.transition_variant(asset_id, name, state, "queued",
                                              recipe_digest=digest, error_reason=None)
                queued.append(name)
        if queued:
            await media.outbox.add("process_variants", {"asset_id": asset_id,
                                                        "variants": queued})
    _repaired("requeue", asset_id, asset.profile, len(queued))
    return queued


async def cancel_processing(media: Processing, asset_id: str) -> list[str]:
    """Cancel the asset's planned, queued and building variants. A job building one stops at
    its next checkpoint (before storing) and drops its output. Returns the names cancelled."""
    repo = media.repo
    asset = await media.repo.require_asset(asset_id)
    cancelled: list[str] = []
    for row in await repo.list_variants(asset_id):
        if row.state in ("planned", "queued", "processing"):
            try:
                await repo.transition_variant(asset_id, row.name, row.state, "cancelled",
                                              error_reason="cancelled")
                cancelled.append(row.name)
            except InvalidTransition:
                pass  # it finished or failed in the meantime
    await pipeline.settle_asset(media, asset_id)
    _repaired("cancel", asset_id, asset.profile, len(cancelled))
    return cancelled


@dataclass(frozen=True)
class RegenerateReport:
    """What ``regenerate_variants`` did, or would do (``dry_run``)."""

    marked_stale: int
    planned_missing: int
    queued: int
    dry_run: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        return {"dry_run": self.dry_run, "marked_stale": self.marked_stale,
                "planned_missing": self.planned_missing, "queued": self.queued}


async def regenerate_variants(media: Processing, profile: type[Profile] | str, *,
                              variant: str | None = None, batch: int = 200,
                              dry_run: bool = False) -> RegenerateReport:
    """Bring every asset of a profile to its current recipes.

    Ready variants built from an older recipe (their digest differs) become ``stale``;
    variants the profile gained are planned; then stale and missing ones are queued. Old
    variant files stay served until their replacements are ready. ``dry_run``: count what
    would be marked, planned and queued, and change nothing.
    """
    prof = media.profile(profile)
    names = [variant] if variant else list(prof.variants)
    for name in names:
        prof.variant(name)
    repo = media.repo
    if dry_run:
        preview = await _preview_regenerate(media, prof, names, batch)
        _repaired("regenerate", None, prof.name, preview.queued, "preview")
        return preview
    stale = planned = queued = 0
    for name in names:
        digest = prof.variants[name].digest
        stale += await repo.mark_stale(prof.name, name, digest)
    after: str | None = None
    while True:
        ids = await repo.asset_ids_needing(prof.name, names, after=after, limit=batch)
        if not ids:
            break
        for asset_id in ids:
            before = {v.name for v in await repo.list_variants(asset_id)}
            try:
                done = await requeue_variants(media, asset_id, [
                    n for n in names if n not in before or await _needs(media, asset_id, n)])
            except (InvalidTransition, NotFound):
                continue
            planned += len([n for n in done if n not in before])
            queued += len(done)
        after = ids[-1]
    _repaired("regenerate", None, prof.name, queued)
    return RegenerateReport(marked_stale=stale, planned_missing=planned, queued=queued)


async def _preview_regenerate(media: Processing, prof: type[Profile], names: list[str],
                              batch: int) -> RegenerateReport:
    repo = media.repo
    outdated = 0
    for name in names:
        outdated += await repo.count_outdated(prof.name, name, prof.variants[name].digest)
    planned = queued = 0
    after: str | None = None
    while ids := await repo.asset_ids_needing(prof.name, names, after=after, limit=batch):
        for asset_id in ids:
            rows = {v.name: v for v in await repo.list_variants(asset_id)}
            for name in names:
                if name not in rows:
                    planned += 1
                    queued += 1
                elif rows[name].state in ("stale", "missing"):
                    queued += 1
        after = ids[-1]
    return RegenerateReport(marked_stale=outdated, planned_missing=planned,
                            queued=queued + outdated, dry_run=True)


async def _needs(media: Processing, asset_id: str, name: str) -> bool:
    row = await media.repo.get_variant(asset_id, name)
    return row is not None and row.state in ("stale", "missing")
