"""Getting a video to the streaming provider: server push, or the browser uploading direct.

Server push: once the profile's source (a rendition, or the original) is ready, a
``streaming_push`` job hands the provider a short-lived signed URL of it and records the
provider's asset. Direct upload: ``POST /uploads`` on such a profile creates the provider's
upload and hands its one-time URL to the browser; the file never touches Rindle's storage,
so the provider judges it, and its webhooks (or ``complete``) move the rows on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from ... import telemetry
from ...errors import ConfigurationError, InvalidTransition, NotFound, UploadIncomplete
from ...logs import get_logger
from ...model.records import Asset, ProviderAsset, UploadSession
from ...model.repo import new_id, now
from ...storage.base import UploadTicket
from ...upload import _telemetry as events
from ...upload import keys
from ...upload.filenames import sanitize_filename
from ..urls import servable
from .base import RemoteAsset, StreamingError
from .events import DIRECT, advance

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ...profile import Profile, Streaming
    from ...types import Stores
    from ...upload.broker import Broker
    from .base import StreamingProvider
    from .events import StreamingRows

    class Pushing(StreamingRows, Protocol):
        """What a push uses: the flows' view of the runtime and this site's address."""

        @property
        def public_url(self) -> str | None: ...

    class Ingesting(Pushing, Protocol):
        """What a direct upload uses besides: the upload TTL and the broker's checks."""

        @property
        def upload_ttl(self) -> int: ...

        @property
        def broker(self) -> Broker: ...

        @property
        def streaming_providers(self) -> Mapping[str, StreamingProvider]: ...

log = get_logger("rindle.streaming")

#: Source name of a push of the original.
ORIGINAL = "original"


def streaming_of(profile: type[Profile]) -> Streaming | None:
    return profile.delivery.streaming


# --- server push -------------------------------------------------------------------------

async def schedule_push(media: Stores, profile: type[Profile], asset: Asset) -> bool:
    """Queue the push of ``asset`` when its source is ready (call inside the transaction
    that made it so); whether a push was queued now. One provider asset per asset."""
    streaming = streaming_of(profile)
    if streaming is None or streaming.ingest != "server_push":
        return False
    if asset.state not in ("available", "processing", "ready", "degraded"):
        return False
    source = ORIGINAL
    if streaming.source_variant is not None:
        row = await media.repo.get_variant(asset.id, streaming.source_variant)
        if row is not None and servable(row):
            source = streaming.source_variant
        elif row is not None and row.state == "failed" and asset.state == "degraded":
            source = ORIGINAL  # the rendition failed for good: the provider gets the original
        else:
            return False
    pushed, new = await media.repo.insert_provider_asset(
        asset_id=asset.id, profile=profile.name, provider_name=streaming.provider_name,
        ingest_mode="server_push", playback_policy=streaming.playback_policy, source=source)
    if new:
        await media.outbox.add("streaming_push", {"asset_id": asset.id,
                                                  "provider_asset": pushed.id})
    return new


async def push(media: Pushing, row_id: str) -> None:
    """The ``streaming_push`` job: create the provider's asset from a signed source URL.

    Idempotent: a row that left ``pending`` was pushed already. A provider that refuses
    (4xx) errors the row; one that fails (5xx, timeouts) raises for the job to retry.
    """
    repo = media.repo
    row = await repo.get_provider_asset(row_id)
    if row is None or row.state != "pending" or row.provider_asset_id:
        return
    asset = await repo.get_asset(row.asset_id)
    if asset is None:
        return
    profile = media.profile(row.profile)
    streaming = streaming_of(profile)
    if streaming is None:
        raise ConfigurationError(f"profile {profile.name!r} no longer streams",
                                 code="streaming_not_configured")
    provider = media.streaming_provider(row.provider_name)
    started = time.perf_counter()
    url = await source_url(media, profile, asset, row.source or ORIGINAL,
                           streaming.source_url_ttl_seconds)
    try:
        remote = await provider.create_asset(url, passthrough=row.passthrough or row.id,
                                             playback_policy=row.playback_policy or "signed")
    except StreamingError as exc:
        telemetry.emit("rindle.streaming.push", asset_id=asset.id, profile=profile.name,
                       provider=provider.name, source=row.source,
                       outcome="error" if exc.retryable else "rejected",
                       duration=time.perf_counter() - started)
        if exc.retryable:
            raise
        await mark_errored(media, row.id, exc.message)
        return
    async with media.transaction():
        current = await repo.get_provider_asset(row.id, for_update=True)
        if current is None:
            return  # purged meanwhile: the purge deletes what the provider has
        # A webhook may have linked and moved it already; this never moves it back.
        await advance(media, current, "uploading", remote=remote)
    telemetry.emit("rindle.streaming.push", asset_id=asset.id, profile=profile.name,
                   provider=provider.name, source=row.source, outcome="ok",
                   duration=time.perf_counter() - started)


