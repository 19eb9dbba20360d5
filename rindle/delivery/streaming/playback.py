"""Playback URLs of streamed assets: the Authorizer first, then a signed (or public) URL."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from ... import telemetry
from ...errors import DeliveryUnsupported, NotFound
from ...model.records import Asset, ProviderAsset
from ..urls import DELIVERABLE, authorize_view
from .base import PLAYBACK_KINDS

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ...profile import Profile
    from ..urls import Delivering
    from .base import StreamingProvider

    class Playing(Delivering, Protocol):
        def streaming_provider(self, name: str) -> StreamingProvider: ...


async def ready_row(media: Playing, profile: type[Profile], asset: Asset) -> ProviderAsset | None:
    """The asset's provider row at the profile's provider when it can be played (see
    ``playable``)."""
    if profile.delivery.streaming is None or asset.state not in DELIVERABLE:
        return None
    return playable(profile, asset, await media.repo.provider_assets_for(asset.id))


def playable(profile: type[Profile], asset: Asset,
             rows: list[ProviderAsset]) -> ProviderAsset | None:
    """Of the asset's provider rows (already read), the one that can be played: never for
    an asset that is not deliverable (a quarantined one stays unplayable at the provider
    too, while its deletion there is on the way)."""
    streaming = profile.delivery.streaming
    if streaming is None or asset.state not in DELIVERABLE:
        return None
    for row in rows:
        if row.provider_name == streaming.provider_name and row.state == "ready" \
                and row.playback_id() is not None:
            return row
    return None


def ttl_of(media: Playing, profile: type[Profile], expires_in: int | None) -> int:
    streaming = profile.delivery.streaming
    return (expires_in or (streaming.playback_ttl_seconds if streaming else None)
            or profile.delivery.signed_url_ttl_seconds or media.signed_url_ttl)


def playback_url(media: Playing, profile: type[Profile], row: ProviderAsset, *,
                 kind: str = "video", expires_in: int | None = None) -> str:
    """The URL of a ready row, for a viewer already authorized."""
    started = time.perf_counter()
    signed = row.playback_policy != "public"
    pid = row.playback_id("public" if not signed else None)
    assert pid is not None
    provider = media.streaming_provider(row.provider_name)
    ttl = ttl_of(media, profile, expires_in)
    url = provider.playback_url(pid, kind=kind, signed=signed, expires_in=ttl)
    telemetry.emit("rindle.delivery.signed", asset_id=row.asset_id, profile=profile.name,
                   url_kind="streaming", variant=kind, mode="signed" if signed else "public",
                   ttl=ttl if signed else None, duration=time.perf_counter() - started)
    return url


async def streaming_url(media: Playing, profile: type[Profile], asset: Asset, *,
                        kind: str = "video", actor: Any = None,
                        request: HTTPConnection | None = None,
                        expires_in: int | None = None) -> str:
    """The HLS URL (``kind="video"``), or a thumbnail or storyboard, of a streamed asset.

    ``NotFound`` with ``streaming_not_ready`` until the provider has it ready; ``Forbidden``
    when the Authorizer refuses the viewer.
    """
    if kind not in PLAYBACK_KINDS:
        raise NotFound(f"kind must be one of {', '.join(PLAYBACK_KINDS)}", code="not_found")
    if asset.profile != profile.name:
        raise NotFound(f"asset {asset.id} belongs to profile {asset.profile!r}, "
                       f"not {profile.name!r}")
    if asset.state not in DELIVERABLE:
        raise DeliveryUnsupported(f"asset {asset.id} is {asset.state}; only verified assets "
                                  "are delivered", code="asset_not_deliverable")
    await authorize_view(media, profile, asset, actor=actor, request=request)
    row = await ready_row(media, profile, asset)
    if row is None:
        raise NotFound(f"asset {asset.id} is not ready for streaming yet",
                       code="streaming_not_ready")
    return playback_url(media, profile, row, kind=kind, expires_in=expires_in)


__all__ = ["playable", "playback_url", "ready_row", "streaming_url"]
