"""The real @uppy/core + @uppy/aws-s3 6.x (Companion mode, in Node) uploading through the /s3
routes to moto: every upload ends as an ordinary, verified and promoted Rindle asset."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Router

from rindle import Forbidden, Profile, Rindle
from rindle.delivery.authorizer import ACTIONS, require_allowed
from rindle.web.uppy_routes import uppy_part_size, uppy_routes
from tests.conftest import SECRET, LiveServer, MakeMedia
from tests.support.images import png_of_size
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
UPPY_DIR = ROOT / "tests" / "js" / "uppy"
NODE = shutil.which("node")

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class ClipProfile(Profile):
    name = "clip"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 32 * MiB




def _node_finds(start: Path, package: str) -> bool:
    """Whether Node, run from ``start``, finds ``package`` in a node_modules folder there or
    above it: ``npm ci`` at the repository root (npm workspaces) hoists it to the top."""
    return any((folder / "node_modules" / package / "package.json").exists()
               for folder in (start, *start.parents))


@pytest.fixture(scope="module")
def uppy_installed() -> Path:
    """@uppy/* installed from the root package-lock.json (``npm ci``) if not yet there."""
    if not _node_finds(UPPY_DIR, "@uppy/aws-s3"):
        npm = shutil.which("npm")
        assert npm is not None, "node is installed but npm is not: install npm"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
    return UPPY_DIR


def app_for(media: Rindle) -> Starlette:
    """The adopter's app: Rindle's router with the Companion-compatible routes at /s3."""
    routes = list(media.router.routes)
    if not any(getattr(r, "path", "") == "/s3" for r in routes):
        routes.append(Mount("/s3", routes=uppy_routes(media)))
    return Starlette(routes=[Mount("/rindle", app=Router(routes=routes))],
                     lifespan=media.lifespan)


@pytest.fixture
def runtime(make_media: MakeMedia, s3: S3Bucket) -> Rindle:
    return make_media(storages={"s3": s3.storage()}, profiles=[ClipProfile])


@pytest.fixture
async def server(runtime: Rindle) -> AsyncIterator[LiveServer]:
    async with LiveServer(app_for(runtime), access_log=False) as srv:
        yield srv


async def run_uppy(srv: LiveServer, tmp_path: Path, data: bytes, mode: str,
                   name: str = "clip.png") -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE, str(UPPY_DIR / "run_uppy.mjs"), f"{srv.url}/rindle", str(path), mode,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def calls(result: dict[str, Any], srv: LiveServer) -> list[tuple[str, str]]:
    """Uppy's requests as (method, path), Rindle's with their /rindle path, S3's as 'S3'."""
    seen = []
    for r in result["requests"]:
        url = r["url"]
        seen.append((r["method"], url[len(srv.url):] if url.startswith(srv.url) else "S3"))
    return seen


async def assert_available(runtime: Rindle, s3: S3Bucket, asset_id: str, data: bytes) -> None:
    await runtime.drain()
    asset = await runtime.asset(asset_id)
    assert asset.state == "available"
    assert asset.byte_size == len(data)
    assert s3.get(asset.storage_key) == data
    assert s3.pending_uploads() == []
    [session] = await runtime.repo.sessions_for_asset(asset_id)
    assert session.state == "completed" and session.verified_at is not None


@needs_node
@sqlite
async def test_multipart_upload_unmodified(server: LiveServer, runtime: Rindle, s3: S3Bucket,
                                           tmp_path: Path, uppy_installed: Path) -> None:
    data = png_of_size(12 * MiB)
    result = await run_uppy(server, tmp_path, data, "multipart")
    assert result["failed"] == [] and result["errors"] == [], result
    [ok] = result["successful"]
    asset_id = ok["key"]
    assert ok["location"] == f"{server.url}/rindle/assets/{asset_id}"
    session = (await runtime.repo.sessions_for_asset(asset_id))[0]
    sid = session.id
    # Uppy cuts 5 MiB parts: 5 + 5 + 2 MiB, each signed by Rindle for its exact length.
    assert session.multipart_parts == {"part_size": 5 * MiB, "part_count": 3}
    base = "/rindle/s3/multipart"
    assert calls(result, server) == [
        ("POST", base),
        ("GET", f"{base}/{sid}/1"), ("PUT", "S3"),
        ("GET", f"{base}/{sid}/2"), ("PUT", "S3"),
        ("GET", f"{base}/{sid}/3"), ("PUT", "S3"),
        ("POST", f"{base}/{sid}/complete"),
    ]
    assert all(r.get("status") == 200 for r in result["requests"]), result["requests"]
    await assert_available(runtime, s3, asset_id, data)


@needs_node
@sqlite
async def test_small_file_as_one_part(server: LiveServer, runtime: Rindle, s3: S3Bucket,
                                      tmp_path: Path, uppy_installed: Path) -> None:
    data = png_of_size(40_000)
    result = await run_uppy(server, tmp_path, data, "multipart")
    [ok] = result["successful"]
    assert [m for m, _ in calls(result, server)] == ["POST", "GET", "PUT", "POST"]
    await assert_available(runtime, s3, ok["key"], data)


@needs_node
@sqlite
async def test_single_request_upload_with_hook(server: LiveServer, runtime: Rindle,
                                               s3: S3Bucket, tmp_path: Path,
                                               uppy_installed: Path) -> None:
    data = png_of_size(40_000)
    result = await run_uppy(server, tmp_path, data, "single")
    assert result["failed"] == [] and result["errors"] == [], result
    [ok] = result["successful"]
    asset_id = ok["key"].split("/")[-2]
    assert calls(result, server) == [("GET", "/rindle/s3/params"), ("POST", "S3"),
                                     ("POST", "/rindle/s3/params/complete")]
    completion = result["completion"]
    assert completion["status"] == 200, completion
    assert completion["body"]["asset"]["id"] == asset_id
    assert completion["body"]["asset"]["state"] == "validating"
    await assert_available(runtime, s3, asset_id, data)


@needs_node
@sqlite
async def test_removing_the_file_aborts(server: LiveServer, runtime: Rindle, s3: S3Bucket,
                                        tmp_path: Path, uppy_installed: Path) -> None:
    result = await run_uppy(server, tmp_path, png_of_size(12 * MiB), "abort")
    assert result["successful"] == []
    deletes = [r for r in result["requests"] if r["method"] == "DELETE"]
    assert len(deletes) == 1 and deletes[0]["status"] == 200, result["requests"]
    await runtime.drain()
    # The session was aborted and its staged asset purged (rows and all) for that reason.
    [purge] = await runtime.purges()
    assert purge.reason == "upload_aborted" and purge.asset_state == "staged"
    assert await runtime.repo.list_assets() == []
    assert s3.pending_uploads() == []
    assert s3.keys() == []


@sqlite
async def test_contract_errors(server: LiveServer, runtime: Rindle, s3: S3Bucket) -> None:
    """What Uppy (or a misconfigured Uppy) gets when something is missing or wrong."""
    async with httpx.AsyncClient(base_url=f"{server.url}/rindle/s3") as http:
        create = {"filename": "clip.png", "type": "image/png",
                  "metadata": {"name": "clip.png", "type": "image/png", "profile": "clip",
                               "size": 12 * MiB}}
        r = await http.post("/multipart", json={**create, "metadata": {"size": 10}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "profile_required"
        r = await http.post("/multipart", json={**create, "metadata": {"profile": "clip"}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "byte_size_required"
        r = await http.post("/multipart", json={**create, "metadata": {"profile": "clip",
                                                                      "size": 33 * MiB}})
        assert r.status_code == 413
        r = await http.get("/params", params={"filename": "x.html", "type": "text/html",
                                              "metadata[profile]": "clip"})
        assert r.status_code == 415

        # Single request: an S3 POST policy bound to the type and the size (exact when Uppy's
        # metadata has it, else 1..max_bytes); the key in `fields` is Rindle's own.
        for meta, length_range in (({"metadata[size]": "1234"}, [1234, 1234]),
                                   ({}, [1, 32 * MiB])):
            r = await http.get("/params", params={"filename": "../a.png", "type": "image/png",
                                                  "metadata[profile]": "clip", **meta})
            assert r.status_code == 200, r.text
            post = r.json()
            assert post["method"] == "POST" and post["url"].startswith(s3.endpoint_url)
            assert post["fields"]["key"].startswith("_rindle_staging/clip/")
            policy = json.loads(base64.b64decode(post["fields"]["policy"]))
            assert ["content-length-range", *length_range] in policy["conditions"]
            assert {"Content-Type": "image/png"} in policy["conditions"]

        r = await http.post("/multipart", json=create)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"uploadId", "key"}
        uid, key = body["uploadId"], body["key"]
        assert (await http.get(f"/multipart/{uid}/1")).json()["error"]["code"] == \
            "missing_field"
        bad = await http.get(f"/multipart/{uid}/1", params={"key": "other"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "key_mismatch"
        signed = await http.get(f"/multipart/{uid}/3", params={"key": key})
        assert signed.status_code == 200 and set(signed.json()) == {"url", "headers", "expires"}
        batch = await http.get(f"/multipart/{uid}/batch",
                               params={"key": key, "partNumbers": "1,2"})
        assert sorted(batch.json()["presignedUrls"]) == ["1", "2"]
        assert (await http.get(f"/multipart/{uid}", params={"key": key})).json() == []
        early = await http.post("/params/complete", params={"key": key})
        assert early.status_code == 409  # nothing has been joined yet
        r = await http.post(f"/multipart/{uid}/complete", params={"key": key},
                            json={"parts": [{"PartNumber": "1", "ETag": "x"}]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parts"
        r = await http.delete(f"/multipart/{uid}", params={"key": key})
        assert r.status_code == 200 and r.json() == {}
        r = await http.get(f"/multipart/{uid}/1", params={"key": key})
        assert r.status_code == 409 and r.json()["error"]["code"] == "session_not_signable"
        r = await http.get("/multipart/nope", params={"key": key})
        assert r.status_code == 404 and r.json()["error"]["code"] == "session_not_found"
        r = await http.post("/params/complete", params={"key": "clip/nope/x.png"})
        assert r.status_code == 404


@sqlite
async def test_default_authorizer_denies(database_url: str, s3: S3Bucket) -> None:
    # No authorizer= at all: the runtime an adopter gets before saying who may do what.
    media = Rindle(database_url=database_url, storages={"s3": s3.storage()},
                   profiles=[ClipProfile], secret_keys=[SECRET])
    async with LiveServer(app_for(media), access_log=False) as srv, \
            httpx.AsyncClient(base_url=f"{srv.url}/rindle") as http:
        asset = (await media.upload("clip", png_of_size(1000), filename="a.png")).asset
        await media.drain()
        started = await media.initiate_multipart_upload("clip", filename="a.png",
                                                        byte_size=6 * MiB,
                                                        content_type="image/png")
        refused = {
            "upload: multipart": await http.post("/s3/multipart", json={
                "filename": "a.png", "type": "image/png",
                "metadata": {"profile": "clip", "size": 10}}),
            "upload: params": await http.get("/s3/params", params={
                "filename": "a.png", "type": "image/png", "metadata[profile]": "clip"}),
        }
        for method, path in (("GET", ""), ("GET", "/1"), ("POST", "/complete"),
                             ("DELETE", "")):
            refused[f"upload: {method} {path}"] = await http.request(
                method, f"/s3/multipart/{started.session_id}{path}",
                params={"key": started.asset_id})
        refused["view"] = await http.get(f"/assets/{asset.id}")
        refused["subscribe"] = await http.get(f"/events/asset/{asset.id}")
        for what, r in refused.items():
            assert r.status_code == 403, (what, r.text)
            assert r.json()["error"]["code"] == "forbidden", what
        assert s3.pending_uploads() != []  # the refused DELETE aborted nothing
        with pytest.raises(Forbidden):
            await media.url("clip", asset.id)
        for action in ACTIONS:  # `admin` included: no route asks for it yet
            with pytest.raises(Forbidden):
                await require_allowed(media, action, profile="clip", asset=asset)
        await media.abort_multipart_upload(started.session_id)


def test_part_size_mirrors_uppy() -> None:
    assert uppy_part_size(1) == 5 * MiB
    assert uppy_part_size(12 * MiB) == 5 * MiB
    assert uppy_part_size(100_000 * MiB) == 10 * MiB  # ceil(size / 10,000)
    assert uppy_part_size(12 * MiB, lambda size: 6 * MiB) == 6 * MiB
    assert uppy_part_size(12 * MiB, lambda size: 1) == 5 * MiB
