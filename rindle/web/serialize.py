"""JSON shapes of assets for the HTTP surface; URLs only where the Authorizer allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..delivery.urls import DELIVERABLE
from ..errors import RindleError
from ..model.records import Asset

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..app import Rindle


async def asset_json(media: Rindle, asset: Asset, *, request: Request | None = None,
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
    variants: dict[str, Any] = {}
    for row in await media.repo.list_variants(asset.id):
        item: dict[str, Any] = {"state": row.state}
        if row.width:
            item["width"], item["height"] = row.width, row.height
        if row.state == "ready":
            try:
                item["url"] = await media.variant_url(asset.profile, asset, row.name,
                                                      actor=actor, request=request)
            except RindleError:
                pass  # not allowed or not deliverable: the state alone is still useful
        variants[row.name] = item
    body["variants"] = variants
    if asset.state in DELIVERABLE:
        try:
            body["url"] = await media.url(asset.profile, asset, actor=actor, request=request)
        except RindleError:
            pass
    return body
