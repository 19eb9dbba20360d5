"""Multipart direct uploads: initiate, sign parts, list them to resume, complete or abort.

The client sends each part straight to storage with a presigned URL; S3's upload id stays on
the server (in the session row). Completion funnels into the broker's ``verify_completion``,
exactly like every other upload.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    FileTooLarge,
    InvalidTransition,
    NotFound,
    SessionExpired,
    UploadRejected,
    UploadUnsupported,
    ValidationError,
)
from ..model.records import UploadSession
from ..model.repo import now
from ..model.states import TERMINAL_SESSION_STATES
from ..storage.base import Capability, MultipartStorage, UploadTicket, multipart_storage
from . import _telemetry as events
from .broker import UploadResult
from .filenames import sanitize_filename

if TYPE_CHECKING:
    from ..profile import Profile
    from .broker import Broker, UploadRuntime

    class MultipartRuntime(UploadRuntime, Protocol):
        """What multipart uploads use: the broker's runtime, and the broker itself (its
        checks, sessions and verification are the same for every flow)."""

        @property
        def broker(self) -> Broker: ...

MiB = 1024 * 1024
# S3's multipart limits (R2, MinIO and GCS's XML API accept the same or looser).
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
PREFERRED_PART_SIZE = 8 * MiB
#: How many part URLs one call may sign.
MAX_SIGN_BATCH = 1000
_SIGNABLE = ("signed", "uploading")


@dataclass(frozen=True)
class MultipartSession:
    """A multipart upload ready for parts: ``part_count`` parts of ``part_size`` bytes (the
    last one holds the rest)."""

    session_id: str
    asset_id: str
    part_size: int
    part_count: int


def plan_parts(byte_size: int, part_size: int | None = None) -> tuple[int, int]:
    """``(part_size, part_count)`` for a file of ``byte_size`` within S3's limits.

    8 MiB parts when 10,000 of them are enough; otherwise the smallest whole number of MiB
    that is. A requested ``part_size`` is honoured when S3 accepts it for this file.
    """
    if byte_size <= 0:
        raise ValidationError("byte_size must be a positive integer", code="invalid_byte_size")
    if byte_size > MAX_OBJECT_SIZE:
        raise FileTooLarge(f"the file is {byte_size} bytes; S3 stores at most 5 TiB "
                           f"({MAX_OBJECT_SIZE} bytes) in one object",
                           max_bytes=MAX_OBJECT_SIZE)
    if part_size is None:
        needed = math.ceil(math.ceil(byte_size / MAX_PARTS) / MiB) * MiB
        size = max(PREFERRED_PART_SIZE, needed)
    else:
        if (not isinstance(part_size, int) or isinstance(part_size, bool)
                or not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE):
            raise ValidationError(f"part_size must be {MIN_PART_SIZE}..{MAX_PART_SIZE} bytes",
                                  code="invalid_part_size")
        if math.ceil(byte_size / part_size) > MAX_PARTS:
            raise ValidationError(f"with {part_size}-byte parts the file needs more than "
                                  f"{MAX_PARTS} parts; choose larger parts",
                                  code="invalid_part_size")
        size = part_size
    return size, max(1, math.ceil(byte_size / size))


def part_length(session: UploadSession, part_number: int) -> int:
    """The exact size of part ``part_number`` of this session's file."""
    size, count = _plan(session)
    declared = session.declared_byte_size or 0
    return size if part_number < count else declared - size * (count - 1)


# --- the flow ----------------------------------------------------------------------------


async def initiate_multipart_upload(media: MultipartRuntime, profile: type[Profile] | str, *,
                                    filename: str | None, byte_size: int,
                                    content_type: str | None = None,
                                    part_size: int | None = None) -> MultipartSession:
    """Create the staged asset, the session and the storage's multipart upload.

    Everything that can be refused (size over the profile's ``max_bytes`` or S3's 5 TiB, type,
    name, a storage without multipart) is refused before anything is created or signed.
    """
    prof = media.profile(profile)
    with events.initiating(prof.name, "multipart") as span:
        started = await _initiate(media, prof, filename=filename, byte_size=byte_size,
                                  content_type=content_type, part_size=part_size)
        span.set(asset_id=started.asset_id, session_id=started.session_id, bytes=byte_size)
    return started


