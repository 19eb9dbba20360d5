"""Applying what a provider reports — a webhook, an API answer — to the provider-asset row.

One rule for every source: a report moves the row forward or not at all (see
``model.states.PROVIDER_ASSET``), so a late, doubled or reordered webhook can never undo a
newer state. A direct upload's Rindle asset and session follow the row: linked means the
file arrived (session completed, asset transcoding), ready means the asset is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ...errors import InvalidTransition
from ...logs import get_logger
from ...model import states
from ...model.records import ProviderAsset
from ...model.repo import now
from ...model.states import TERMINAL_SESSION_STATES
from .base import ProviderEvent, RemoteAsset, StreamingProvider

if TYPE_CHECKING:
    from ...types import Stores

    class StreamingRows(Stores, Protocol):
        """What the flows use: the catalog, rows and outbox, and the providers by name."""

        def streaming_provider(self, name: str) -> StreamingProvider: ...

log = get_logger("rindle.streaming")

DIRECT = "direct_upload"


async def advance(media: StreamingRows, row: ProviderAsset, to: str | None, *,
                  remote: RemoteAsset | None = None, event: ProviderEvent | None = None,
                  error: str | None = None) -> ProviderAsset:
    """Move ``row`` to ``to`` when that is forward, recording what ``remote`` says of it.

    Run inside a transaction, on a row read with ``for_update``. A report that is not
    forward only records its event id (and links the provider's asset id if the row had
    none yet); the playback ids and metadata it carries are older than what the row holds.
    """
    values: dict[str, Any] = {}
    if event is not None:
        values.update(last_event_id=event.id, last_event_at=event.occurred_at or now())
    if remote is not None and remote.id and not row.provider_asset_id:
        values["provider_asset_id"] = remote.id
    forward = (to is not None and to != row.state
               and states.allowed("provider_asset", row.state, to))
    if remote is not None and (forward or to == row.state):
        if remote.playback_ids:
            values["playback_ids"] = [{"id": p.id, "policy": p.policy}
                                      for p in remote.playback_ids]
        values["raw_provider_metadata"] = dict(remote.raw)
    if error is not None and forward:
        values["last_sync_error"] = error[:2000]
    if not forward or to is None:
        if values:
            await media.repo.update_provider_asset(row.id, **values)
        return await _reload(media, row)
    moved = await media.repo.transition_provider_asset(row.id, row.state, to, **values)
    if moved.ingest_mode == DIRECT:
        await _follow(media, moved, remote, error)
    return moved


async def _follow(media: StreamingRows, row: ProviderAsset, remote: RemoteAsset | None,
                  error: str | None) -> None:
    """A direct upload's Rindle session and asset follow its provider row."""
    repo = media.repo
    asset = await repo.get_asset(row.asset_id, for_update=True)
    if asset is None:
        return
    profile = media.profile(asset.profile)
    if row.state in ("processing", "ready"):
        for session in await repo.sessions_for_asset(asset.id):
            if session.state in ("signed", "uploading", "uploaded"):
                await repo.transition_session(session.id, session.state, "completed",
                                              via=("verifying",), verified_at=now())
        if asset.state == "staged":
            asset = await repo.transition_asset(asset.id, "staged", "transcoding")
    if row.state == "ready" and asset.state == "transcoding":
        duration = remote.duration if remote is not None else None
        limit = profile.max_duration_seconds
        if duration is not None and limit is not None and duration > limit:
            # The provider took a file the profile does not accept: take it down there too.
            await repo.transition_asset(
                asset.id, "transcoding", "quarantined", quarantine_reason="max_duration_exceeded",
                error_reason=f"{duration:.1f} s is over the limit of {limit} s")
            await media.outbox.add("streaming_delete", {
                "provider": row.provider_name, "provider_asset_id": row.provider_asset_id,
                "asset_id": asset.id})
            return
        await repo.transition_asset(
            asset.id, "transcoding", "ready",
            duration_ms=int(duration * 1000) if duration is not None else None,
            content_type="application/vnd.apple.mpegurl", kind="video")
    elif row.state == "errored" and asset.state in ("staged", "transcoding"):
        if asset.state == "staged":
            asset = await repo.transition_asset(asset.id, "staged", "transcoding")
        await repo.transition_asset(asset.id, "transcoding", "degraded",
                                    error_reason=(error or "the provider could not use the "
                                                  "file")[:2000])
    elif row.state == "deleted" and asset.state == "staged":
        # Cancelled before the file arrived: the upload ends, the staged asset is purged.
        for session in await repo.sessions_for_asset(asset.id):
            if session.state not in TERMINAL_SESSION_STATES and session.state != "uploaded":
                await repo.transition_session(session.id, session.state, "aborted",
                                              failure_reason="cancelled")
        await media.outbox.add("purge_asset", {"asset_id": asset.id,
                                               "reason": "upload_aborted"})


