"""The tus 1.0.0 server, request by request, over uvicorn with httpx (real clients are in
test_tus_clients.py): every status code and header the protocol and its extensions name."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import zlib
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AllowAll, LocalStorage, Profile, Rindle
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import png

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


class Clips(Profile):
    name = "clips"
    storage = "local"
    allow_mime = ["image/png"]
    max_bytes = 8 * MiB


def _app(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _data(size: int) -> bytes:
    """A PNG header padded to ``size`` bytes: promotion accepts it, variants aren't built."""
    return (png(16, 16) + bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.fixture
def tus_media(make_media: MakeMedia) -> Rindle:
    return make_media(profiles=[Clips], authorizer=AllowAll())


async def _create(client: httpx.AsyncClient, length: int | None, **headers: str) -> str:
    h = {**TUS, "Upload-Metadata": _meta(filename="a.png", filetype="image/png"), **headers}
    if length is None:
        h["Upload-Defer-Length"] = "1"
    else:
        h["Upload-Length"] = str(length)
    r = await client.post("/rindle/tus/clips/", headers=h)
    assert r.status_code == 201, r.text
    return r.headers["location"]


async def _patch(client: httpx.AsyncClient, url: str, offset: int, body: bytes,
                 **headers: str) -> httpx.Response:
    return await client.patch(url, content=body, headers={
        **TUS, **OCTETS, "Upload-Offset": str(offset), **headers})


async def _ready(media: Rindle, asset_id: str) -> None:
    await media.drain()
    asset = await media.asset(asset_id)
    assert asset.state in ("available", "ready"), asset


async def test_options_announces_the_protocol(tus_media: Rindle) -> None:
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.options("/rindle/tus/clips/")
        assert r.status_code == 204
        assert r.headers["tus-version"] == "1.0.0"
        assert set(r.headers["tus-extension"].split(",")) == {
            "creation", "creation-with-upload", "creation-defer-length", "expiration",
            "termination", "checksum", "concatenation"}
        assert r.headers["tus-max-size"] == str(8 * MiB)
        assert r.headers["tus-checksum-algorithm"] == "sha1,md5,crc32"


async def test_create_head_patch_in_chunks_then_the_asset(tus_media: Rindle) -> None:
    data = _data(3 * MiB + 17)
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/tus/clips/", headers={
            **TUS, "Upload-Length": str(len(data)),
            "Upload-Metadata": _meta(filename="a.png", filetype="image/png")})
        assert r.status_code == 201
        url = r.headers["location"]
        assert url.startswith(f"{srv.url}/rindle/tus/clips/")
        assert r.headers["upload-expires"] and r.headers["rindle-session-id"]
        assert "Location" in r.headers["access-control-expose-headers"]
        head = await client.head(url, headers=TUS)
        assert head.status_code == 200 and head.headers["upload-offset"] == "0"
        assert head.headers["upload-length"] == str(len(data))
        assert head.headers["cache-control"] == "no-store"
        assert head.headers["upload-metadata"].startswith("filename ")
        offset = 0
        for piece in (data[:MiB], data[MiB:2 * MiB], data[2 * MiB:]):
            r = await _patch(client, url, offset, piece)
            assert r.status_code == 204, r.text
            offset += len(piece)
            assert r.headers["upload-offset"] == str(offset)
        assert r.headers["rindle-asset-id"]
        await _ready(tus_media, r.headers["rindle-asset-id"])
        asset = await tus_media.asset(r.headers["rindle-asset-id"])
        assert asset.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
        again = await client.head(url, headers=TUS)
        assert again.status_code == 200 and again.headers["rindle-asset-id"] == asset.id


