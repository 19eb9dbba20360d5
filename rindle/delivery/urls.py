"""Delivery URLs: authorize, then sign (private profiles) or build a plain URL (public ones)."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..errors import DeliveryUnsupported, Forbidden, NotFound
from ..model.records import Asset, AssetVariant
from ..storage.base import Capability
from .authorizer import AuthRequest, is_allowed
from .url_cache import cache_for

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ..model.repo import Repo
    from ..profile import Profile
    from ..types import Catalog

    class Delivering(Catalog, Protocol):
        """What delivery uses of the runtime: the catalog, the default TTL, variant rows."""

        @property
        def repo(self) -> Repo: ...

        @property
        def signed_url_ttl(self) -> int: ...

# States whose original may be delivered; quarantined or unverified bytes never are.
DELIVERABLE = frozenset({"available", "processing", "transcoding", "ready", "degraded"})


def absolute_url(request: HTTPConnection | None, url: str) -> str:
    """Rindle's own routes are signed as site-absolute paths; with a request, make them full."""
    if request is not None and url.startswith("/"):
        return f"{request.url.scheme}://{request.url.netloc}{url}"
    return url


async def authorize_view(media: Delivering, profile: type[Profile], asset: Asset, *,
                         actor: Any = None, request: HTTPConnection | None = None) -> None:
    authorizer = media.authorizer_for(profile)
    auth = AuthRequest(action="view", profile=profile.name, asset=asset, actor=actor,
                       request=request)
    if not await is_allowed(authorizer, auth):
        raise Forbidden(f"viewing asset {asset.id} is not allowed by the profile's Authorizer")


async def _sign(media: Delivering, profile: type[Profile], asset: Asset, key: str,
                content_type: str | None, filename: str | None, *,
                request: HTTPConnection | None, expires_in: int | None,
                disposition: str | None, variant: str | None = None) -> str:
    """One delivery URL (``variant``: whose file ``key`` is; ``None``: the original's)."""
    started = time.perf_counter()
    storage = media.storage_for(profile)
    ttl: int | None = None
    if profile.delivery.public:
        url = absolute_url(request, storage.public_url(key))
    else:
        if Capability.SIGNED_URL not in storage.capabilities:
            raise DeliveryUnsupported(f"storage {profile.storage!r} cannot sign URLs; make "
                                      "the profile public or use a storage that can")
        ttl = expires_in or profile.delivery.signed_url_ttl_seconds or media.signed_url_ttl
        how = disposition or profile.delivery.disposition
        cache = cache_for(media, "urls")
        cached = (profile.storage, key, filename, content_type, how, ttl)
        signed = cache.get(cached, ttl)
        if signed is None:
            signed = await storage.signed_url(key, expires_in=ttl, filename=filename,
                                              content_type=content_type, disposition=how)
            cache.put(cached, signed, ttl)
        url = absolute_url(request, signed)
    telemetry.emit("rindle.delivery.signed", asset_id=asset.id, profile=profile.name,
                   url_kind="original" if variant is None else "variant", variant=variant,
                   mode="signed" if ttl is not None else "public", ttl=ttl,
                   duration=time.perf_counter() - started)
    return url


def stored_here(asset: Asset) -> bool:
    """Whether Rindle's storage holds the original: not for a direct upload to a streaming
    provider, whose file only the provider has (``streaming_url`` plays it)."""
    return asset.metadata.get("ingest") != "direct_upload"


def _check_deliverable(asset: Asset) -> None:
    if asset.state not in DELIVERABLE:
        raise DeliveryUnsupported(f"asset {asset.id} is {asset.state}; only verified assets "
                                  "are delivered", code="asset_not_deliverable")
    if not stored_here(asset):
        raise DeliveryUnsupported(f"asset {asset.id} was uploaded straight to its streaming "
                                  "provider; play it with streaming_url")


def servable(row: AssetVariant | None) -> bool:
    """Whether a variant row has a file to serve. One being rebuilt keeps serving its
    previous file until the new one is ready."""
    return row is not None and bool(row.storage_key) and (
        row.state == "ready" or (row.state in ("stale", "queued", "processing")
                                 and row.generated_at is not None))


def _variant_filename(asset: Asset, row: AssetVariant) -> str | None:
    if not asset.filename or not row.storage_key:
        return None
    stem = asset.filename.rsplit(".", 1)[0]
    ext = row.storage_key.rsplit(".", 1)[-1] if "." in row.storage_key else ""
    return f"{stem}-{row.name}.{ext}" if ext else f"{stem}-{row.name}"


async def url(media: Delivering, profile: type[Profile], asset: Asset, *, actor: Any = None,
              request: HTTPConnection | None = None, expires_in: int | None = None,
              disposition: str | None = None) -> str:
    """The original's URL: signed and expiring unless the profile is public."""
    if asset.profile != profile.name:
        raise NotFound(f"asset {asset.id} belongs to profile {asset.profile!r}, "
                       f"not {profile.name!r}")
    _check_deliverable(asset)
    await authorize_view(media, profile, asset, actor=actor, request=request)
    return await _sign(media, profile, asset, asset.storage_key, asset.content_type,
                       asset.filename, request=request, expires_in=expires_in,
                       disposition=disposition)


async def variant_url(media: Delivering, profile: type[Profile], asset: Asset, name: str, *,
                      actor: Any = None, request: HTTPConnection | None = None,
                      expires_in: int | None = None) -> str:
    """A ready variant's URL; NotFound (code ``variant_not_ready``) while it is building."""
    profile.variant(name)
    _check_deliverable(asset)
    row = await media.repo.get_variant(asset.id, name)
    if row is None or not servable(row):
        raise NotFound(f"variant {name!r} of asset {asset.id} is not ready",
                       code="variant_not_ready")
    await authorize_view(media, profile, asset, actor=actor, request=request)
    return await _sign(media, profile, asset, str(row.storage_key), row.content_type,
                       _variant_filename(asset, row), request=request, expires_in=expires_in,
                       disposition=None, variant=name)


async def delivery_urls(media: Delivering, profile: type[Profile], asset: Asset,
                        rows: list[AssetVariant], *, actor: Any = None,
                        request: HTTPConnection | None = None,
                        expires_in: int | None = None,
                        authorized: bool = False, only: Collection[str] | None = None,
                        original: bool = True) -> tuple[str | None, dict[str, str]]:
    """The original's URL and every servable variant's, for one viewer.

    For rendering a whole asset: the Authorizer runs once (not once per URL), or not at
    all when the caller already asked it (``authorized=True``), and the variant rows the
    caller already read are not read again. A refused viewer or an asset not yet
    deliverable gets ``(None, {})``. ``only``: sign just these variants (a page that shows
    three of them needs no more); ``original=False``: do not sign the original.
    """
    if asset.state not in DELIVERABLE:
        return None, {}
    if not authorized:
        try:
            await authorize_view(media, profile, asset, actor=actor, request=request)
        except Forbidden:
            return None, {}
    variants = {}
    for row in rows:
        if servable(row) and row.name in profile.variants and (only is None
                                                               or row.name in only):
            variants[row.name] = await _sign(
                media, profile, asset, str(row.storage_key), row.content_type,
                _variant_filename(asset, row), request=request, expires_in=expires_in,
                disposition=None, variant=row.name)
    original_url = await _sign(media, profile, asset, asset.storage_key, asset.content_type,
                               asset.filename, request=request, expires_in=expires_in,
                               disposition=None) if original and stored_here(asset) else None
    return original_url, variants
