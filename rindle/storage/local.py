"""A storage adapter that keeps objects as files under one root directory on local disk."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import hashlib
import os
import secrets
import stat
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, cast

import anyio
import anyio.to_thread

from ..errors import (
    ConfigurationError,
    DeliveryUnsupported,
    FileTooLarge,
    InvalidToken,
    ObjectNotFound,
    StorageError,
)
from .append import Appended, AppendState
from .base import (
    Capability,
    DeliveryGrant,
    ObjectInfo,
    ObjectListing,
    StorageContext,
    TokenSigner,
    UploadGrant,
    UploadTicket,
)

# In-flight writes live here, on the same filesystem as the objects, so os.replace() is atomic.
_TMP_DIR = ".rindle-tmp"
_DISPOSITIONS = frozenset({"inline", "attachment"})
_NOT_A_FILE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
# A concurrent delete() may prune the parent directory between our mkdir() and os.replace().
_REPLACE_ATTEMPTS = 3
# Objects list_keys() reads from disk per trip to a worker thread.
_LIST_PAGE_SIZE = 1000
_CHECKSUM_HEADERS = {"sha256": "x-amz-checksum-sha256", "md5": "Content-MD5"}


#: The grants of Rindle's own upload and delivery routes (kept under their old names).
LocalPutGrant = UploadGrant
LocalGetGrant = DeliveryGrant


class LocalStorage:
    """Objects are files under ``root``; uploads and downloads go through Rindle's own routes.

    Writes land in ``root/.rindle-tmp`` first and are renamed into place once complete and
    fsynced, so readers never see a partial object. The tokens of the upload and delivery
    routes are sealed (encrypted and signed): a URL shows no key, name or type.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PRESIGNED_PUT, Capability.SIGNED_URL, Capability.HEAD, Capability.LOCAL,
         Capability.TUS_UPLOAD}
    )

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        public_base_url: str | None = None,
        create: bool = True,
    ) -> None:
        # Resolved once, so the containment check compares like with like (symlinked /tmp etc.).
        self._root = Path(root).expanduser().resolve()
        self._public_base_url = public_base_url
        self._create = create
        self._context: StorageContext | None = None
        self._page_size = _LIST_PAGE_SIZE

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self._root)!r})"

    @property
    def root(self) -> Path:
        return self._root

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, context: StorageContext) -> None:
        await anyio.to_thread.run_sync(self._prepare_root)
        self._context = context

    async def close(self) -> None:
        self._context = None

    def _prepare_root(self) -> None:
        if self._create:
            self._root.mkdir(parents=True, exist_ok=True)
        elif not self._root.is_dir():
            raise ConfigurationError(
                f"LocalStorage root {str(self._root)!r} does not exist: create it, "
                "or pass create=True",
                code="storage_root_missing",
            )
        (self._root / _TMP_DIR).mkdir(exist_ok=True)

    # -- reading ---------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        return await anyio.to_thread.run_sync(self._head, key)

    def _head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except _NOT_A_FILE:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return _object_info(key, st)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError("start and length must not be negative")
        return await anyio.to_thread.run_sync(self._read_range, key, start, length)

    def _read_range(self, key: str, start: int, length: int) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                f.seek(start)
                return f.read(length)
        except _NOT_A_FILE:
            raise _object_not_found() from None

    async def stream(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        path = await anyio.to_thread.run_sync(self._path, key)
        try:
            f = await anyio.open_file(path, "rb")
        except _NOT_A_FILE:
            raise _object_not_found() from None
        async with f:
            if start:
                await f.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = chunk_size if remaining is None else min(chunk_size, remaining)
                data = await f.read(size)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    # -- writing ---------------------------------------------------------------------------

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> ObjectInfo:
        pending = await self.receive(key, chunks, content_type=content_type,
                                     max_bytes=max_bytes)
        try:
            return await pending.commit()
        finally:
            await pending.discard()

    async def receive(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> PendingWrite:
        """Stream ``chunks`` to a temporary file, fsynced but not yet visible under ``key``.

        The caller decides afterwards whether the object may land: ``commit()`` renames it
        into place, ``discard()`` (always call it, in ``finally``) removes it unless
        committed. The upload route commits only while the upload session, locked in the
        database, still takes bytes, so a body that ends after its session closed stores
        nothing. Exceeding ``max_bytes`` raises ``FileTooLarge`` and keeps nothing.
        """
        final = await anyio.to_thread.run_sync(self._path, key)
        try:
            fp, tmp = await anyio.to_thread.run_sync(self._create_temp)
        except OSError as exc:
            raise _write_failed(exc) from exc
        try:
            await _copy(chunks, anyio.wrap_file(fp), max_bytes)
            try:
                await anyio.to_thread.run_sync(_flush, fp)
            except OSError as exc:
                raise _write_failed(exc) from exc
        except BaseException:
            # Shielded: a cancelled upload must still clean up after itself.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, fp, tmp)
            raise
        return PendingWrite(key, tmp, final, content_type)

    def _create_temp(self) -> tuple[IO[bytes], Path]:
        tmp_dir = self._root / _TMP_DIR
        tmp_dir.mkdir(exist_ok=True)
        tmp = tmp_dir / f"{secrets.token_hex(16)}.part"
        # os.open with 0o666 (not mkstemp's 0o600) so the umask decides, as for any other file:
        # a web server serving public_base_url from root must be able to read the object.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o666)
        return os.fdopen(fd, "wb"), tmp

    async def delete(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._delete, key)

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                return False
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        self._prune(path.parent)
        return True

    def _prune(self, parent: Path) -> None:
        while parent != self._root and parent.is_relative_to(self._root):
            try:
                parent.rmdir()
            except OSError:
                # Not empty (or already gone): the prune stops at the first directory in use.
                break
            parent = parent.parent

    async def move(self, source: str, dest: str) -> ObjectInfo:
        """Rename ``source`` to ``dest`` (one atomic rename on the same file system), then
        hash what landed: the checksum is ``sha256:<hex>``."""
        return await anyio.to_thread.run_sync(self._move, source, dest)

    def _move(self, source: str, dest: str) -> ObjectInfo:
        src, dst = self._path(source), self._path(dest)
        if _is_file(dst):
            # A rerun after a crash: the first move stands; only the source may be left.
            with contextlib.suppress(*_NOT_A_FILE):
                src.unlink()
                self._prune(src.parent)
        else:
            try:
                _replace(src, dst)
            except _NOT_A_FILE:
                if not _is_file(src):
                    raise _object_not_found() from None
                raise
            self._prune(src.parent)
        digest = _sha256(dst)
        return replace(_object_info(dest, dst.stat()), checksum=f"sha256:{digest}")

    # -- appending (tus) ---------------------------------------------------------------------

    async def append_start(self, key: str, *, content_type: str | None, length: int | None,
                           max_length: int) -> AppendState:
        """An empty file at ``key``; the state is empty (the file's length is the truth
        the recorded offset is checked against)."""
        await anyio.to_thread.run_sync(self._create_append, key)
        return {}

    def _create_append(self, key: str) -> None:
        # The file's directory entry is made durable at once (a directory fsync), so a
        # durable append's fsync never acknowledges bytes of a file a crash could unname.
        _close_fd(self._open_append(key, 0, True))
        _fsync_dir(self._path(key).parent)

    async def append(self, key: str, state: AppendState, offset: int,
                     chunks: AsyncIterable[bytes], *, limit: int | None, length: int | None,
                     durable: bool = True) -> Appended:
        """Write at ``offset`` in place. Bytes past ``offset`` that no call recorded (a
        request that died after writing) are cut first; ``durable`` fsyncs before
        returning, so an acknowledged offset survives a power cut.

        A body arrives in small chunks (64 KiB from uvicorn); they are gathered into
        ``_APPEND_BATCH`` bytes and each batch is written by one ``pwritev`` in a worker
        thread while the next one is gathered, so the event loop neither blocks on the disk
        nor hops to a thread per chunk. In durable mode each batch's writeback starts as
        soon as it is written (``sync_file_range`` on Linux), so the one fsync at the end
        waits for little more than the last batch.
        """
        fd = await anyio.to_thread.run_sync(self._open_append, key, offset, False)
        out = _Appender(fd, offset, durable)
        written = 0
        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                if limit is not None and written + len(chunk) > limit:
                    await out.drain()
                    await anyio.to_thread.run_sync(os.ftruncate, fd, offset)
                    raise FileTooLarge(f"the upload is larger than its declared length "
                                       f"({limit} more bytes were allowed)", max_bytes=limit)
                batch.append(chunk)
                batched += len(chunk)
                written += len(chunk)
                if batched >= _APPEND_BATCH:
                    await out.write(batch, batched)
                    batch, batched = [], 0
            await out.finish(batch, batched)
        finally:
            await out.close()
        return Appended(offset=offset + written, state=state)

    def _open_append(self, key: str, offset: int, create: bool) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create or not offset
                                                             else 0)
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:
            raise StorageError("the stored part of this upload is gone; start a new upload",
                               code="upload_lost") from None
        try:
            size = os.fstat(fd).st_size
            if size < offset:
                # Only a crash in fast mode (no fsync) loses acknowledged bytes like this.
                raise StorageError(f"the stored upload holds {size} bytes but {offset} were "
                                   "acknowledged; start a new upload", code="upload_lost")
            if size > offset:
                os.ftruncate(fd, offset)
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def append_discard(self, key: str, before: AppendState, offset: int,
                             after: Appended) -> None:
        fd = await anyio.to_thread.run_sync(self._open_append, key, offset, False)
        await anyio.to_thread.run_sync(_close_fd, fd)

    async def append_finish(self, key: str, state: AppendState) -> None:
        return None  # the file is whole already, fsynced by the last durable append

    async def append_abort(self, key: str, state: AppendState) -> None:
        await self.delete(key)

    async def append_concat(self, key: str, sources: Sequence[str], *,
                            content_type: str | None) -> None:
        async def joined() -> AsyncIterator[bytes]:
            for source in sources:
                async for chunk in self.stream(source, chunk_size=1024 * 1024):
                    yield chunk

        await self.write(key, joined(), content_type=content_type)

    # -- listing ---------------------------------------------------------------------------

    async def list_keys(self, prefix: str = "") -> AsyncIterator[ObjectListing]:
        """Every file under ``prefix``, walked a page at a time in a worker thread.

        Symlinks are neither listed nor followed, in-flight writes (``.rindle-tmp``) are
        skipped, and so are names no key could have (``_is_safe_key``). The order is the
        file system's.
        """
        walk = _walk(self._root, prefix)
        try:
            while True:
                page = await anyio.to_thread.run_sync(_take, walk, self._page_size)
                for item in page:
                    yield item
                if len(page) < self._page_size:
                    return
        finally:
            walk.close()  # closes the directory handles of an abandoned walk

    # -- URLs and tokens -------------------------------------------------------------------

    async def presign_put(
        self, key: str, *, content_type: str, byte_size: int, expires_in: int, session_id: str,
        checksum: tuple[str, str] | None = None,
    ) -> UploadTicket:
        context = self._require_context()
        _check_key(key)
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        # Taken before sealing, so the advertised expiry is never later than the token's own.
        expires_at = _utc(int(time.time()) + int(expires_in))
        token = context.sign.seal("local.put", {"s": session_id}, expires_in=expires_in)
        headers = {"Content-Type": content_type}
        if checksum is not None:
            # The route checks the body against the session's checksum; the header is sent
            # for symmetry with S3, so one client works on both.
            headers[_CHECKSUM_HEADERS[checksum[0]]] = checksum[1]
        return UploadTicket(
            method="PUT",
            url=f"{context.router_path}/local/{token}",
            headers=headers,
            expires_at=expires_at,
        )

    async def signed_url(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: str = "inline",
    ) -> str:
        context = self._require_context()
        _check_key(key)
        if disposition not in _DISPOSITIONS:
            raise ValueError("disposition must be 'inline' or 'attachment'")
        payload: dict[str, object] = {
            "k": key,
            "f": filename,
            "t": content_type,
            "d": disposition,
        }
        token = context.sign.seal("local.get", payload, expires_in=expires_in)
        return f"{context.router_path}/files/{token}"

    def local_path(self, key: str) -> Path:
        """The file behind ``key``, for processors that read originals in place.

        Only adapters with ``Capability.LOCAL`` have this; it never creates anything.
        """
        return self._path(key)

    def public_url(self, key: str) -> str:
        if self._public_base_url is None:
            raise DeliveryUnsupported(
                "LocalStorage has no public URL: pass public_base_url= (and serve the storage "
                "root from it), or keep the profile private so Rindle serves signed URLs"
            )
        _check_key(key)
        return f"{self._public_base_url.rstrip('/')}/{key}"

    def verify_put_token(self, token: str) -> LocalPutGrant:
        payload = self._signer().unseal("local.put", token)
        session_id = payload.get("s")
        if not isinstance(session_id, str) or not session_id:
            raise _malformed_token()
        return LocalPutGrant(session_id=session_id, expires_at=_token_expiry(payload))

    def verify_get_token(self, token: str) -> LocalGetGrant:
        payload = self._signer().unseal("local.get", token)
        key, filename = payload.get("k"), payload.get("f")
        content_type, disposition = payload.get("t"), payload.get("d")
        if not (
            isinstance(key, str)
            and _is_safe_key(key)
            and (filename is None or isinstance(filename, str))
            and (content_type is None or isinstance(content_type, str))
            and isinstance(disposition, str)
            and disposition in _DISPOSITIONS
        ):
            raise _malformed_token()
        return LocalGetGrant(
            key=key,
            filename=filename,
            content_type=content_type,
            disposition=disposition,
            expires_at=_token_expiry(payload),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _require_context(self) -> StorageContext:
        if self._context is None:
            raise ConfigurationError(
                "LocalStorage is not open: the runtime must call `await storage.open(context)` "
                "before it signs URLs",
                code="storage_not_open",
            )
        return self._context

    def _signer(self) -> TokenSigner:
        return self._require_context().sign

    def _path(self, key: str) -> Path:
        """The file for ``key``; touches the disk (symlinks), so call it from a worker thread."""
        _check_key(key)
        path = (self._root / key).resolve()
        # The lexical check cannot see symlinks, so check where the path really leads.
        if not path.is_relative_to(self._root) or path == self._root:
            raise _invalid_key()
        if path.relative_to(self._root).parts[0] == _TMP_DIR:
            raise _invalid_key()
        return path


def _is_safe_key(key: str) -> bool:
    if not key or ".." in key or "\\" in key or "\x00" in key or key.startswith("/"):
        return False
    parts = key.split("/")
    # Empty and "." segments would let two different keys name the same file.
    return all(part not in ("", ".") for part in parts) and parts[0] != _TMP_DIR


def _check_key(key: str) -> None:
    if not _is_safe_key(key):
        raise _invalid_key()


def _invalid_key() -> StorageError:
    return StorageError(
        "the storage key is not a safe relative path inside the storage root",
        code="invalid_storage_key",
    )


def _object_not_found() -> ObjectNotFound:
    return ObjectNotFound("there is no stored object under this key")


def _malformed_token() -> InvalidToken:
    return InvalidToken("the token is invalid or was tampered with")


def _write_failed(exc: OSError) -> StorageError:
    return StorageError(f"could not write the object to local storage: {exc.strerror or exc}")


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _token_expiry(payload: dict[str, object]) -> datetime:
    exp = payload.get("exp")
    if not isinstance(exp, int):
        raise _malformed_token()
    return _utc(exp)


def _etag(st: os.stat_result) -> str:
    # Cheap and strong enough: any rewrite changes mtime_ns or the inode (os.replace).
    seed = f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}".encode()
    return '"' + hashlib.sha1(seed, usedforsecurity=False).hexdigest()[:32] + '"'


def _object_info(key: str, st: os.stat_result, content_type: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=_etag(st),
        content_type=content_type,
        modified_at=_utc(st.st_mtime_ns / 1e9),
    )


async def _copy(
    chunks: AsyncIterable[bytes], out: anyio.AsyncFile[bytes], max_bytes: int | None
) -> None:
    written = 0
    async for chunk in chunks:
        if not chunk:
            continue
        written += len(chunk)
        # Checked before writing, so an oversized upload never reaches the disk in full.
        if max_bytes is not None and written > max_bytes:
            raise FileTooLarge(
                f"the file is larger than the {max_bytes}-byte limit", max_bytes=max_bytes
            )
        try:
            await out.write(chunk)
        except OSError as exc:
            # Only our own disk errors become StorageError; the producer's errors pass through.
            raise _write_failed(exc) from exc


class PendingWrite:
    """A received body on disk that is not yet an object (see ``LocalStorage.receive``)."""

    __slots__ = ("key", "_tmp", "_final", "_content_type", "_done")

    def __init__(self, key: str, tmp: Path, final: Path, content_type: str | None) -> None:
        self.key = key
        self._tmp = tmp
        self._final = final
        self._content_type = content_type
        self._done = False

    def __repr__(self) -> str:
        return f"PendingWrite(committed={self._done})"

    async def commit(self) -> ObjectInfo:
        """Rename the file into place under its key (atomic); readers see all or nothing."""
        if self._done:
            raise RuntimeError("this write was committed or discarded already")
        try:
            st = await anyio.to_thread.run_sync(_commit, self._tmp, self._final)
        except OSError as exc:
            raise _write_failed(exc) from exc
        self._done = True
        return _object_info(self.key, st, self._content_type)

    async def discard(self) -> None:
        """Remove the file unless it was committed; safe to call more than once."""
        if self._done:
            return
        self._done = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_unlink_quietly, self._tmp)


