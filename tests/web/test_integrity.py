"""What passed validation is what is served, forever: the attacks on upload credentials,
driven from outside over HTTP against uvicorn, on Local storage and on S3 (moto).

Each attack reuses an upload URL after its purpose ended — a second PUT once the asset is
ready, a PUT held open across completion, parts re-uploaded after a multipart completion —
and checks the served original stays byte-identical to the validated upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Profile, Rindle, Variant
from rindle.errors import StorageError
from rindle.processing.queue import InlineQueue
from rindle.storage.s3 import S3Storage
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import HTML, png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class LocalThumbs(Profile):
    name = "photo"
    storage = "local"
    allow_mime = ["image/png"]
    max_bytes = 24 * MiB
    variants = {"thumb": Variant(mode="fit", width=16, height=16)}


class S3Thumbs(LocalThumbs):
    name = "photo"
    storage = "s3"


def _app(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


def _evil(size: int) -> bytes:
    """An HTML page with a script, padded to ``size`` bytes (the size the URL is bound to)."""
    return (HTML + b" " * size)[:size]


async def _initiate(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    r = await client.post("/rindle/uploads", json={
        "profile": "photo", "filename": "me.png", "content_type": "image/png",
        "byte_size": len(data)})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _wait_state(client: httpx.AsyncClient, asset_id: str, state: str) -> dict[str, Any]:
    for _ in range(400):
        shown: dict[str, Any] = (await client.get(f"/rindle/assets/{asset_id}")).json()
        if shown["state"] == state:
            return shown
        await asyncio.sleep(0.05)
    raise AssertionError(f"asset {asset_id} never became {state}: {shown}")


async def _upload_until_ready(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    body = await _initiate(client, data)
    put = await client.put(body["upload"]["url"], content=data,
                           headers=body["upload"]["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
    assert done.status_code == 200, done.text
    body["shown"] = await _wait_state(client, body["asset_id"], "ready")
    return body


async def _served(client: httpx.AsyncClient, asset_id: str) -> bytes:
    shown = (await client.get(f"/rindle/assets/{asset_id}")).json()
    got = await client.get(shown["url"])
    assert got.status_code == 200
    return got.content


class RawPut:
    """A PUT on a raw socket, so a test decides when each byte of the body goes out."""

    def __init__(self, url: str, content_type: str, length: int) -> None:
        self.url = urlsplit(url)
        self.content_type = content_type
        self.length = length
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self, first: bytes) -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        self.reader, self.writer = await asyncio.open_connection(host, port)
        target = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        head = (f"PUT {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: {self.content_type}\r\nContent-Length: {self.length}\r\n\r\n")
        self.writer.write(head.encode() + first)
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readline()
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _leftovers(root: Path) -> list[str]:
    """Files under the Local root other than the asset's own objects and variants."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and (p.parts[len(root.parts)] in (".rindle-tmp",
                                                                    "_rindle_staging")))


# --- Local storage --------------------------------------------------------------------------


@pytest.fixture
def local_media(make_media: MakeMedia) -> Rindle:
    return make_media(profiles=[LocalThumbs])


