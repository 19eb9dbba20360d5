"""Resumable uploads over tus 1.0: each tus upload is a Rindle upload session.

The protocol (headers, status codes, method override) lives in ``rindle.web.tus_routes``;
this module is what the requests do. A creation makes a staged asset and a session with
strategy ``tus``; every PATCH appends to the session's staging key through the storage's
``AppendableStorage`` (Local: the file grows in place; S3: a multipart upload with a short
tail kept as an object in the bucket), then records the new offset, the storage's state and
a later expiry in the session row. The last byte makes the object whole and funnels into
``verify_completion``: promotion and variants follow exactly as for any other upload.

One PATCH per upload at a time, across processes and machines: a PATCH holds a lease on the
session row (a token and an expiry, taken with one conditional UPDATE, renewed while the
body streams). A second PATCH meanwhile is refused (423 ``upload_locked``); a client that
vanished loses its lease when it expires, so nothing waits for an operator.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..errors import (
    FileTooLarge,
    InvalidTransition,
    NotFound,
    RindleError,
    SessionExpired,
    StorageError,
    UploadRejected,
)
from ..logs import get_logger
from ..model.records import UploadSession
from ..model.repo import now
from ..storage.append import AppendableStorage, Appended, appendable_storage
from . import _telemetry as events
from .broker import UploadResult

if TYPE_CHECKING:
    from ..delivery.signing import Signer
    from ..profile import Profile
    from .multipart import MultipartRuntime

    class TusRuntime(MultipartRuntime, Protocol):
        """What tus uses: the broker's runtime and broker, and the signer of its URLs."""

        @property
        def signer(self) -> Signer: ...

log = get_logger("rindle.tus")

STRATEGY = "tus"
VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "creation-defer-length", "expiration",
              "termination", "checksum", "concatenation")
CHECKSUMS = ("sha1", "md5", "crc32")
#: How long a PATCH's lease lasts without renewal; renewed while the PATCH runs, so a
#: process that died mid-PATCH blocks its upload (423) for at most this long.
LEASE_SECONDS = 30.0
_RENEW_EVERY = 10.0
#: How long a tus upload URL verifies; the session's own (sliding) expiry decides sooner.
URL_LIFETIME = 30 * 86400
_PURPOSE = "tus"


@dataclass(frozen=True)
class TusUpload:
    """What the tus responses say about one upload."""

    session: UploadSession
    offset: int
    length: int | None
    expires_at: datetime
    metadata: str | None
    concat: str | None
    asset_id: str | None = None  # once the upload became an asset (complete, verified)

    @property
    def session_id(self) -> str:
        return self.session.id



class TusError(RindleError):
    """A request the tus protocol refuses; the code says which rule (see the error table)."""

    code = "tus_error"
    default_status = 400


