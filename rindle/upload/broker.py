"""The upload broker: initiate a session, sign where the bytes go, verify they landed."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterable, AsyncIterator
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
    UnsupportedMediaType,
    UploadIncomplete,
    UploadRejected,
    UploadUnsupported,
    ValidationError,
)
from ..model.records import Asset, UploadSession
from ..model.repo import new_id, now
from ..model.states import TERMINAL_SESSION_STATES, sources
from ..storage.base import Capability, UploadTicket, local_files, multipart_storage
from . import _telemetry as events
from . import keys
from .checksums import Checksum, ChecksumMismatch, Hashing
from .filenames import extension_of, sanitize_filename
from .sniff import mime_for_extension

if TYPE_CHECKING:
    from ..processing.outbox import Outbox
    from ..profile import Profile
    from ..types import Catalog, Rows

    class UploadRuntime(Catalog, Rows, Protocol):
        """What the broker uses: the catalog, rows and outbox, the default upload TTL."""

        @property
        def upload_ttl(self) -> int: ...

_CHUNK = 256 * 1024
#: Session states in which Rindle's own upload route still stores a body.
RECEIVING = ("signed", "uploading", "uploaded")
#: Strategies whose upload credential is a URL the client keeps (and may reuse) until it
#: expires: whatever reaches their staging key after promotion is removed once it has. A GCS
#: session URI writes to the bucket without Rindle for a week; a tus upload that ends while
#: a PATCH is still finishing may complete its object after the purge has run.
_REUSABLE_CREDENTIALS = ("presigned_put", "presigned_post", "resumable", "tus")
#: Extra seconds before that removal, for clocks that disagree.
CLOCK_SKEW = 60
#: Session states from which an upload may be completed (-> verifying -> completed).
_COMPLETABLE = sources("session", "verifying")


@dataclass(frozen=True)
class UploadResult:
    """An upload that reached storage and was verified; promotion runs in the background."""

    session: UploadSession
    asset: Asset


@dataclass(frozen=True)
class _Plan:
    """A checked upload request: the rows ``initiate_upload`` is about to write."""

    profile: type[Profile]
    asset_id: str
    session_id: str
    filename: str
    content_type: str | None
    byte_size: int | None
    checksum: str | None
    strategy: str
    asset_key: str
    upload_key: str
    expires_at: datetime


def storage_key(profile: type[Profile], asset_id: str, filename: str | None,
                content_type: str | None) -> str:
    """The asset's permanent key (see ``rindle.upload.keys``)."""
    return keys.asset_key(profile.name, asset_id, filename, content_type)