async def _reload(media: StreamingRows, row: ProviderAsset) -> ProviderAsset:
    return await media.repo.get_provider_asset(row.id) or row


async def apply_event(media: StreamingRows, provider: StreamingProvider,
                      event: ProviderEvent) -> str:
    """Apply a verified webhook once: ``applied``, ``duplicate`` (its id was seen),
    ``ignored`` (no row of ours, or nothing to act on) or ``stale`` (not forward)."""
    repo = media.repo
    async with media.transaction():
        row = await _row_for(media, provider.name, event)
        if not await repo.record_provider_event(provider.name, event.id, event.type,
                                                row.id if row else None):
            return "duplicate"
        if row is None:
            log.info("%s webhook %s (%s) names nothing of ours; ignored", provider.name,
                     event.id, event.type)
            return "ignored"
        stray = (event.asset_id is not None and row.provider_asset_id is not None
                 and event.asset_id != row.provider_asset_id
                 and event.type.startswith("video.asset."))
        if stray:
            # A second provider asset for one row: a create whose answer was lost (a
            # timeout) and was tried again, yet made an asset after all. The row keeps the
            # one it has; the copy goes, and the copy's own events (its deletion too) never
            # touch the row.
            if event.type != "video.asset.deleted":
                await media.outbox.add("streaming_delete", {
                    "provider": provider.name, "provider_asset_id": event.asset_id,
                    "asset_id": row.asset_id})
            return "ignored"
        remote = event.asset
        if remote is None and event.asset_id:
            remote = RemoteAsset(id=event.asset_id, state=event.state or row.state)
        before = row.state
        moved = await advance(media, row, event.state, remote=remote, event=event,
                              error=event.asset.error if event.asset else None)
    if event.state is None:
        return "ignored"
    return "applied" if moved.state != before else "stale"


async def _row_for(media: StreamingRows, provider_name: str,
                   event: ProviderEvent) -> ProviderAsset | None:
    repo = media.repo
    row = None
    if event.asset_id:
        row = await repo.find_provider_asset(provider_name, asset=event.asset_id,
                                             for_update=True)
    if row is None and event.upload_id:
        row = await repo.find_provider_asset(provider_name, upload=event.upload_id,
                                             for_update=True)
    if row is None and event.passthrough:
        # Rindle's row id, given to the provider as passthrough: a webhook that beats the
        # answer to create (or arrives before upload.asset_created) still finds its row.
        found = await repo.get_provider_asset(event.passthrough, for_update=True)
        if found is not None and found.provider_name == provider_name:
            row = found
    return row


async def sync(media: StreamingRows, row_id: str) -> ProviderAsset | None:
    """Read the row's state from the provider's API and apply it (the repair for a row a
    lost webhook left behind). A pushed row that never reached the provider is queued
    again. Returns the row as it is now (``None``: it is gone)."""
    repo = media.repo
    row = await repo.get_provider_asset(row_id)
    if row is None or row.state == "deleted":
        return row
    provider = media.streaming_provider(row.provider_name)
    remote = None
    target: str | None = None
    error = None
    if row.provider_asset_id:
        remote = await provider.get_asset(row.provider_asset_id)
        target = "deleted" if remote is None else remote.state
        error = remote.error if remote else None
    elif row.provider_upload_id:
        upload = await provider.get_upload(row.provider_upload_id)
        if upload is None or upload.state in ("cancelled", "timed_out"):
            target = "deleted"
        elif upload.state == "errored":
            target, error = "errored", "the provider refused the upload"
        elif upload.asset_id:
            remote = await provider.get_asset(upload.asset_id)
            target = remote.state if remote else "processing"
            remote = remote or RemoteAsset(id=upload.asset_id, state="processing")
    elif row.ingest_mode != DIRECT and row.state == "pending":
        async with media.transaction():
            await media.outbox.add("streaming_push", {"asset_id": row.asset_id,
                                                      "provider_asset": row.id})
        return row
    async with media.transaction():
        current = await repo.get_provider_asset(row_id, for_update=True)
        if current is None:
            return None
        try:
            return await advance(media, current, target, remote=remote, error=error)
        except InvalidTransition:
            return await repo.get_provider_asset(row_id)


__all__ = ["advance", "apply_event", "sync"]
