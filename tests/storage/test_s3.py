"""S3Storage against moto's S3 server, checked with an independent boto3 client."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Delivery, FileTooLarge, Profile, Rindle
from rindle.delivery.signing import Signer
from rindle.errors import (
    ConfigurationError,
    DeliveryUnsupported,
    NotFound,
    ObjectNotFound,
    StorageError,
    ValidationError,
)
from rindle.storage.base import Capability, Storage, StorageContext
from rindle.storage.content_disposition import content_disposition
from rindle.storage.s3 import S3Storage
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
KEY = "photo/0b7e4c/9f3c2a.png"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class PhotoProfile(Profile):
    name = "photo"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 24 * MiB
    delivery = Delivery(signed_url_ttl_seconds=321, disposition="attachment")


class SmallPhotoProfile(Profile):
    name = "small_photo"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 12 * MiB


class PublicPhotoProfile(Profile):
    name = "public_photo"
    storage = "s3"
    allow_mime = ["image/png"]
    delivery = Delivery(public=True)


def _context() -> StorageContext:
    return StorageContext(router_path="/rindle", sign=Signer(["a-very-long-secret-key-0001"]))


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _image(size: int) -> bytes:
    """A PNG header (enough for promotion's checks) padded with a pattern to ``size`` bytes."""
    head = png(16, 16)
    pattern = bytes(range(251))
    body = (pattern * (size // len(pattern) + 1))[: size - len(head)]
    return head + body


async def _generate(size: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """``_image(size)`` produced piece by piece, so the test itself holds little memory."""
    head = png(16, 16)
    yield head
    pattern = bytes(range(251))
    sent = len(head)
    while sent < size:
        n = min(chunk, size - sent)
        offset = (sent - len(head)) % len(pattern)
        piece = (pattern * (n // len(pattern) + 2))[offset:offset + n]
        sent += n
        yield piece


@pytest.fixture
async def storage(s3: S3Bucket) -> AsyncIterator[S3Storage]:
    st = s3.storage()
    await st.open(_context())
    yield st
    await st.close()


@pytest.fixture
def s3_media(make_media: MakeMedia, s3: S3Bucket) -> Rindle:
    return make_media(storages={"s3": s3.storage()},
                      profiles=[PhotoProfile, SmallPhotoProfile, PublicPhotoProfile])


# --- construction and lifecycle ----------------------------------------------------------


def test_protocol_capabilities_and_repr(s3: S3Bucket) -> None:
    st = s3.storage(access_key_id="AKIAEXAMPLEKEY", secret_access_key="s3cr3t-value",
                    session_token="tok3n-value")
    assert isinstance(st, Storage)
    assert st.capabilities == {Capability.PRESIGNED_PUT, Capability.PRESIGNED_POST,
                               Capability.HEAD, Capability.SIGNED_URL,
                               Capability.MULTIPART_UPLOAD, Capability.TUS_UPLOAD}
    text = repr(st)
    assert s3.name in text
    for secret in ("AKIAEXAMPLEKEY", "s3cr3t-value", "tok3n-value"):
        assert secret not in text
    with pytest.raises(ConfigurationError):
        S3Storage(bucket="b", addressing_style="sideways")
    with pytest.raises(ConfigurationError):
        S3Storage(bucket="b", access_key_id="only-half")


def test_import_rindle_stays_light_and_missing_extra_is_named() -> None:
    code = ("import sys, rindle, rindle.upload.multipart, rindle.web.multipart_routes; "
            "print([m for m in ('aiobotocore', 'botocore') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys\n"
            "for m in ('aiobotocore', 'aiobotocore.config', 'aiobotocore.session'):\n"
            "    sys.modules[m] = None\n"
            "from rindle.storage.s3 import S3Storage\n"
            "try:\n"
            "    S3Storage(bucket='b')\n"
            "except RuntimeError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "rindle[s3]" in out.stdout


async def test_one_client_per_runtime(s3: S3Bucket) -> None:
    st = s3.storage()
    with pytest.raises(ConfigurationError) as caught:
        await st.head(KEY)
    assert caught.value.code == "storage_not_open"
    await st.open(_context())
    client = st._client
    await st.write(KEY, _chunks(b"abc"))
    await st.head(KEY)
    await st.signed_url(KEY, expires_in=60)
    await st.open(_context())  # opening again keeps the client
    assert st._client is client
    await st.close()
    assert st._client is None
    await st.close()  # idempotent


# --- reading and writing -----------------------------------------------------------------


async def test_round_trip(storage: S3Storage, s3: S3Bucket) -> None:
    data = bytes(range(256)) * 4
    info = await storage.write(KEY, _chunks(data[:100], b"", data[100:]),
                               content_type="image/png")
    assert (info.key, info.size, info.content_type) == (KEY, len(data), "image/png")
    assert s3.get(KEY) == data
    assert s3.client.head_object(Bucket=s3.name, Key=KEY)["ContentType"] == "image/png"

    head = await storage.head(KEY)
    assert head is not None
    assert (head.key, head.size, head.etag) == (KEY, len(data), info.etag)
    assert head.content_type == "image/png"
    assert head.modified_at is not None

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
    assert s3.keys() == []
    assert await storage.delete(KEY) is False
    with pytest.raises(ObjectNotFound):
        await storage.read_range(KEY, 0, 1)
    with pytest.raises(ObjectNotFound):
        await _collect(storage.stream(KEY))


async def test_key_prefix_and_public_url(s3: S3Bucket) -> None:
    st = s3.storage(key_prefix="/app/media/", public_base_url="https://cdn.example.com/")
    await st.open(_context())
    try:
        await st.write("photo/a b/ü+x.png", _chunks(b"data"))
        assert s3.keys() == ["app/media/photo/a b/ü+x.png"]
        assert (await st.head("photo/a b/ü+x.png")) is not None
        assert st.public_url("photo/a b/ü+x.png") == (
            "https://cdn.example.com/app/media/photo/a%20b/%C3%BC%2Bx.png")
        assert await st.delete("photo/a b/ü+x.png") is True
    finally:
        await st.close()
    with pytest.raises(DeliveryUnsupported):
        s3.storage().public_url(KEY)


def _parts_in_s3(s3: S3Bucket) -> list[int]:
    """The part numbers S3 holds for the bucket's unfinished multipart uploads."""
    numbers: list[int] = []
    for upload in s3.pending_uploads():
        listed = s3.client.list_parts(Bucket=s3.name, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
        numbers += [part["PartNumber"] for part in listed.get("Parts", [])]
    return numbers


async def _noting_parts(s3: S3Bucket, size: int, seen: list[int]) -> AsyncIterator[bytes]:
    """``_generate(size)``, noting which parts S3 already holds when the last piece is due."""
    handed = 0
    async for piece in _generate(size):
        handed += len(piece)
        if handed == size:
            seen += _parts_in_s3(s3)
        yield piece


async def test_large_write_is_multipart_and_streamed(storage: S3Storage, s3: S3Bucket) -> None:
    # How much memory the write holds is measured by bench/upload_memory.py; here: the parts
    # go to S3 while the body is still being produced, and the object lands whole.
    size = 20 * MiB + 12345
    seen: list[int] = []
    info = await storage.write(KEY, _noting_parts(s3, size, seen), content_type="image/png",
                               max_bytes=size)
    assert info.size == size
    assert seen == [1, 2]  # two 8 MiB parts were in S3 before the last piece was produced
    assert s3.get(KEY) == _image(size)
    # A multipart object's ETag ends in -<parts>: 8 MiB + 8 MiB + the rest.
    assert s3.client.head_object(Bucket=s3.name, Key=KEY)["ETag"].endswith('-3"')
    assert s3.pending_uploads() == []


async def test_exactly_one_part_is_a_single_put(storage: S3Storage, s3: S3Bucket) -> None:
    await storage.write(KEY, _generate(8 * MiB))
    assert "-" not in s3.client.head_object(Bucket=s3.name, Key=KEY)["ETag"]
    assert s3.get(KEY) == _image(8 * MiB)


async def test_overflow_and_producer_errors_leave_nothing(storage: S3Storage,
                                                          s3: S3Bucket) -> None:
    with pytest.raises(FileTooLarge) as caught:
        await storage.write(KEY, _generate(20 * MiB), max_bytes=10 * MiB)
    assert caught.value.code == "max_bytes_exceeded"
    with pytest.raises(FileTooLarge):
        await storage.write(KEY, _chunks(b"12345", b"67890", b"X"), max_bytes=10)

    async def broken() -> AsyncIterator[bytes]:
        async for chunk in _generate(12 * MiB):
            yield chunk
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await storage.write(KEY, broken())
    assert s3.keys() == []
    assert s3.pending_uploads() == []


# --- URLs --------------------------------------------------------------------------------


async def test_presigned_put_binds_type_and_size(storage: S3Storage, s3: S3Bucket) -> None:
    data = b"\x89PNG-not-really" * 10
    before = int(time.time())
    ticket = await storage.presign_put(KEY, content_type="image/png", byte_size=len(data),
                                       expires_in=600, session_id="s1")
    after = int(time.time())
    assert ticket.method == "PUT"
    assert ticket.headers == {"Content-Type": "image/png"}
    assert ticket.url.startswith(f"{s3.endpoint_url}/{s3.name}/photo/")
    assert ticket.url not in repr(ticket)
    q = _query(ticket.url)
    assert q["X-Amz-Expires"] == "600"
    signed = q["X-Amz-SignedHeaders"].split(";")
    assert "content-type" in signed and "content-length" in signed
    assert ticket.expires_at is not None
    assert before + 600 <= ticket.expires_at.timestamp() <= after + 600
    async with httpx.AsyncClient() as client:
        r = await client.put(ticket.url, content=data, headers=ticket.headers)
    assert r.status_code == 200
    assert s3.get(KEY) == data
    assert s3.client.head_object(Bucket=s3.name, Key=KEY)["ContentType"] == "image/png"


async def test_signed_get_url(storage: S3Storage, s3: S3Bucket) -> None:
    s3.put(KEY, b"hello", "image/png")
    url = await storage.signed_url(KEY, expires_in=123, filename="Photo ü.png",
                                   content_type="image/png", disposition="attachment")
    q = _query(url)
    assert q["X-Amz-Expires"] == "123"
    assert q["response-content-disposition"] == content_disposition("attachment", "Photo ü.png")
    assert q["response-content-type"] == "image/png"
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=1-3"})
    assert r.status_code == 200 and r.content == b"hello"
    assert part.status_code == 206 and part.content == b"ell"


# --- multipart primitives and errors -----------------------------------------------------


async def test_multipart_primitives_and_error_codes(storage: S3Storage, s3: S3Bucket) -> None:
    upload_id = await storage.create_multipart(KEY, "image/png")
    url = await storage.presign_part(KEY, upload_id, 1, expires_in=90,
                                     content_length=5 * MiB)
    q = _query(url)
    assert q["X-Amz-Expires"] == "90" and q["partNumber"] == "1"
    assert "content-length" in q["X-Amz-SignedHeaders"].split(";")
    async with httpx.AsyncClient() as client:
        r = await client.put(url, content=b"a" * (5 * MiB))
        assert r.status_code == 200
        url2 = await storage.presign_part(KEY, upload_id, 2, expires_in=90)
        r2 = await client.put(url2, content=b"tail")
        assert r2.status_code == 200
    parts = await storage.list_parts(KEY, upload_id)
    assert [(p["part_number"], p["size"]) for p in parts] == [(1, 5 * MiB), (2, 4)]
    assert parts[0]["etag"] == r.headers["etag"]

    with pytest.raises(ValidationError) as bad:
        await storage.complete_multipart(KEY, upload_id, [
            {"part_number": 1, "etag": parts[0]["etag"]},
            {"part_number": 2, "etag": '"0123456789abcdef0123456789abcdef"'}])
    assert bad.value.code == "invalid_parts"
    assert "http" not in bad.value.message and "X-Amz" not in bad.value.message
    # ETags without quotes are accepted too.
    await storage.complete_multipart(KEY, upload_id, [
        {"part_number": p["part_number"], "etag": p["etag"].strip('"')} for p in parts])
    assert s3.get(KEY) == b"a" * (5 * MiB) + b"tail"

    other = await storage.create_multipart("photo/x/y.png", None)
    assert await storage.list_multipart_uploads("photo/x/y.png") == [other]
    await storage.abort_multipart("photo/x/y.png", other)
    for call in (storage.abort_multipart("photo/x/y.png", other),
                 storage.list_parts("photo/x/y.png", other)):
        with pytest.raises(NotFound) as gone:
            await call
        assert gone.value.code == "multipart_upload_not_found"
    assert s3.pending_uploads() == []
    with pytest.raises(ValidationError):
        await storage.presign_part(KEY, upload_id, 0, expires_in=60)


async def test_backend_failures_are_storage_errors(s3: S3Bucket) -> None:
    missing = S3Storage(bucket="no-such-bucket-here", endpoint_url=s3.endpoint_url,
                        addressing_style="path", max_attempts=1)
    await missing.open(_context())
    try:
        with pytest.raises(StorageError) as caught:
            await missing.write(KEY, _chunks(b"x"))
        assert caught.value.code == "storage_error"
        assert caught.value.retryable
    finally:
        await missing.close()
    from tests.conftest import free_port

    down = S3Storage(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{free_port()}",
                     addressing_style="path", max_attempts=1)
    await down.open(_context())
    try:
        with pytest.raises(StorageError) as caught:
            await down.head(KEY)
        assert caught.value.code == "storage_error"
        assert "127.0.0.1" not in caught.value.message
    finally:
        await down.close()


# --- through the runtime -----------------------------------------------------------------


@SQLITE
async def test_presigned_put_flow_over_http(s3_media: Rindle, s3: S3Bucket) -> None:
    data = _image(50_000)
    app = Starlette(routes=[Mount("/rindle", app=s3_media.router)], lifespan=s3_media.lifespan)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", json={
            "profile": "photo", "filename": "me.png", "content_type": "image/png",
            "byte_size": len(data)})
        assert r.status_code == 201, r.text
        body = r.json()
        upload = body["upload"]
        # The URL names the upload's staging key, never the asset's permanent one.
        assert upload["url"].startswith(f"{s3.endpoint_url}/{s3.name}/_rindle_staging/photo/")
        assert upload["headers"] == {"Content-Type": "image/png"}
        expires_at = datetime.fromisoformat(upload["expires_at"])
        assert 3500 < (expires_at - datetime.now(UTC)).total_seconds() <= 3600
        assert _query(upload["url"])["X-Amz-Expires"] in {"3599", "3600"}

        put = await client.put(upload["url"], content=data, headers=upload["headers"])
        assert put.status_code == 200
        done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
        assert done.status_code == 200, done.text
        assert done.json()["asset"]["state"] == "validating"
        await s3_media.drain()
        asset = await s3_media.asset(body["asset_id"])
        assert asset.state == "available"
        assert s3.get(asset.storage_key) == data

        shown = (await client.get(f"/rindle/assets/{body['asset_id']}")).json()
        got = await client.get(shown["url"])
        assert got.status_code == 200 and got.content == data


@SQLITE
async def test_private_and_public_urls(s3_media: Rindle, s3: S3Bucket,
                                       make_media: MakeMedia) -> None:
    data = _image(2000)
    async with s3_media.connected():
        private = (await s3_media.upload("photo", data, filename="Me ü.png")).asset
        await s3_media.drain()
        url = await s3_media.url("photo", private.id)
        q = _query(url)
        assert q["X-Amz-Expires"] == "321"
        assert q["response-content-disposition"] == content_disposition("attachment",
                                                                        "Me ü.png")
        assert q["response-content-type"] == "image/png"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == data

    cdn = make_media(storages={"s3": s3.storage(public_base_url="https://cdn.example.com")},
                     profiles=[PublicPhotoProfile])
    async with cdn.connected():
        public = (await cdn.upload("public_photo", data, filename="p.png")).asset
        await cdn.drain()
        url = await cdn.url("public_photo", public.id)
        assert url == f"https://cdn.example.com/{public.storage_key}"
        assert "X-Amz" not in url and "?" not in url


@SQLITE
async def test_server_side_upload_goes_multipart_as_it_streams(s3_media: Rindle,
                                                               s3: S3Bucket) -> None:
    # The memory it holds is measured by bench/upload_memory.py.
    size = 20 * MiB
    seen: list[int] = []
    async with s3_media.connected():
        result = await s3_media.upload("photo", _noting_parts(s3, size, seen),
                                       filename="big.png", content_type="image/png")
        assert seen == [1, 2]  # parts were sent before the body ended
        staged = result.session.upload_key
        assert s3.client.head_object(Bucket=s3.name, Key=staged)["ETag"].endswith('-3"')
        await s3_media.drain()
        asset = await s3_media.asset(result.asset.id)
        assert asset.state == "available"
        key = asset.storage_key
        assert s3.get(key) == _image(size)
        assert asset.checksum == "sha256:" + hashlib.sha256(_image(size)).hexdigest()

        with pytest.raises(FileTooLarge):
            await s3_media.upload("small_photo", _generate(size), filename="big.png",
                                  content_type="image/png")
        await s3_media.drain()
        assert s3.keys() == [key]  # only the first upload's object
        assert s3.pending_uploads() == []
        assert [a.id for a in await s3_media.repo.list_assets()] == [result.asset.id]