#: What ``LocalStorage.append`` gathers before one write (one trip to a worker thread).
_APPEND_BATCH = 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the range, don't wait


class _Appender:
    """The writes of one append: one batch at a time in a worker thread, at its offset, while
    the caller gathers the next; the fd is closed only once no write is in flight."""

    __slots__ = ("_fd", "_position", "_durable", "_pending", "_closed")

    def __init__(self, fd: int, position: int, durable: bool) -> None:
        self._fd = fd
        self._position = position
        self._durable = durable
        self._pending: concurrent.futures.Future[None] | None = None
        self._closed = False

    async def write(self, batch: list[bytes], size: int) -> None:
        await self.drain()
        self._pending = _writers().submit(_write_batch, self._fd, batch, self._position,
                                          self._durable)
        self._position += size

    async def drain(self) -> None:
        """Wait for the write in flight; a disk error becomes ``StorageError``."""
        pending = self._pending
        if pending is not None:
            try:
                await asyncio.wrap_future(pending)
            except OSError as exc:
                raise _write_failed(exc) from exc
            finally:
                if pending.done():  # not when cancelled meanwhile: close() waits for it
                    self._pending = None

    async def finish(self, batch: list[bytes], size: int) -> None:
        """The last ``batch`` written, everything fsynced if durable, then the fd closed, in
        one trip to a writer thread."""
        await self.drain()
        self._closed = True
        try:
            # Shielded: a cancelled request must not cancel the job that closes the fd.
            await asyncio.shield(asyncio.wrap_future(_writers().submit(
                _finish_fd, self._fd, self._durable, batch, self._position)))
        except OSError as exc:
            raise _write_failed(exc) from exc
        self._position += size

    async def close(self) -> None:
        """After a failure: close the fd once the write in flight (if any) is done, so a
        later append never races a stale write."""
        if self._closed:
            return
        self._closed = True
        pending, fd = self._pending, self._fd
        if pending is None or pending.done():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close_fd, fd)
            return
        pending.add_done_callback(lambda _: _close_fd(fd))
        with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
            await asyncio.wrap_future(pending)