async def _initiate(media: MultipartRuntime, prof: type[Profile], *, filename: str | None,
                    byte_size: int, content_type: str | None,
                    part_size: int | None) -> MultipartSession:
    storage = media.storage_for(prof)
    if Capability.MULTIPART_UPLOAD not in storage.capabilities:
        raise UploadUnsupported(f"storage {prof.storage!r} cannot take multipart uploads; use "
                                "a direct upload (presigned PUT) or a storage that can")
    if byte_size is None:
        raise ValidationError("byte_size is required for a multipart upload",
                              code="byte_size_required")
    # The broker's own checks (size against max_bytes, empty, type, name), made up front so a
    # refusal creates nothing; create_session below repeats them.
    ctype = media.broker.check_declared(prof, sanitize_filename(filename), content_type,
                                         byte_size)
    size, count = plan_parts(byte_size, part_size)
    if ctype is None:
        raise ValidationError("content_type is required for a multipart upload",
                              code="content_type_required")
    session = await media.broker.create_session(prof, filename=filename,
                                                content_type=content_type,
                                                byte_size=byte_size, strategy="multipart")
    multipart = multipart_storage(storage)
    try:
        upload_id = await multipart.create_multipart(session.upload_key,
                                                     session.declared_content_type)
    except Exception:
        await media.broker.end(session.id, "failed", "storage_error")
        raise
    try:
        # One conditional UPDATE: the upload id (server-side only) and the plan, then signed.
        await media.repo.transition_session(
            session.id, "initialized", "signed", multipart_upload_id=upload_id,
            multipart_parts={"part_size": size, "part_count": count})
    except Exception:
        await _abort_quietly(multipart, session.upload_key, upload_id)
        raise
    return MultipartSession(session_id=session.id, asset_id=session.asset_id, part_size=size,
                            part_count=count)


async def sign_multipart_parts(media: MultipartRuntime, session_id: str,
                               part_numbers: Iterable[int]) -> dict[int, UploadTicket]:
    """Presigned PUTs for these parts, each bound to its exact size; signing again gives
    fresh URLs. The first signing moves the session signed -> uploading."""
    numbers = _part_numbers(part_numbers)
    session = await _multipart_session(media, session_id)
    if session.state not in _SIGNABLE:
        raise UploadRejected(f"upload session {session_id} is {session.state}; its parts can "
                             "no longer be signed", code="session_not_signable")
    _, count = _plan(session)
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise ValidationError(f"part numbers run from 1 to {count} for this file; got {bad[0]}",
                              code="invalid_part_number")
    storage = multipart_storage(media.storage_for(session.profile))
    upload_id = _upload_id(session)
    started = time.perf_counter()
    expires_in = max(1, int((session.expires_at - now()).total_seconds()))
    expires_at = datetime.fromtimestamp(int(time.time()) + expires_in, tz=UTC)
    tickets: dict[int, UploadTicket] = {}
    for n in numbers:
        url = await storage.presign_part(session.upload_key, upload_id, n,
                                         expires_in=expires_in,
                                         content_length=part_length(session, n))
        # Content-Length is bound in the signature; every HTTP client sets it from the body.
        tickets[n] = UploadTicket(method="PUT", url=url, headers={}, expires_at=expires_at)
    if session.state == "signed":
        try:
            await media.repo.transition_session(session_id, "signed", "uploading")
        except InvalidTransition as exc:
            if exc.actual != "uploading":  # a concurrent signing got there first: fine
                raise
    events.signed(session, started=started, ttl=expires_in, parts=len(tickets))
    return tickets


async def sign_multipart_part(media: MultipartRuntime, session_id: str,
                              part_number: int) -> UploadTicket:
    """A presigned PUT for one part (see ``sign_multipart_parts``)."""
    return (await sign_multipart_parts(media, session_id, [part_number]))[part_number]


async def list_uploaded_parts(media: MultipartRuntime, session_id: str) -> list[dict[str, Any]]:
    """The parts storage holds so far, ``[{part_number, etag, size}]``: what a client that
    reloaded needs to resume (upload the missing ones, then complete)."""
    session = await _multipart_session(media, session_id)
    if session.state not in _SIGNABLE:
        raise UploadRejected(f"upload session {session_id} is {session.state}; it has no "
                             "parts to list", code="session_closed")
    storage = multipart_storage(media.storage_for(session.profile))
    return await storage.list_parts(session.upload_key, _upload_id(session))


