"""Hostile JSON bodies over HTTP (uvicorn + httpx) and the WebSocket: deep nesting, oversized
bodies and the wrong content type are clean 4xx answers, never a 500 or a dropped socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from websockets.asyncio.client import connect

from rindle import LocalStorage, Profile, Rindle
from rindle._json import MAX_DEPTH, loads_object
from rindle.errors import ValidationError
from tests.conftest import ImageProfile, LiveServer, MakeMedia
from tests.live.test_sse import make_asset
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
DEEP = b"[" * 3000
JSON = {"content-type": "application/json"}


class ClipProfile(Profile):
    name = "clip"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 32 * MiB


def nested(depth: int) -> dict[str, Any]:
    """``{"op": ..., "x": [[...]]}`` with ``depth`` levels counting the outer object."""
    value: Any = []
    for _ in range(depth - 2):
        value = [value]
    return {"op": "subscribe", "asset_id": "a", "x": value}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: parsing does not depend on the database."""
    return sqlite_url


@pytest.fixture
def runtime(make_media: MakeMedia, s3: S3Bucket, tmp_path: Path) -> Rindle:
    return make_media(storages={"s3": s3.storage(),
                                "local": LocalStorage(root=tmp_path / "files")},
                      profiles=[ImageProfile, ClipProfile])


@pytest.fixture
async def server(runtime: Rindle) -> AsyncIterator[LiveServer]:
    app = Starlette(routes=[Mount("/rindle", app=runtime.router)], lifespan=runtime.lifespan)
    async with LiveServer(app) as srv:
        yield srv


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        yield http


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code
    assert "Traceback" not in r.text and "RecursionError" not in r.text


async def session_rows(media: Rindle) -> list[Any]:
    return await media.store.fetch_all("SELECT id FROM rindle_upload_sessions")


def upload_body(**extra: Any) -> dict[str, Any]:
    return {"profile": "image", "filename": "a.png", "content_type": "image/png",
            "byte_size": 100, **extra}


def test_depth_is_measured_without_recursion() -> None:
    assert loads_object(json.dumps(nested(MAX_DEPTH)))["op"] == "subscribe"
    for bad in (json.dumps(nested(MAX_DEPTH + 1)), json.dumps(nested(900)), DEEP,
                b"[1, 2]", b'{"a": NaN}', b"\xff", b""):
        with pytest.raises(ValidationError) as caught:
            loads_object(bad)
        assert (caught.value.code, caught.value.status_code) == ("invalid_json", 400)


@pytest.mark.parametrize("body", [DEEP, json.dumps(nested(MAX_DEPTH + 1)).encode()])
async def test_deep_json_on_create_is_invalid_json(client: httpx.AsyncClient, runtime: Rindle,
                                                   body: bytes) -> None:
    r = await client.post("/rindle/uploads", content=body, headers=JSON)
    assert_error(r, 400, "invalid_json")
    assert await session_rows(runtime) == []


async def test_deep_json_on_multipart_complete_is_invalid_json(client: httpx.AsyncClient,
                                                               runtime: Rindle) -> None:
    created = await client.post("/rindle/multipart", json={
        "profile": "clip", "filename": "clip.png", "content_type": "image/png",
        "byte_size": 9 * MiB})
    assert created.status_code == 201, created.text
    sid = created.json()["session_id"]
    r = await client.post(f"/rindle/multipart/{sid}/complete", content=DEEP, headers=JSON)
    assert_error(r, 400, "invalid_json")
    session = await runtime.repo.get_session(sid)
    assert session is not None and session.state != "completed"
    r = await client.post("/rindle/multipart/nope/complete", content=DEEP, headers=JSON)
    assert_error(r, 400, "invalid_json")

    # The Uppy (companion) flavour of the same endpoint reads the body the same way.
    started = await client.post("/rindle/s3/multipart", json={
        "filename": "clip.png", "type": "image/png",
        "metadata": {"profile": "clip", "size": 9 * MiB}})
    assert started.status_code == 200, started.text
    uid, key = started.json()["uploadId"], started.json()["key"]
    r = await client.post(f"/rindle/s3/multipart/{uid}/complete", params={"key": key},
                          content=DEEP, headers=JSON)
    assert_error(r, 400, "invalid_json")


async def test_too_large_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"x": "' + b"a" * 200_000 + b'"}'
    r = await client.post("/rindle/uploads", content=big, headers=JSON)  # Content-Length
    assert_error(r, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for i in range(0, len(big), 16_384):
            yield big[i:i + 16_384]

    r = await client.post("/rindle/uploads", content=chunks(), headers=JSON)
    assert_error(r, 413, "body_too_large")


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/jsonp", "application/+json", None])
async def test_a_body_that_is_not_declared_json_is_415(client: httpx.AsyncClient,
                                                       runtime: Rindle,
                                                       content_type: str | None) -> None:
    # What a cross-site HTML form can send (no CORS preflight), with a valid JSON body.
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/rindle/uploads", content=json.dumps(upload_body()),
                          headers=headers)
    assert_error(r, 415, "json_required")
    assert "Content-Type: application/json" in r.json()["error"]["message"]
    assert await session_rows(runtime) == []
    assert await runtime.repo.list_assets() == []


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"])
async def test_json_content_types_are_accepted(client: httpx.AsyncClient,
                                               content_type: str) -> None:
    r = await client.post("/rindle/uploads", content=json.dumps(upload_body()),
                          headers={"content-type": content_type})
    assert r.status_code == 201, r.text


async def test_an_empty_body_needs_no_content_type(client: httpx.AsyncClient,
                                                   runtime: Rindle) -> None:
    data = png(10, 10)
    created = (await client.post("/rindle/uploads",
                                 json=upload_body(byte_size=len(data)))).json()
    put = await client.put(created["upload"]["url"], content=data,
                           headers=created["upload"]["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(f"/rindle/uploads/{created['session_id']}/complete")
    assert done.status_code == 200, done.text
    assert "content-type" not in done.request.headers
    assert done.json()["asset"]["state"] == "validating"
    # An empty body under a non-JSON type is still just an empty body.
    early = await client.post("/rindle/s3/params/complete", params={"key": "clip/nope"},
                              headers={"content-type": "text/plain"})
    assert_error(early, 404, "session_not_found")


async def test_a_nested_websocket_command_is_an_error_frame(server: LiveServer,
                                                            runtime: Rindle) -> None:
    asset_id = await make_asset(runtime)
    async with connect(f"ws://127.0.0.1:{server.port}/rindle/ws") as ws:
        async def recv() -> dict[str, Any]:
            async with asyncio.timeout(5):
                return json.loads(await ws.recv())

        await ws.send(DEEP.decode())
        error = await recv()
        assert (error["op"], error["code"]) == ("error", "invalid_json")
        await ws.send(json.dumps(nested(MAX_DEPTH + 1)))
        error = await recv()
        assert (error["code"], "nested" in error["message"]) == ("invalid_json", True)

        # The socket is still open and usable.
        await ws.send(json.dumps({"op": "subscribe", "asset_id": asset_id}))
        assert await recv() == {"op": "subscribed", "asset_id": asset_id}
        assert (await recv())["data"]["snapshot"] is True
