"""GCSStorage against gcp-storage-emulator, checked with an independent HTTP client.

The emulator verifies no V4 signature, expiry or signed header (like moto for S3): the tests
check each signature themselves with the test key's public half, as GCS would, and assert what
Rindle signs. Where the emulator departs from GCS (it can't cancel a session, forgets a
completed one, doesn't page listings), a small stub that answers as GCS documents stands in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import subprocess
import sys
import types
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rindle import FileTooLarge, LocalStorage
from rindle.delivery.signing import Signer
from rindle.errors import (
    ConfigurationError,
    NotFound,
    ObjectNotFound,
    StorageError,
    UploadUnsupported,
    ValidationError,
)
from rindle.storage import gcs as gcs_module
from rindle.storage.base import Capability, Storage, StorageContext, resumable_storage
from rindle.storage.content_disposition import content_disposition
from rindle.storage.gcs import GCSStorage
from tests.conftest import LiveServer, free_port
from tests.support.gcs import (  # noqa: F401
    TEST_EMAIL,
    GCSBucket,
    gcs_emulator_fixture,
    gcs_fixture,
    service_account_key,
)

KiB = 1024
MiB = 1024 * KiB
KEY = "photo/0b7e4c/9f3c2a.png"


def _context() -> StorageContext:
    return StorageContext(router_path="/rindle", sign=Signer(["a-very-long-secret-key-0001"]))


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _body(size: int) -> bytes:
    pattern = bytes(range(251))
    return (pattern * (size // len(pattern) + 1))[:size]


def _verify(url: str, method: str, sent: dict[str, str]) -> None:
    """Check a V4 signed URL the way GCS does, for a request sending ``sent`` headers:
    rebuild the canonical request from the URL and the request, then verify the signature
    with the public half of the test key. Raises ``InvalidSignature`` when it doesn't hold."""
    parts = urlsplit(url)
    pairs = [p.split("=", 1) for p in parts.query.split("&")]
    signature = dict(pairs).pop("X-Goog-Signature")
    params = sorted((k, v) for k, v in pairs if k != "X-Goog-Signature")
    query = dict(params)
    request_headers = {k.lower(): v for k, v in sent.items()} | {"host": parts.netloc}
    names = query["X-Goog-SignedHeaders"].split("%3B")
    canonical_headers = "".join(f"{n}:{request_headers[n].strip()}\n" for n in names)
    request = "\n".join([method, parts.path, "&".join(f"{k}={v}" for k, v in params),
                         canonical_headers, ";".join(names), "UNSIGNED-PAYLOAD"])
    scope = query["X-Goog-Credential"].split("%2F", 1)[1].replace("%2F", "/")
    to_sign = "\n".join(["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    key = serialization.load_pem_private_key(
        service_account_key()["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key.public_key().verify(bytes.fromhex(signature), to_sign.encode(), padding.PKCS1v15(),
                            hashes.SHA256())


@pytest.fixture
async def storage(gcs: GCSBucket) -> AsyncIterator[GCSStorage]:
    st = gcs.storage()
    await st.open(_context())
    yield st
    await st.close()


# --- construction and lifecycle ----------------------------------------------------------


async def test_protocol_capabilities_repr_and_configuration(gcs: GCSBucket, tmp_path: Any) -> None:
    st = gcs.storage()
    assert isinstance(st, Storage)
    assert st.capabilities == {Capability.PRESIGNED_PUT, Capability.HEAD,
                               Capability.SIGNED_URL, Capability.RESUMABLE_UPLOAD}
    assert resumable_storage(st) is st
    with pytest.raises(UploadUnsupported):
        resumable_storage(LocalStorage(root=tmp_path))
    pem = service_account_key()["private_key"]
    text = repr(st)
    assert gcs.name in text
    assert "PRIVATE KEY" not in text and pem[40:80] not in text

    with pytest.raises(ConfigurationError):
        GCSStorage(bucket="")
    with pytest.raises(ConfigurationError):
        GCSStorage(bucket="b", endpoint_url="ftp://example.com")
    with pytest.raises(ConfigurationError):
        GCSStorage(bucket="b", credentials=42)  # type: ignore[arg-type]

    missing = tmp_path / "no-such-key.json"
    with pytest.raises(ConfigurationError) as caught:
        await GCSStorage(bucket="b", credentials=missing).open(_context())
    assert str(missing) in caught.value.message and caught.value.code == "invalid_storage"

    broken = dict(service_account_key(), private_key=pem[:200] + "garbled" + pem[220:])
    with pytest.raises(ConfigurationError) as caught:
        await gcs.storage(credentials=broken).open(_context())
    assert "private_key" in caught.value.message
    assert pem[40:80] not in caught.value.message and caught.value.__cause__ is None

    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(service_account_key()))
    from_file = gcs.storage(credentials=str(key_file))
    await from_file.open(_context())
    try:
        assert "X-Goog-Signature=" in await from_file.signed_url(KEY, expires_in=60)
    finally:
        await from_file.close()


def test_import_rindle_stays_light_and_missing_extra_is_named() -> None:
    code = ("import sys, rindle, rindle.storage.base; "
            "print([m for m in ('gcloud', 'gcloud.aio.storage', 'aiohttp') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys\n"
            "for m in ('gcloud', 'gcloud.aio', 'gcloud.aio.storage', 'gcloud.aio.auth'):\n"
            "    sys.modules[m] = None\n"
            "from rindle.storage.gcs import GCSStorage\n"
            "try:\n"
            "    GCSStorage(bucket='b')\n"
            "except RuntimeError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "rindle[gcs]" in out.stdout


async def test_one_client_per_runtime(gcs: GCSBucket) -> None:
    st = gcs.storage()
    with pytest.raises(ConfigurationError) as caught:
        await st.head(KEY)
    assert caught.value.code == "storage_not_open"
    await st.open(_context())
    session = st._session
    await st.write(KEY, _chunks(b"abc"))
    await st.head(KEY)
    await st.signed_url(KEY, expires_in=60)
    await st.open(_context())  # opening again keeps the client
    assert st._session is session
    await st.close()
    assert st._session is None and session is not None and session.closed
    await st.close()  # idempotent


def test_emulator_host_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")
    st = GCSStorage(bucket="b")
    assert (st.api_root, st.anonymous) == ("http://127.0.0.1:9023", True)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    st = GCSStorage(bucket="b")
    assert (st.api_root, st.anonymous) == ("https://storage.googleapis.com", False)


# --- reading and writing -----------------------------------------------------------------


async def test_round_trip(storage: GCSStorage, gcs: GCSBucket) -> None:
    data = bytes(range(256)) * 4
    info = await storage.write(KEY, _chunks(data[:100], b"", data[100:]),
                               content_type="image/png")
    assert (info.key, info.size, info.content_type) == (KEY, len(data), "image/png")
    assert gcs.get(KEY) == data
    meta = gcs.meta(KEY)
    assert meta is not None and meta["contentType"] == "image/png"

    head = await storage.head(KEY)
    assert head is not None
    assert (head.key, head.size, head.etag) == (KEY, len(data), info.etag)
    assert head.content_type == "image/png" and head.modified_at is not None

    assert await storage.read_range(KEY, 10, 5) == data[10:15]
    assert await storage.read_range(KEY, 1020, 100) == data[1020:]
    assert await storage.read_range(KEY, 5000, 10) == b""
    assert await storage.read_range(KEY, 0, 0) == b""
    assert await _collect(storage.stream(KEY)) == data
    assert await _collect(storage.stream(KEY, start=3, end=700, chunk_size=64)) == data[3:701]
    assert await _collect(storage.stream(KEY, start=1000)) == data[1000:]
    assert await _collect(storage.stream(KEY, start=5000)) == b""

    assert await storage.delete(KEY) is True
    assert await storage.head(KEY) is None
    assert gcs.keys() == []
    assert await storage.delete(KEY) is False
    with pytest.raises(ObjectNotFound):
        await storage.read_range(KEY, 0, 1)
    with pytest.raises(ObjectNotFound):
        await _collect(storage.stream(KEY))


async def test_key_prefix_public_url_and_empty_objects(gcs: GCSBucket) -> None:
    st = gcs.storage(key_prefix="/app/media/")
    await st.open(_context())
    try:
        await st.write("photo/a b/ü+x.png", _chunks(b"data"), content_type="image/png")
        assert gcs.keys() == ["app/media/photo/a b/ü+x.png"]
        url = st.public_url("photo/a b/ü+x.png")
        assert url == f"{gcs.endpoint_url}/{gcs.name}/app/media/photo/a%20b/%C3%BC%2Bx.png"
        async with httpx.AsyncClient() as client:  # the emulator serves any object
            assert (await client.get(url)).content == b"data"
        empty = await st.write("empty.txt", _chunks())
        assert empty.size == 0 and gcs.get("app/media/empty.txt") == b""
    finally:
        await st.close()
    cdn = gcs.storage(public_base_url="https://cdn.example.com/")
    assert cdn.public_url("a/b.png") == "https://cdn.example.com/a/b.png"
    assert GCSStorage(bucket="media").public_url("a.png") == (
        "https://storage.googleapis.com/media/a.png")


async def test_large_write_is_resumable_streamed_and_bounded(storage: GCSStorage,
                                                             gcs: GCSBucket) -> None:
    # Memory is measured in bench/, not here. Behaviourally: the emulator holds a partial
    # upload while the body is still being produced, and what the producer has handed over
    # beyond what GCS holds never exceeds one chunk (all that write() keeps in memory).
    storage._chunk_size = 256 * KiB
    size, piece = 5 * 256 * KiB + 12345, 64 * KiB
    data = _body(size)
    held_while_producing: list[tuple[int, int]] = []

    async def produce() -> AsyncIterator[bytes]:
        for offset in range(0, size, piece):
            held = gcs.partial_uploads()
            held_while_producing.append((offset, held[0] if held else 0))
            yield data[offset:offset + piece]

    info = await storage.write(KEY, produce(), content_type="image/png", max_bytes=size)
    assert info.size == size
    assert max(held for _, held in held_while_producing) >= 4 * 256 * KiB
    assert all(produced - held <= 256 * KiB for produced, held in held_while_producing)
    assert gcs.get(KEY) == data
    assert gcs.partial_uploads() == []  # the session became the object


async def test_exactly_one_chunk_is_a_single_upload(storage: GCSStorage, gcs: GCSBucket,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    storage._chunk_size = 256 * KiB
    sessions: list[str] = []
    initiate = storage._initiate

    async def counting(*args: Any, **kwargs: Any) -> str:
        sessions.append(args[0])
        return await initiate(*args, **kwargs)

    monkeypatch.setattr(storage, "_initiate", counting)
    await storage.write(KEY, _chunks(_body(256 * KiB)))
    assert sessions == [] and gcs.get(KEY) == _body(256 * KiB)
    await storage.write("two.bin", _chunks(_body(256 * KiB + 1)))
    assert sessions == ["two.bin"] and gcs.get("two.bin") == _body(256 * KiB + 1)


async def test_overflow_and_producer_errors_leave_no_object(
        storage: GCSStorage, gcs: GCSBucket, caplog: pytest.LogCaptureFixture) -> None:
    storage._chunk_size = 256 * KiB
    with caplog.at_level(logging.WARNING, logger="rindle.storage.gcs"):
        with pytest.raises(FileTooLarge) as caught:
            await storage.write(KEY, _chunks(_body(300 * KiB), _body(300 * KiB)),
                                max_bytes=500 * KiB)
    assert caught.value.code == "max_bytes_exceeded"
    # The write tried to cancel its session: the emulator can't (501), so the session keeps
    # its first chunk until it would expire, but no object came of it.
    assert "cannot cancel" in caplog.text and "upload_id" not in caplog.text
    assert gcs.partial_uploads() == [256 * KiB]
    with pytest.raises(FileTooLarge):
        await storage.write(KEY, _chunks(b"12345", b"67890", b"X"), max_bytes=10)

    async def broken() -> AsyncIterator[bytes]:
        yield _body(600 * KiB)
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await storage.write(KEY, broken())
    assert gcs.keys() == []


async def test_move_is_a_rewrite_and_idempotent(storage: GCSStorage, gcs: GCSBucket) -> None:
    data = b"first upload"
    gcs.put("staging/a.png", data, "image/png")
    info = await storage.move("staging/a.png", "final/a.png")
    assert (info.key, info.size, info.content_type) == ("final/a.png", len(data), "image/png")
    assert info.checksum == "md5:" + hashlib.md5(data).hexdigest()
    assert gcs.keys() == ["final/a.png"] and gcs.get("final/a.png") == data

    # A rerun after a crash between copy and clean-up: dest is there, source already gone.
    again = await storage.move("staging/a.png", "final/a.png")
    assert (again.key, again.size, again.checksum) == ("final/a.png", len(data), info.checksum)

    # Both exist (the crash came before the delete): dest is kept, source only removed.
    gcs.put("staging/a.png", b"a second, different upload")
    kept = await storage.move("staging/a.png", "final/a.png")
    assert kept.checksum == info.checksum
    assert gcs.keys() == ["final/a.png"] and gcs.get("final/a.png") == data

    with pytest.raises(ObjectNotFound):
        await storage.move("staging/none.png", "final/none.png")


def test_checksums_from_gcs_hashes() -> None:
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    assert gcs_module._checksum({"md5Hash": md5, "crc32c": "mnG7TA=="}) == (
        "md5:" + hashlib.md5(b"x").hexdigest())
    # A composite object has no MD5: its CRC32C is what GCS knows of the content.
    assert gcs_module._checksum({"crc32c": "mnG7TA=="}) == "crc32c:9a71bb4c"
    assert gcs_module._checksum({}) is None


async def test_list_keys(storage: GCSStorage, gcs: GCSBucket) -> None:
    for key in ("a/1.png", "a/2.png", "a/sub/3.png", "b/4.png"):
        gcs.put(key, key.encode())
    # A console's folder placeholder (zero bytes there; the emulator drops the connection on
    # an empty simple upload).
    gcs.put("a/folder/", b"-")
    storage._page_size = 2  # the emulator ignores maxResults: see the stub test for pages
    listed = [o async for o in storage.list_keys("a/")]
    assert [(o.key, o.size) for o in listed] == [("a/1.png", 7), ("a/2.png", 7),
                                                 ("a/sub/3.png", 11)]
    assert all(o.modified_at.tzinfo is not None for o in listed)
    assert len([o async for o in storage.list_keys()]) == 4


# --- URLs --------------------------------------------------------------------------------


async def test_signed_get_url(storage: GCSStorage, gcs: GCSBucket) -> None:
    """The emulator ignores the signature: it is checked here with the key's public half."""
    gcs.put(KEY, b"hello", "image/png")
    url = await storage.signed_url(KEY, expires_in=123, filename="Photo ü.png",
                                   content_type="image/png", disposition="attachment")
    assert url.startswith(f"{gcs.endpoint_url}/{gcs.name}/{KEY}?")
    q = _query(url)
    assert q["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert q["X-Goog-Credential"].startswith(f"{TEST_EMAIL}/")
    assert q["X-Goog-Credential"].endswith("/auto/storage/goog4_request")
    assert (q["X-Goog-Expires"], q["X-Goog-SignedHeaders"]) == ("123", "host")
    assert q["response-content-disposition"] == content_disposition("attachment", "Photo ü.png")
    assert q["response-content-type"] == "image/png"
    _verify(url, "GET", {})
    tampered = url.replace("X-Goog-Expires=123", "X-Goog-Expires=999")
    with pytest.raises(InvalidSignature):
        _verify(tampered, "GET", {})
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=1-3"})
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-disposition"] == content_disposition("attachment", "Photo ü.png")
    # The emulator serves the object's own type (it ignores response-content-type; GCS
    # honours it).
    assert r.headers["content-type"] == "image/png"
    assert part.status_code == 206 and part.content == b"ell"


async def test_presigned_put_binds_type_size_and_md5(storage: GCSStorage,
                                                     gcs: GCSBucket) -> None:
    """The emulator ignores signed headers: the test checks that the signature covers them
    (so GCS refuses another type, size or body) with the key's public half."""
    data = b"\x89PNG-not-really" * 10
    ticket = await storage.presign_put(KEY, content_type="image/png", byte_size=len(data),
                                       expires_in=600, session_id="s1")
    assert ticket.method == "PUT" and ticket.headers == {"Content-Type": "image/png"}
    assert ticket.url not in repr(ticket)
    assert _query(ticket.url)["X-Goog-SignedHeaders"] == "content-length;content-type;host"
    assert ticket.expires_at is not None
    now = dt.datetime.now(dt.UTC).timestamp()
    assert now + 590 <= ticket.expires_at.timestamp() <= now + 600
    sent = {"Content-Type": "image/png", "Content-Length": str(len(data))}
    _verify(ticket.url, "PUT", sent)
    for wrong in ({"Content-Type": "text/html"}, {"Content-Length": str(len(data) + 1)}):
        with pytest.raises(InvalidSignature):
            _verify(ticket.url, "PUT", sent | wrong)
    async with httpx.AsyncClient() as client:
        r = await client.put(ticket.url, content=data, headers=ticket.headers)
    assert r.status_code == 200
    assert gcs.get(KEY) == data
    meta = gcs.meta(KEY)
    assert meta is not None and meta["contentType"] == "image/png"

    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    ticket = await storage.presign_put(KEY, content_type="image/png", byte_size=len(data),
                                       expires_in=600, session_id="s1", checksum=("md5", md5))
    assert ticket.headers == {"Content-Type": "image/png", "Content-MD5": md5}
    _verify(ticket.url, "PUT", sent | {"Content-MD5": md5})
    # GCS checks no SHA-256: nothing is bound, nothing more to send.
    ticket = await storage.presign_put(KEY, content_type="image/png", byte_size=len(data),
                                       expires_in=600, session_id="s1",
                                       checksum=("sha256", sha))
    assert ticket.headers == {"Content-Type": "image/png"}


async def test_presigned_put_with_a_length_range(gcs: GCSBucket) -> None:
    """x-goog-content-length-range: GCS answers 400 outside it; the emulator tolerates the
    header (and enforces nothing), so the signature is checked here."""
    st = gcs.storage(bind_length_range=True)
    await st.open(_context())
    try:
        ticket = await st.presign_put(KEY, content_type="image/png", byte_size=5,
                                      expires_in=60, session_id="s1")
    finally:
        await st.close()
    assert ticket.headers == {"Content-Type": "image/png", "x-goog-content-length-range": "5,5"}
    _verify(ticket.url, "PUT", ticket.headers | {"Content-Length": "5"})
    async with httpx.AsyncClient() as client:
        r = await client.put(ticket.url, content=b"12345", headers=ticket.headers)
    assert r.status_code == 200 and gcs.get(KEY) == b"12345"


async def test_the_v4_signer_agrees_with_gcloud_aio(monkeypatch: pytest.MonkeyPatch) -> None:
    """For storage.googleapis.com, Rindle's signer and gcloud-aio-storage's (which follows
    GCS's "signing URLs manually" sample) produce the same URL, byte for byte."""
    from gcloud.aio.auth import Token
    from gcloud.aio.storage import Bucket
    from gcloud.aio.storage import Storage as AioStorage
    from gcloud.aio.storage import blob as blob_module

    fixed = dt.datetime(2026, 11, 3, 12, 34, 56, tzinfo=dt.UTC)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return fixed

    monkeypatch.setattr(blob_module, "datetime",
                        types.SimpleNamespace(datetime=Frozen, timezone=dt.timezone))
    monkeypatch.setattr(blob_module, "HOST", "storage.googleapis.com")
    monkeypatch.setattr(gcs_module, "_now", lambda: fixed)
    key = service_account_key()
    name = "photo/a b/ü+x.png"

    ours = GCSStorage(bucket="media", credentials=key)
    await ours.open(_context())
    theirs = AioStorage(token=Token(service_file=io.StringIO(json.dumps(key))))
    blob = Bucket(theirs, "media").new_blob(name)
    try:
        got = await ours.signed_url(name, expires_in=600, filename="a b.png",
                                    content_type="image/png")
        want = await blob.get_signed_url(600, query_params={
            "response-content-disposition": content_disposition("inline", "a b.png"),
            "response-content-type": "image/png"})
        assert got == want
        ticket = await ours.presign_put(name, content_type="image/png", byte_size=42,
                                        expires_in=600, session_id="s")
        want = await blob.get_signed_url(600, http_method="PUT", headers={
            "Content-Type": "image/png", "Content-Length": "42"})
        assert ticket.url == want
    finally:
        await ours.close()
        await theirs.close()


async def test_signing_through_iam_sign_blob(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Any) -> None:
    """Metadata-server credentials have no private key: URLs are signed by IAM signBlob
    (stubbed here with the test key; the real call goes to iamcredentials.googleapis.com)."""
    from gcloud.aio.auth import IamClient

    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud ADC file either
    signer = serialization.load_pem_private_key(
        service_account_key()["private_key"].encode(), password=None)
    assert isinstance(signer, rsa.RSAPrivateKey)
    asked: list[str | None] = []

    async def sign_blob(self: Any, payload: bytes, service_account_email: str | None = None,
                        **_: Any) -> dict[str, str]:
        asked.append(service_account_email)
        signature = signer.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return {"signedBlob": base64.b64encode(signature).decode()}

    monkeypatch.setattr(IamClient, "sign_blob", sign_blob)
    st = GCSStorage(bucket="media", service_account_email="app@p.iam.gserviceaccount.com")
    await st.open(_context())
    try:
        url = await st.signed_url(KEY, expires_in=60)
    finally:
        await st.close()
    assert asked == ["app@p.iam.gserviceaccount.com"]
    assert _query(url)["X-Goog-Credential"].startswith("app@p.iam.gserviceaccount.com/")
    _verify(url, "GET", {})

    unsigned = GCSStorage(bucket="media", endpoint_url="http://127.0.0.1:9", anonymous=True)
    await unsigned.open(_context())
    try:
        with pytest.raises(ConfigurationError) as caught:
            await unsigned.signed_url(KEY, expires_in=60)
        assert caught.value.code == "invalid_storage"
    finally:
        await unsigned.close()


# --- native resumable sessions -----------------------------------------------------------


async def test_resumable_upload_in_three_chunks(storage: GCSStorage, gcs: GCSBucket) -> None:
    size = 2 * 256 * KiB + 1000
    data = _body(size)
    uri = await resumable_storage(storage).create_resumable(
        KEY, "image/png", size, origin="https://app.example.com")
    assert uri.startswith(f"{gcs.endpoint_url}/upload/storage/v1/b/{gcs.name}/o?")
    # Before any byte the emulator answers Range: bytes=0-0; the truth is nothing.
    assert await storage.resumable_status(uri, size) == (0, False)
    async with httpx.AsyncClient() as client:  # the uploading client (a browser, say)
        for start, end in ((0, 256 * KiB), (256 * KiB, 512 * KiB), (512 * KiB, size)):
            total = size if end == size else "*"
            r = await client.put(uri, content=data[start:end],
                                 headers={"Content-Range": f"bytes {start}-{end - 1}/{total}"})
            assert r.status_code == (200 if end == size else 308)
            # Once complete, the emulator forgets the session (404): the object tells.
            assert await storage.resumable_status(uri, size) == (end, end == size)
    assert gcs.get(KEY) == data
    meta = gcs.meta(KEY)
    assert meta is not None and meta["contentType"] == "image/png"


async def test_a_cancelled_session(storage: GCSStorage, gcs: GCSBucket,
                                   caplog: pytest.LogCaptureFixture) -> None:
    uri = await storage.create_resumable(KEY, "image/png", 300 * KiB)
    async with httpx.AsyncClient() as client:
        r = await client.put(uri, content=_body(256 * KiB),
                             headers={"Content-Range": f"bytes 0-{256 * KiB - 1}/*"})
    assert r.status_code == 308
    with caplog.at_level(logging.WARNING, logger="rindle.storage.gcs"):
        # The emulator answers 501 to a cancel: the session lingers (GCS would drop it).
        assert await storage.cancel_resumable(uri) is False
    assert "501" in caplog.text and "upload_id" not in caplog.text
    assert await storage.resumable_status(uri, 300 * KiB) == (256 * KiB, False)
    assert gcs.keys() == []
    # A session nobody opened: gone, and no object under its name.
    unknown = uri.replace("upload_id=", "upload_id=x")
    with pytest.raises(NotFound) as caught:
        await storage.resumable_status(unknown, 300 * KiB)
    assert caught.value.code == "session_expired" and caught.value.status_code == 410
    assert "upload_id" not in caught.value.message


def _fake_gcs() -> tuple[Starlette, dict[str, Any]]:
    """A stub answering as GCS documents where the emulator can't: resumable cancel (499),
    status after completion (200) and listing pages (maxResults/pageToken)."""
    state: dict[str, Any] = {"sessions": {}, "list_calls": [], "objects": {}}

    async def upload(request: Request) -> Response:
        if request.method == "POST":
            upload_id = uuid.uuid4().hex
            state["sessions"][upload_id] = {"size": 0, "done": False, "cancelled": False,
                                            "name": request.query_params["name"]}
            location = (f"{request.base_url}upload/storage/v1/b/{request.path_params['b']}/o"
                        f"?uploadType=resumable&name={quote(request.query_params['name'])}"
                        f"&upload_id={upload_id}")
            return Response(headers={"Location": location})
        session = state["sessions"].get(request.query_params.get("upload_id"))
        if session is None:
            return Response(status_code=404)
        if session["cancelled"]:
            return Response(status_code=499)
        if request.method == "DELETE":
            session["cancelled"] = True
            return Response(status_code=499)  # what GCS answers to a successful cancel
        if session["done"]:
            return JSONResponse({"name": session["name"], "size": str(session["size"])})
        return Response(status_code=308)  # no Range: nothing committed

    async def listing(request: Request) -> Response:
        state["list_calls"].append(dict(request.query_params))
        prefix = request.query_params.get("prefix", "")
        names = sorted(n for n in state["objects"] if n.startswith(prefix))
        start = int(request.query_params.get("pageToken", "0"))
        count = int(request.query_params["maxResults"])
        page = names[start:start + count]
        body: dict[str, Any] = {"items": [{"name": n, "size": "3",
                                           "updated": "2026-11-03T12:00:00.123Z"}
                                          for n in page]}
        if start + count < len(names):
            body["nextPageToken"] = str(start + count)
        return JSONResponse(body)

    app = Starlette(routes=[
        Route("/upload/storage/v1/b/{b}/o", upload, methods=["POST", "PUT", "DELETE"]),
        Route("/storage/v1/b/{b}/o", listing, methods=["GET"]),
    ])
    return app, state


async def test_against_documented_gcs_answers() -> None:
    app, state = _fake_gcs()
    async with LiveServer(app, access_log=False) as srv:
        st = GCSStorage(bucket="media", endpoint_url=srv.url, anonymous=True,
                        key_prefix="env")
        await st.open(_context())
        try:
            uri = await st.create_resumable(KEY, "image/png", 10)
            assert await st.resumable_status(uri, 10) == (0, False)  # 308 without Range
            next(iter(state["sessions"].values())).update(done=True, size=10)
            assert await st.resumable_status(uri, 10) == (10, True)  # 200 with the object

            uri = await st.create_resumable(KEY, "image/png", 10)
            assert await st.cancel_resumable(uri) is True  # 499
            assert await st.cancel_resumable(uri) is True  # already gone
            with pytest.raises(NotFound) as caught:
                await st.resumable_status(uri, 10)
            assert caught.value.code == "session_expired"

            state["objects"] = {f"env/k{i}": b"abc" for i in range(5)} | {"env/dir/": b"",
                                                                          "other": b""}
            st._page_size = 2
            listed = [o async for o in st.list_keys("k")]
            assert [o.key for o in listed] == [f"k{i}" for i in range(5)]
            assert listed[0].modified_at == dt.datetime(2026, 11, 3, 12, 0, 0, 123000,
                                                        tzinfo=dt.UTC)
            calls = state["list_calls"]
            assert [c.get("pageToken") for c in calls] == [None, "2", "4"]
            assert {(c["prefix"], c["maxResults"]) for c in calls} == {("env/k", "2")}
        finally:
            await st.close()


# --- secrets and failures ----------------------------------------------------------------


async def test_secrets_stay_out_of_errors(storage: GCSStorage, gcs: GCSBucket) -> None:
    uri = await storage.create_resumable(KEY, "image/png", 10)
    upload_id = _query(uri)["upload_id"]
    foreign = uri.replace(gcs.endpoint_url, "https://evil.example.com")
    with pytest.raises(ValidationError) as refused:
        await storage.resumable_status(foreign, 10)
    with pytest.raises(ValidationError):
        await storage.cancel_resumable(uri.replace(gcs.name, "another-bucket"))

    down = gcs.storage(endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    await down.open(_context())
    try:
        with pytest.raises(StorageError) as caught:
            await down.head(KEY)
        dead_uri = uri.replace(gcs.endpoint_url, down.api_root)
        with pytest.raises(StorageError) as status_error:
            await down.resumable_status(dead_uri, 10)
        with pytest.raises(StorageError) as write_error:
            await down.write(KEY, _chunks(b"x"))
    finally:
        await down.close()
    errors = [refused.value, caught.value, status_error.value, write_error.value]
    assert all(e.code in ("validation_error", "storage_error") for e in errors)
    assert caught.value.retryable
    for error in errors:
        text = f"{error.message} {error!r} {error.to_dict()}"
        assert upload_id not in text and "127.0.0.1" not in text and "evil" not in text
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