# --- header values --------------------------------------------------------------------------


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: ``key base64,key2 base64,key3`` (values are optional)."""
    found: dict[str, str] = {}
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        if not key or " " in value.strip() or key in found:
            raise TusError("Upload-Metadata must be comma-separated `key base64value` pairs",
                           code="invalid_tus_header", header="Upload-Metadata")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode() if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(f"Upload-Metadata {key!r} is not base64 of UTF-8 text",
                           code="invalid_tus_header", header="Upload-Metadata") from None
    return found


@dataclass(frozen=True)
class TusChecksum:
    """``Upload-Checksum: <algorithm> <base64 digest>`` of one PATCH body."""

    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str) -> TusChecksum:
        algorithm, _, encoded = header.strip().partition(" ")
        if algorithm not in CHECKSUMS:
            raise TusError(f"checksum algorithm {algorithm!r} is not supported; use one of "
                           f"{', '.join(CHECKSUMS)}", code="tus_checksum_unsupported")
        try:
            digest = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise TusError("Upload-Checksum must be `<algorithm> <base64 digest>`",
                           code="invalid_tus_header", header="Upload-Checksum") from None
        return cls(algorithm, digest)


class _Hasher:
    """Hashes what goes through, for ``Upload-Checksum``."""

    def __init__(self, algorithm: str) -> None:
        self._crc = 0 if algorithm == "crc32" else None
        self._hash = None if algorithm == "crc32" else hashlib.new(algorithm)

    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._crc = zlib.crc32(data, self._crc or 0)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return (self._crc or 0).to_bytes(4, "big")


class PatchBody(Protocol):
    """A PATCH body as the web layer hands it over: it ends quietly when its client goes
    away or stalls (so the bytes that did arrive are kept: that is what a resumable upload
    is for), and ``interrupted`` then says why."""

    interrupted: str | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class _Hashed:
    """Passes a body through, hashing it (a class, not an async generator: it runs once per
    chunk)."""

    __slots__ = ("_chunks", "_hasher")

    def __init__(self, body: PatchBody, hasher: _Hasher | None) -> None:
        self._chunks = body.__aiter__()
        self._hasher = hasher

    def __aiter__(self) -> _Hashed:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._chunks.__anext__()
        if self._hasher is not None:
            self._hasher.update(chunk)
        return chunk


# --- the uploads ----------------------------------------------------------------------------


class TusUploads:
    """Creates, reports, appends to and terminates tus uploads (see the module docstring).

    ``durable`` (the default) fsyncs Local appends before an offset is acknowledged; without
    it a machine that loses power may lose the last acknowledged bytes, and the upload must
    then start again (``upload_lost``).
    """

    def __init__(self, media: TusRuntime, *, durable: bool = True) -> None:
        self.media = media
        self.durable = durable

    def __repr__(self) -> str:
        return f"TusUploads(durable={self.durable})"

    # -- URLs --------------------------------------------------------------------------------

    def token(self, session_id: str) -> str:
        """The opaque, sealed last segment of an upload's URL (a bearer credential)."""
        return self.media.signer.seal(_PURPOSE, {"s": session_id}, expires_in=URL_LIFETIME)

    def session_id(self, token: str) -> str:
        payload = self.media.signer.unseal(_PURPOSE, token)
        session_id = payload.get("s")
        if not isinstance(session_id, str) or not session_id:
            raise TusError("the upload URL is not valid", code="invalid_token")
        return session_id

    # -- creation ----------------------------------------------------------------------------

    async def create(self, profile: type[Profile] | str, *, length: int | None,
                     metadata: Mapping[str, str], raw_metadata: str | None = None,
                     concat: str | None = None, partials: Sequence[str] = ()) -> TusUpload:
        """A new upload: ``length`` (``None``: deferred), ``metadata`` (filename, filetype),
        ``concat`` ``"partial"`` or ``"final"`` with the ``partials`` session ids."""
        prof = self.media.profile(profile)
        if concat == "final":
            return await self._create_final(prof, partials, metadata, raw_metadata)
        with events.initiating(prof.name, STRATEGY) as span:
            session = await self._create(prof, length, metadata, raw_metadata, concat)
            events.initiated(span, session)
        return _view(session)

    async def _create(self, prof: type[Profile], length: int | None,
                      metadata: Mapping[str, str], raw_metadata: str | None,
                      concat: str | None) -> UploadSession:
        storage = appendable_storage(self.media.storage_for(prof))
        if length is not None:
            if length > prof.max_bytes:
                raise FileTooLarge(f"the upload is {length} bytes; profile {prof.name!r} "
                                   f"accepts at most {prof.max_bytes}",
                                   max_bytes=prof.max_bytes)
            if length == 0:
                raise UploadRejected("the file is empty", code="empty_file")
        filename = metadata.get("filename") or metadata.get("name")
        content_type = metadata.get("filetype") or metadata.get("type") or None
        if concat != "partial":
            # A partial upload carries no name or type: the final one is checked.
            self.media.broker.check_declared(prof, filename or "", content_type, None)
        session = await self.media.broker.create_session(
            prof, filename=filename, content_type=content_type, byte_size=length,
            strategy=STRATEGY)
        try:
            state = await storage.append_start(session.upload_key,
                                               content_type=session.declared_content_type,
                                               length=length, max_length=prof.max_bytes)
            session = await self.media.repo.transition_session(
                session.id, "initialized", "signed", resumable_protocol="tus",
                multipart_upload_id=state.get("upload_id"),
                multipart_parts={"append": state, "concat": concat,
                                 "metadata": raw_metadata})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.media.broker.end(session.id, "failed", "storage_error")
            raise
        return session

    async def _create_final(self, prof: type[Profile], partials: Sequence[str],
                            metadata: Mapping[str, str], raw_metadata: str | None) -> TusUpload:
        if not partials:
            raise TusError("Upload-Concat: final needs the partial uploads' URLs",
                           code="invalid_tus_header", header="Upload-Concat")
        parts: list[UploadSession] = []
        for session_id in partials:
            part = await self.media.repo.get_session(session_id)
            if part is None or part.strategy != STRATEGY or part.profile != prof.name:
                raise TusError("a partial upload of this concatenation does not exist here",
                               code="invalid_concat")
            if (part.multipart_parts or {}).get("concat") != "partial":
                raise TusError("only partial uploads can be concatenated",
                               code="invalid_concat")
            if part.state != "uploaded":
                raise TusError("a partial upload of this concatenation is not complete",
                               code="invalid_concat")
            parts.append(part)
        total = sum(p.last_known_offset for p in parts)
        if total > prof.max_bytes:
            raise FileTooLarge(f"the concatenated upload is {total} bytes; profile "
                               f"{prof.name!r} accepts at most {prof.max_bytes}",
                               max_bytes=prof.max_bytes)
        # The concatenation is this upload's creation; verifying it is its completion.
        with events.initiating(prof.name, STRATEGY) as span:
            filename = metadata.get("filename") or metadata.get("name")
            content_type = metadata.get("filetype") or metadata.get("type") or None
            session = await self.media.broker.create_session(
                prof, filename=filename, content_type=content_type, byte_size=total,
                strategy=STRATEGY)
            storage = appendable_storage(self.media.storage_for(prof))
            try:
                await storage.append_concat(session.upload_key, [p.upload_key for p in parts],
                                            content_type=session.declared_content_type)
                for a, b in (("initialized", "signed"), ("signed", "uploaded")):
                    session = await self.media.repo.transition_session(
                        session.id, a, b, resumable_protocol="tus", last_known_offset=total,
                        multipart_parts={"concat": "final", "metadata": raw_metadata,
                                         "partials": [p.id for p in parts]})
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.media.broker.end(session.id, "failed", "storage_error")
                raise
            for part in parts:
                # Their bytes are in the final upload now; their staged assets go.
                await self.media.broker.end(part.id, "aborted", "concatenated")
            events.initiated(span, session)
        result = await self.media.broker.verify_completion(session.id, session=session)
        return _view(result.session, asset_id=result.asset.id)

    # -- status ------------------------------------------------------------------------------

    async def status(self, session_id: str) -> TusUpload:
        """The upload as HEAD reports it; ``session_not_found`` or ``session_expired``."""
        started = time.perf_counter()
        session = await self._session(session_id)
        events.status(session, started=started, offset=session.last_known_offset)
        return _view(session, asset_id=session.asset_id if session.state == "completed"
                     else None)

    async def _session(self, session_id: str, row: UploadSession | None = None,
                       ) -> UploadSession:
        session = await self.media.broker.live_session(session_id, row=row)
        if session.strategy != STRATEGY:
            raise NotFound(f"upload session {session_id} is not a tus upload",
                           code="session_not_found")
        if session.state in ("aborted", "failed"):
            raise SessionExpired(f"upload session {session_id} has ended; start a new upload",
                                 code="session_expired")
        return session

    # -- appending ---------------------------------------------------------------------------

    async def append(self, session_id: str, offset: int, body: PatchBody, *,
                     length: int | None = None, checksum: TusChecksum | None = None,
                     session: UploadSession | None = None) -> TusUpload:
        """One PATCH: ``offset`` must be the recorded one (409 ``offset_mismatch``);
        ``length`` sets a deferred length. Bytes that arrive before the client goes away are
        kept, unless a checksum was given (then all or nothing, 460 on a mismatch).

        ``session``: the row as the caller has just read it, to save reading it again.
        """
        session = await self._session(session_id, session)
        extra = session.multipart_parts or {}
        if extra.get("concat") == "final":
            raise TusError("a final upload of a concatenation takes no PATCH",
                           code="tus_final_upload")
        if session.state not in ("signed", "uploading"):
            raise UploadRejected(f"upload session {session_id} is {session.state}; it takes "
                                 "no more bytes", code="session_closed")
        prof = self.media.profile(session.profile)
        declared = session.declared_byte_size
        if length is not None:
            if declared is not None and length != declared:
                raise TusError("Upload-Length can't change once it is set",
                               code="invalid_tus_header", header="Upload-Length")
            if length > prof.max_bytes:
                raise FileTooLarge(f"the upload is {length} bytes; profile {prof.name!r} "
                                   f"accepts at most {prof.max_bytes}",
                                   max_bytes=prof.max_bytes)
            if length < session.last_known_offset:
                raise TusError("Upload-Length is below what was already uploaded",
                               code="invalid_tus_header", header="Upload-Length")
            declared = length
        if offset != session.last_known_offset:
            raise TusError(f"Upload-Offset is {offset} but the upload holds "
                           f"{session.last_known_offset} bytes; ask with HEAD and resume from "
                           "there", code="offset_mismatch", offset=session.last_known_offset)
        token = secrets.token_hex(16)
        if not await self.media.repo.acquire_session_lease(
                session_id, token, now() + timedelta(seconds=LEASE_SECONDS), offset=offset):
            current = await self.media.repo.get_session(session_id)
            if current is not None and current.last_known_offset != offset:
                # Another PATCH appended after this one read the offset.
                raise TusError(f"Upload-Offset is {offset} but the upload holds "
                               f"{current.last_known_offset} bytes; ask with HEAD and resume "
                               "from there", code="offset_mismatch",
                               offset=current.last_known_offset)
            raise TusError("another request is uploading to this upload right now; retry "
                           "in a moment", code="upload_locked")
        ttl = prof.upload_ttl_seconds or self.media.upload_ttl
        lease = _Lease(self.media, session_id, token, ttl)
        try:
            async with lease:  # renewed until released, finishing included
                return await self._append_leased(session, prof, lease, offset, body,
                                                 declared, checksum, ttl)
        except asyncio.CancelledError:
            if not lease.lost or (task := asyncio.current_task()) is None or task.uncancel():
                raise  # cancelled by someone else (the client went away, shutdown)
            raise TusError("this request could not keep its hold on the upload (the "
                           "database did not answer in time) and stopped; ask with HEAD",
                           code="upload_locked") from None
        finally:
            if lease.held:
                with contextlib.suppress(Exception):
                    await self.media.repo.release_session_lease(session_id, token)

    async def _append_leased(self, session: UploadSession, prof: type[Profile], lease: _Lease,
                             offset: int, body: PatchBody, length: int | None,
                             checksum: TusChecksum | None, ttl: float) -> TusUpload:
        started = time.perf_counter()
        try:
            recorded, done = await self._store(session, prof, lease, offset, body, length,
                                               checksum, ttl)
        except BaseException as exc:
            events.received(session, started=started, size=None, offset=None,
                            outcome=telemetry.error_code(exc))
            raise
        events.received(recorded, started=started, size=done.offset - offset,
                        offset=done.offset, outcome="interrupted" if body.interrupted else "ok")
        if body.interrupted:
            log.info("tus upload %s: %s after %d bytes; it can resume", session.id,
                     body.interrupted, done.offset - offset)
        if length is None or done.offset < length:
            return _view(recorded)
        storage = appendable_storage(self.media.storage_for(prof))
        return await self._finish(recorded, storage, done.state, lease)

    async def _store(self, session: UploadSession, prof: type[Profile], lease: _Lease,
                     offset: int, body: PatchBody, length: int | None,
                     checksum: TusChecksum | None, ttl: float
                     ) -> tuple[UploadSession, Appended]:
        """Append the body and record the new offset; the session as recorded, and what
        the storage appended."""
        token = lease.token
        storage = appendable_storage(self.media.storage_for(prof))
        extra = dict(session.multipart_parts or {})
        state = dict(extra.get("append") or {})
        hasher = _Hasher(checksum.algorithm) if checksum else None
        limit = (length if length is not None else prof.max_bytes) - offset
        try:
            done = await storage.append(session.upload_key, state, offset,
                                        _Hashed(body, hasher), limit=limit,
                                        length=length, durable=self.durable)
        except FileTooLarge:
            if length is None:  # deferred: the limit was the profile's
                raise FileTooLarge(f"the upload goes past {prof.max_bytes} bytes, the most "
                                   f"profile {prof.name!r} accepts; nothing of this "
                                   "request was kept", max_bytes=prof.max_bytes) from None
            raise FileTooLarge("the body goes past the upload's declared length; nothing "
                               "of this request was kept",
                               code="declared_size_exceeded") from None
        except StorageError as exc:
            if exc.code == "upload_lost":
                # The store no longer holds what was acknowledged: the upload can never
                # complete, so it ends now (410 from here on) and the client starts over.
                await self.media.broker.end(session.id, "failed", "upload_lost",
                                            purge_reason="upload_lost")
            raise
        if checksum is not None and (body.interrupted or hasher is None
                                     or hasher.digest() != checksum.digest):
            await storage.append_discard(session.upload_key, state, offset, done)
            if body.interrupted:
                # All or nothing: nothing of it was kept. Nobody reads the answer.
                raise TusError(f"{body.interrupted}; nothing was appended",
                               code="tus_checksum_mismatch")
            raise TusError("the body does not match its Upload-Checksum; nothing was "
                           "appended", code="tus_checksum_mismatch")
        extra["append"] = done.state
        # The lease is given up with the record unless this was the last byte: finishing
        # (S3's CompleteMultipartUpload, verification) stays under it.
        finishing = length is not None and done.offset >= length

        async def record() -> UploadSession:
            recorded = await self.media.repo.record_append(
                session.id, token, offset=done.offset, parts=extra, byte_size=length,
                expires_at=now() + timedelta(seconds=ttl), release=not finishing)
            if recorded is None:
                raise _LeaseLost
            return recorded

        try:
            if session.state == "signed":
                async with self.media.transaction():
                    await self.media.repo.transition_session(session.id, "signed",
                                                             "uploading")
                    recorded = await record()
            else:
                # One conditional UPDATE (the lease and the state in its WHERE) needs no
                # transaction around it: three round trips to the database fewer per PATCH.
                recorded = await record()
            lease.held = finishing
        except (_LeaseLost, InvalidTransition, NotFound):
            # Another request took the lease meanwhile, or the session ended (terminated,
            # expired): what this one wrote is not the upload's.
            await storage.append_discard(session.upload_key, state, offset, done)
            raise TusError("this upload was taken over or ended meanwhile; ask with HEAD",
                           code="upload_locked") from None
        await _collect(storage, done)
        return recorded, done

    async def _finish(self, session: UploadSession, storage: AppendableStorage,
                      state: dict[str, Any], lease: _Lease) -> TusUpload:
        """The last byte arrived: make the object whole (under the lease, so no second PATCH
        finishes it too), then verify it like any upload."""
        if (session.multipart_parts or {}).get("concat") == "partial":
            # Not an upload of its own: it waits for its final upload, which completes.
            return _view(await self._join(session, storage, state, lease))
        with events.completing(session) as span:
            session = await self._join(session, storage, state, lease)
            result: UploadResult = await self.media.broker.verify(session.id)
            span.set(bytes=result.asset.byte_size)
        return _view(result.session, asset_id=result.asset.id)

    async def _join(self, session: UploadSession, storage: AppendableStorage,
                    state: dict[str, Any], lease: _Lease) -> UploadSession:
        """Make the appended object whole and the session uploaded; the lease goes."""
        await storage.append_finish(session.upload_key, state)
        session = await self.media.repo.transition_session(session.id, "uploading",
                                                           "uploaded")
        # Uploaded: no PATCH can take it any more, so the lease has done its work.
        lease.held = False
        with contextlib.suppress(Exception):
            await self.media.repo.release_session_lease(session.id, lease.token)
        return session

    # -- termination -------------------------------------------------------------------------

    async def terminate(self, session_id: str) -> None:
        """DELETE: the upload ends and whatever reached storage is purged."""
        started = time.perf_counter()
        session = await self._session(session_id)
        if session.state in ("completed",):
            raise UploadRejected(f"upload session {session_id} is completed; it can no longer "
                                 "be terminated", code="session_closed")
        # The state changes first, under the row lock that orders it with a finishing
        # PATCH; the purge it queues aborts what reached storage (processing/purge.py).
        if not await self.media.broker.end(session_id, "aborted", "aborted",
                                           purge_reason="upload_aborted"):
            current = await self.media.repo.get_session(session_id)
            if current is not None and current.state not in ("aborted", "expired", "failed"):
                raise InvalidTransition("upload session", session_id, current.state,
                                        "aborted", actual=current.state)
        events.aborted(session, started=started)




