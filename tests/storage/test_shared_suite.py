"""The same upload-and-delivery tests on every storage adapter (Local, S3 and GCS).

Callers ask adapters what they can do, never which one they are; these tests hold every
adapter to the same contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import LocalStorage, Profile, Rindle
from rindle.errors import ObjectNotFound
from rindle.storage.base import Capability, Storage
from tests.conftest import LiveServer, MakeMedia
from tests.support.gcs import GCSBucket, gcs_emulator_fixture, gcs_fixture  # noqa: F401
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

KEY = "shared/0b7e4c/9f3c2a.png"


class SharedProfile(Profile):
    name = "shared"
    storage = "store"
    allow_mime = ["image/png"]


@pytest.fixture(params=["local", "s3", "gcs"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(root=tmp_path / "local-store")
    if request.param == "gcs":
        # gcp-storage-emulator checks no signature: tests/storage/test_gcs.py checks them.
        gcs: GCSBucket = request.getfixturevalue("gcs")
        emulated: Storage = gcs.storage()
        return emulated
    bucket: S3Bucket = request.getfixturevalue("s3")
    storage: Storage = bucket.storage()
    return storage


@pytest.fixture
async def server(make_media: MakeMedia,
                 adapter: Storage) -> AsyncIterator[tuple[Rindle, LiveServer]]:
    media = make_media(storages={"store": adapter}, profiles=[SharedProfile])
    app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
    async with LiveServer(app) as srv:
        yield media, srv


def _absolute(srv: LiveServer, url: str) -> str:
    # Local signs site-absolute paths to Rindle's own routes; cloud adapters sign full URLs.
    return f"{srv.url}{url}" if url.startswith("/") else url


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_direct_upload_then_delivery(server: tuple[Rindle, LiveServer]) -> None:
    media, srv = server
    storage = media.storage_for("shared")
    assert {Capability.PRESIGNED_PUT, Capability.SIGNED_URL, Capability.HEAD} <= \
        storage.capabilities
    data = png(40, 30)
    session = await media.initiate_upload("shared", filename="pic.png",
                                          content_type="image/png", byte_size=len(data))
    ticket = await media.sign_url(session.id)
    assert ticket.method == "PUT"
    assert ticket.headers == {"Content-Type": "image/png"}
    async with httpx.AsyncClient() as client:
        put = await client.put(_absolute(srv, ticket.url), content=data, headers=ticket.headers)
        assert put.status_code == 200, put.text
        result = await media.verify_completion(session.id)
        assert result.asset.state == "validating"
        await media.drain()
        asset = await media.asset(session.asset_id)
        assert asset.state == "available"
        assert (asset.width, asset.height, asset.byte_size) == (40, 30, len(data))

        url = _absolute(srv, await media.url("shared", asset))
        got = await client.get(url)
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"] == 'inline; filename="pic.png"'
        part = await client.get(url, headers={"Range": "bytes=0-7"})
        assert part.status_code == 206 and part.content == data[:8]


async def test_object_round_trip(server: tuple[Rindle, LiveServer]) -> None:
    media, _ = server
    storage = media.storage_for("shared")
    data = bytes(range(256)) * 4
    info = await storage.write(KEY, _chunks(data[:100], b"", data[100:]),
                               content_type="image/png")
    assert (info.key, info.size) == (KEY, len(data))

    head = await storage.head(KEY)
    assert head is not None and head.size == len(data) and head.etag
    assert await storage.read_range(KEY, 10, 5) == data[10:15]
    assert await storage.read_range(KEY, 1020, 100) == data[1020:]
    assert await storage.read_range(KEY, 5000, 10) == b""
    assert await _collect(storage.stream(KEY)) == data
    assert await _collect(storage.stream(KEY, start=3, end=700, chunk_size=64)) == data[3:701]
    assert await _collect(storage.stream(KEY, start=1000)) == data[1000:]

    assert await storage.delete(KEY) is True
    assert await storage.head(KEY) is None
    assert await storage.delete(KEY) is False
    with pytest.raises(ObjectNotFound):
        await storage.read_range(KEY, 0, 1)
    with pytest.raises(ObjectNotFound):
        await _collect(storage.stream(KEY))