async def mark_errored(media: StreamingRows, row_id: str, reason: str) -> None:
    async with media.transaction():
        current = await media.repo.get_provider_asset(row_id, for_update=True)
        if current is not None:
            try:
                await advance(media, current, "errored", error=reason)
            except InvalidTransition:
                pass


async def source_url(media: Pushing, profile: type[Profile], asset: Asset, source: str,
                     ttl: int) -> str:
    """A signed URL of ``source`` the provider can fetch from anywhere: absolute, and
    expiring after ``ttl`` seconds."""
    started = time.perf_counter()
    storage = media.storage_for(profile)
    if source == ORIGINAL:
        key, ctype = asset.storage_key, asset.content_type
    else:
        row = await media.repo.get_variant(asset.id, source)
        if row is None or not row.storage_key:
            raise NotFound(f"variant {source!r} of asset {asset.id} is gone",
                           code="variant_not_ready")
        key, ctype = row.storage_key, row.content_type
    public = profile.delivery.public
    if public:
        url = storage.public_url(key)
    else:
        url = await storage.signed_url(key, expires_in=ttl, content_type=ctype,
                                       filename=None, disposition="inline")
    telemetry.emit("rindle.delivery.signed", asset_id=asset.id, profile=profile.name,
                   url_kind=ORIGINAL if source == ORIGINAL else "variant",
                   variant=None if source == ORIGINAL else source,
                   mode="public" if public else "signed", ttl=None if public else ttl,
                   duration=time.perf_counter() - started)
    if url.startswith("/"):
        if not media.public_url:
            raise ConfigurationError(
                f"storage {profile.storage!r} serves files through Rindle's own route, so the "
                "provider needs this site's address: set Rindle(public_url='https://...')",
                code="public_url_missing")
        url = media.public_url.rstrip("/") + url
    return url


# --- direct upload -----------------------------------------------------------------------

@dataclass(frozen=True)
class DirectUpload:
    """A started direct upload: the session, and where the browser PUTs the file."""

    session: UploadSession
    ticket: UploadTicket


async def initiate_direct_upload(media: Ingesting, profile: type[Profile], *,
                                 filename: str | None, content_type: str | None,
                                 byte_size: int | None, origin: str) -> DirectUpload:
    """A staged asset, its session and provider row, and the provider's upload URL."""
    with events.initiating(profile.name, DIRECT) as span:
        started = await _initiate_direct(media, profile, filename=filename,
                                         content_type=content_type, byte_size=byte_size,
                                         origin=origin)
        events.initiated(span, started.session)
    return started


async def _initiate_direct(media: Ingesting, profile: type[Profile], *,
                           filename: str | None, content_type: str | None,
                           byte_size: int | None, origin: str) -> DirectUpload:
    streaming = streaming_of(profile)
    if streaming is None or streaming.ingest != DIRECT:
        raise ConfigurationError(f"profile {profile.name!r} does not upload to a streaming "
                                 "provider", code="streaming_not_configured")
    name = sanitize_filename(filename)
    ctype = media.broker.check_declared(profile, name, content_type, byte_size)
    provider = media.streaming_provider(streaming.provider_name)
    ttl = profile.upload_ttl_seconds or media.upload_ttl
    asset_id, session_id = new_id(), new_id()
    # No object is ever stored under this key: it names the asset for reconcile and logs.
    key = keys.asset_key(profile.name, asset_id, name, ctype)
    async with media.transaction():
        await media.repo.insert_asset_and_session(
            dict(id=asset_id, profile=profile.name, state="staged", storage=profile.storage,
                 storage_key=key, filename=name, declared_content_type=ctype,
                 byte_size=byte_size, kind="video",
                 metadata={"ingest": DIRECT, "streaming_provider": provider.name}),
            dict(id=session_id, asset_id=asset_id, profile=profile.name, state="initialized",
                 strategy=DIRECT, upload_key=key, filename=name, declared_content_type=ctype,
                 declared_byte_size=byte_size, expires_at=now() + timedelta(seconds=ttl)))
        row, _ = await media.repo.insert_provider_asset(
            asset_id=asset_id, profile=profile.name, provider_name=provider.name,
            ingest_mode=DIRECT, playback_policy=streaming.playback_policy, source=DIRECT)
    signing = time.perf_counter()
    try:
        upload = await provider.create_direct_upload(
            passthrough=row.id, playback_policy=streaming.playback_policy,
            cors_origin=origin or "*", timeout=ttl)
    except StreamingError:
        await media.broker.end(session_id, "failed", "provider_unavailable",
                               purge_reason="upload_failed")
        raise
    async with media.transaction():
        session = await media.repo.transition_session(session_id, "initialized", "signed")
        await media.repo.transition_provider_asset(row.id, "pending", "uploading",
                                                   provider_upload_id=upload.id)
    # The provider's upload URL is this flow's signed URL (a one-time bearer credential).
    events.signed(session, started=signing, ttl=ttl)
    assert upload.url is not None
    return DirectUpload(session=session, ticket=UploadTicket(
        method="PUT", url=upload.url, headers={}, expires_at=session.expires_at))