async def test_local_a_second_put_after_ready_is_refused(local_media: Rindle,
                                                         tmp_path: Path) -> None:
    data = png(40, 30)
    async with LiveServer(_app(local_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await _upload_until_ready(client, data)
        again = await client.put(body["upload"]["url"], content=_evil(len(data)),
                                 headers=body["upload"]["headers"])
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "session_closed"
        assert await _served(client, body["asset_id"]) == data
    assert _leftovers(tmp_path / "files") == []


async def test_local_a_put_held_open_across_completion_stores_nothing(
        local_media: Rindle, tmp_path: Path) -> None:
    data = png(40, 30)
    evil = _evil(len(data))
    async with LiveServer(_app(local_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await _initiate(client, data)
        put = await client.put(body["upload"]["url"], content=data,
                               headers=body["upload"]["headers"])
        assert put.status_code == 200
        attack = RawPut(body["upload"]["url"], "image/png", len(evil))
        try:
            await attack.start(evil[:10])  # checked when it starts: the session takes bytes
            done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
            assert done.status_code == 200
            await _wait_state(client, body["asset_id"], "ready")
            await attack.send(evil[10:])
            status, _, answer = await attack.response()
        finally:
            attack.close()
        assert status == 409 and b"session_closed" in answer
        assert await _served(client, body["asset_id"]) == data
        asset = await local_media.asset(body["asset_id"])
        assert asset.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    assert _leftovers(tmp_path / "files") == []


async def test_local_an_idle_body_is_cut_and_leaves_nothing(
        make_media: MakeMedia, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    media = make_media(profiles=[LocalThumbs], upload_idle_timeout=0.5)
    data = png(40, 30)
    async with LiveServer(_app(media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        body = await _initiate(client, data)
        stalled = RawPut(body["upload"]["url"], "image/png", len(data))
        try:
            await stalled.start(data[:100])
            status, headers, answer = await stalled.response(timeout=10)
        finally:
            stalled.close()
        assert status == 408 and b"upload_timeout" in answer
        assert headers.get("connection") == "close"
        # The session still takes a whole upload afterwards.
        put = await client.put(body["upload"]["url"], content=data,
                               headers=body["upload"]["headers"])
        assert put.status_code == 200
    assert _leftovers(tmp_path / "files") == [f"_rindle_staging/photo/{body['asset_id']}/"
                                              f"{body['session_id']}.png"]
    cut = [r for r in caplog.records if "upload was cut" in r.getMessage()]
    assert len(cut) == 1 and cut[0].levelno == logging.WARNING and cut[0].exc_info is None


async def test_local_a_vanished_client_is_one_log_line_without_a_traceback(
        local_media: Rindle, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = png(40, 30)
    async with LiveServer(_app(local_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await _initiate(client, data)
        for _ in range(3):
            gone = RawPut(body["upload"]["url"], "image/png", len(data))
            await gone.start(data[:100])
            await asyncio.sleep(0.1)
            gone.close()
        for _ in range(100):
            if len([r for r in caplog.records if "went away" in r.getMessage()]) == 3:
                break
            await asyncio.sleep(0.05)
    went = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(went) == 3 and all(r.levelno == logging.INFO for r in went)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]
    assert _leftovers(tmp_path / "files") == []


async def test_local_tokens_are_opaque(local_media: Rindle) -> None:
    import base64

    data = png(40, 30)
    async with LiveServer(_app(local_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await _upload_until_ready(client, data)
        asset = await local_media.asset(body["asset_id"])
        for url in (body["upload"]["url"], body["shown"]["url"],
                    body["shown"]["variants"]["thumb"]["url"]):
            token = urlsplit(url).path.rsplit("/", 1)[1]
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            for secret in (asset.storage_key, "photo/", "me.png", "image/png", body["session_id"],
                           body["asset_id"]):
                assert secret.encode() not in raw and secret not in token, (url, secret)


async def test_a_promotion_rerun_after_the_move_finishes_the_job(local_media: Rindle) -> None:
    """A crash after the rename but before the row moved on: the rerun keeps the moved file."""
    from rindle.processing import pipeline

    async with local_media.connected():
        data = png(40, 30)
        result = await local_media.upload("photo", data, filename="me.png")
        await local_media.drain()
        asset = await local_media.asset(result.asset.id)
        # Put the row back to where the crash left it; the object already sits at its key.
        await local_media.repo.update_asset(asset.id, state="validating", checksum=None)
        await pipeline.promote(local_media, asset.id)
        again = await local_media.asset(asset.id)
        assert again.state in ("available", "processing", "ready")
        assert again.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
        assert again.storage_key == asset.storage_key


async def test_an_asset_stored_before_staging_keys_is_moved_off_its_upload_key(
        local_media: Rindle, tmp_path: Path) -> None:
    """Rows written by the previous release keep working: the upload key was the asset's
    own key; promotion moves the bytes to a key derived from the session."""
    from rindle.processing import pipeline

    async with local_media.connected():
        data = png(40, 30)
        session = await local_media.initiate_upload("photo", filename="me.png",
                                                    content_type="image/png",
                                                    byte_size=len(data))
        asset = await local_media.asset(session.asset_id)
        await local_media.repo.update_session(session.id, upload_key=asset.storage_key)
        storage = local_media.storage_for("photo")

        async def body() -> AsyncIterator[bytes]:
            yield data

        await storage.write(asset.storage_key, body())
        await local_media.repo.transition_session(session.id, "initialized", "signed")
        await local_media.verify_completion(session.id)
        await local_media.drain()
        moved = await local_media.asset(asset.id)
        assert moved.storage_key != asset.storage_key and moved.state == "ready"
        assert await storage.head(asset.storage_key) is None
        assert (tmp_path / "files" / moved.storage_key).read_bytes() == data
        # A rerun of the same job changes nothing (the derived key is stable).
        await local_media.repo.update_asset(asset.id, state="validating")
        await pipeline.promote(local_media, asset.id)
        assert (await local_media.asset(asset.id)).storage_key == moved.storage_key


# --- S3 (moto) ---------------------------------------------------------------------------


@pytest.fixture
def s3_media(make_media: MakeMedia, s3: S3Bucket) -> Rindle:
    return make_media(storages={"s3": s3.storage()}, profiles=[S3Thumbs])


async def _make_purge_uploads_due(media: Rindle) -> None:
    await media.repo.db.execute(
        "UPDATE rindle_outbox SET available_at = created_at WHERE kind = 'purge_upload'")
    await media.outbox.sweep(include_recent=True)
    await media.drain()


@SQLITE
async def test_s3_a_second_put_after_ready_changes_nothing_served(s3_media: Rindle,
                                                                  s3: S3Bucket) -> None:
    data = png(40, 30)
    async with LiveServer(_app(s3_media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        body = await _upload_until_ready(client, data)
        asset = await s3_media.asset(body["asset_id"])
        session = await s3_media.repo.get_session(body["session_id"])
        assert session is not None and session.upload_key != asset.storage_key
        assert session.upload_key not in s3.keys()  # moved, not copied and left
        # S3 (and moto) accept a second PUT to an unexpired presigned URL...
        again = await client.put(body["upload"]["url"], content=_evil(len(data)),
                                 headers=body["upload"]["headers"])
        assert again.status_code == 200
        # ...but it lands on the staging key, which nothing reads any more.
        assert await _served(client, body["asset_id"]) == data
        assert s3.get(asset.storage_key) == data
        assert asset.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
        assert s3.get(session.upload_key) == _evil(len(data))
        # Once the URL has expired, the residue is removed by the sweeper.
        await _make_purge_uploads_due(s3_media)
        assert session.upload_key not in s3.keys()
        assert s3.get(asset.storage_key) == data


@SQLITE
async def test_s3_a_put_held_open_across_completion_changes_nothing_served(
        s3_media: Rindle, s3: S3Bucket) -> None:
    data = png(40, 30)
    evil = _evil(len(data))
    async with LiveServer(_app(s3_media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        body = await _initiate(client, data)
        put = await client.put(body["upload"]["url"], content=data,
                               headers=body["upload"]["headers"])
        assert put.status_code == 200
        attack = RawPut(body["upload"]["url"], "image/png", len(evil))
        try:
            await attack.start(evil[:10])
            done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
            assert done.status_code == 200
            await _wait_state(client, body["asset_id"], "ready")
            await attack.send(evil[10:])
            status, _, _ = await attack.response()
        finally:
            attack.close()
        assert status == 200  # S3 takes it: the URL is genuine and unexpired
        assert await _served(client, body["asset_id"]) == data
        asset = await s3_media.asset(body["asset_id"])
        assert s3.get(asset.storage_key) == data


@SQLITE
async def test_s3_multipart_parts_reuploaded_after_completion_change_nothing(
        s3_media: Rindle, s3: S3Bucket) -> None:
    data = png(40, 30)
    async with LiveServer(_app(s3_media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/multipart", json={
            "profile": "photo", "filename": "me.png", "content_type": "image/png",
            "byte_size": len(data)})
        assert r.status_code == 201, r.text
        sid, aid = r.json()["session_id"], r.json()["asset_id"]
        signed = (await client.post(f"/rindle/multipart/{sid}/parts",
                                    json={"part_numbers": [1]})).json()["parts"]["1"]
        put = await client.put(signed["url"], content=data,
                               headers={"content-type": "application/octet-stream"})
        assert put.status_code == 200
        done = await client.post(f"/rindle/multipart/{sid}/complete", json={
            "parts": [{"part_number": 1, "etag": put.headers["etag"]}]})
        assert done.status_code == 200, done.text
        await _wait_state(client, aid, "ready")
        again = await client.put(signed["url"], content=_evil(len(data)),
                                 headers={"content-type": "application/octet-stream"})
        # The upload id was used up by the completion: S3 answers 404 NoSuchUpload (moto a
        # 500); either way nothing is stored.
        assert again.status_code >= 400
        resign = await client.post(f"/rindle/multipart/{sid}/parts",
                                   json={"part_numbers": [1]})
        assert resign.status_code == 409
        assert await _served(client, aid) == data
        assert [k for k in s3.keys() if k.startswith("_rindle_staging/")] == []
        assert s3.pending_uploads() == []


class CrashOnce(S3Storage):
    """S3 that fails the first delete of a staging key: a crash between copy and delete."""

    crashed = False

    async def delete(self, key: str) -> bool:
        if key.startswith("_rindle_staging/") and not CrashOnce.crashed:
            CrashOnce.crashed = True
            raise StorageError("the worker died here")
        return await super().delete(key)


@SQLITE
async def test_s3_a_crash_between_copy_and_delete_recovers(make_media: MakeMedia,
                                                          s3: S3Bucket) -> None:
    CrashOnce.crashed = False
    storage = CrashOnce(bucket=s3.name, endpoint_url=s3.endpoint_url, addressing_style="path")
    media = make_media(storages={"s3": storage}, profiles=[S3Thumbs],
                       queue=InlineQueue(retry_base=0.01))
    data = png(40, 30)
    async with LiveServer(_app(media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        body = await _upload_until_ready(client, data)
        assert CrashOnce.crashed
        asset = await media.asset(body["asset_id"])
        [promote] = await media.repo.list_outbox(kind="promote_asset")
        assert promote.attempts == 2 and promote.state == "done"
        assert await _served(client, body["asset_id"]) == data
        # Nothing left behind: the retry removed the staging copy.
        assert sorted(k for k in s3.keys() if not k.startswith(f"photo/{asset.id}/variants"))\
            == [asset.storage_key]


@SQLITE
async def test_s3_a_large_original_is_moved_with_part_copies(s3_media: Rindle,
                                                            s3: S3Bucket) -> None:
    async with s3_media.connected():
        storage = s3_media.storage_for("photo")
        assert isinstance(storage, S3Storage)
        storage._copy_limit = 5 * MiB  # moto copies 5 MiB parts quickly; S3's limit is 5 GiB
        storage._copy_part_size = 5 * MiB
        data = png(16, 16) + os.urandom(12 * MiB)
        result = await s3_media.upload("photo", data, filename="big.png")
        await s3_media.drain()
        asset = await s3_media.asset(result.asset.id)
        assert s3.get(asset.storage_key) == data
        assert s3.client.head_object(Bucket=s3.name, Key=asset.storage_key)["ETag"]\
            .endswith('-3"')
        assert asset.checksum is not None and asset.checksum.startswith("etag:")
        assert result.session.upload_key not in s3.keys()