class Broker:
    """Creates upload sessions and drives them to a verified asset.

    Flow: ``initiate_upload`` -> ``sign_url`` -> the client sends the bytes to storage ->
    ``verify_completion``. ``upload`` does all of it server-side, streaming.
    """

    def __init__(self, media: UploadRuntime) -> None:
        self.media = media
        self.repo = media.repo

    # --- checks made before anything is signed -------------------------------------------

    def check_declared(self, profile: type[Profile], filename: str,
                        content_type: str | None, byte_size: int | None) -> str | None:
        if byte_size is not None:
            if not isinstance(byte_size, int) or isinstance(byte_size, bool) or byte_size < 0:
                raise ValidationError("byte_size must be a non-negative integer",
                                      code="invalid_byte_size")
            if byte_size == 0:
                raise UploadRejected("the file is empty", code="empty_file")
            if byte_size > profile.max_bytes:
                raise FileTooLarge(
                    f"the file is {byte_size} bytes; profile {profile.name!r} accepts at most "
                    f"{profile.max_bytes}", max_bytes=profile.max_bytes)
        ctype = (content_type or "").split(";", 1)[0].strip().lower() or None
        if ctype is None:
            ext = extension_of(filename)
            ctype = mime_for_extension(ext) if ext else None
        if ctype is not None and ctype not in profile.allow_mime:
            raise UnsupportedMediaType(
                f"{ctype} is not accepted by profile {profile.name!r}; allowed: "
                f"{', '.join(profile.allow_mime)}")
        ext = extension_of(filename)
        if ext and ext not in (profile.allow_extensions or ()):
            raise UploadRejected(f".{ext} files are not accepted by profile {profile.name!r}",
                                 code="extension_not_allowed")
        return ctype

    def _ttl(self, profile: type[Profile]) -> int:
        return profile.upload_ttl_seconds or self.media.upload_ttl

    # --- the direct-upload flow ----------------------------------------------------------

    async def initiate_upload(self, profile: type[Profile] | str, *, filename: str | None,
                              content_type: str | None = None, byte_size: int | None = None,
                              strategy: str = "presigned_put",
                              checksum: str | None = None) -> UploadSession:
        """Create a staged asset and an upload session for it. Nothing is signed yet.

        ``checksum`` (``sha256:<base64>`` or ``md5:<base64>``, optional) is the digest the
        client computed: it is signed into the upload URL and checked again at promotion.
        """
        name = profile if isinstance(profile, str) else profile.name
        with events.initiating(name, strategy) as span:
            session = await self.create_session(profile, filename=filename,
                                                content_type=content_type,
                                                byte_size=byte_size, strategy=strategy,
                                                checksum=checksum)
            events.initiated(span, session)
        return session

    async def create_session(self, profile: type[Profile] | str, *, filename: str | None,
                             content_type: str | None = None, byte_size: int | None = None,
                             strategy: str = "presigned_put",
                             checksum: str | None = None) -> UploadSession:
        """``initiate_upload`` without its telemetry: what each flow's own initiation calls
        inside its ``rindle.upload.initiate`` span (which also times its storage calls)."""
        plan = self._plan(profile, filename=filename, content_type=content_type,
                          byte_size=byte_size, strategy=strategy, checksum=checksum)
        return await self._insert(plan, state="initialized")

    async def initiate_signed_upload(self, profile: type[Profile] | str, *,
                                     filename: str | None, content_type: str | None = None,
                                     byte_size: int | None = None,
                                     checksum: str | None = None,
                                     ) -> tuple[UploadSession, UploadTicket]:
        """``initiate_upload`` then ``sign_url``, in one transaction: what ``POST /uploads``
        answers with.

        The same checks, rows, ticket, events and telemetry as the two calls, in the same
        order; the session is written signed at once instead of initialized and updated a
        moment later, a state nobody could have seen in between: its URL is not out yet.
        """
        name = profile if isinstance(profile, str) else profile.name
        with events.initiating(name, "presigned_put") as span:
            plan = self._plan(profile, filename=filename, content_type=content_type,
                              byte_size=byte_size, strategy="presigned_put",
                              checksum=checksum)
            if plan.expires_at <= now():  # no time to live at all: sign_url refuses it
                session = await self._insert(plan, state="initialized")
                events.initiated(span, session)
                return session, await self.sign_url(session.id)
            # Signing needs only what is about to be written (and never the database).
            started = time.perf_counter()
            expires_in = max(1, int((plan.expires_at - now()).total_seconds()))
            ticket = await self._presign(plan.profile, plan.upload_key,
                                         session_id=plan.session_id,
                                         content_type=plan.content_type,
                                         byte_size=plan.byte_size, checksum=plan.checksum,
                                         expires_in=expires_in)
            session = await self._insert(plan, state="signed")
            events.initiated(span, session)
        events.signed(session, started=started, ttl=expires_in)
        # Announced after the initiate event, where sign_url's own commit would have been.
        await self.repo.announce("session", {"id": session.id, "asset_id": session.asset_id,
                                             "profile": session.profile},
                                 "initialized", "signed", at=now())
        return session, ticket

    def _plan(self, profile: type[Profile] | str, *, filename: str | None,
              content_type: str | None, byte_size: int | None, strategy: str,
              checksum: str | None) -> _Plan:
        """Check what the client declared; the ids, keys and expiry of the rows to write."""
        prof = self.media.profile(profile)
        name = sanitize_filename(filename)
        ctype = self.check_declared(prof, name, content_type, byte_size)
        declared = str(Checksum.parse(checksum)) if checksum is not None else None
        if strategy == "presigned_put":
            storage = self.media.storage_for(prof)
            if Capability.PRESIGNED_PUT not in storage.capabilities:
                raise UploadUnsupported(
                    f"storage {prof.storage!r} cannot take direct uploads (presigned PUT); "
                    "use the server-side upload() or a storage that can")
            if byte_size is None:
                raise ValidationError("byte_size is required for a direct upload",
                                      code="byte_size_required")
            if ctype is None:
                raise ValidationError("content_type is required for a direct upload",
                                      code="content_type_required")
        asset_id = new_id()
        session_id = new_id()
        return _Plan(
            profile=prof, asset_id=asset_id, session_id=session_id, filename=name,
            content_type=ctype, byte_size=byte_size, checksum=declared, strategy=strategy,
            asset_key=keys.asset_key(prof.name, asset_id, name, ctype),
            # The session's bytes land under a key of their own; promotion moves them.
            upload_key=keys.staging_key(prof.name, asset_id, session_id, name, ctype),
            expires_at=now() + timedelta(seconds=self._ttl(prof)),
        )

    async def _insert(self, plan: _Plan, *, state: str) -> UploadSession:
        """The staged asset and its session, in one transaction (or one statement)."""
        prof = plan.profile
        _, session = await self.repo.insert_asset_and_session(
            dict(id=plan.asset_id, profile=prof.name, state="staged", storage=prof.storage,
                 storage_key=plan.asset_key, filename=plan.filename,
                 declared_content_type=plan.content_type, byte_size=plan.byte_size),
            dict(id=plan.session_id, asset_id=plan.asset_id, profile=prof.name, state=state,
                 strategy=plan.strategy, upload_key=plan.upload_key, filename=plan.filename,
                 declared_content_type=plan.content_type, declared_byte_size=plan.byte_size,
                 declared_checksum=plan.checksum, expires_at=plan.expires_at),
        )
        return session

    async def _presign(self, prof: type[Profile], key: str, *, session_id: str,
                       content_type: str | None, byte_size: int | None, checksum: str | None,
                       expires_in: int) -> UploadTicket:
        storage = self.media.storage_for(prof)
        parsed = Checksum.parse(checksum) if checksum else None
        return await storage.presign_put(
            key, content_type=content_type or "", byte_size=byte_size or 0,
            expires_in=expires_in, session_id=session_id,
            **({"checksum": (parsed.algorithm, parsed.b64)} if parsed else {}),
        )

    async def live_session(self, session_id: str, *,
                           row: UploadSession | None = None) -> UploadSession:
        """The session, unless it is gone (``session_not_found``) or has expired
        (``session_expired``; one found past its expiry is expired on the spot).

        ``row``: the session as the caller has just read it, to save reading it again.
        """
        session = row if row is not None and row.id == session_id else \
            await self.repo.get_session(session_id)
        if session is None:
            raise NotFound(f"upload session {session_id} does not exist",
                           code="session_not_found")
        if session.state not in TERMINAL_SESSION_STATES and session.expires_at <= now():
            await self.expire(session)
            raise SessionExpired(f"upload session {session_id} has expired; start a new upload")
        if session.state == "expired" or session.failure_reason == "expired":
            raise SessionExpired(f"upload session {session_id} has expired; start a new upload")
        return session

    async def expire(self, session: UploadSession) -> bool:
        """End an upload abandoned past its expiry: the session expires (an uploaded one
        fails as expired) and a purge of its staged asset is queued in the same commit,
        which also aborts a multipart upload. False when someone moved it first."""
        return await self.end(session.id, "expired", "expired", purge_reason="upload_expired")

    async def end(self, session_id: str, to: str, reason: str, *,
                  purge_reason: str | None = None) -> bool:
        """End an unfinished session — ``failed``, ``aborted`` or ``expired`` — and queue the
        purge of its staged asset in the same commit (``purge_reason``, else ``reason``).

        The one way every flow gives up on an upload. An uploaded session may only go on to
        verifying, so it ends as ``failed`` with ``reason``. False (and nothing changed)
        when the session is finished already or another actor moved it first.
        """
        try:
            async with self.media.transaction():
                current = await self.repo.get_session(session_id, for_update=True)
                if current is None or current.state in TERMINAL_SESSION_STATES:
                    return False
                state = current.state
                if state == "uploaded":
                    await self.repo.transition_session(session_id, "uploaded", "verifying")
                    state, to = "verifying", "failed"
                await self.repo.transition_session(session_id, state, to,
                                                   failure_reason=reason)
                await self.media.outbox.add("purge_asset", {
                    "asset_id": current.asset_id, "reason": purge_reason or reason})
        except (InvalidTransition, NotFound):
            return False  # someone else moved it first; their outcome stands
        return True

    async def sign_url(self, session_id: str) -> UploadTicket:
        """Where the client PUTs the bytes: bound to the declared type and size, expiring
        with the session. Signing again before expiry gives a fresh ticket."""
        session = await self.live_session(session_id)
        if session.state not in ("initialized", "signed"):
            raise UploadRejected(f"upload session {session_id} is {session.state}; it can no "
                                 "longer be signed", code="session_not_signable")
        if session.strategy != "presigned_put":
            raise UploadUnsupported(f"upload session {session_id} uses {session.strategy}, "
                                    "not a presigned PUT")
        prof = self.media.profile(session.profile)
        started = time.perf_counter()
        expires_in = max(1, int((session.expires_at - now()).total_seconds()))
        ticket = await self._presign(prof, session.upload_key, session_id=session.id,
                                     content_type=session.declared_content_type,
                                     byte_size=session.declared_byte_size,
                                     checksum=session.declared_checksum, expires_in=expires_in)
        if session.state == "initialized":
            await self.repo.transition_session(session_id, "initialized", "signed")
        events.signed(session, started=started, ttl=expires_in)
        return ticket

    async def receive_local_put(self, token: str, body: AsyncIterable[bytes],
                                content_type: str | None) -> UploadSession:
        """Store the body of a signed ``PUT /local/{token}`` (Local storage's upload target).

        The token names the session; the session row says where the bytes go, their type
        and size, and whether it still takes bytes. That is checked when the body starts
        and again, with the row locked, before the received file is renamed into place: a
        body that ends after its session was completed, aborted or expired stores nothing
        and is refused with 409 ``session_closed``.
        """
        local = [s for s in self.media.storages.values() if Capability.LOCAL in s.capabilities]
        if not local:
            raise UploadUnsupported("no storage here takes uploads through Rindle's route")
        # Any Local storage can read the token: they share the runtime's sealing keys.
        grant = local_files(local[0]).verify_put_token(token)
        session = await self.live_session(grant.session_id)
        started = time.perf_counter()
        try:
            current, size = await self._receive_local(session, body, content_type)
        except BaseException as exc:
            events.received(session, started=started, size=None, offset=None,
                            outcome=telemetry.error_code(exc))
            raise
        events.received(session, started=started, size=size, offset=size, outcome="ok")
        return current

    async def _receive_local(self, session: UploadSession, body: AsyncIterable[bytes],
                             content_type: str | None) -> tuple[UploadSession, int]:
        """``receive_local_put`` once its token names a live session: the session as the
        body left it, and the bytes stored."""
        _check_receiving(session)
        storage = self.media.storage_for(session.profile)
        if Capability.LOCAL not in storage.capabilities:
            raise UploadUnsupported(f"upload session {session.id} does not upload through "
                                    "Rindle's own route")
        receive = local_files(storage).receive
        declared = session.declared_content_type or ""
        ctype = (content_type or "").split(";", 1)[0].strip().lower()
        if ctype != declared.lower():
            raise UnsupportedMediaType(
                f"Content-Type must be {declared!r}, as declared when the upload was "
                "initiated", code="content_type_mismatch")
        size = session.declared_byte_size or 0
        checksum = _declared(session)
        hashing = Hashing(body, checksum) if checksum else None
        try:
            pending = await receive(session.upload_key, hashing or body, content_type=declared,
                                    max_bytes=size)
        except FileTooLarge:
            raise FileTooLarge(f"the body is larger than the declared {size} bytes",
                               code="declared_size_exceeded") from None
        try:
            if hashing is not None:
                hashing.check()
            async with self.media.transaction():
                # Locked: completion, abort and expiry move this row, so none of them can
                # slip in between this check and the rename.
                current = await self.repo.get_session(session.id, for_update=True)
                if current is None:
                    raise NotFound(f"upload session {session.id} does not exist",
                                   code="session_not_found")
                _check_receiving(current)
                if current.expires_at <= now():
                    raise SessionExpired(f"upload session {session.id} has expired; start a "
                                         "new upload")
                info = await pending.commit()
                if current.state == "signed":
                    current = await self.repo.transition_session(session.id, "signed",
                                                                 "uploaded")
        finally:
            await pending.discard()
        return current, info.size

    async def verify_completion(self, session_id: str, *,
                                session: UploadSession | None = None) -> UploadResult:
        """Check the object landed with the declared size, then in one transaction: session
        completed, asset validating, promotion scheduled.

        ``session``: the row as the caller has just read it (the route reads it to ask the
        Authorizer), to save reading it again; the transaction rechecks its state anyway.
        """
        if session is None or session.id != session_id:
            session = await self.repo.get_session(session_id)
        if session is None:  # live_session says so, with the code the routes expect
            await self.live_session(session_id)
        assert session is not None
        with events.completing(session) as span:
            result = await self.verify(session_id, session=session)
            span.set(bytes=result.asset.byte_size)
        return result

    async def verify(self, session_id: str, *,
                     session: UploadSession | None = None) -> UploadResult:
        """``verify_completion`` without its telemetry: how each flow's own completion
        ends, inside its ``rindle.upload.complete`` span (which also times the storage
        calls that joined or finished the object)."""
        session = await self.live_session(session_id, row=session)
        _check_completable(session)
        prof = self.media.profile(session.profile)
        storage = self.media.storage_for(prof)
        info = await storage.head(session.upload_key)
        if info is None:
            raise UploadIncomplete(f"no bytes have arrived for upload session {session_id}; "
                                   "send them to the signed URL, then complete",
                                   code="object_missing")
        declared = session.declared_byte_size
        problem: tuple[str, str] | None = None
        if declared is not None and info.size != declared:
            problem = ("size_mismatch", f"{info.size} bytes arrived but {declared} were declared")
        elif info.size > prof.max_bytes:
            problem = ("max_bytes_exceeded", f"{info.size} bytes is over {prof.max_bytes}")
        elif info.size == 0:
            problem = ("empty_file", "the file is empty")
        if problem is not None:
            await self.end(session_id, "failed", problem[0])
            cls = FileTooLarge if problem[0] == "max_bytes_exceeded" else UploadIncomplete
            raise cls(f"upload session {session_id} failed: {problem[1]}; nothing was kept",
                      code=problem[0])
        seen = session.state
        async with self.media.transaction():
            completed = None
            if seen in _COMPLETABLE:
                # Still in the state just read? Then straight to completed, one conditional
                # UPDATE (its row lock orders it with the upload route and abort/expiry).
                try:
                    completed = await self.repo.transition_session(
                        session_id, seen, "completed", via=("verifying",), verified_at=now())
                except (InvalidTransition, NotFound):
                    completed = None  # moved meanwhile: look again, below
            if completed is None:
                # Read again with the row locked: an upload route may have moved it meanwhile.
                current = await self.repo.get_session(session_id, for_update=True)
                if current is None:
                    raise NotFound(f"upload session {session_id} does not exist",
                                   code="session_not_found")
                _check_completable(current)
                completed = await self.repo.transition_session(
                    session_id, current.state, "completed", via=("verifying",),
                    verified_at=now())
            session = completed
            asset = await self.repo.transition_asset(session.asset_id, "staged", "validating",
                                                     byte_size=info.size)
            jobs: list[tuple[str, dict[str, Any], float]] = [
                ("promote_asset", {"asset_id": asset.id, "session_id": session.id}, 0)]
            purge = staging_purge(session, prof.storage)
            if purge is not None:
                jobs.append(purge)
            await self.media.outbox.add_many(jobs)
        return UploadResult(session=session, asset=asset)

    async def abort_upload(self, session_id: str) -> UploadSession:
        """Give up on an upload (the user cancelled): the session is aborted and whatever
        already reached storage is purged. Aborting an aborted session changes nothing."""
        started = time.perf_counter()
        session = await self.repo.get_session(session_id)
        if session is None:
            raise NotFound(f"upload session {session_id} does not exist",
                           code="session_not_found")
        if session.state == "aborted":
            # Also the end of a direct upload, which its provider's cancel aborted first.
            events.aborted(session, started=started)
            return session
        if session.state not in ("initialized", "signed", "resuming", "uploading", "uploaded"):
            raise UploadRejected(f"upload session {session_id} is {session.state}; only an "
                                 "unfinished upload can be aborted", code="session_closed")
        storage = self.media.storage_for(session.profile)
        if session.multipart_upload_id and Capability.MULTIPART_UPLOAD in storage.capabilities:
            # Storage first: a completion racing with this abort then finds nothing to join.
            try:
                await multipart_storage(storage).abort_multipart(session.upload_key,
                                                                 session.multipart_upload_id)
            except NotFound:
                pass
        if not await self.end(session_id, "aborted", "aborted", purge_reason="upload_aborted"):
            current = await self._reload(session_id)
            if current.state != "aborted":
                raise UploadRejected(f"upload session {session_id} is {current.state}; only "
                                     "an unfinished upload can be aborted",
                                     code="session_closed")
        session = await self._reload(session_id)
        events.aborted(session, started=started)
        return session

    # --- server-side upload --------------------------------------------------------------

    async def upload(self, profile: type[Profile] | str, file: Any, *,
                     filename: str | None = None, content_type: str | None = None,
                     byte_size: int | None = None,
                     checksum: str | None = None) -> UploadResult:
        """Stream ``file`` to storage through this process, then verify it like any upload.

        ``file`` may be bytes, a binary file object, an async iterable of bytes, or anything
        with an async ``read(n)`` (Starlette's UploadFile). The body is never held whole.
        A ``checksum`` the sender declared is checked as the body streams; a mismatch fails
        the upload (``checksum_mismatch``) and keeps nothing.
        """
        prof = self.media.profile(profile)
        if filename is None:
            filename = getattr(file, "filename", None) or getattr(file, "name", None)
        if content_type is None:
            content_type = getattr(file, "content_type", None)
        session = await self.initiate_upload(prof, filename=filename, content_type=content_type,
                                             byte_size=byte_size, strategy="server",
                                             checksum=checksum)
        # Server-side, completing is receiving the body: the span times both.
        with events.completing(session) as span:
            storage = self.media.storage_for(prof)
            await self.repo.transition_session(session.id, "initialized", "signed")
            await self.repo.transition_session(session.id, "signed", "uploading")
            limit = prof.max_bytes if byte_size is None else min(byte_size, prof.max_bytes)
            declared = _declared(session)
            hashing = Hashing(_chunks(file), declared) if declared else None
            try:
                info = await storage.write(session.upload_key, hashing or _chunks(file),
                                           content_type=session.declared_content_type,
                                           max_bytes=limit)
                if hashing is not None:
                    try:
                        hashing.check()
                    except ChecksumMismatch:
                        await storage.delete(session.upload_key)
                        raise
            except BaseException as exc:
                reason = exc.code if isinstance(exc, RindleError) else "write_failed"
                await self.end(session.id, "failed", reason)
                if isinstance(exc, FileTooLarge):
                    raise FileTooLarge(
                        f"the file is over the limit of {limit} bytes; nothing was kept") from None
                raise
            if info.size == 0:
                await self.end(session.id, "failed", "empty_file")
                raise UploadRejected("the file is empty; nothing was kept", code="empty_file")
            try:
                await self.repo.transition_session(session.id, "uploading", "uploaded",
                                                   last_known_offset=info.size)
            except (NotFound, InvalidTransition):
                # Expired and purged while the body streamed: the object landed after the
                # purge looked, so it is removed here or nothing would ever name it.
                await storage.delete(session.upload_key)
                raise SessionExpired(f"upload session {session.id} expired while the file was "
                                     "being received; nothing was kept") from None
            result = await self.verify(session.id)
            span.set(bytes=result.asset.byte_size)
        return result

    async def _reload(self, session_id: str) -> UploadSession:
        session = await self.repo.get_session(session_id)
        assert session is not None
        return session


