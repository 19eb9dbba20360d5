"""A storage adapter for S3 and S3-compatible services (R2, MinIO, moto) on aiobotocore.

Import it explicitly (``from rindle.storage.s3 import S3Storage``); it needs the ``rindle[s3]``
extra. One aiobotocore client per runtime, opened in ``open()`` and closed in ``close()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio

from ..errors import (
    ConfigurationError,
    DeliveryUnsupported,
    FileTooLarge,
    NotFound,
    ObjectNotFound,
    RindleError,
    StorageError,
    ValidationError,
)
from .append import Appended, AppendState
from .base import Capability, ObjectInfo, ObjectListing, StorageContext, UploadTicket
from .content_disposition import content_disposition

try:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    _MISSING: ImportError | None = _exc
else:
    _MISSING = None

if TYPE_CHECKING:
    from aiobotocore.client import AioBaseClient

MiB = 1024 * 1024
#: S3's highest part number (rindle.upload.multipart plans parts within S3's limits).
MAX_PARTS = 10_000
#: The part size of server-side writes; a body that fits in one part is one PUT.
WRITE_PART_SIZE = 8 * MiB
#: SigV4 presigned URLs live at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
#: S3 returns at most 1000 keys per ListObjectsV2 call.
LIST_PAGE_SIZE = 1000
#: CopyObject copies at most 5 GiB; ``move`` copies larger objects part by part.
COPY_LIMIT = 5 * 1024 * MiB
#: S3's smallest part (all but the last); tus appends keep a shorter tail as an object.
MIN_PART = 5 * MiB
#: The part size of tus appends when the upload's size allows it.
APPEND_PART_SIZE = 8 * MiB
#: The part size of those copies, and how many parts are copied at once.
COPY_PART_SIZE = 512 * MiB
COPY_CONCURRENCY = 4

_ADDRESSING = ("auto", "path", "virtual")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_BAD_PARTS_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_CHECKSUM_PARAMS = {"sha256": ("ChecksumSHA256", "x-amz-checksum-sha256"),
                    "md5": ("ContentMD5", "Content-MD5")}
# What S3-compatible services answer when they don't know x-amz-checksum-algorithm.
_NO_CHECKSUM_CODES = frozenset({"NotImplemented", "InvalidArgument", "InvalidRequest"})
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


class S3Storage:
    """Objects live in one S3 bucket (optionally under ``key_prefix``); clients upload straight
    to S3 with presigned PUTs or presigned multipart parts, and read through presigned GETs.

    Credentials come from the standard AWS chain (environment, shared config, instance or
    task role) unless ``access_key_id``/``secret_access_key`` are given; they never appear in
    ``repr`` or in error messages. ``endpoint_url`` points at an S3-compatible service;
    ``public_base_url`` is the CDN (or bucket website) that serves public profiles.
    ``max_attempts`` counts botocore's tries per call (standard retry mode).

    A presigned PUT binds Content-Type *and* Content-Length, so S3 itself refuses another type
    or size. The client sends the ticket's ``Content-Type`` header; ``Content-Length`` is set by
    every HTTP client (browsers' fetch/XHR included) from the body and is not listed.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PRESIGNED_PUT, Capability.PRESIGNED_POST, Capability.HEAD,
         Capability.SIGNED_URL, Capability.MULTIPART_UPLOAD, Capability.TUS_UPLOAD}
    )

    def __init__(
        self,
        *,
        bucket: str,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        key_prefix: str = "",
        public_base_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_attempts: int = 3,
    ) -> None:
        if _MISSING is not None:
            raise RuntimeError(
                "S3Storage needs aiobotocore, which is not installed: "
                "pip install 'rindle[s3]'"
            ) from _MISSING
        if not bucket:
            raise ConfigurationError("S3Storage needs a bucket name", code="invalid_storage")
        if addressing_style not in _ADDRESSING:
            raise ConfigurationError(
                f"addressing_style must be one of {', '.join(_ADDRESSING)}, "
                f"not {addressing_style!r}", code="invalid_storage")
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigurationError(
                "give both access_key_id and secret_access_key, or neither (to use the "
                "standard AWS credential chain)", code="invalid_storage")
        prefix = key_prefix.strip("/")
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self.addressing_style = addressing_style
        self.key_prefix = f"{prefix}/" if prefix else ""
        self.public_base_url = public_base_url
        self.max_attempts = max(1, int(max_attempts))
        self._credentials = (access_key_id, secret_access_key, session_token)
        self._stack: AsyncExitStack | None = None
        self._client: AioBaseClient | None = None
        self._page_size = LIST_PAGE_SIZE
        self._copy_limit = COPY_LIMIT
        self._copy_part_size = COPY_PART_SIZE

    def __repr__(self) -> str:
        return (f"S3Storage(bucket={self.bucket!r}, region={self.region!r}, "
                f"endpoint_url={self.endpoint_url!r}, key_prefix={self.key_prefix!r})")

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, context: StorageContext) -> None:
        if self._client is not None:
            return
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": self.addressing_style},
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            # S3-compatible services (R2, MinIO, older gateways) reject the newer default
            # checksum headers; send checksums only where S3 requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        access_key, secret_key, token = self._credentials
        stack = AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(
                AioSession().create_client(
                    "s3", region_name=self.region, endpoint_url=self.endpoint_url,
                    aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                    aws_session_token=token, config=config,
                )
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def _c(self) -> AioBaseClient:
        if self._client is None:
            raise ConfigurationError(
                "S3Storage is not open: the runtime must call `await storage.open(context)` "
                "first (Rindle does it in connect()/lifespan)", code="storage_not_open")
        return self._client

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageError("the storage key is not a safe relative key",
                               code="invalid_storage_key")
        return self.key_prefix + key

    # -- reading ---------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        with _s3_errors("HeadObject", key):
            try:
                r = await self._c().head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    return None
                raise
        return ObjectInfo(key=key, size=int(r["ContentLength"]), etag=r.get("ETag"),
                          content_type=r.get("ContentType"), modified_at=r.get("LastModified"))

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError("start and length must not be negative")
        if length == 0:
            return b""
        with _s3_errors("GetObject", key):
            try:
                r = await self._c().get_object(Bucket=self.bucket, Key=self._key(key),
                                               Range=f"bytes={start}-{start + length - 1}")
            except ClientError as exc:
                if _code(exc) == "InvalidRange":
                    return b""  # start is at or past the end
                raise
            async with r["Body"] as body:
                data: bytes = await body.read()
        return data[:length]

    async def stream(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        if end is not None and end < start:
            return
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        with _s3_errors("GetObject", key):
            try:
                r = await self._c().get_object(**params)
            except ClientError as exc:
                if _code(exc) == "InvalidRange":
                    return
                raise
            async with r["Body"] as body:
                async for chunk in body.iter_chunks(chunk_size):
                    if chunk:
                        yield chunk

    # -- writing ---------------------------------------------------------------------------

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> ObjectInfo:
        """Stream ``chunks`` to S3 holding at most one 8 MiB part in memory.

        A body that fits in one part is a single PutObject; a larger one becomes a multipart
        upload, aborted on any error, cancellation or overflow so nothing is left behind.
        """
        object_key = self._key(key)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        buf = io.BytesIO()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                # Checked before buffering, so an oversized body is never held or sent whole.
                if max_bytes is not None and total > max_bytes:
                    raise FileTooLarge(f"the file is larger than the {max_bytes}-byte limit",
                                       max_bytes=max_bytes)
                view = memoryview(chunk)
                while view:
                    if buf.tell() == WRITE_PART_SIZE:  # full, and more is coming: send it
                        if upload_id is None:
                            upload_id = await self._create(object_key, extra, key)
                        parts.append(await self._upload_part(object_key, upload_id,
                                                             len(parts) + 1, buf, key))
                        buf = io.BytesIO()
                    room = WRITE_PART_SIZE - buf.tell()
                    buf.write(view[:room])
                    view = view[room:]
            buf.seek(0)
            if upload_id is None:
                with _s3_errors("PutObject", key):
                    r = await self._c().put_object(Bucket=self.bucket, Key=object_key,
                                                   Body=buf, **extra)
            else:
                parts.append(await self._upload_part(object_key, upload_id, len(parts) + 1,
                                                     buf, key))
                with _s3_errors("CompleteMultipartUpload", key):
                    r = await self._c().complete_multipart_upload(
                        Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                        MultipartUpload={"Parts": parts})
                upload_id = None
        except BaseException:
            if upload_id is not None:
                # Shielded: a cancelled write must still take its parts away.
                with anyio.CancelScope(shield=True):
                    await self._abort_quietly(object_key, upload_id)
            raise
        return ObjectInfo(key=key, size=total, etag=r.get("ETag"), content_type=content_type,
                          modified_at=datetime.now(UTC))

    async def _create(self, object_key: str, extra: dict[str, Any], key: str) -> str:
        with _s3_errors("CreateMultipartUpload", key):
            r = await self._c().create_multipart_upload(Bucket=self.bucket, Key=object_key,
                                                        **extra)
        return str(r["UploadId"])

    async def _upload_part(self, object_key: str, upload_id: str, number: int,
                           buf: io.BytesIO, key: str) -> dict[str, Any]:
        buf.seek(0)
        with _s3_errors("UploadPart", key):
            # A file-like body is sent in small pieces, so the part is never copied whole.
            r = await self._c().upload_part(Bucket=self.bucket, Key=object_key,
                                            UploadId=upload_id, PartNumber=number, Body=buf)
        return {"PartNumber": number, "ETag": r["ETag"]}

    async def _abort_quietly(self, object_key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            await self._c().abort_multipart_upload(Bucket=self.bucket, Key=object_key,
                                                   UploadId=upload_id)

    async def delete(self, key: str) -> bool:
        if await self.head(key) is None:
            return False
        with _s3_errors("DeleteObject", key):
            await self._c().delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    async def move(self, source: str, dest: str) -> ObjectInfo:
        """Copy ``source`` to ``dest`` inside S3, then delete ``source``.

        One CopyObject up to 5 GiB, UploadPartCopy above; every request is pinned to the
        source's ETag, so an object replaced mid-copy fails the move (a retryable
        StorageError) instead of mixing two uploads. S3 computes the SHA-256 of what it
        copies, which becomes the checksum (``sha256:<hex>``); part copies and services
        without checksums give ``etag:<etag>``. Idempotent: an existing ``dest`` is kept.
        """
        done = await self._head_checksum(dest)
        if done is None:
            src = await self.head(source)
            if src is None:
                raise ObjectNotFound("there is no stored object under this key")
            if src.size <= self._copy_limit:
                done = await self._copy(source, dest, src)
            else:
                done = await self._copy_parts(source, dest, src)
        await self.delete(source)
        return done

    async def _head_checksum(self, key: str) -> ObjectInfo | None:
        with _s3_errors("HeadObject", key):
            try:
                r = await self._c().head_object(Bucket=self.bucket, Key=self._key(key),
                                                ChecksumMode="ENABLED")
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    return None
                raise
        return ObjectInfo(key=key, size=int(r["ContentLength"]), etag=r.get("ETag"),
                          content_type=r.get("ContentType"), modified_at=r.get("LastModified"),
                          checksum=_checksum(r.get("ChecksumSHA256"), r.get("ETag")))

    async def _copy(self, source: str, dest: str, src: ObjectInfo) -> ObjectInfo:
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": self._key(dest),
            "CopySource": {"Bucket": self.bucket, "Key": self._key(source)},
            "MetadataDirective": "COPY", "ChecksumAlgorithm": "SHA256"}
        if src.etag:
            params["CopySourceIfMatch"] = src.etag
        with _s3_errors("CopyObject", dest):
            try:
                r = await self._c().copy_object(**params)
            except ClientError as exc:
                if _code(exc) not in _NO_CHECKSUM_CODES:
                    raise
                del params["ChecksumAlgorithm"]
                r = await self._c().copy_object(**params)
        result = r.get("CopyObjectResult", {})
        return ObjectInfo(key=dest, size=src.size, etag=result.get("ETag"),
                          content_type=src.content_type,
                          modified_at=result.get("LastModified") or datetime.now(UTC),
                          checksum=_checksum(result.get("ChecksumSHA256"), result.get("ETag")))

    async def _copy_parts(self, source: str, dest: str, src: ObjectInfo) -> ObjectInfo:
        extra: dict[str, Any] = {"ContentType": src.content_type} if src.content_type else {}
        object_key = self._key(dest)
        upload_id = await self._create(object_key, extra, dest)
        size = self._copy_part_size
        slots = asyncio.Semaphore(COPY_CONCURRENCY)

        async def part(number: int, start: int) -> dict[str, Any]:
            end = min(start + size, src.size) - 1
            params: dict[str, Any] = {
                "Bucket": self.bucket, "Key": object_key, "UploadId": upload_id,
                "PartNumber": number, "CopySourceRange": f"bytes={start}-{end}",
                "CopySource": {"Bucket": self.bucket, "Key": self._key(source)}}
            if src.etag:
                params["CopySourceIfMatch"] = src.etag
            async with slots:
                with _s3_errors("UploadPartCopy", dest):
                    r = await self._c().upload_part_copy(**params)
            return {"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]}

        try:
            parts = await asyncio.gather(*[part(n, start) for n, start in
                                           enumerate(range(0, src.size, size), 1)])
            with _s3_errors("CompleteMultipartUpload", dest):
                r = await self._c().complete_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                    MultipartUpload={"Parts": list(parts)})
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._abort_quietly(object_key, upload_id)
            raise
        return ObjectInfo(key=dest, size=src.size, etag=r.get("ETag"),
                          content_type=src.content_type, modified_at=datetime.now(UTC),
                          checksum=_checksum(None, r.get("ETag")))

    # -- appending (tus) ---------------------------------------------------------------------

    async def append_start(self, key: str, *, content_type: str | None, length: int | None,
                           max_length: int) -> AppendState:
        """A multipart upload under ``key``. Its part size fits ``max_length`` (or the
        declared length) in S3's 10,000 parts."""
        bound = length if length is not None else max_length
        part_size = max(APPEND_PART_SIZE, -(-bound // MAX_PARTS))
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        upload_id = await self._create(self._key(key), extra, key)
        return {"upload_id": upload_id, "part_size": part_size, "parts": [], "tail": None}

    async def append(self, key: str, state: AppendState, offset: int,
                     chunks: AsyncIterable[bytes], *, limit: int | None, length: int | None,
                     durable: bool = True) -> Appended:
        """Cut the stream into parts as it arrives (one part in memory at a time). What is
        left at the end is the last part when it completes ``length``; otherwise, shorter
        than S3's 5 MiB minimum, it is kept as a *tail object* in the bucket (as tusd's
        s3store does) and read back in front of the next request's bytes: no machine's disk
        holds it, so any process can take the next request."""
        upload_id, part_size = str(state["upload_id"]), int(state["part_size"])
        parts: list[dict[str, Any]] = list(state["parts"])
        tail: dict[str, Any] | None = state.get("tail")
        buf = bytearray()
        if tail:
            buf += await self.read_range(str(tail["key"]), 0, int(tail["size"]))
        object_key = self._key(key)
        taken = 0
        async for chunk in chunks:
            if not chunk:
                continue
            taken += len(chunk)
            if limit is not None and taken > limit:
                raise FileTooLarge(f"the upload is larger than its declared length "
                                   f"({limit} more bytes were allowed)", max_bytes=limit)
            buf += chunk
            while len(buf) >= part_size:
                parts.append(await self._append_part(object_key, upload_id, len(parts) + 1,
                                                     bytes(buf[:part_size]), key))
                del buf[:part_size]
        new_tail: dict[str, Any] | None = None
        final = length is not None and offset + taken == length
        if buf and (final or len(buf) >= MIN_PART):
            parts.append(await self._append_part(object_key, upload_id, len(parts) + 1,
                                                 bytes(buf), key))
        elif buf:
            # A new name each time: until the caller records this state, the old tail is
            # still the truth (a retry reads it again).
            new_tail = {"key": f"{key}.tail-{offset + taken}", "size": len(buf)}
            with _s3_errors("PutObject", key):
                await self._c().put_object(Bucket=self.bucket, Key=self._key(new_tail["key"]),
                                           Body=bytes(buf))
        garbage = (str(tail["key"]),) if tail and (new_tail is None
                                                  or new_tail["key"] != tail["key"]) else ()
        return Appended(offset=offset + taken,
                        state={**state, "parts": parts, "tail": new_tail}, garbage=garbage)

    async def _append_part(self, object_key: str, upload_id: str, number: int, data: bytes,
                           key: str) -> dict[str, Any]:
        with _s3_errors("UploadPart", key):
            r = await self._c().upload_part(Bucket=self.bucket, Key=object_key,
                                            UploadId=upload_id, PartNumber=number, Body=data)
        return {"part_number": number, "etag": str(r["ETag"]), "size": len(data)}

    async def append_discard(self, key: str, before: AppendState, offset: int,
                             after: Appended) -> None:
        # Parts past the recorded ones are overwritten by the next append (same numbers);
        # only a tail object made for the dropped state must go.
        tail = after.state.get("tail")
        if tail and tail != before.get("tail"):
            await self.delete(str(tail["key"]))

    async def append_finish(self, key: str, state: AppendState) -> None:
        await self.complete_multipart(key, str(state["upload_id"]), state["parts"])
        tail = state.get("tail")
        if tail:
            await self.delete(str(tail["key"]))

    async def append_abort(self, key: str, state: AppendState) -> None:
        if state.get("upload_id"):
            await self._abort_quietly(self._key(key), str(state["upload_id"]))
        tail = state.get("tail")
        if tail:
            await self.delete(str(tail["key"]))

    async def append_concat(self, key: str, sources: Sequence[str], *,
                            content_type: str | None) -> None:
        """Part copies inside S3 when every source but the last is at least 5 MiB (what
        tus-js-client's parallel uploads give a large file); else one streamed write."""
        infos = [await self.head(source) for source in sources]
        if any(info is None for info in infos):
            raise ObjectNotFound("a part of the concatenated upload is missing")
        sizes = [info.size for info in infos if info is not None]
        if len(sources) > 1 and all(size >= MIN_PART for size in sizes[:-1]):
            await self._concat_parts(key, sources, content_type)
            return

        async def joined() -> AsyncIterator[bytes]:
            for source in sources:
                async for chunk in self.stream(source, chunk_size=1024 * 1024):
                    yield chunk

        await self.write(key, joined(), content_type=content_type)

    async def _concat_parts(self, key: str, sources: Sequence[str],
                            content_type: str | None) -> None:
        object_key = self._key(key)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        upload_id = await self._create(object_key, extra, key)
        try:
            parts = []
            for number, source in enumerate(sources, 1):
                with _s3_errors("UploadPartCopy", key):
                    r = await self._c().upload_part_copy(
                        Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": self._key(source)})
                parts.append({"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]})
            with _s3_errors("CompleteMultipartUpload", key):
                await self._c().complete_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._abort_quietly(object_key, upload_id)
            raise

    # -- listing ---------------------------------------------------------------------------

    async def list_keys(self, prefix: str = "") -> AsyncIterator[ObjectListing]:
        """Every object under ``key_prefix + prefix``, one ListObjectsV2 page at a time.

        Keys come back without ``key_prefix``, as the other methods take them; "folder"
        markers (keys ending in ``/``) that consoles create are skipped. Objects of
        multipart uploads still in progress do not exist yet, so they are never listed.
        """
        full = self.key_prefix + prefix
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full,
                                  "MaxKeys": self._page_size}
        while True:
            with _s3_errors("ListObjectsV2", prefix):
                page = await self._c().list_objects_v2(**params)
            for obj in page.get("Contents", []):
                key = str(obj["Key"])[len(self.key_prefix):]
                if not key or key.endswith("/") or key.startswith("/") or "\x00" in key:
                    continue
                modified: datetime = obj["LastModified"]
                yield ObjectListing(key=key, size=int(obj.get("Size", 0)),
                                    modified_at=modified.astimezone(UTC))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token

    # -- URLs --------------------------------------------------------------------------------

    async def presign_put(
        self, key: str, *, content_type: str, byte_size: int, expires_in: int, session_id: str,
        checksum: tuple[str, str] | None = None,
    ) -> UploadTicket:
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        if not content_type:
            raise ValueError("content_type is required for a presigned PUT")
        ttl = _ttl(expires_in)
        # Taken before signing, so the advertised expiry is never later than the URL's own.
        expires_at = datetime.fromtimestamp(int(time.time()) + ttl, tz=UTC)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key),
                                  "ContentType": content_type, "ContentLength": byte_size}
        headers = {"Content-Type": content_type}
        if checksum is not None:
            # Signed, so S3 refuses a body with another digest (BadDigest), and a client can't
            # drop the header: the signature covers it.
            param, header = _CHECKSUM_PARAMS[checksum[0]]
            params[param] = checksum[1]
            headers[header] = checksum[1]
        with _s3_errors("PresignPutObject", key):
            url = await self._c().generate_presigned_url("put_object", Params=params,
                                                         ExpiresIn=ttl)
        return UploadTicket(method="PUT", url=url, headers=headers, expires_at=expires_at)

    async def presign_post(self, key: str, *, content_type: str, min_size: int, max_size: int,
                           expires_in: int) -> dict[str, Any]:
        """An S3 POST policy for ``key``: exactly this Content-Type, a size in the range.

        Returns ``{"url", "fields"}`` for a browser form upload (Uppy's single request).
        """
        with _s3_errors("PresignPostObject", key):
            post: dict[str, Any] = await self._c().generate_presigned_post(
                Bucket=self.bucket, Key=self._key(key), Fields={"Content-Type": content_type},
                Conditions=[{"Content-Type": content_type},
                            ["content-length-range", min_size, max_size]],
                ExpiresIn=_ttl(expires_in))
        return {"url": post["url"], "fields": dict(post["fields"])}

    async def signed_url(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: str = "inline",
    ) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": content_disposition(disposition, filename),
        }
        if content_type:
            params["ResponseContentType"] = content_type
        with _s3_errors("PresignGetObject", key):
            url: str = await self._c().generate_presigned_url(
                "get_object", Params=params, ExpiresIn=_ttl(expires_in))
        return url

    def public_url(self, key: str) -> str:
        if self.public_base_url is None:
            raise DeliveryUnsupported(
                "this S3Storage has no public URL: pass public_base_url= (a CDN or the "
                "bucket's public endpoint), or keep the profile private so Rindle signs URLs")
        path = quote(self._key(key), safe="/-_.~")
        return f"{self.public_base_url.rstrip('/')}/{path}"

    # -- multipart primitives (used by rindle.upload.multipart) ---------------------------

    async def create_multipart(self, key: str, content_type: str | None) -> str:
        """Start a multipart upload under ``key``; returns S3's upload id (keep it private)."""
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        return await self._create(self._key(key), extra, key)

    async def presign_part(self, key: str, upload_id: str, part_number: int, *,
                           expires_in: int, content_length: int | None = None) -> str:
        """A presigned PUT for one part; with ``content_length`` S3 refuses any other size."""
        if not 1 <= part_number <= MAX_PARTS:
            raise ValidationError(f"part numbers run from 1 to {MAX_PARTS}",
                                  code="invalid_part_number")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key),
                                  "UploadId": upload_id, "PartNumber": part_number}
        if content_length is not None:
            params["ContentLength"] = content_length
        with _s3_errors("PresignUploadPart", key):
            url: str = await self._c().generate_presigned_url(
                "upload_part", Params=params, ExpiresIn=_ttl(expires_in))
        return url

    async def list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """The parts S3 holds so far: ``[{part_number, etag, size}]`` in part order."""
        found: list[dict[str, Any]] = []
        paginator = self._c().get_paginator("list_parts")
        with _s3_errors("ListParts", key):
            async for page in paginator.paginate(Bucket=self.bucket, Key=self._key(key),
                                                 UploadId=upload_id):
                for part in page.get("Parts", []):
                    found.append({"part_number": int(part["PartNumber"]),
                                  "etag": str(part["ETag"]), "size": int(part["Size"])})
        found.sort(key=lambda p: p["part_number"])
        return found

    async def complete_multipart(self, key: str, upload_id: str,
                                 parts: Sequence[dict[str, Any]]) -> None:
        """Join ``parts`` (``{part_number, etag}``, ascending) into the object under ``key``."""
        listed = [{"PartNumber": int(p["part_number"]), "ETag": _quoted(str(p["etag"]))}
                  for p in parts]
        with _s3_errors("CompleteMultipartUpload", key):
            await self._c().complete_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id,
                MultipartUpload={"Parts": listed})

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort the upload and drop its parts; NotFound when there is no such upload."""
        with _s3_errors("AbortMultipartUpload", key):
            await self._c().abort_multipart_upload(Bucket=self.bucket, Key=self._key(key),
                                                   UploadId=upload_id)

    async def list_multipart_uploads(self, key: str | None = None) -> list[str]:
        """Upload ids of unfinished multipart uploads (under ``key``, or the whole prefix)."""
        prefix = self._key(key) if key else self.key_prefix
        ids: list[str] = []
        paginator = self._c().get_paginator("list_multipart_uploads")
        with _s3_errors("ListMultipartUploads", key or ""):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                ids.extend(str(u["UploadId"]) for u in page.get("Uploads", [])
                           if key is None or u["Key"] == prefix)
        return ids


# -- helpers ---------------------------------------------------------------------------------


def _ttl(expires_in: int) -> int:
    return max(1, min(int(expires_in), MAX_PRESIGN_SECONDS))


def _checksum(sha256_b64: str | None, etag: str | None) -> str | None:
    """``sha256:<hex>`` from S3's base64 full-object checksum, else ``etag:<etag>``.

    A composite checksum (``...-N``, of a multipart object) is not the content's SHA-256,
    so it falls back to the ETag."""
    if sha256_b64 and "-" not in sha256_b64:
        with contextlib.suppress(ValueError):
            return "sha256:" + base64.b64decode(sha256_b64, validate=True).hex()
    return f"etag:{etag.strip(chr(34))}" if etag else None


def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag.startswith('"') else f'"{etag.strip(chr(34))}"'


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _translate(exc: BaseException, operation: str, key: str) -> RindleError:
    """A Rindle error for a botocore/transport failure. Only the operation, the key and S3's
    error code are shown: never a URL, a credential or botocore's own message."""
    if isinstance(exc, ClientError):
        code = _code(exc) or str(_status(exc))
        if code == "NoSuchUpload":
            return NotFound(f"the multipart upload for {key!r} does not exist any more (it was "
                            "completed or aborted); start a new upload",
                            code="multipart_upload_not_found")
        if code in _BAD_PARTS_CODES:
            return ValidationError(
                f"S3 refused the part list ({code}): every part must be uploaded, listed once "
                "in ascending order with the ETag S3 returned for it, and all but the last "
                "must be at least 5 MiB", code="invalid_parts", s3_code=code)
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound("there is no stored object under this key")
        if code == "NoSuchBucket":
            return StorageError(f"S3 {operation} failed: the bucket does not exist",
                                s3_code=code)
        return StorageError(f"S3 {operation} failed with {code}; the operation can be retried "
                            "(check the bucket, credentials and permissions if it persists)",
                            s3_code=code)
    return StorageError(f"S3 {operation} failed: {type(exc).__name__} (S3 could not be "
                        "reached or did not answer in time)")


@contextlib.contextmanager
def _s3_errors(operation: str, key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise _translate(exc, operation, key) from None
    except BotoCoreError as exc:
        raise _translate(exc, operation, key) from None
    except _TRANSPORT_ERRORS as exc:
        raise _translate(exc, operation, key) from None


__all__ = ["S3Storage"]
