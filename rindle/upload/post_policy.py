"""Single-request browser uploads with an S3 POST policy (Uppy's non-multipart path).

The client gets a policy bound to the upload's staging key, its type and a size range, and
POSTs the file straight to the bucket. A POST policy upload has no completion call of its
own, so the client reports the key it was given and ``complete_post_upload`` verifies it
like any other upload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, UploadUnsupported
from ..model.records import Asset, UploadSession
from ..model.repo import now
from ..storage.base import Capability, post_policy_storage
from . import _telemetry as events

if TYPE_CHECKING:
    from ..model.repo import Repo
    from .multipart import MultipartRuntime

#: The session strategy of single-request (S3 POST policy) uploads.
POST_STRATEGY = "presigned_post"


@dataclass(frozen=True)
class PostUpload:
    """Where and how the browser POSTs the file: ``url`` and the form ``fields`` (the
    policy and its signature: a credential, kept out of logs), valid ``expires_in`` s."""

    session: UploadSession
    url: str
    fields: dict[str, Any]
    expires_in: int

    def __repr__(self) -> str:
        return f"PostUpload(session={self.session.id!r}, expires_in={self.expires_in})"


async def initiate_post_upload(media: MultipartRuntime, profile: str, *, filename: str,
                               content_type: str, byte_size: int | None) -> PostUpload:
    """A session and its POST policy: exactly this type, exactly ``byte_size`` bytes when
    known, else 1 byte up to the profile's ``max_bytes``. Refused (``upload_unsupported``)
    before anything is created when the storage can't sign a policy."""
    prof = media.profile(profile)
    if Capability.PRESIGNED_POST not in media.storage_for(prof).capabilities:
        raise UploadUnsupported(
            f"storage {prof.storage!r} cannot sign an S3 POST policy, which a single-request "
            "browser upload needs; use a multipart upload (Uppy: `shouldUseMultipart: true`)")
    storage = post_policy_storage(media.storage_for(prof))
    with events.initiating(prof.name, POST_STRATEGY) as span:
        session = await media.broker.create_session(
            prof, filename=filename, content_type=content_type, byte_size=byte_size,
            strategy=POST_STRATEGY)
        events.initiated(span, session)
        started = time.perf_counter()
        ttl = max(1, int((session.expires_at - now()).total_seconds()))
        try:
            post = await storage.presign_post(session.upload_key,
                                              content_type=session.declared_content_type or "",
                                              min_size=byte_size or 1,
                                              max_size=byte_size or prof.max_bytes,
                                              expires_in=ttl)
            session = await media.repo.transition_session(session.id, "initialized", "signed")
        except BaseException:
            await media.broker.end(session.id, "failed", "storage_error")
            raise
    events.signed(session, started=started, ttl=ttl)
    return PostUpload(session=session, url=str(post["url"]), fields=dict(post["fields"]),
                      expires_in=ttl)


async def session_for_key(repo: Repo, key: str) -> UploadSession | None:
    """The upload session behind a key a client reports: a staging key as the policy named
    it (``[bucket prefix/]_rindle_staging/profile/asset_id/session.ext``, or an older
    ``profile/asset_id/name``), or an asset id (Uppy's multipart ``key``).

    The key only picks the session out; whoever reports it must still be allowed to upload
    to its profile, and verifying an upload again changes nothing.
    """
    parts = key.split("/")
    asset_id = parts[-2] if len(parts) >= 3 else key
    sessions = await repo.sessions_for_asset(asset_id)
    if len(parts) >= 3:
        sessions = [s for s in sessions if key.endswith(s.upload_key)]
    if not sessions:
        return None
    return max(sessions, key=lambda s: s.created_at or now())


async def complete_post_upload(media: MultipartRuntime, session: UploadSession) -> Asset:
    """Verify a POST-policy upload; idempotent: a completed one answers with its asset."""
    if session.state == "completed":
        return await media.repo.require_asset(session.asset_id)
    result = await media.broker.verify_completion(session.id, session=session)
    return result.asset


async def require_session_for_key(repo: Repo, key: str) -> UploadSession:
    """``session_for_key``, or ``NotFound`` (``session_not_found``)."""
    session = await session_for_key(repo, key)
    if session is None:
        raise NotFound("no upload has this key", code="session_not_found")
    return session


__all__ = ["POST_STRATEGY", "PostUpload", "complete_post_upload", "initiate_post_upload",
           "require_session_for_key", "session_for_key"]
