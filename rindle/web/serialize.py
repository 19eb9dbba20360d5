"""JSON shapes of assets for the HTTP surface; URLs only where the Authorizer allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..delivery.streaming.playback import playable, playback_url
from ..delivery.urls import authorize_view, delivery_urls
from ..errors import Forbidden
from ..model.records import Asset

#: Asset states before promotion made it available, when it can have no variant rows.
BEFORE_VARIANTS = frozenset({"staged", "validating", "analyzing", "promoting"})

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..delivery.streaming.playback import Playing
    from ..profile import Profile


async def asset_json(media: Playing, asset: Asset, *, request: Request | None = None,
                     actor: Any = None) -> dict[str, Any]:
    """``{id, profile, state, content_type, byte_size, width, height, variants, url?}``."""
    body: dict[str, Any] = {
        "id": asset.id,
        "profile": asset.profile,
        "state": asset.state,
        "kind": asset.kind,
        "filename": asset.filename,
        "content_type": asset.content_type,
        "byte_size": asset.byte_size,
        "width": asset.width,
        "height": asset.height,
        "created_at": asset.created_at.isoformat() if asset.created_at else None,
    }
    if asset.quarantine_reason:
        body["quarantine_reason"] = asset.quarantine_reason
    # Variants are planned once an asset is available: none exist before (a just-completed
    # upload is validating), so there is nothing to read.
    rows = [] if asset.state in BEFORE_VARIANTS else await media.repo.list_variants(asset.id)
    original, urls = await delivery_urls(media, media.profile(asset.profile), asset, rows,
                                         actor=actor, request=request)
    variants: dict[str, Any] = {}
    for row in rows:
        item: dict[str, Any] = {"state": row.state}
        if row.width:
            item["width"], item["height"] = row.width, row.height
        if row.state == "ready" and row.name in urls:
            item["url"] = urls[row.name]
        variants[row.name] = item
    body["variants"] = variants
    if original is not None:
        body["url"] = original
    profile = media.profile(asset.profile)
    if profile.delivery.streaming is not None:
        body["streaming"] = await _streaming_json(media, profile, asset, request=request,
                                                  actor=actor)
    return body


async def _streaming_json(media: Playing, profile: type[Profile], asset: Asset, *,
                          request: Request | None, actor: Any) -> dict[str, Any]:
    """``{state, url?}`` of a streaming profile's asset: the provider row's state
    (``pending`` before the push) and, once ready, the HLS URL for an allowed viewer."""
    rows = await media.repo.provider_assets_for(asset.id)
    out: dict[str, Any] = {"state": rows[0].state if rows else "pending"}
    row = playable(profile, asset, rows)
    if row is None:
        return out
    try:
        await authorize_view(media, profile, asset, actor=actor, request=request)
    except Forbidden:
        return out
    out["url"] = playback_url(media, profile, row)
    return out