async def schedule_staging_purge(outbox: Outbox, session: UploadSession, storage: str) -> None:
    """Once the session's upload URL has expired, remove whatever reached its staging key
    after promotion took the verified bytes away: a client (or an attacker) may PUT to a
    presigned URL again until it expires. Part of the caller's transaction."""
    job = staging_purge(session, storage)
    if job is not None:
        await outbox.add(job[0], job[1], delay_seconds=job[2])


def staging_purge(session: UploadSession, storage: str
                  ) -> tuple[str, dict[str, Any], float] | None:
    """The outbox job ``schedule_staging_purge`` adds (kind, payload, delay), if any."""
    if session.strategy not in _REUSABLE_CREDENTIALS:
        return None
    return ("purge_upload", {"asset_id": session.asset_id, "session_id": session.id,
                             "storage": storage, "key": session.upload_key},
            _seconds_until(session.expires_at) + CLOCK_SKEW)


def _declared(session: UploadSession) -> Checksum | None:
    return Checksum.parse(session.declared_checksum) if session.declared_checksum else None


def _check_receiving(session: UploadSession) -> None:
    if session.state not in RECEIVING:
        raise UploadRejected(f"upload session {session.id} is {session.state}; it takes no "
                             "more bytes", code="session_closed")


def _check_completable(session: UploadSession) -> None:
    if session.state == "completed":
        raise UploadRejected(f"upload session {session.id} is already completed",
                             code="session_already_completed")
    if session.state in TERMINAL_SESSION_STATES:
        raise UploadRejected(f"upload session {session.id} is {session.state}",
                             code="session_closed")


def _seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - now()).total_seconds())


async def _chunks(file: Any) -> AsyncIterator[bytes]:
    if isinstance(file, (bytes, bytearray, memoryview)):
        data = bytes(file)
        for i in range(0, len(data), _CHUNK):
            yield data[i:i + _CHUNK]
        return
    if hasattr(file, "__aiter__"):
        async for chunk in file:
            if chunk:
                yield bytes(chunk)
        return
    read = getattr(file, "read", None)
    if read is None:
        raise TypeError("upload() takes bytes, a file object, an async iterable or an object "
                        "with read()")
    import anyio

    while True:
        if inspect.iscoroutinefunction(read):
            chunk = await read(_CHUNK)
        else:
            chunk = await anyio.to_thread.run_sync(read, _CHUNK)
        if not chunk:
            return
        yield bytes(chunk)
