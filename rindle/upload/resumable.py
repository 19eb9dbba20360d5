"""Native resumable uploads: the store's own sessions (GCS), filled by the client directly.

``initiate_resumable_session`` makes a staged asset, an upload session (strategy
``resumable``) and the store's session for the session's staging key; the client gets the
store's session URI and sends the chunks straight there (bytes never pass through this
server). The URI is a bearer credential: it lives in the session row (never in a repr, a log
line or an error) and is handed out only in that one answer. ``resumable_session_status``
asks the store how much it holds; once it holds everything the upload funnels into
``verify_completion`` like any other. ``cancel_resumable_session`` drops it all.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, RindleError, UploadRejected, UploadUnsupported, ValidationError
from ..model.records import UploadSession
from ..model.repo import now
from ..storage.base import Capability, resumable_storage
from . import _telemetry as events
from .filenames import sanitize_filename

if TYPE_CHECKING:
    from ..profile import Profile
    from .multipart import MultipartRuntime

STRATEGY = "resumable"
#: GCS keeps a resumable session for a week.
SESSION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class ResumableSession:
    """A started resumable upload: send the bytes to ``upload_url`` (the store's session
    URI: a bearer credential, kept out of ``repr``) with ``Content-Range`` chunks."""

    session_id: str
    asset_id: str
    upload_url: str = field(repr=False)
    byte_size: int
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "asset_id": self.asset_id,
                "upload": {"method": "PUT", "url": self.upload_url,
                           "byte_size": self.byte_size,
                           "expires_at": self.expires_at.isoformat()}}


@dataclass(frozen=True)
class ResumableStatus:
    """How far a resumable upload got: the bytes the store holds, and the session's state
    (``completed`` once verified, with its asset)."""

    session_id: str
    state: str
    committed: int
    byte_size: int
    asset_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "state": self.state,
                "committed": self.committed, "byte_size": self.byte_size,
                "asset_id": self.asset_id}


async def initiate_resumable_session(media: MultipartRuntime, profile: type[Profile] | str, *,
                                     filename: str | None, byte_size: int,
                                     content_type: str | None = None,
                                     origin: str | None = None) -> ResumableSession:
    """Start a native resumable upload; refused before anything exists when the storage has
    no resumable sessions, or the size, type or name is not what the profile accepts.
    ``origin`` is the page's origin (the store answers the chunks' CORS for it)."""
    prof = media.profile(profile)
    with events.initiating(prof.name, STRATEGY) as span:
        started = await _initiate(media, prof, filename=filename, byte_size=byte_size,
                                  content_type=content_type, origin=origin)
        span.set(asset_id=started.asset_id, session_id=started.session_id, bytes=byte_size)
    return started


async def _initiate(media: MultipartRuntime, prof: type[Profile], *, filename: str | None,
                    byte_size: int, content_type: str | None,
                    origin: str | None) -> ResumableSession:
    storage = media.storage_for(prof)
    if Capability.RESUMABLE_UPLOAD not in storage.capabilities:
        raise UploadUnsupported(f"storage {prof.storage!r} has no resumable upload sessions; "
                                "use tus, multipart or a presigned PUT")
    if byte_size is None:
        raise ValidationError("byte_size is required for a resumable upload",
                              code="byte_size_required")
    ctype = media.broker.check_declared(prof, sanitize_filename(filename), content_type,
                                        byte_size)
    if ctype is None:
        raise ValidationError("content_type is required for a resumable upload",
                              code="content_type_required")
    session = await media.broker.create_session(prof, filename=filename, content_type=ctype,
                                                byte_size=byte_size, strategy=STRATEGY)
    signing = time.perf_counter()
    try:
        uri = await resumable_storage(storage).create_resumable(
            session.upload_key, ctype, byte_size, origin=origin)
        # The bytes go to the store without passing Rindle, which hears of them only when
        # asked for the status: the session lives as long as the store's does, or the
        # sweeper would cancel a long upload (hours on a slow line) while it still runs.
        lifetime = now() + SESSION_LIFETIME
        session = await media.repo.transition_session(
            session.id, "initialized", "signed", session_uri=uri, resumable_protocol="gcs",
            session_uri_expires_at=lifetime, expires_at=lifetime)
    except BaseException:
        with contextlib.suppress(Exception):
            await media.broker.end(session.id, "failed", "storage_error")
        raise
    # The session URI is this flow's signed URL: a bearer credential, valid for a week.
    events.signed(session, started=signing, ttl=SESSION_LIFETIME.total_seconds())
    return ResumableSession(session_id=session.id, asset_id=session.asset_id, upload_url=uri,
                            byte_size=byte_size, expires_at=session.expires_at)


async def resumable_session_status(media: MultipartRuntime, session_id: str) -> ResumableStatus:
    """Ask the store how much of the upload it holds, and record it. Once it holds every
    byte, the upload is verified (as ``verify_completion``) and the answer says
    ``completed``."""
    started = time.perf_counter()
    session = await _session(media, session_id)
    size = session.declared_byte_size or 0
    if session.state == "completed":
        events.status(session, started=started, offset=size)
        return _status(session, size)
    if session.state not in ("signed", "uploading"):
        raise UploadRejected(f"upload session {session_id} is {session.state}",
                             code="session_closed")
    storage = resumable_storage(media.storage_for(session.profile))
    committed, complete = await storage.resumable_status(_uri(session), size)
    events.status(session, started=started, offset=committed)
    if complete:
        # The store has every byte: this status query is the upload's completion.
        with events.completing(session) as span:
            result = await media.broker.verify(session_id)
            span.set(bytes=result.asset.byte_size)
        return _status(result.session, size)
    if committed != session.last_known_offset:
        target = "uploading" if session.state == "signed" and committed else session.state
        if target != session.state:
            session = await media.repo.transition_session(session_id, session.state, target,
                                                          last_known_offset=committed)
        else:
            await media.repo.update_session(session_id, last_known_offset=committed)
    return ResumableStatus(session_id=session.id, state=session.state, committed=committed,
                           byte_size=size, asset_id=session.asset_id)


async def cancel_resumable_session(media: MultipartRuntime, session_id: str) -> UploadSession:
    """Drop the store's session (where the store can; otherwise it lapses) and end the
    upload; its staged asset is purged. Cancelling a cancelled upload changes nothing."""
    started = time.perf_counter()
    session = await _session(media, session_id, allow_ended=True)
    if session.state == "aborted":
        events.aborted(session, started=started)
        return session
    if session.state in ("completed", "expired", "failed"):
        raise UploadRejected(f"upload session {session_id} is {session.state}; it can no "
                             "longer be cancelled", code="session_closed")
    storage = resumable_storage(media.storage_for(session.profile))
    with contextlib.suppress(RindleError):
        await storage.cancel_resumable(_uri(session))
    await media.broker.end(session_id, "aborted", "aborted", purge_reason="upload_aborted")
    ended = await media.repo.get_session(session_id)
    if ended is None:
        raise NotFound(f"upload session {session_id} does not exist", code="session_not_found")
    events.aborted(ended, started=started)
    return ended


async def _session(media: MultipartRuntime, session_id: str, *,
                   allow_ended: bool = False) -> UploadSession:
    session = (await media.repo.get_session(session_id) if allow_ended
               else await media.broker.live_session(session_id))
    if session is None or session.strategy != STRATEGY:
        raise NotFound(f"upload session {session_id} is not a resumable upload",
                       code="session_not_found")
    return session


def _uri(session: UploadSession) -> str:
    if not session.session_uri:
        raise UploadRejected(f"upload session {session.id} has no resumable session",
                             code="session_not_signable")
    return session.session_uri


def _status(session: UploadSession, size: int) -> ResumableStatus:
    return ResumableStatus(session_id=session.id, state=session.state, committed=size,
                           byte_size=size, asset_id=session.asset_id)


__all__ = ["ResumableSession", "ResumableStatus", "cancel_resumable_session",
           "initiate_resumable_session", "resumable_session_status"]
