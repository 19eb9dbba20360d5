"""The /multipart endpoints over HTTP (uvicorn + httpx), with the parts going straight to moto."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Router

from rindle import Forbidden, LocalStorage, Profile, Rindle
from rindle.delivery.authorizer import ACTIONS, require_allowed
from rindle.web.multipart_routes import multipart_routes
from tests.conftest import SECRET, LiveServer, MakeMedia
from tests.support.images import png_of_size
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class ClipProfile(Profile):
    name = "clip"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 32 * MiB


class LocalProfile(Profile):
    name = "local_clip"
    storage = "local"
    allow_mime = ["image/png"]




def app_for(media: Rindle) -> Starlette:
    """The adopter's app: Rindle's router with the multipart routes included."""
    routes = list(media.router.routes)
    if not any(getattr(r, "path", "") == "/multipart" for r in routes):
        routes += multipart_routes(media)
    return Starlette(routes=[Mount("/rindle", app=Router(routes=routes))],
                     lifespan=media.lifespan)


@pytest.fixture
def runtime(make_media: MakeMedia, s3: S3Bucket, tmp_path: Path) -> Rindle:
    return make_media(storages={"s3": s3.storage(),
                                "local": LocalStorage(root=tmp_path / "files")},
                      profiles=[ClipProfile, LocalProfile])


@pytest.fixture
async def client(runtime: Rindle) -> AsyncIterator[httpx.AsyncClient]:
    async with LiveServer(app_for(runtime)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as http:
        yield http


async def _create(client: httpx.AsyncClient, size: int, **extra: Any) -> httpx.Response:
    return await client.post("/rindle/multipart", json={
        "profile": "clip", "filename": "clip.png", "content_type": "image/png",
        "byte_size": size, **extra})


async def _send(client: httpx.AsyncClient, session_id: str, data: bytes, part_size: int,
                numbers: list[int]) -> dict[int, str]:
    r = await client.post(f"/rindle/multipart/{session_id}/parts",
                          json={"part_numbers": numbers})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    parts = r.json()["parts"]
    assert sorted(parts) == sorted(str(n) for n in numbers)
    etags = {}
    for n in numbers:
        ticket = parts[str(n)]
        assert ticket["method"] == "PUT" and ticket["headers"] == {}
        chunk = data[(n - 1) * part_size: n * part_size]
        put = await client.put(ticket["url"], content=chunk, headers=ticket["headers"])
        assert put.status_code == 200
        etags[n] = put.headers["etag"]
    return etags


async def test_multipart_flow_with_resume(client: httpx.AsyncClient, runtime: Rindle,
                                          s3: S3Bucket) -> None:
    data = png_of_size(9 * MiB + 77)
    r = await _create(client, len(data))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"session_id", "asset_id", "part_size", "part_count"}
    assert (body["part_size"], body["part_count"]) == (8 * MiB, 2)
    sid = body["session_id"]

    first = await _send(client, sid, data, body["part_size"], [1])
    listed = await client.get(f"/rindle/multipart/{sid}/parts")
    assert listed.status_code == 200
    assert listed.json() == {"parts": [{"part_number": 1, "etag": first[1], "size": 8 * MiB}]}
    rest = await _send(client, sid, data, body["part_size"], [2])

    bad = await client.post(f"/rindle/multipart/{sid}/complete", json={"parts": [
        {"part_number": 1, "etag": first[1]},
        {"part_number": 2, "etag": '"ffffffffffffffffffffffffffffffff"'}]})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_parts"
    assert "http" not in bad.text

    done = await client.post(f"/rindle/multipart/{sid}/complete", json={"parts": [
        {"part_number": 1, "etag": first[1]}, {"part_number": 2, "etag": rest[2]}]})
    assert done.status_code == 200, done.text
    assert done.json()["session_id"] == sid
    assert done.json()["asset"]["state"] == "validating"
    await runtime.drain()
    shown = (await client.get(f"/rindle/assets/{body['asset_id']}")).json()
    assert shown["state"] == "available" and shown["byte_size"] == len(data)
    got = await client.get(shown["url"])
    assert got.status_code == 200 and got.content == data
    asset = await runtime.asset(body["asset_id"])
    assert s3.get(asset.storage_key) == data


async def test_abort_over_http(client: httpx.AsyncClient, runtime: Rindle,
                               s3: S3Bucket) -> None:
    data = png_of_size(9 * MiB)
    body = (await _create(client, len(data))).json()
    await _send(client, body["session_id"], data, body["part_size"], [1])
    r = await client.delete(f"/rindle/multipart/{body['session_id']}")
    assert r.status_code == 200
    assert r.json() == {"session_id": body["session_id"], "state": "aborted"}
    assert s3.pending_uploads() == []
    late = await client.post(f"/rindle/multipart/{body['session_id']}/parts",
                             json={"part_numbers": [2]})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "session_not_signable"


@pytest.mark.parametrize("payload,status,code", [
    ({"byte_size": 32 * MiB + 1}, 413, "max_bytes_exceeded"),
    ({"profile": "local_clip"}, 400, "upload_unsupported"),
    ({"content_type": "text/html", "filename": "x.html"}, 415, "mime_not_allowed"),
    ({"byte_size": "9"}, 422, "invalid_field"),
    ({"profile": "nope"}, 404, "unknown_profile"),
])
async def test_create_refuses_before_anything_exists(client: httpx.AsyncClient,
                                                     runtime: Rindle, s3: S3Bucket,
                                                     payload: dict[str, Any], status: int,
                                                     code: str) -> None:
    r = await _create(client, 10 * MiB, **payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert await runtime.repo.list_assets() == []
    assert s3.pending_uploads() == []


async def test_bad_requests(client: httpx.AsyncClient) -> None:
    body = (await _create(client, 9 * MiB)).json()
    sid = body["session_id"]
    for payload, code in (({"part_numbers": "1"}, "invalid_field"),
                          ({"part_numbers": [1, "2"]}, "invalid_field"),
                          ({"part_numbers": [3]}, "invalid_part_number"),
                          ({}, "missing_field")):
        r = await client.post(f"/rindle/multipart/{sid}/parts", json=payload)
        assert r.status_code == 422, (payload, r.text)
        assert r.json()["error"]["code"] == code
    r = await client.post(f"/rindle/multipart/{sid}/complete", json={"parts": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    missing = await client.post(f"/rindle/multipart/{sid}/complete", json={"parts": [
        {"part_number": 1, "etag": "abc"}, {"part_number": 2, "etag": "def"}]})
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_parts"
    for method, path in (("GET", "/parts"), ("POST", "/complete"), ("DELETE", "")):
        r = await client.request(method, f"/rindle/multipart/nope{path}", json={"parts": [
            {"part_number": 1, "etag": "a"}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "session_not_found"


async def test_default_authorizer_denies(database_url: str, s3: S3Bucket) -> None:
    # No authorizer= at all: the runtime an adopter gets before saying who may do what.
    media = Rindle(database_url=database_url, storages={"s3": s3.storage()},
                   profiles=[ClipProfile], secret_keys=[SECRET])
    async with LiveServer(app_for(media)) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        asset = (await media.upload("clip", png_of_size(1000), filename="a.png")).asset
        await media.drain()
        started = await media.broker.initiate_upload("clip", filename="a.png",
                                                     content_type="image/png",
                                                     byte_size=10, strategy="multipart")
        refused = {"upload: create": await _create(http, 9 * MiB)}
        for method, path in (("POST", "/parts"), ("GET", "/parts"), ("POST", "/complete"),
                             ("DELETE", "")):
            refused[f"upload: {method} {path}"] = await http.request(
                method, f"/rindle/multipart/{started.id}{path}", json={})
        refused["view"] = await http.get(f"/rindle/assets/{asset.id}")
        refused["subscribe"] = await http.get(f"/rindle/events/asset/{asset.id}")
        for what, r in refused.items():
            assert r.status_code == 403, (what, r.text)
            assert r.json()["error"]["code"] == "forbidden", what
        untouched = await media.repo.get_session(started.id)
        assert untouched is not None and untouched.state == started.state
        with pytest.raises(Forbidden):
            await media.url("clip", asset.id)
        for action in ACTIONS:  # `admin` included: no route asks for it yet
            with pytest.raises(Forbidden):
                await require_allowed(media, action, profile="clip", asset=asset)