async def complete_multipart_upload(media: MultipartRuntime, session_id: str,
                                    parts: Sequence[dict[str, Any]]) -> UploadResult:
    """Join the parts and verify the upload like any other (asset -> validating, promotion
    queued). A wrong part list is refused with code ``invalid_parts`` and changes nothing:
    the session stays completable."""
    session = await _multipart_session(media, session_id)
    with events.completing(session) as span:
        result = await _complete(media, session, parts)
        span.set(bytes=result.asset.byte_size)
    return result


async def _complete(media: MultipartRuntime, session: UploadSession,
                    parts: Sequence[dict[str, Any]]) -> UploadResult:
    session_id = session.id
    if session.state == "uploaded":
        # Joined on an earlier call whose verification did not finish: verify again.
        return await media.broker.verify(session_id)
    if session.state == "completed":
        raise UploadRejected(f"upload session {session_id} is already completed",
                             code="session_already_completed")
    if session.state not in _SIGNABLE:
        raise UploadRejected(f"upload session {session_id} is {session.state}",
                             code="session_closed")
    _, count = _plan(session)
    wanted = _check_parts(parts, count)
    storage = multipart_storage(media.storage_for(session.profile))
    upload_id = _upload_id(session)
    try:
        listed = await storage.list_parts(session.upload_key, upload_id)
    except NotFound:
        # No upload any more: an earlier call may have joined the parts and then failed to
        # record it. If the object is there, carry on to verification (it checks the size).
        if await media.storage_for(session.profile).head(session.upload_key) is None:
            raise
    else:
        stored = {p["part_number"]: p for p in listed}
        _compare(session, wanted, stored)
        await storage.complete_multipart(
            session.upload_key, upload_id,
            [{"part_number": n, "etag": stored[n]["etag"]} for n, _ in wanted])
    total = sum(part_length(session, n) for n, _ in wanted)
    await media.repo.transition_session(session_id, session.state, "uploaded",
                                        last_known_offset=total)
    return await media.broker.verify(session_id)


async def abort_multipart_upload(media: MultipartRuntime, session_id: str) -> UploadSession:
    """Abort the storage upload (its parts go), mark the session aborted and purge the staged
    asset after commit. Aborting an aborted session again is a no-op."""
    started = time.perf_counter()
    session = await media.repo.get_session(session_id)
    if session is None:
        raise NotFound(f"upload session {session_id} does not exist", code="session_not_found")
    _require_multipart(session)
    if session.state in ("uploaded", "verifying", "completed"):
        raise UploadRejected(f"upload session {session_id} is {session.state}; it can no "
                             "longer be aborted", code="session_closed")
    storage = multipart_storage(media.storage_for(session.profile))
    if session.multipart_upload_id:
        # Storage first: a completion racing with this abort then finds no upload to join.
        try:
            await storage.abort_multipart(session.upload_key, session.multipart_upload_id)
        except NotFound:
            pass  # already aborted (or never there): the goal is reached
    if session.state in TERMINAL_SESSION_STATES:
        if session.state == "aborted":
            events.aborted(session, started=started)
            return session
        raise UploadRejected(f"upload session {session_id} is {session.state}",
                             code="session_closed")
    async with media.transaction():
        session = await media.repo.transition_session(session_id, session.state, "aborted",
                                                      failure_reason="aborted")
        await media.outbox.add("purge_asset", {"asset_id": session.asset_id,
                                               "reason": "upload_aborted"})
    events.aborted(session, started=started)
    return session


# --- helpers -----------------------------------------------------------------------------


def _require_multipart(session: UploadSession) -> None:
    if session.strategy != "multipart":
        raise UploadUnsupported(f"upload session {session.id} uses {session.strategy}, not a "
                                "multipart upload")


async def _multipart_session(media: MultipartRuntime, session_id: str) -> UploadSession:
    try:
        session = await media.broker.live_session(session_id)
    except SessionExpired:
        # The broker expired it and queued the purge; the parts in storage go now too.
        row = await media.repo.get_session(session_id)
        if row is not None and row.strategy == "multipart" and row.multipart_upload_id:
            storage = multipart_storage(media.storage_for(row.profile))
            await _abort_quietly(storage, row.upload_key, row.multipart_upload_id)
        raise
    _require_multipart(session)
    return session