def _direct_row(rows: list[ProviderAsset]) -> ProviderAsset:
    for row in rows:
        if row.ingest_mode == DIRECT:
            return row
    raise NotFound("this upload has no streaming provider upload", code="session_not_found")


async def complete_direct_upload(media: Ingesting, session: UploadSession) -> Asset:
    """The browser says the file is sent: ask the provider, and link its asset.

    Idempotent (a webhook may have linked it first). ``upload_incomplete`` (409) while the
    provider has no file yet.
    """
    with events.completing(session):
        return await _complete_direct(media, session)


async def _complete_direct(media: Ingesting, session: UploadSession) -> Asset:
    repo = media.repo
    row = _direct_row(await repo.provider_assets_for(session.asset_id))
    if session.state != "completed" and row.state in ("pending", "uploading"):
        provider = media.streaming_provider(row.provider_name)
        upload = await provider.get_upload(row.provider_upload_id or "")
        if upload is None or upload.state in ("cancelled", "timed_out"):
            raise UploadIncomplete(f"upload session {session.id} was cancelled or timed out "
                                   "at the provider", code="session_closed")
        if not upload.asset_id:
            raise UploadIncomplete(f"the provider has not received the file of upload "
                                   f"session {session.id} yet; send it, then complete")
        remote = await provider.get_asset(upload.asset_id) or RemoteAsset(
            id=upload.asset_id, state="processing")
        async with media.transaction():
            current = await repo.get_provider_asset(row.id, for_update=True)
            if current is not None:
                await advance(media, current, remote.state, remote=remote, error=remote.error)
    return await repo.require_asset(session.asset_id)


async def cancel_direct_upload(media: Ingesting, session: UploadSession) -> None:
    """Stop the provider's upload, then end the session and purge the staged asset."""
    repo = media.repo
    row = _direct_row(await repo.provider_assets_for(session.asset_id))
    provider = media.streaming_provider(row.provider_name)
    if row.provider_upload_id and row.state in ("pending", "uploading"):
        await provider.cancel_direct_upload(row.provider_upload_id)
    async with media.transaction():
        current = await repo.get_provider_asset(row.id, for_update=True)
        if current is not None and current.state in ("pending", "uploading"):
            await repo.transition_provider_asset(current.id, current.state, "deleted")
    await media.broker.end(session.id, "aborted", "aborted", purge_reason="upload_aborted")


# --- taking it down ----------------------------------------------------------------------

async def delete_remote(media: StreamingRows, rows: list[ProviderAsset]) -> None:
    """Delete what the provider holds for these rows (assets, unfinished uploads); the
    purge calls it before the rows go. Raises StreamingError (retryable) to be retried."""
    for row in rows:
        if row.state == "deleted" and not row.provider_asset_id:
            continue
        provider = media.streaming_provider(row.provider_name)
        if row.provider_asset_id:
            await provider.delete_asset(row.provider_asset_id)
        elif row.provider_upload_id:
            await provider.cancel_direct_upload(row.provider_upload_id)


async def delete_stray(media: StreamingRows, provider_name: str, provider_asset_id: str) -> None:
    """The ``streaming_delete`` job: remove one provider asset no row keeps."""
    await media.streaming_provider(provider_name).delete_asset(provider_asset_id)


__all__ = ["DirectUpload", "cancel_direct_upload", "complete_direct_upload", "delete_remote",
           "initiate_direct_upload", "push", "schedule_push", "source_url"]
