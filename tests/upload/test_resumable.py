"""GCS's native resumable sessions through Rindle's HTTP surface, against gcp-storage-emulator:
the client sends the chunks straight to the store, asks Rindle how far it got between chunks,
and the finished upload becomes a verified, promoted asset."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AllowAll, Profile, Rindle
from tests.conftest import LiveServer, MakeMedia
from tests.support.events import assert_no_secret, captured, named
from tests.support.gcs import GCSBucket, gcs_emulator_fixture, gcs_fixture  # noqa: F401
from tests.support.images import png

KiB = 1024
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Lessons(Profile):
    name = "lessons"
    storage = "gcs"
    allow_mime = ["image/png"]


def _data(size: int) -> bytes:
    return (png(16, 16) + bytes(range(251)) * (size // 251 + 1))[:size]


def _app(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


@pytest.fixture
def gcs_media(make_media: MakeMedia, gcs: GCSBucket) -> Rindle:
    return make_media(storages={"gcs": gcs.storage()}, profiles=[Lessons],
                      authorizer=AllowAll())


@SQLITE
async def test_a_resumable_upload_in_three_chunks_becomes_an_asset(gcs_media: Rindle,
                                                                  gcs: GCSBucket) -> None:
    size = 2 * 256 * KiB + 1000
    data = _data(size)
    with captured() as events:
        uri, sid = await _three_chunks(gcs_media, gcs, data)
    # The session URI is a bearer credential for a week: no event holds it.
    assert_no_secret(events, [uri, urlsplit(uri).query])
    [(signed, _)] = named(events, "rindle.upload.sign", session_id=sid, strategy="resumable")
    assert signed["ttl"] == 7 * 86400
    offsets = [m["offset"] for m, _ in named(events, "rindle.upload.status", session_id=sid)]
    assert offsets[:4] == [0, 256 * KiB, 512 * KiB, size]
    [(completed, _)] = named(events, "rindle.upload.complete.stop", session_id=sid)
    assert completed["bytes"] == size


async def _three_chunks(gcs_media: Rindle, gcs: GCSBucket, data: bytes) -> tuple[str, str]:
    """The flow of the test above; the session URI and the session id."""
    size = len(data)
    async with LiveServer(_app(gcs_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        options = (await client.get("/rindle/profiles/lessons/upload-options")).json()
        assert "resumable" in options["strategies"]
        r = await client.post("/rindle/resumable", json={
            "profile": "lessons", "filename": "l.png", "content_type": "image/png",
            "byte_size": size}, headers={"Origin": srv.url})
        assert r.status_code == 201, r.text
        body = r.json()
        uri = body["upload"]["url"]
        sid = body["session_id"]
        assert uri.startswith(gcs.endpoint_url)  # straight to the store, not through Rindle
        status = (await client.get(f"/rindle/resumable/{sid}")).json()
        assert (status["committed"], status["state"]) == (0, "signed")
        # The upload lives as long as the store's session (a week), not the upload TTL:
        # Rindle doesn't see the chunks, and the sweeper must not cancel a long upload.
        from datetime import UTC, datetime, timedelta

        row = await gcs_media.repo.get_session(sid)
        assert row is not None
        assert row.expires_at > datetime.now(UTC) + timedelta(days=6)
        assert datetime.fromisoformat(body["upload"]["expires_at"]) == row.expires_at
        async with httpx.AsyncClient() as browser:
            for start, end in ((0, 256 * KiB), (256 * KiB, 512 * KiB), (512 * KiB, size)):
                total = size if end == size else "*"
                put = await browser.put(uri, content=data[start:end], headers={
                    "Content-Range": f"bytes {start}-{end - 1}/{total}"})
                assert put.status_code == (200 if end == size else 308)
                status = (await client.get(f"/rindle/resumable/{sid}")).json()
                assert status["committed"] == end
        assert status["state"] == "completed"
        await gcs_media.drain()
        asset = await gcs_media.asset(body["asset_id"])
        assert asset.state == "available" and asset.byte_size == size
        # What was validated is under the asset's own key; the staging object is gone.
        assert gcs.get(asset.storage_key) == data
        session = await gcs_media.repo.get_session(sid)
        assert session is not None and session.upload_key not in gcs.keys()
        shown = (await client.get(f"/rindle/assets/{asset.id}")).json()
        got = await client.get(shown["url"])
        assert got.status_code == 200 and got.content == data
        # The session URI is a credential: it is in no later answer.
        assert uri not in (await client.get(f"/rindle/resumable/{sid}")).text
        assert uri not in repr(session) and "upload_id" not in repr(session)
    return uri, sid


@SQLITE
async def test_a_cancelled_session_is_aborted_and_purged(gcs_media: Rindle,
                                                        gcs: GCSBucket) -> None:
    size = 300 * KiB
    async with LiveServer(_app(gcs_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/resumable", json={
            "profile": "lessons", "filename": "l.png", "content_type": "image/png",
            "byte_size": size})
        body = r.json()
        async with httpx.AsyncClient() as browser:
            put = await browser.put(body["upload"]["url"], content=_data(size)[:256 * KiB],
                                    headers={"Content-Range": f"bytes 0-{256 * KiB - 1}/*"})
            assert put.status_code == 308
        with captured() as events:
            r = await client.delete(f"/rindle/resumable/{body['session_id']}")
        assert r.status_code == 200 and r.json()["state"] == "aborted"
        [(_, aborted)] = named(events, "rindle.upload.abort")
        assert (aborted["session_id"], aborted["strategy"]) == (body["session_id"], "resumable")
        await gcs_media.drain()
        assert await gcs_media.repo.get_asset(body["asset_id"]) is None
        [purge] = await gcs_media.purges(asset_id=body["asset_id"])
        assert purge.reason == "upload_aborted"
        again = await client.get(f"/rindle/resumable/{body['session_id']}")
        assert again.status_code in (404, 410)


@SQLITE
async def test_refused_before_anything_exists(gcs_media: Rindle, make_media: MakeMedia) -> None:
    async with LiveServer(_app(gcs_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/resumable", json={
            "profile": "lessons", "filename": "l.html", "content_type": "text/html",
            "byte_size": 10})
        assert r.status_code == 415
    local = make_media(authorizer=AllowAll())
    async with LiveServer(_app(local)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/resumable", json={
            "profile": "image", "filename": "l.png", "content_type": "image/png",
            "byte_size": 10})
        assert r.status_code == 400 and r.json()["error"]["code"] == "upload_unsupported"
