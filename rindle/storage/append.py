"""Appendable objects: an upload that arrives in pieces over many requests (tus).

A storage with ``Capability.TUS_UPLOAD`` grows an object at its staging key one request at a
time. What it needs between requests (an S3 multipart upload id, its parts, a short tail)
is an ``AppendState``: a JSON-able dict the caller keeps in the upload session's row, so
any process on any machine can take the next request. The bytes never wait on one
machine's disk.

Every call is given the offset the database recorded, and returns the new offset and
state; only once the caller has recorded them are they true. A call that fails leaves the
old offset and state valid (bytes written past the old offset are dropped by the next
call), so a crash between the write and the record loses nothing that was acknowledged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from .base import Capability, Storage, _require

AppendState = dict[str, Any]


@dataclass(frozen=True)
class Appended:
    """What one append did: the object's new length, the state to record, and objects that
    are garbage once that state is recorded (a replaced tail)."""

    offset: int
    state: AppendState
    garbage: tuple[str, ...] = field(default_factory=tuple)


class AppendableStorage(Storage, Protocol):
    """``Capability.TUS_UPLOAD``: grow an object over many requests (see the module)."""

    async def append_start(self, key: str, *, content_type: str | None,
                           length: int | None, max_length: int) -> AppendState:
        """Prepare an empty upload under ``key``; ``length`` may be unknown yet (tus's
        deferred length), ``max_length`` bounds it (it sizes S3's parts)."""
        ...

    async def append(self, key: str, state: AppendState, offset: int,
                     chunks: AsyncIterable[bytes], *, limit: int | None, length: int | None,
                     durable: bool = True) -> Appended:
        """Write ``chunks`` at ``offset`` (the length the caller recorded). At most
        ``limit`` bytes (``FileTooLarge`` past it, nothing of this call recorded);
        ``length`` is the object's final length when known (bytes reaching it end the
        object); ``durable`` makes them survive a crash of the machine before the call
        returns (fsync on Local; S3 is durable anyway)."""
        ...

    async def append_discard(self, key: str, before: AppendState, offset: int,
                             after: Appended) -> None:
        """Undo an append the caller decided not to record (a checksum mismatch)."""
        ...

    async def append_finish(self, key: str, state: AppendState) -> None:
        """Make the object whole under ``key`` (S3 completes its multipart upload)."""
        ...

    async def append_abort(self, key: str, state: AppendState) -> None:
        """Drop everything of an unfinished upload (terminated or expired)."""
        ...

    async def append_concat(self, key: str, sources: Sequence[str], *,
                            content_type: str | None) -> None:
        """Put the finished objects ``sources``, in order, under ``key`` as one object
        (tus concatenation: parallel partial uploads joined into the final one)."""
        ...


def appendable_storage(storage: Storage) -> AppendableStorage:
    """``storage`` as ``AppendableStorage``; ``UploadUnsupported`` when it can't."""
    return cast(AppendableStorage, _require(storage, Capability.TUS_UPLOAD,
                                            "cannot take resumable tus uploads"))


__all__ = ["AppendState", "AppendableStorage", "Appended", "appendable_storage"]