def _plan(session: UploadSession) -> tuple[int, int]:
    plan = session.multipart_parts or {}
    size, count = plan.get("part_size"), plan.get("part_count")
    if not isinstance(size, int) or size <= 0:
        raise UploadRejected(f"upload session {session.id} has no multipart upload yet",
                             code="session_not_signable")
    if not isinstance(count, int) or count <= 0:
        count = max(1, math.ceil((session.declared_byte_size or 0) / size))
    return size, count


def _upload_id(session: UploadSession) -> str:
    if not session.multipart_upload_id:
        raise UploadRejected(f"upload session {session.id} has no multipart upload yet",
                             code="session_not_signable")
    return session.multipart_upload_id


def _part_numbers(part_numbers: Iterable[int]) -> list[int]:
    if isinstance(part_numbers, (str, bytes)):
        raise ValidationError("part_numbers must be a list of integers",
                              code="invalid_part_number")
    try:
        numbers = list(part_numbers)
    except TypeError:
        raise ValidationError("part_numbers must be a list of integers",
                              code="invalid_part_number") from None
    if not numbers:
        raise ValidationError("part_numbers is empty; ask for at least one part",
                              code="invalid_part_number")
    if len(numbers) > MAX_SIGN_BATCH:
        raise ValidationError(f"sign at most {MAX_SIGN_BATCH} parts per call",
                              code="invalid_part_number")
    for n in numbers:
        if not isinstance(n, int) or isinstance(n, bool):
            raise ValidationError("part_numbers must be a list of integers",
                                  code="invalid_part_number")
    return sorted(set(numbers))


def _check_parts(parts: Sequence[dict[str, Any]], count: int) -> list[tuple[int, str]]:
    """``[(part_number, etag)]`` for a well-formed list naming every part once, in order."""
    if not isinstance(parts, (list, tuple)) or not parts:
        raise ValidationError("parts must be a non-empty list of {part_number, etag}",
                              code="invalid_parts")
    wanted: list[tuple[int, str]] = []
    for item in parts:
        number = item.get("part_number") if isinstance(item, dict) else None
        etag = item.get("etag") if isinstance(item, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValidationError("every part needs an integer part_number",
                                  code="invalid_parts")
        if not isinstance(etag, str) or not etag.strip(' "'):
            raise ValidationError(f"part {number} needs its etag (a string)",
                                  code="invalid_parts", part_number=number)
        if not 1 <= number <= count:
            raise ValidationError(f"part numbers run from 1 to {count} for this file; got "
                                  f"{number}", code="invalid_parts", part_number=number)
        if wanted and number <= wanted[-1][0]:
            raise ValidationError("parts must be listed once each, in ascending part_number "
                                  "order", code="invalid_parts", part_number=number)
        wanted.append((number, etag))
    if len(wanted) != count:
        missing = sorted(set(range(1, count + 1)) - {n for n, _ in wanted})
        raise ValidationError(f"the file has {count} parts but the list names {len(wanted)}; "
                              f"missing part {missing[0]}", code="invalid_parts",
                              part_number=missing[0])
    return wanted


def _compare(session: UploadSession, wanted: list[tuple[int, str]],
             stored: dict[int, dict[str, Any]]) -> None:
    """Refuse (``invalid_parts``) a list that does not match what storage holds."""
    for number, etag in wanted:
        have = stored.get(number)
        if have is None:
            raise ValidationError(f"part {number} has not been uploaded yet; upload it, then "
                                  "complete again", code="invalid_parts", part_number=number)
        if _bare(have["etag"]) != _bare(etag):
            raise ValidationError(
                f"the ETag given for part {number} does not match the uploaded part; list the "
                "parts (GET .../parts) and send the ETags storage returned",
                code="invalid_parts", part_number=number)
        expected = part_length(session, number)
        if have["size"] != expected:
            raise ValidationError(
                f"part {number} is {have['size']} bytes but must be {expected}; upload it "
                "again, then complete", code="invalid_parts", part_number=number)


def _bare(etag: str) -> str:
    return etag.strip().strip('"')


async def _abort_quietly(storage: MultipartStorage, key: str, upload_id: str) -> None:
    try:
        await storage.abort_multipart(key, upload_id)
    except Exception:
        pass


__all__ = [
    "MultipartSession",
    "abort_multipart_upload",
    "complete_multipart_upload",
    "initiate_multipart_upload",
    "list_uploaded_parts",
    "plan_parts",
    "sign_multipart_part",
    "sign_multipart_parts",
]
