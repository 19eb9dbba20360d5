"""A storage adapter for Google Cloud Storage on gcloud-aio-storage, with native resumable sessions.

Import it explicitly (``from rindle.storage.gcs import GCSStorage``); it needs the ``rindle[gcs]``
extra. One aiohttp session per runtime, opened in ``open()`` and closed in ``close()``: the
gcloud-aio client, its token and the few calls written here share it.

gcloud-aio-storage does the JSON API calls (metadata, ranged downloads, simple uploads,
rewrite, delete, list). Written here, each for a reason given where it is: the chunked
resumable upload of a stream (the library's needs a seekable body of known length), the
resumable status query and cancel (the library has neither), and V4 URL signing (the
library's signer fixes the host at import time and always says https, so it can't sign for
an emulator or another endpoint).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio

from ..errors import (
    ConfigurationError,
    FileTooLarge,
    NotFound,
    ObjectNotFound,
    RindleError,
    StorageError,
    ValidationError,
)
from ..logs import get_logger
from .base import Capability, ObjectInfo, ObjectListing, StorageContext, UploadTicket
from .content_disposition import content_disposition

try:
    import aiohttp
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from gcloud.aio.auth import IamClient, Token
    from gcloud.aio.storage import Storage as AioStorage
    from yarl import URL
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    _MISSING: ImportError | None = _exc
else:
    _MISSING = None

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

log = get_logger("rindle.storage.gcs")

KiB = 1024
MiB = 1024 * KiB
#: GCS takes every chunk of a resumable upload but the last in multiples of 256 KiB.
CHUNK_QUANTUM = 256 * KiB
#: The chunk size of server-side writes; a body that fits in one chunk is one simple upload.
WRITE_CHUNK_SIZE = 8 * MiB
#: V4 signed URLs live at most seven days.
MAX_SIGNED_SECONDS = 7 * 24 * 3600
#: GCS returns at most 1000 objects per list call.
LIST_PAGE_SIZE = 1000
#: The JSON API and the signed (XML API) URLs of Google Cloud Storage.
GCS_ENDPOINT = "https://storage.googleapis.com"
#: Objects only: read, write, delete, list. No bucket or ACL changes.
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
_GOOGLE_UPLOAD_ORIGINS = ("https://storage.googleapis.com", "https://www.googleapis.com")
_GONE = frozenset({404, 410, 499})  # 499: GCS's answer on a session cancelled earlier
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


class GCSStorage:
    """Objects live in one GCS bucket (optionally under ``key_prefix``); clients upload with
    V4-signed PUTs or native resumable sessions, and read through V4-signed GETs.

    ``credentials`` is a service-account key: a JSON file's path or its parsed dict. Without
    it the environment decides (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application
    default credentials, or the metadata server on Google Cloud). Signing URLs needs the
    key's private key, or ``service_account_email`` to sign through IAM ``signBlob``
    (metadata-server credentials; the account needs ``iam.serviceAccountTokenCreator`` on
    itself). Keys, tokens and session URIs never appear in ``repr``, logs or errors.

    ``endpoint_url`` points at an emulator or another GCS endpoint (``STORAGE_EMULATOR_HOST``
    does too, and then implies ``anonymous``); ``anonymous=True`` sends no credentials at
    all, as emulators want — pass a generated test key as ``credentials`` to sign URLs there.
    ``public_base_url`` is the CDN that serves public profiles (default
    ``<endpoint>/<bucket>``, for a bucket that grants ``allUsers`` read).

    A signed PUT binds Content-Type *and* Content-Length (and the MD5 a client declared), so
    GCS itself refuses another type, size or body. The client sends the ticket's headers;
    ``Content-Length`` is set by every HTTP client from the body and is not listed.
    ``bind_length_range=True`` also signs ``x-goog-content-length-range`` (GCS answers 400
    to a body outside it), which the ticket then lists: clients must send it, and a bucket's
    CORS policy must allow it.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PRESIGNED_PUT, Capability.HEAD, Capability.SIGNED_URL,
         Capability.RESUMABLE_UPLOAD}
    )

    def __init__(
        self,
        *,
        bucket: str,
        credentials: str | Path | Mapping[str, Any] | None = None,
        endpoint_url: str | None = None,
        anonymous: bool | None = None,
        key_prefix: str = "",
        public_base_url: str | None = None,
        service_account_email: str | None = None,
        bind_length_range: bool = False,
        timeout: float = 60.0,
    ) -> None:
        if _MISSING is not None:
            raise RuntimeError(
                "GCSStorage needs gcloud-aio-storage, which is not installed: "
                "pip install 'rindle[gcs]'"
            ) from _MISSING
        if not bucket or "/" in bucket:
            raise ConfigurationError("GCSStorage needs a bucket name", code="invalid_storage")
        if credentials is not None and not isinstance(credentials, (str, Path, Mapping)):
            raise ConfigurationError(
                "credentials must be the path of a service-account JSON key or its dict",
                code="invalid_storage")
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if endpoint_url is None and emulator:
            endpoint_url = emulator if "://" in emulator else f"http://{emulator}"
            anonymous = True if anonymous is None else anonymous
        root = (endpoint_url or GCS_ENDPOINT).rstrip("/")
        parts = urlsplit(root)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigurationError("endpoint_url must be an http(s) URL such as "
                                     "http://127.0.0.1:9023", code="invalid_storage")
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive", code="invalid_storage")
        prefix = key_prefix.strip("/")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.api_root = root
        self.anonymous = bool(anonymous)
        self.key_prefix = f"{prefix}/" if prefix else ""
        self.public_base_url = public_base_url
        self.bind_length_range = bind_length_range
        self.timeout = float(timeout)
        self._credentials = credentials
        self._service_account_email = service_account_email
        self._upload_origins = frozenset(
            {f"{parts.scheme}://{parts.netloc}"}
            | (set(_GOOGLE_UPLOAD_ORIGINS) if endpoint_url is None else set()))
        self._session: aiohttp.ClientSession | None = None
        self._client: AioStorage | None = None
        self._token: Token | None = None
        self._iam: IamClient | None = None
        self._signer: tuple[str | None, RSAPrivateKey | None] = (None, None)
        self._timeouts: Any = None
        self._page_size = LIST_PAGE_SIZE
        self._chunk_size = WRITE_CHUNK_SIZE

    def __repr__(self) -> str:
        return (f"GCSStorage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
                f"key_prefix={self.key_prefix!r}, anonymous={self.anonymous!r})")

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, context: StorageContext) -> None:
        if self._session is not None:
            return
        service_file = self._service_file()
        # No total timeout: a stream of a large object may take long; a stalled connect or
        # read still fails after ``timeout`` seconds.
        self._timeouts = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                               sock_read=self.timeout)
        session = aiohttp.ClientSession(timeout=self._timeouts)
        # gcloud-aio's annotations name requests.Session (its gcloud-rest twin shares them).
        shared: Any = session
        try:
            try:
                token = Token(service_file=service_file, session=shared, scopes=SCOPES)
            except (OSError, ValueError, KeyError):
                raise ConfigurationError(
                    "the GCS credentials could not be used: give a service-account JSON key "
                    "(credentials=) or set GOOGLE_APPLICATION_CREDENTIALS to one",
                    code="invalid_storage") from None
            self._signer = _signing_identity(token.service_data, self._service_account_email)
            # api_is_dev is given explicitly: with an api_root alone the library sends no
            # credentials at all.
            self._client = AioStorage(token=token, session=shared, api_root=self.api_root,
                                      api_is_dev=self.anonymous)
        except BaseException:
            await session.close()
            raise
        self._token = token
        self._session = session

    async def close(self) -> None:
        session, self._session, self._client, self._token = self._session, None, None, None
        iam, self._iam = self._iam, None
        self._signer = (None, None)
        if iam is not None:
            await iam.close()  # its session is ours: this only drops its token
        if session is not None:
            await session.close()

    def _service_file(self) -> IO[str] | None:
        """The service-account key as gcloud-aio's Token reads it (``None``: the environment).

        Read here, so a missing or malformed file is a clear error (gcloud-aio would fall back
        to the metadata server in silence), naming the path but never the contents."""
        creds = self._credentials
        if creds is None:
            return io.StringIO("{}") if self.anonymous else None
        if isinstance(creds, Mapping):
            data = dict(creds)
        else:
            try:
                data = json.loads(Path(creds).read_text(encoding="utf-8"))
            except OSError:
                raise ConfigurationError(f"cannot read the GCS credentials file {str(creds)!r}",
                                         code="invalid_storage") from None
            except ValueError:
                raise ConfigurationError(f"the GCS credentials file {str(creds)!r} is not JSON",
                                         code="invalid_storage") from None
        if not isinstance(data, dict) or not data.get("type"):
            raise ConfigurationError("the GCS credentials are not a service-account JSON key "
                                     "(no 'type' field)", code="invalid_storage")
        return io.StringIO(json.dumps(data))

    def _c(self) -> AioStorage:
        if self._client is None:
            raise ConfigurationError(
                "GCSStorage is not open: the runtime must call `await storage.open(context)` "
                "first (Rindle does it in connect()/lifespan)", code="storage_not_open")
        return self._client

    def _s(self) -> aiohttp.ClientSession:
        self._c()
        assert self._session is not None
        return self._session

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageError("the storage key is not a safe relative key",
                               code="invalid_storage_key")
        return self.key_prefix + key

    # -- reading ---------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        meta = await self._metadata(self._key(key))
        return None if meta is None else _info(key, meta)

    async def _metadata(self, name: str) -> dict[str, Any] | None:
        with _gcs_errors("GetObjectMetadata", name):
            try:
                meta: dict[str, Any] = await self._c().download_metadata(
                    self.bucket, name, timeout=self._timeouts)
            except aiohttp.ClientResponseError as exc:
                if exc.status == 404:
                    return None
                raise
        return meta

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError("start and length must not be negative")
        if length == 0:
            return b""
        with _gcs_errors("GetObject", key):
            try:
                data: bytes = await self._c().download(
                    self.bucket, self._key(key), timeout=self._timeouts,
                    headers={"Range": f"bytes={start}-{start + length - 1}"})
            except aiohttp.ClientResponseError as exc:
                if exc.status == 416:
                    return b""  # start is at or past the end
                raise
        return data[:length]

    async def stream(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        if end is not None and end < start:
            return
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        with _gcs_errors("GetObject", key):
            try:
                response = await self._c().download_stream(
                    self.bucket, self._key(key), headers=headers, timeout=self._timeouts)
            except aiohttp.ClientResponseError as exc:
                if exc.status == 416:
                    return
                raise
            async with response as body:
                async for chunk in body.content.iter_chunked(chunk_size):
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
        """Stream ``chunks`` to GCS holding at most one 8 MiB chunk (plus one incoming piece).

        A body that fits in one chunk is a single simple upload; a larger one becomes a
        resumable session filled chunk by chunk. The object appears only when the last byte
        is in; any error, cancellation or overflow cancels the session, leaving nothing.
        """
        name = self._key(key)
        size = self._chunk_size
        buf = bytearray()
        uri: str | None = None
        total = offset = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                # Checked before buffering, so an oversized body is never held or sent whole.
                if max_bytes is not None and total > max_bytes:
                    raise FileTooLarge(f"the file is larger than the {max_bytes}-byte limit",
                                       max_bytes=max_bytes)
                buf += chunk
                while len(buf) > size:  # a full chunk, and more is coming: send it
                    if uri is None:
                        uri = await self._initiate(name, key, content_type)
                    committed, _ = await self._put_chunk(uri, offset, _head(buf, size), None,
                                                         key)
                    del buf[:committed - offset]
                    offset = committed
            if uri is None and buf:
                with _gcs_errors("UploadObject", key):
                    resource = await self._c().upload(
                        self.bucket, name, bytes(buf), force_resumable_upload=False,
                        content_type=content_type or "application/octet-stream",
                        timeout=self._timeouts)
            else:
                # An empty body also goes as a session: gcp-storage-emulator drops the
                # connection on an empty simple upload, and GCS takes either.
                if uri is None:
                    uri = await self._initiate(name, key, content_type)
                result: dict[str, Any] | None = None
                while result is None:
                    committed, result = await self._put_chunk(uri, offset, bytes(buf), total, key)
                    del buf[:committed - offset]
                    offset = committed
                resource, uri = result, None
        except BaseException:
            if uri is not None:
                # Shielded: a cancelled write must still drop its session.
                with anyio.CancelScope(shield=True):
                    await self._cancel_quietly(uri)
            raise
        info = _info(key, resource)
        return ObjectInfo(key=key, size=total, etag=info.etag,
                          content_type=info.content_type or content_type,
                          modified_at=info.modified_at or datetime.now(UTC))

    async def _initiate(self, name: str, key: str, content_type: str | None, *,
                        byte_size: int | None = None, origin: str | None = None) -> str:
        """Open a resumable session for the object ``name``: its URI (a bearer credential)."""
        body: dict[str, str] = {"name": name}
        headers = {**await self._auth(), "Content-Type": "application/json; charset=UTF-8"}
        if content_type:
            body["contentType"] = content_type
            headers["X-Upload-Content-Type"] = content_type
        if byte_size is not None:
            headers["X-Upload-Content-Length"] = str(byte_size)
        if origin:
            headers["Origin"] = origin  # GCS then answers the browser's chunks with CORS
        status, answer, _ = await self._raw(
            "POST", f"{self.api_root}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
            "StartResumableUpload", key, headers=headers, data=json.dumps(body).encode(),
            # The name goes in the query too, so the session URI names its object: a status
            # query can then look for the object when the session is gone (resumable_status).
            params={"uploadType": "resumable", "name": name})
        location = answer.get("Location")
        if status not in (200, 201):
            raise _status_error(status, "StartResumableUpload")
        if not location:
            raise StorageError("GCS StartResumableUpload answered without a session URI; "
                               "the operation can be retried")
        return location

    async def _put_chunk(self, uri: str, offset: int, data: bytes, total: int | None,
                         key: str) -> tuple[int, dict[str, Any] | None]:
        """Send ``data`` from ``offset`` (``total`` on the last chunk): the bytes GCS now holds,
        and the object's resource once it is complete."""
        if data:
            span = f"bytes {offset}-{offset + len(data) - 1}/{'*' if total is None else total}"
        else:
            span = f"bytes */{total}"
        status, answer, body = await self._raw("PUT", URL(uri, encoded=True),
                                               "UploadChunk", key,
                                               headers={"Content-Range": span}, data=data)
        if status in (200, 201) and total is not None:
            with _gcs_errors("UploadChunk", key):
                resource: dict[str, Any] = json.loads(body)
            return total, resource
        if status != 308:
            raise _status_error(status, "UploadChunk")
        committed = _committed(answer.get("Range"))
        if not offset < committed <= offset + len(data):
            # GCS may keep less than it was sent (the rest is sent again), never nothing.
            raise StorageError("GCS UploadChunk kept none of the chunk; the operation can be "
                               "retried")
        return committed, None

    async def _cancel_quietly(self, uri: str) -> None:
        with contextlib.suppress(Exception):
            await self._cancel(URL(uri, encoded=True))

    async def _auth(self) -> dict[str, str]:
        if self.anonymous:
            return {}
        assert self._token is not None
        with _gcs_errors("GetAccessToken", ""):
            token = await self._token.get()
        return {"Authorization": f"Bearer {token}"}

    async def _raw(self, method: str, url: str | URL, operation: str, key: str, *,
                   headers: dict[str, str], data: bytes = b"",
                   params: dict[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """One request the library has no call for: status, headers and body, any status."""
        session = self._s()
        with _gcs_errors(operation, key):
            async with session.request(method, url, headers=headers, data=data, params=params,
                                       timeout=self._timeouts) as response:
                return response.status, response.headers, await response.read()

    async def delete(self, key: str) -> bool:
        with _gcs_errors("DeleteObject", key):
            try:
                await self._c().delete(self.bucket, self._key(key), timeout=self._timeouts)
            except aiohttp.ClientResponseError as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    async def move(self, source: str, dest: str) -> ObjectInfo:
        """Rewrite ``source`` to ``dest`` inside GCS, then delete ``source``.

        The rewrite is pinned to the source's generation and to ``dest`` not existing
        (``ifSourceGenerationMatch``, ``ifGenerationMatch=0``): an object replaced mid-move
        fails it (a retryable StorageError), and of two racing moves the first wins. The
        checksum is what GCS computed of what landed: ``md5:<hex>``, or ``crc32c:<hex>`` for
        a composite object (GCS has no SHA-256). Idempotent: an existing ``dest`` is kept.
        """
        meta = await self._metadata(self._key(dest))
        if meta is None:
            src = await self._metadata(self._key(source))
            if src is None:
                raise ObjectNotFound("there is no stored object under this key")
            meta = await self._rewrite(source, dest, src)
        await self.delete(source)
        return _info(dest, meta, checksum=True)

    async def _rewrite(self, source: str, dest: str, src: Mapping[str, Any]) -> dict[str, Any]:
        params = {"ifGenerationMatch": "0"}
        if src.get("generation"):
            params["ifSourceGenerationMatch"] = str(src["generation"])
        with _gcs_errors("RewriteObject", dest):
            try:
                done: dict[str, Any] = await self._c().copy(
                    self.bucket, self._key(source), self.bucket, new_name=self._key(dest),
                    params=params, timeout=self._timeouts)
                return dict(done["resource"])
            except aiohttp.ClientResponseError as exc:
                if exc.status != 412:
                    raise
        # A precondition failed: another move put ``dest`` there first (it wins), or the
        # source changed under this one.
        meta = await self._metadata(self._key(dest))
        if meta is None:
            raise StorageError("GCS RewriteObject failed: the source object changed during the "
                               "move; the operation can be retried", gcs_status=412)
        return meta

    # -- listing ---------------------------------------------------------------------------

    async def list_keys(self, prefix: str = "") -> AsyncIterator[ObjectListing]:
        """Every object under ``key_prefix + prefix``, one list page at a time.

        Keys come back without ``key_prefix``, as the other methods take them; "folder"
        placeholders (names ending in ``/``) that consoles create are skipped. A resumable
        upload still in progress is no object yet, so it is never listed.
        """
        params = {"prefix": self.key_prefix + prefix, "maxResults": str(self._page_size),
                  "fields": "items(name,size,updated),nextPageToken"}
        while True:
            with _gcs_errors("ListObjects", prefix):
                page = await self._c().list_objects(self.bucket, params=dict(params),
                                                    timeout=self._timeouts)
            for item in page.get("items", []):
                key = str(item["name"])[len(self.key_prefix):]
                if not key or key.endswith("/") or key.startswith("/") or "\x00" in key:
                    continue
                yield ObjectListing(key=key, size=int(item.get("size", 0)),
                                    modified_at=_time(item.get("updated")) or datetime.now(UTC))
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = str(token)

    # -- URLs --------------------------------------------------------------------------------

    async def presign_put(
        self, key: str, *, content_type: str, byte_size: int, expires_in: int, session_id: str,
        checksum: tuple[str, str] | None = None,
    ) -> UploadTicket:
        """A V4-signed PUT bound to this type, size and (declared) MD5.

        A declared SHA-256 is not bound: GCS checks MD5 and CRC32C only, and records no
        SHA-256 that promotion could compare.
        """
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        if not content_type:
            raise ValueError("content_type is required for a signed PUT")
        headers = {"Content-Type": content_type}
        signed = {"content-type": content_type, "content-length": str(byte_size)}
        if self.bind_length_range:
            headers["x-goog-content-length-range"] = f"{byte_size},{byte_size}"
            signed["x-goog-content-length-range"] = headers["x-goog-content-length-range"]
        if checksum is not None and checksum[0] == "md5":
            # Signed, so GCS refuses a body with another digest (BadDigest), and a client can't
            # drop the header: the signature covers it.
            headers["Content-MD5"] = signed["content-md5"] = checksum[1]
        ttl = _ttl(expires_in)
        now = _now()
        url = await self._signed("PUT", key, headers=signed, query={}, ttl=ttl, now=now)
        return UploadTicket(method="PUT", url=url, headers=headers,
                            expires_at=now + timedelta(seconds=ttl))

    async def signed_url(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: str = "inline",
    ) -> str:
        query = {"response-content-disposition": content_disposition(disposition, filename)}
        if content_type:
            query["response-content-type"] = content_type
        return await self._signed("GET", key, headers={}, query=query, ttl=_ttl(expires_in),
                                  now=_now())

    def public_url(self, key: str) -> str:
        base = self.public_base_url or f"{self.api_root}/{self.bucket}"
        return f"{base.rstrip('/')}/{quote(self._key(key), safe='/-_.~')}"

    async def _signed(self, method: str, key: str, *, headers: dict[str, str],
                      query: dict[str, str], ttl: int, now: datetime) -> str:
        email, private_key = self._signer
        if email is None or (private_key is None and self.anonymous):
            raise ConfigurationError(
                "GCSStorage cannot sign URLs with these credentials: give a service-account "
                "JSON key (credentials=), or service_account_email= to sign through IAM "
                "signBlob (with an emulator, a generated test key)", code="invalid_storage")
        unsigned, to_sign = _v4_string_to_sign(
            method, endpoint=self.api_root, bucket=self.bucket, name=self._key(key),
            headers=headers, query=query, email=email, ttl=ttl, now=now)
        if private_key is not None:
            signature = private_key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = await self._sign_blob(to_sign, email)
        return f"{unsigned}&X-Goog-Signature={signature.hex()}"

    async def _sign_blob(self, to_sign: bytes, email: str) -> bytes:
        """The signature from IAM ``signBlob``, for credentials without a private key."""
        session: Any = self._s()
        if self._iam is None:
            try:
                self._iam = IamClient(service_file=self._service_file(), session=session)
            except TypeError:
                raise ConfigurationError(
                    "these GCS credentials cannot sign through IAM (user credentials): give "
                    "a service-account key", code="invalid_storage") from None
        with _gcs_errors("SignBlob", ""):
            answer = await self._iam.sign_blob(to_sign, service_account_email=email,
                                               session=session)
            return base64.b64decode(answer["signedBlob"])

    # -- resumable sessions (Capability.RESUMABLE_UPLOAD) -----------------------------------

    async def create_resumable(self, key: str, content_type: str, byte_size: int,
                               origin: str | None = None) -> str:
        """Open a GCS resumable session for exactly ``byte_size`` bytes of ``content_type``.

        The returned URI lets whoever holds it upload without other credentials, for a week:
        keep it server-side or give it only to the uploading client. ``origin`` is the
        browser origin that will send the chunks (GCS answers it with CORS headers when the
        bucket's CORS policy allows it).
        """
        if byte_size < 0:
            raise ValueError("byte_size must not be negative")
        if not content_type:
            raise ValueError("content_type is required for a resumable session")
        return await self._initiate(self._key(key), key, content_type, byte_size=byte_size,
                                    origin=origin)

    async def resumable_status(self, session_uri: str, byte_size: int) -> tuple[int, bool]:
        """``(committed_bytes, complete)`` of the session, by GCS's status query.

        GCS answers 308 (with ``Range`` once it holds bytes) while the upload is unfinished,
        and 200/201 once it is complete. gcp-storage-emulator forgets a completed session and
        answers 404, and GCS answers 404/410 to an expired session: either way the object
        decides — when it exists with ``byte_size`` bytes the upload is complete, otherwise
        ``NotFound`` (``session_expired``).
        """
        url, name = self._session_url(session_uri)
        status, answer, body = await self._raw("PUT", url, "QueryResumableUpload", "",
                                               headers={"Content-Range": f"bytes */{byte_size}"})
        if status == 308:
            return _committed(answer.get("Range")), False
        if status in (200, 201):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return int(json.loads(body)["size"]), True
            return byte_size, True
        if status in _GONE:
            meta = await self._metadata(name)
            if meta is not None and int(meta.get("size", -1)) == byte_size:
                return byte_size, True
            raise NotFound("the resumable upload session is gone (cancelled, expired, or it "
                           "never existed) and made no object; start a new upload",
                           code="session_expired")
        raise _status_error(status, "QueryResumableUpload")

    async def cancel_resumable(self, session_uri: str) -> bool:
        """Cancel the session (DELETE): ``True`` when no session remains.

        ``False`` when the endpoint can't cancel one (gcp-storage-emulator answers 501): the
        session then lingers until it expires, but makes no object unless its last byte
        arrives. Cancelling a completed upload leaves its object in place.
        """
        url, _ = self._session_url(session_uri)
        return await self._cancel(url)

    async def _cancel(self, url: URL) -> bool:
        status, _, _ = await self._raw("DELETE", url, "CancelResumableUpload", "", headers={})
        if status in _GONE or status in (200, 204):
            return True
        if status == 501:
            log.warning("this GCS endpoint cannot cancel resumable sessions (HTTP 501, as "
                        "gcp-storage-emulator answers); the session stays until it expires")
            return False
        raise _status_error(status, "CancelResumableUpload")

    def _session_url(self, session_uri: str) -> tuple[URL, str]:
        """The session URI as sent (never re-encoded) and the object it names, after checking
        it is a session of this bucket on this endpoint: no request goes elsewhere."""
        parts = urlsplit(session_uri)
        query = parse_qs(parts.query)
        names = query.get("name", [])
        if (f"{parts.scheme}://{parts.netloc}" not in self._upload_origins
                or parts.path != f"/upload/storage/v1/b/{self.bucket}/o"
                or not query.get("upload_id") or len(names) != 1):
            raise ValidationError("this is not a resumable session URI of this storage's "
                                  "bucket (it must come from create_resumable)")
        return URL(session_uri, encoded=True), names[0]


# -- V4 signing ------------------------------------------------------------------------------


def _v4_string_to_sign(method: str, *, endpoint: str, bucket: str, name: str,
                      headers: Mapping[str, str], query: Mapping[str, str], email: str,
                      ttl: int, now: datetime) -> tuple[str, bytes]:
    """The V4 (``GOOG4-RSA-SHA256``) URL without its signature, and the string to sign.

    Path-style (``/<bucket>/<object>``) on ``endpoint``'s host, with ``host`` and ``headers``
    signed and the payload unsigned, as GCS's "signing URLs manually" guide builds it.
    """
    parts = urlsplit(endpoint)
    path = f"/{bucket}/{quote(name, safe='/')}"
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/auto/storage/goog4_request"
    canonical = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    canonical["host"] = parts.netloc
    signed_headers = ";".join(sorted(canonical))
    params = {**query, "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
              "X-Goog-Credential": f"{email}/{scope}", "X-Goog-Date": stamp,
              "X-Goog-Expires": str(ttl), "X-Goog-SignedHeaders": signed_headers}
    canonical_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                               for k, v in sorted(params.items()))
    request = "\n".join([method, path, canonical_query,
                         "".join(f"{k}:{canonical[k]}\n" for k in sorted(canonical)),
                         signed_headers, "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["GOOG4-RSA-SHA256", stamp, scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    return f"{parts.scheme}://{parts.netloc}{path}?{canonical_query}", to_sign.encode()


def _signing_identity(service_data: Mapping[str, Any],
                      email: str | None) -> tuple[str | None, RSAPrivateKey | None]:
    """Who signs URLs, and with which key (``None``: through IAM signBlob)."""
    email = email or service_data.get("client_email")
    pem = service_data.get("private_key")
    if not pem:
        return email, None
    try:
        key = serialization.load_pem_private_key(str(pem).encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the service account's private_key could not be loaded: it "
                                 "must be the unencrypted RSA key of a JSON key file",
                                 code="invalid_storage")
    return email, key


# -- helpers ---------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _ttl(expires_in: int) -> int:
    return max(1, min(int(expires_in), MAX_SIGNED_SECONDS))


def _head(buf: bytearray, size: int) -> bytes:
    """The first ``size`` bytes as one copy (the view is released before ``buf`` shrinks)."""
    with memoryview(buf) as view:
        return bytes(view[:size])


def _committed(range_header: str | None) -> int:
    """How many bytes a 308's ``Range: bytes=0-<last>`` says GCS holds (none: no header).

    gcp-storage-emulator answers ``bytes=0-0`` before any byte has arrived, where GCS sends
    no ``Range``. GCS takes every chunk but the last in multiples of 256 KiB, so an unfinished
    upload never holds exactly one byte there: ``0-0`` is read as none. That is also the safe
    side: a client then sends a byte again, never skips one the store lacks.
    """
    match = re.fullmatch(r"\s*bytes=0-(\d+)\s*", range_header or "")
    if match is None:
        return 0
    last = int(match.group(1))
    return 0 if last == 0 else last + 1


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def _checksum(meta: Mapping[str, Any]) -> str | None:
    """``md5:<hex>`` from GCS's base64 MD5, else ``crc32c:<hex>`` (composite objects)."""
    for algorithm, field in (("md5", "md5Hash"), ("crc32c", "crc32c")):
        value = meta.get(field)
        if value:
            with contextlib.suppress(ValueError):
                return f"{algorithm}:{base64.b64decode(str(value), validate=True).hex()}"
    return None


def _info(key: str, meta: Mapping[str, Any], *, checksum: bool = False) -> ObjectInfo:
    return ObjectInfo(key=key, size=int(meta.get("size", 0)), etag=meta.get("etag"),
                      content_type=meta.get("contentType"), modified_at=_time(meta.get("updated")),
                      checksum=_checksum(meta) if checksum else None)


def _status_error(status: int, operation: str) -> RindleError:
    """A Rindle error for an HTTP status of GCS. Only the operation and the status are shown:
    never a URL (a session URI or signed URL is a credential), a token or GCS's own text."""
    if status == 404:
        return ObjectNotFound("there is no stored object under this key")
    if status in (401, 403):
        return StorageError(f"GCS {operation} was refused (HTTP {status}): check the "
                            "credentials and the service account's permissions on the bucket",
                            gcs_status=status)
    return StorageError(f"GCS {operation} failed with HTTP {status}; the operation can be "
                        "retried (check the bucket and credentials if it persists)",
                        gcs_status=status)


@contextlib.contextmanager
def _gcs_errors(operation: str, key: str) -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientResponseError as exc:
        # Its text carries the request URL: only the status crosses over.
        raise _status_error(exc.status, operation) from None
    except aiohttp.ClientError as exc:
        raise StorageError(f"GCS {operation} failed: {type(exc).__name__} (GCS could not be "
                           "reached or did not answer in time)") from None
    except _TRANSPORT_ERRORS as exc:
        raise StorageError(f"GCS {operation} failed: {type(exc).__name__} (GCS could not be "
                           "reached or did not answer in time)") from None
    except (KeyError, ValueError) as exc:
        raise StorageError(f"GCS {operation} failed: its answer was not understood "
                           f"({type(exc).__name__}); the operation can be retried") from None


__all__ = ["GCSStorage"]