async def test_protocol_errors(tus_media: Rindle) -> None:
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 100)
        # No or another Tus-Resumable: 412 with the version the server speaks.
        r = await client.head(url)
        assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
        r = await client.head(url, headers={"Tus-Resumable": "0.2.2"})
        assert r.status_code == 412
        # Another content type: 415; an offset that isn't the upload's: 409.
        r = await client.patch(url, content=b"x", headers={**TUS, "Upload-Offset": "0",
                                                            "Content-Type": "text/plain"})
        assert r.status_code == 415
        r = await _patch(client, url, 5, b"x")
        assert r.status_code == 409 and r.json()["error"]["code"] == "offset_mismatch"
        # Past the declared length: 413 and nothing appended.
        r = await _patch(client, url, 0, b"x" * 101)
        assert r.status_code == 413
        assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"
        # An unknown or forged URL: 403/404.
        middle = len(url) - 20
        forged = url[:middle] + ("A" if url[middle] != "A" else "B") + url[middle + 1:]
        r = await client.head(forged, headers=TUS)
        assert r.status_code == 403
        # Over the profile's max_bytes: 413 before anything exists.
        r = await client.post("/rindle/tus/clips/", headers={
            **TUS, "Upload-Length": str(8 * MiB + 1)})
        assert r.status_code == 413
        # Neither or both of Upload-Length and Upload-Defer-Length: 400.
        r = await client.post("/rindle/tus/clips/", headers=TUS)
        assert r.status_code == 400
        # A type the profile refuses: 415 before anything exists.
        r = await client.post("/rindle/tus/clips/", headers={
            **TUS, "Upload-Length": "10", "Upload-Metadata": _meta(filename="a.html",
                                                                   filetype="text/html")})
        assert r.status_code == 415


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "crc32"])
async def test_checksum_mismatch_appends_nothing(tus_media: Rindle, algorithm: str) -> None:
    data = _data(4000)

    def digest(body: bytes) -> str:
        if algorithm == "crc32":
            raw = zlib.crc32(body).to_bytes(4, "big")
        else:
            raw = hashlib.new(algorithm, body).digest()
        return f"{algorithm} {base64.b64encode(raw).decode()}"

    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, len(data))
        r = await _patch(client, url, 0, data[:1000], **{"Upload-Checksum": digest(b"other")})
        assert r.status_code == 460
        assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"
        r = await _patch(client, url, 0, data[:1000], **{"Upload-Checksum": digest(data[:1000])})
        assert r.status_code == 204 and r.headers["upload-offset"] == "1000"
        r = await _patch(client, url, 1000, data[1000:], **{"Upload-Checksum": "sha3 AAAA"})
        assert r.status_code == 400


async def test_creation_with_upload_and_deferred_length(tus_media: Rindle) -> None:
    data = _data(5000)
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/tus/clips/", content=data[:2000], headers={
            **TUS, **OCTETS, "Upload-Defer-Length": "1",
            "Upload-Metadata": _meta(filename="a.png", filetype="image/png")})
        assert r.status_code == 201 and r.headers["upload-offset"] == "2000"
        url = r.headers["location"]
        head = await client.head(url, headers=TUS)
        assert head.headers["upload-defer-length"] == "1" and "upload-length" not in head.headers
        r = await _patch(client, url, 2000, data[2000:], **{"Upload-Length": str(len(data))})
        assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
        await _ready(tus_media, r.headers["rindle-asset-id"])
        # With the length still deferred, the profile's max_bytes is the limit: going past
        # it is 413 max_bytes_exceeded and nothing of that PATCH is kept.
        url = await _create(client, None)
        r = await _patch(client, url, 0, _data(8 * MiB + 1024))
        assert r.status_code == 413 and r.json()["error"]["code"] == "max_bytes_exceeded"
        assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"