def _write_batch(fd: int, batch: list[bytes], position: int, durable: bool) -> None:
    size = written = os.pwritev(fd, batch, position)
    total = sum(len(b) for b in batch)
    if written < total:  # a short write (a signal, a full disk): the rest one by one
        rest = memoryview(b"".join(batch))[written:]
        while rest:
            n = os.pwrite(fd, rest, position + written)
            rest, written = rest[n:], written + n
        size = total
    if durable and _sync_file_range is not None:
        _sync_file_range(fd, position, size, _SYNC_FILE_RANGE_WRITE)


def _finish_fd(fd: int, durable: bool, batch: list[bytes], position: int) -> None:
    try:
        if batch:
            _write_batch(fd, batch, position, False)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` (not in ``os``): a hint, so None where it is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_sync_file_range = _load_sync_file_range()
_WRITERS: list[concurrent.futures.ThreadPoolExecutor] = []


def _writers() -> concurrent.futures.ThreadPoolExecutor:
    """The appends' writer threads (each append has at most one write in flight), made on
    first use and afresh in a forked child, which inherits no threads."""
    if not _WRITERS:
        _WRITERS.append(concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="rindle-append"))
    return _WRITERS[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WRITERS.clear)


def _flush(fp: IO[bytes]) -> None:
    fp.flush()
    os.fsync(fp.fileno())
    fp.close()


def _commit(tmp: Path, final: Path) -> os.stat_result:
    _replace(tmp, final)
    return final.stat()


def _replace(src: Path, final: Path) -> None:
    for attempt in range(_REPLACE_ATTEMPTS):
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, final)
            break
        except FileNotFoundError:
            # The parent was pruned between mkdir() and the rename, or src is gone.
            if attempt == _REPLACE_ATTEMPTS - 1 or not src.exists():
                raise
    _fsync_dir(final.parent)


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; some platforms cannot open a directory, which is fine.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _walk(root: Path, prefix: str) -> Generator[ObjectListing, None, None]:
    """Depth first from the deepest directory ``prefix`` names, one directory handle open
    per level, so a directory of a million assets is streamed rather than held."""
    base = prefix.rpartition("/")[0]
    start = root
    if base:
        if not _is_safe_key(base):
            return  # no stored key can start with it
        for part in base.split("/"):
            start = start / part
            if start.is_symlink() or not start.is_dir():
                return
    yield from _walk_dir(start, f"{base}/" if base else "", prefix)


def _walk_dir(directory: Path, key_prefix: str, prefix: str) -> Iterator[ObjectListing]:
    try:
        entries = os.scandir(directory)
    except OSError:
        return  # removed meanwhile (a delete prunes empty directories) or unreadable
    with entries:
        for entry in entries:
            key = key_prefix + entry.name
            if key == _TMP_DIR or not key.startswith(prefix[: len(key)]):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from _walk_dir(Path(entry.path), f"{key}/", prefix)
                    continue
                if not entry.is_file(follow_symlinks=False) or not key.startswith(prefix):
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if _is_safe_key(key):
                yield ObjectListing(key=key, size=st.st_size,
                                    modified_at=_utc(st.st_mtime_ns / 1e9))


def _take(items: Iterator[ObjectListing], n: int) -> list[ObjectListing]:
    page: list[ObjectListing] = []
    for item in items:
        page.append(item)
        if len(page) == n:
            break
    return page


def _discard(fp: IO[bytes], tmp: Path) -> None:
    with contextlib.suppress(OSError):
        fp.close()
    tmp.unlink(missing_ok=True)


__all__ = ["LocalGetGrant", "LocalPutGrant", "LocalStorage", "PendingWrite"]