class _LeaseLost(Exception):
    """Rolls back the record of an append whose request no longer holds the lease."""


class _Lease:
    """One PATCH's hold on its upload: ``held`` until released (maybe with the record),
    and renewed, with the upload's expiry slid along, for as long as the PATCH runs.

    Not only while bytes arrive: a lease that lapsed under a PATCH still running would let
    a second one in, and the first would then cut or overwrite what the second recorded. A
    stalled body ends the PATCH anyway (the idle timeout), and a dead process renews
    nothing, so its lease lapses within ``LEASE_SECONDS``. The expiry slides so that one
    long PATCH is never expired by the sweeper while its bytes are still coming. Should the
    renewals fail (the lease taken, or the database silent until the lease is nearly out),
    the PATCH is stopped (``lost``) before another can begin.
    """

    def __init__(self, media: TusRuntime, session_id: str, token: str, ttl: float) -> None:
        self._media = media
        self._session_id = session_id
        self.token = token
        self._ttl = ttl
        self.held = True
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Lease:
        owner = asyncio.current_task()
        self._task = asyncio.get_running_loop().create_task(self._run(owner))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self, owner: asyncio.Task[Any] | None) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(_RENEW_EVERY)
            if not self.held:
                return  # released with the record: nothing left to keep
            try:
                kept = await self._media.repo.renew_session_lease(
                    self._session_id, self.token, now() + timedelta(seconds=LEASE_SECONDS),
                    expires_at=now() + timedelta(seconds=self._ttl))
            except Exception:
                kept = time.monotonic() - renewed < LEASE_SECONDS - 2 * _RENEW_EVERY
            else:
                renewed = time.monotonic() if kept else renewed
            if not kept and self.held:
                self.lost = True
                if owner is not None:
                    owner.cancel()
                return


async def _collect(storage: AppendableStorage, done: Appended) -> None:
    for key in done.garbage:
        with contextlib.suppress(RindleError):
            await storage.delete(key)


def _view(session: UploadSession, *, asset_id: str | None = None) -> TusUpload:
    extra = session.multipart_parts or {}
    concat = extra.get("concat")
    return TusUpload(session=session, offset=session.last_known_offset,
                     length=session.declared_byte_size, expires_at=session.expires_at,
                     metadata=extra.get("metadata"), concat=concat, asset_id=asset_id)


def check_length(value: str | None, name: str) -> int | None:
    """A non-negative integer header (``Upload-Length``, ``Upload-Offset``) or ``None``."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise TusError(f"{name} must be a non-negative integer", code="invalid_tus_header",
                       header=name)
    return int(value)


__all__ = ["CHECKSUMS", "EXTENSIONS", "STRATEGY", "VERSION", "PatchBody", "TusChecksum", "TusError",
           "TusUpload", "TusUploads", "check_length", "parse_metadata"]