async def test_termination_and_expiry(tus_media: Rindle) -> None:
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 100)
        assert (await _patch(client, url, 0, b"\x89PNG" + b"x" * 20)).status_code == 204
        r = await client.delete(url, headers=TUS)
        assert r.status_code == 204
        assert (await client.head(url, headers=TUS)).status_code in (404, 410)
        assert (await _patch(client, url, 24, b"x")).status_code in (404, 410)
        # Expired: 410 afterwards.
        url = await _create(client, 100)
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        from datetime import UTC, datetime, timedelta

        await tus_media.repo.update_session(
            session_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
        assert (await client.head(url, headers=TUS)).status_code == 410
        assert (await _patch(client, url, 0, b"x")).status_code == 410


async def test_method_override(tus_media: Rindle) -> None:
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 10)
        r = await client.post(url, content=b"\x89PNG\r\n\x1a\n..", headers={
            **TUS, **OCTETS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"})
        assert r.status_code == 204 and r.headers["upload-offset"] == "10"


async def test_concatenation(tus_media: Rindle) -> None:
    data = _data(9000)
    parts = [data[:3000], data[3000:6000], data[6000:]]
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        urls = []
        for part in parts:
            r = await client.post("/rindle/tus/clips/", headers={
                **TUS, "Upload-Length": str(len(part)), "Upload-Concat": "partial"})
            assert r.status_code == 201
            assert (await _patch(client, r.headers["location"], 0, part)).status_code == 204
            urls.append(r.headers["location"])
        # A PATCH to a final upload is refused (403).
        r = await client.post("/rindle/tus/clips/", headers={
            **TUS, "Upload-Concat": "final;" + " ".join(urls),
            "Upload-Metadata": _meta(filename="a.png", filetype="image/png")})
        assert r.status_code == 201, r.text
        asset_id = r.headers["rindle-asset-id"]
        final = r.headers["location"]
        head = await client.head(final, headers=TUS)
        assert head.headers["upload-offset"] == str(len(data))
        # Its HEAD names the partial uploads it joined, in order.
        kind, _, listed = head.headers["upload-concat"].partition(";")
        from rindle.upload.tus import TusUploads

        tokens = TusUploads(tus_media)
        assert kind == "final"
        assert [tokens.session_id(u.rsplit("/", 1)[1]) for u in listed.split(" ")] == [
            tokens.session_id(u.rsplit("/", 1)[1]) for u in urls]
        assert (await _patch(client, final, len(data), b"x")).status_code == 403
        await _ready(tus_media, asset_id)
        asset = await tus_media.asset(asset_id)
        assert asset.checksum == "sha256:" + hashlib.sha256(data).hexdigest()


async def test_two_concurrent_patches_apply_once(tus_media: Rindle) -> None:
    data = _data(2 * MiB)
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
        url = await _create(client, len(data))
        gate = asyncio.Event()

        async def slow_body() -> Any:
            yield data[:MiB]
            await gate.wait()
            yield data[MiB:]

        first = asyncio.create_task(client.patch(url, content=slow_body(), headers={
            **TUS, **OCTETS, "Upload-Offset": "0"}))
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        for _ in range(200):  # until the first PATCH holds the lease
            rows = await tus_media.repo.db.fetch_all(
                "SELECT lease_token FROM rindle_upload_sessions WHERE id = :id",
                {"id": session_id})
            if rows and rows[0]["lease_token"]:
                break
            await asyncio.sleep(0.02)
        second = await _patch(client, url, 0, data)
        gate.set()
        done = await first
        assert sorted([second.status_code, done.status_code]) == [204, 423]
        head = await client.head(url, headers=TUS)
        assert head.headers["upload-offset"] == str(len(data))


class _Body:
    """A PATCH body for TusUploads.append without HTTP (what KeptBody is to the routes)."""

    interrupted: str | None = None

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> Any:
        yield self._data


async def test_a_patch_that_read_the_offset_before_another_appended_is_refused(
        tus_media: Rindle) -> None:
    """The route reads the session once and hands the row to append(); a second PATCH
    that read offset 0 while the first held the lease must not write at 0 once the lease
    is free: the lease is taken only at the offset checked."""
    from rindle.upload.tus import TusError, TusUploads

    data = _data(64 * 1024)
    async with tus_media.connected():
        uploads = TusUploads(tus_media)
        upload = await uploads.create("clips", length=len(data),
                                      metadata={"filename": "a.png", "filetype": "image/png"})
        stale = await tus_media.repo.get_session(upload.session_id)
        assert stale is not None
        first = await uploads.append(upload.session_id, 0, _Body(data[:1000]))
        assert first.offset == 1000
        with pytest.raises(TusError) as refused:
            await uploads.append(upload.session_id, 0, _Body(b"X" * 1000), session=stale)
        assert refused.value.code == "offset_mismatch"
        assert refused.value.details["offset"] == 1000
        rest = await uploads.append(upload.session_id, 1000, _Body(data[1000:]))
        assert rest.asset_id is not None
        await _ready(tus_media, rest.asset_id)
        asset = await tus_media.asset(rest.asset_id)
        assert await tus_media.storage_for("clips").read_range(asset.storage_key, 0,
                                                               len(data)) == data


async def test_the_upload_url_never_leaks(tus_media: Rindle,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """The Location is a bearer credential: no log record (Rindle's, uvicorn's access log),
    error body, telemetry event or repr carries its token, through a whole life: creation,
    a PATCH cut short, an offset conflict, a 460, termination and the 404/410 after it."""
    import logging
    from urllib.parse import urlsplit

    from rindle.upload.tus import TusUploads
    from tests.web.test_log_redaction import leaks, needles

    caplog.set_level(logging.WARNING, logger="httpx")
    caplog.set_level(logging.WARNING, logger="httpcore")
    caplog.set_level(logging.DEBUG)
    from rindle import telemetry

    events: list[Any] = []
    detach = telemetry.attach("rindle.", lambda name, numbers, meta: events.append(
        (name, numbers, meta)))
    bodies: list[str] = []
    async with LiveServer(_app(tus_media), access_log=True) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 4096)
        token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[1]
        for r in (await _patch(client, url, 0, _data(1000)),
                  await _patch(client, url, 5, b"x"),
                  await _patch(client, url, 1000, b"y" * 10, **{
                      "Upload-Checksum": "sha1 " + base64.b64encode(b"0" * 20).decode()}),
                  await client.delete(url, headers=TUS),
                  await client.head(url, headers=TUS),
                  await _patch(client, url, 1000, b"z")):
            bodies.append(r.text)
            bodies.extend(f"{k}: {v}" for k, v in r.headers.items() if k != "location")
        uploads = TusUploads(tus_media)
        status_repr = repr(uploads) + repr(await tus_media.repo.get_session(
            uploads.session_id(token)))
    detach()
    assert events
    secrets = needles(token)
    assert len(token) >= 32
    found = [where for rec in caplog.records for where in leaks(rec, secrets)]
    assert found == []
    from rindle.logs import REDACTED

    # The access log did see the token's routes, redacted.
    assert any(r.name == "uvicorn.access" and REDACTED in r.getMessage()
               for r in caplog.records)
    assert not [b for b in bodies if any(s in b for s in secrets)]
    assert not [e for e in events if any(s in repr(e) for s in secrets)]
    assert not any(s in status_repr for s in secrets)


async def test_a_lost_upload_ends_so_the_client_starts_over(tus_media: Rindle) -> None:
    """Acknowledged bytes gone from the store (a power cut in fast mode): the PATCH answers
    410 ``upload_lost``, and so does HEAD from then on, so tus clients create a new upload
    instead of retrying this one until it expires."""
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 4096)
        assert (await _patch(client, url, 0, _data(1000))).status_code == 204
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        session = await tus_media.repo.get_session(session_id)
        assert session is not None
        path = tus_media.storage_for("clips").local_path(session.upload_key)  # type: ignore[attr-defined]
        with open(path, "r+b") as f:
            f.truncate(500)
        r = await _patch(client, url, 1000, b"x" * 100)
        assert r.status_code == 410 and r.json()["error"]["code"] == "upload_lost"
        assert (await client.head(url, headers=TUS)).status_code == 410
        ended = await tus_media.repo.get_session(session_id)
        assert ended is not None and ended.state == "failed"
        assert ended.failure_reason == "upload_lost"


async def test_a_running_patch_keeps_its_lease_and_its_upload_alive(
        tus_media: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a PATCH runs (bytes flowing or briefly stalled), its lease is renewed and the
    upload's expiry slides: a second PATCH gets 423 throughout, and the sweeper never
    expires an upload whose bytes are still coming."""
    from datetime import UTC, datetime, timedelta

    from rindle.upload import tus

    monkeypatch.setattr(tus, "_RENEW_EVERY", 0.2)
    monkeypatch.setattr(tus, "LEASE_SECONDS", 0.5)
    data = _data(3 * 64 * 1024)
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
        url = await _create(client, len(data))
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        await tus_media.repo.update_session(
            session_id, expires_at=datetime.now(UTC) + timedelta(seconds=1))
        gate = asyncio.Event()

        async def slow_body() -> Any:
            yield data[:64 * 1024]
            await asyncio.sleep(1.5)  # no bytes: longer than the lease and the expiry
            yield data[64 * 1024:128 * 1024]
            await gate.wait()
            yield data[128 * 1024:]

        first = asyncio.create_task(client.patch(url, content=slow_body(), headers={
            **TUS, **OCTETS, "Upload-Offset": "0"}))
        await asyncio.sleep(2.0)
        session = await tus_media.repo.get_session(session_id)
        assert session is not None and session.expires_at > datetime.now(UTC)
        # Past the 0.5 s lease four times over: only renewal keeps the second PATCH out.
        second = await _patch(client, url, 0, data)
        assert second.status_code == 423
        gate.set()
        done = await first
        assert done.status_code == 204 and done.headers["upload-offset"] == str(len(data))


async def test_an_unknown_profile_names_no_other_profile(tus_media: Rindle) -> None:
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        for r in (await client.options("/rindle/tus/nope/"),
                  await client.post("/rindle/tus/nope/", headers={**TUS, "Upload-Length": "9"}),
                  await client.post("/rindle/uploads", json={
                      "profile": "nope", "filename": "a.png", "content_type": "image/png",
                      "byte_size": 9})):
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_profile"
            assert "clips" not in r.text


@pytest.mark.parametrize("durable", [True, False])
async def test_durable_mode_fsyncs_each_acknowledged_offset_and_fast_mode_none(
        make_media: MakeMedia, monkeypatch: pytest.MonkeyPatch, durable: bool) -> None:
    """``Rindle(durable_uploads=...)``: every PATCH fsyncs its file before answering in
    durable mode (the default); fast mode acknowledges from the page cache, never fsyncing."""
    import os

    media = make_media(profiles=[Clips], authorizer=AllowAll(), durable_uploads=durable)
    data = _data(300_000)
    async with LiveServer(_app(media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, len(data))
        synced: list[int] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            synced.append(fd)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        for start in range(0, len(data), 100_000):
            r = await _patch(client, url, start, data[start:start + 100_000])
            assert r.status_code == 204
            if durable:
                assert synced, "a durable PATCH answered before any fsync"
            else:
                assert synced == []
            synced.clear()
        monkeypatch.setattr(os, "fsync", real)
        await _ready(media, r.headers["rindle-asset-id"])


def test_large_uploads_orders_the_flows_a_client_is_offered(tmp_path: Any) -> None:
    """``upload_options`` lists only what the storage can honour: tus and multipart in
    ``large_uploads`` order, GCS's own sessions, then the presigned PUT small files use."""
    from rindle.storage.gcs import GCSStorage
    from rindle.storage.s3 import S3Storage
    from tests.conftest import SECRET

    def offered(storage: Any, **options: Any) -> list[str]:
        media = Rindle(database_url=f"sqlite:///{tmp_path}/o.db", storages={"local": storage},
                       profiles=[Clips], secret_keys=[SECRET], **options)
        strategies: list[str] = media.upload_options("clips")["strategies"]
        return strategies

    s3 = S3Storage(bucket="media", endpoint_url="http://127.0.0.1:9")
    assert offered(s3) == ["tus", "multipart", "presigned_put"]
    assert offered(s3, large_uploads=("multipart", "tus")) == ["multipart", "tus",
                                                               "presigned_put"]
    assert offered(s3, large_uploads=("multipart",)) == ["multipart", "presigned_put"]
    local = LocalStorage(root=tmp_path / "files")
    assert offered(local) == ["tus", "presigned_put"]
    assert offered(local, large_uploads=("multipart",)) == ["presigned_put"]
    gcs = GCSStorage(bucket="media", endpoint_url="http://127.0.0.1:9", anonymous=True)
    assert offered(gcs) == ["resumable", "presigned_put"]
    with pytest.raises(Exception, match="large_uploads"):
        offered(local, large_uploads=("ftp",))


def test_a_profile_orders_its_own_large_upload_flows(tmp_path: Any) -> None:
    """A profile's ``large_uploads`` wins over the runtime's for its files (hero images on
    multipart, lessons on tus, one runtime); a bad order is refused when it is defined."""
    from rindle.errors import ConfigurationError
    from rindle.storage.s3 import S3Storage
    from tests.conftest import SECRET

    class Heroes(Clips):
        name = "heroes"
        large_uploads = ["multipart"]

    media = Rindle(database_url=f"sqlite:///{tmp_path}/o.db",
                   storages={"local": S3Storage(bucket="media", endpoint_url="http://127.0.0.1:9")},
                   profiles=[Clips, Heroes], secret_keys=[SECRET], large_uploads=("tus",))
    assert media.upload_options("heroes")["strategies"] == ["multipart", "presigned_put"]
    assert media.upload_options("clips")["strategies"] == ["tus", "presigned_put"]
    for bad in ("tus", [], ["ftp"]):
        with pytest.raises(ConfigurationError, match="large_uploads") as caught:
            type("Bad", (Clips,), {"name": "bad", "large_uploads": bad})
        assert caught.value.code == "invalid_profile"


async def test_the_authorizer_decides_every_request(make_media: MakeMedia) -> None:
    """The profile's Authorizer (action ``upload``) is asked on creation and on every HEAD,
    PATCH and DELETE, with the session; once it says no, the upload URL alone opens
    nothing (403). The default authorizer denies tus creation outright."""
    from rindle.delivery.authorizer import AuthRequest

    class Gate:
        def __init__(self) -> None:
            self.open = True
            self.asked: list[tuple[str, str | None, str | None]] = []

        def authorize(self, request: AuthRequest) -> bool:
            self.asked.append((request.action, request.request.method if request.request
                               else None, request.session.id if request.session else None))
            return self.open

    gate = Gate()
    media = make_media(profiles=[Clips], authorizer=gate)
    async with LiveServer(_app(media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        url = await _create(client, 10)
        assert (await _patch(client, url, 0, b"\x89PNG\r\n")).status_code == 204
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        assert [a[:2] for a in gate.asked] == [("upload", "POST"), ("upload", "PATCH"),
                                               ("upload", "HEAD")]
        assert [a[2] for a in gate.asked[1:]] == [session_id, session_id]
        gate.open = False
        for r in (await client.head(url, headers=TUS),
                  await _patch(client, url, 6, b"\x1a\n.."),
                  await client.delete(url, headers=TUS),
                  await client.post("/rindle/tus/clips/", headers={**TUS,
                                                                   "Upload-Length": "5"})):
            assert r.status_code == 403, r.text
        session = await media.repo.get_session(session_id)
        assert session is not None and session.last_known_offset == 6
        assert session.state == "uploading"

    denied = make_media(profiles=[Clips], authorizer=None)
    async with LiveServer(_app(denied)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/tus/clips/", headers={**TUS, "Upload-Length": "5"})
        assert r.status_code == 403


async def test_a_patch_that_loses_its_lease_stops_writing(
        tus_media: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a renewal find the lease gone (another holder took it after a lapse), the
    running PATCH stops reading and writing at once, before it can cut or overwrite the
    new holder's bytes; nothing of it is recorded."""
    from pathlib import Path

    from rindle.upload import tus

    monkeypatch.setattr(tus, "_RENEW_EVERY", 0.1)
    piece = _data(256 * 1024)  # Local writes in 1 MiB batches
    async with LiveServer(_app(tus_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
        url = await _create(client, 8 * MiB)
        session_id = (await client.head(url, headers=TUS)).headers["rindle-session-id"]
        session = await tus_media.repo.get_session(session_id)
        assert session is not None
        path = Path(tus_media.storage_for("clips").local_path(  # type: ignore[attr-defined]
            session.upload_key))

        async def trickle() -> Any:
            for _ in range(32):  # a slow client: 1 MiB a second
                yield piece
                await asyncio.sleep(0.25)

        first = asyncio.create_task(client.patch(url, content=trickle(), headers={
            **TUS, **OCTETS, "Upload-Offset": "0"}))
        try:
            await asyncio.sleep(1.6)
            assert path.stat().st_size > 0  # it is writing
            await tus_media.repo.db.execute(  # another holder, as after a lapse
                "UPDATE rindle_upload_sessions SET lease_token = 'someone-else' WHERE id = :id",
                {"id": session_id})
            await asyncio.sleep(0.5)  # the next renewal finds it gone
            stopped = path.stat().st_size
            await asyncio.sleep(2.5)  # 2.5 MiB more sent meanwhile
            assert path.stat().st_size == stopped  # none of them written
        finally:
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
        session = await tus_media.repo.get_session(session_id)
        assert session is not None and session.last_known_offset == 0
