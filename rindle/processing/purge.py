"""Purging an asset: delete its objects first, then its rows, and log what went and why."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..errors import NotFound, RindleError
from ..logs import get_logger
from ..model.repo import now
from ..storage.append import appendable_storage
from ..storage.base import Capability, multipart_storage, resumable_storage
from ..upload.broker import schedule_staging_purge

if TYPE_CHECKING:
    from ..delivery.streaming.base import StreamingProvider
    from ..types import Stores

    class Purging(Stores, Protocol):
        """What a purge uses: the catalog and rows, and the streaming providers whose
        copies of an asset go with it."""

        def streaming_provider(self, name: str) -> StreamingProvider: ...

log = get_logger("rindle.purge")

#: Metadata key set on an asset once its purge has begun; ``attach`` refuses such assets.
PURGING = "purging"


async def purge_asset(media: Purging, asset_id: str, reason: str) -> bool:
    """Delete an asset's original and variants from storage, then its rows.

    Objects go first so a failure leaves rows that point at what is still stored, and the
    job can simply run again; an object already gone counts as deleted. An asset that is
    attached to an owner again is left alone. Returns whether anything was purged.
    """
    repo = media.repo
    started = time.perf_counter()
    async with media.transaction():
        # Decide and mark in one transaction on the locked row, so an attach can't slip in
        # between this check and the deletes below: attach locks the same row and refuses
        # an asset marked as being purged.
        asset = await repo.get_asset(asset_id, for_update=True)
        if asset is None:
            return False
        attached = bool(await repo.attachments_for_asset(asset_id))
        if not attached and PURGING not in asset.metadata:
            await repo.merge_asset_metadata(asset_id, {PURGING: reason})
    if attached:
        log.info("purge of asset %s skipped: it is attached again", asset_id)
        telemetry.emit("rindle.purge", asset_id=asset_id, profile=asset.profile, reason=reason,
                       outcome="skipped", objects=0, duration=time.perf_counter() - started)
        return False
    storage = media.storage_named(asset.storage)
    keys = [v.storage_key for v in await repo.list_variants(asset_id) if v.storage_key]
    keys.append(asset.storage_key)
    sessions = await repo.sessions_for_asset(asset_id)
    for session in sessions:
        # An unfinished multipart upload keeps its parts (and their cost) until aborted.
        if (session.multipart_upload_id and session.state != "completed"
                and Capability.MULTIPART_UPLOAD in storage.capabilities):
            try:
                await multipart_storage(storage).abort_multipart(session.upload_key,
                                                                 session.multipart_upload_id)
            except NotFound:
                pass
    if Capability.RESUMABLE_UPLOAD in storage.capabilities:
        for session in sessions:
            if session.session_uri and session.state != "completed":
                # Its URI works for a week: a client finishing later would leave an orphan.
                # An aborted one too: the cancel that aborted it may not have reached GCS.
                with contextlib.suppress(RindleError):
                    await resumable_storage(storage).cancel_resumable(session.session_uri)
    if Capability.TUS_UPLOAD in storage.capabilities:
        for session in sessions:
            state = (session.multipart_parts or {}).get("append")
            if session.strategy == "tus" and state and session.state != "completed":
                # An unfinished resumable upload: its multipart upload and tail go too.
                await appendable_storage(storage).append_abort(session.upload_key, state)
    remote = await repo.provider_assets_for(asset_id)
    if remote:
        # The provider's copies go first, like the objects: a failure retries the job.
        from ..delivery.streaming.ingest import delete_remote

        await delete_remote(media, remote)
    for key in keys:
        await storage.delete(key)
    for session in sessions:
        # Bytes of an upload that never got promoted are still under its staging key; the
        # log names such a key only when something was there.
        if session.upload_key not in keys and await storage.delete(session.upload_key):
            keys.append(session.upload_key)
    async with media.transaction():
        await repo.log_purge(asset=asset, keys=keys, reason=reason)
        for session in sessions:
            if session.expires_at > now():
                # Its upload URL outlives the rows: remove what a reuse of it leaves behind.
                await schedule_staging_purge(media.outbox, session, asset.storage)
        await repo.delete_asset_rows(asset_id)
    telemetry.emit("rindle.purge", asset_id=asset_id, profile=asset.profile, reason=reason,
                   outcome="ok", objects=len(keys), duration=time.perf_counter() - started)
    log.info("purged asset %s (%s): %d objects", asset_id, reason, len(keys))
    return True


async def purge_upload(media: Stores, payload: dict[str, Any]) -> bool:
    """Remove what reached an upload's staging key after its session ended (run once the
    session's upload URL has expired, so nothing can land there any more).

    A key that an asset or variant row stores its file under is never touched: for uploads
    made before staging keys existed the upload key was the asset's own. Returns whether an
    object was deleted.
    """
    key, asset_id = str(payload["key"]), str(payload["asset_id"])
    if await media.repo.key_in_use(asset_id, key):
        return False
    deleted = await media.storage_named(str(payload["storage"])).delete(key)
    if deleted:
        log.warning("removed an object that reached the staging key of upload session %s "
                    "after the upload ended (the upload URL was used again)",
                    payload.get("session_id"))
    return deleted
