"""Real tus clients against Rindle's tus server, on Local storage and on S3 (moto):
tus-js-client in Node and tuspy. A 20 MiB file, plain, chunked, interrupted mid-PATCH and
resumed from its URL (also against a second uvicorn process), in parallel parts
(concatenation), deferred length, terminated and expired uploads, and tuspy's checksums
(honest ones, and one that lies: 460)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rindle import Rindle
from tests.conftest import LiveServer, free_port
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "js" / "tus" / "run_tus.mjs"
SIZE = 20 * MiB

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def _node_modules() -> None:
    if not (ROOT / "node_modules" / "tus-js-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=ROOT, check=True, timeout=600)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tus") / "workshop.png"
    head = png(16, 16)
    block = hashlib.sha256(b"rindle").digest() * 2048  # 64 KiB that don't compress away
    with path.open("wb") as f:
        f.write(head)
        written = len(head)
        while written < SIZE:
            piece = block[: SIZE - written]
            f.write(piece)
            written += len(piece)
    return path


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            postgres_url: str) -> Iterator[dict[str, str]]:
    """Where the bytes go, as the environment of tests/support/tus_app.py (PostgreSQL, so
    two processes can share the database)."""
    env = {"RINDLE_TEST_DATABASE_URL": postgres_url}
    if request.param == "local":
        env["RINDLE_TEST_FILES"] = str(tmp_path / "files")
    else:
        s3: S3Bucket = request.getfixturevalue("s3")
        env["RINDLE_TEST_S3_BUCKET"] = s3.name
        env["RINDLE_TEST_S3_ENDPOINT"] = s3.endpoint_url
    yield env


@pytest.fixture
async def runtime(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[tuple[Rindle, Any]]:
    for name, value in backend.items():
        monkeypatch.setenv(name, value)
    from tests.support import tus_app

    media = tus_app.build()
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
    yield media, app


def _tus_js(options: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(["node", str(DRIVER), json.dumps(options)], capture_output=True,
                          text=True, cwd=ROOT, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _asset_of(media: Rindle, asset_id: str, path: Path) -> None:
    await media.drain()
    for _ in range(300):  # promotion may run in the other server process
        asset = await media.asset(asset_id)
        if asset.state not in ("staged", "validating", "analyzing", "promoting"):
            break
        await asyncio.sleep(0.05)
    assert asset.state in ("available", "ready"), (asset.state, asset.quarantine_reason)
    assert asset.byte_size == SIZE and asset.checksum == _sha256(path)


def _metadata(path: Path) -> dict[str, str]:
    return {"filename": path.name, "filetype": "image/png"}


async def test_tus_js_client_plain_chunked_and_parallel(runtime: tuple[Rindle, Any],
                                                       big_file: Path) -> None:
    _node_modules()
    media, app = runtime
    async with LiveServer(app, access_log=False) as srv:
        endpoint = f"{srv.url}/rindle/tus/workshops/"
        for options in ({}, {"chunkSize": 8 * MiB}, {"chunkSize": 3 * MiB + 7},
                        {"parallelUploads": 3}):
            result = await asyncio.to_thread(_tus_js, {
                "endpoint": endpoint, "file": str(big_file), "metadata": _metadata(big_file),
                **options})
            assert result["ok"], (options, result)
            assert result["assetId"], (options, result)
            await _asset_of(media, result["assetId"], big_file)
            stored = await media.asset(result["assetId"])
            data = b"".join([c async for c in media.storage_for("workshops").stream(
                stored.storage_key)])
            assert hashlib.sha256(data).hexdigest() == hashlib.sha256(
                big_file.read_bytes()).hexdigest(), options


async def test_tus_js_client_interrupted_and_resumed_on_another_process(
        runtime: tuple[Rindle, Any], backend: dict[str, str], big_file: Path) -> None:
    _node_modules()
    media, app = runtime
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.support.tus_app:app", "--port", str(port),
         "--log-level", "warning"], cwd=ROOT, env={**os.environ, **backend})
    try:
        async with LiveServer(app, access_log=False) as srv:
            await _wait_up(f"http://127.0.0.1:{port}/rindle/tus/workshops/", other)
            first = await asyncio.to_thread(_tus_js, {
                "endpoint": f"{srv.url}/rindle/tus/workshops/", "file": str(big_file),
                "metadata": _metadata(big_file), "chunkSize": 4 * MiB, "stopAfter": 9 * MiB})
            assert first["aborted"] and first["url"], first
            async with httpx.AsyncClient() as client:
                head = await client.head(first["url"], headers={"Tus-Resumable": "1.0.0"})
            kept = int(head.headers["upload-offset"])
            assert 0 < kept < SIZE
            # Resumed through the other process, from the URL the first one handed out.
            path = first["url"].split("/rindle/", 1)[1]
            resumed = await asyncio.to_thread(_tus_js, {
                "endpoint": f"http://127.0.0.1:{port}/rindle/tus/workshops/",
                "uploadUrl": f"http://127.0.0.1:{port}/rindle/{path}", "file": str(big_file),
                "metadata": _metadata(big_file), "chunkSize": 4 * MiB})
            assert resumed["ok"] and resumed["assetId"], resumed
            assert resumed["offsets"][0] == kept  # its HEAD: it goes on from there, not 0
            assert all(o > kept for o in resumed["offsets"][1:])
            await _asset_of(media, resumed["assetId"], big_file)
    finally:
        other.terminate()
        other.wait(10)


async def test_tuspy_with_checksums_and_resume(runtime: tuple[Rindle, Any],
                                               big_file: Path) -> None:
    from tusclient import client as tus_client

    media, app = runtime
    async with LiveServer(app, access_log=False) as srv:
        tus = tus_client.TusClient(f"{srv.url}/rindle/tus/workshops/")

        def upload_part() -> str:
            uploader = tus.uploader(str(big_file), chunk_size=6 * MiB, upload_checksum=True,
                                    metadata=_metadata(big_file))
            uploader.upload(stop_at=7 * MiB)  # two chunks, then the client "goes away"
            return str(uploader.url)

        url = await asyncio.to_thread(upload_part)

        def resume() -> Any:
            uploader = tus.uploader(str(big_file), url=url, chunk_size=6 * MiB,
                                    upload_checksum=True)
            assert uploader.offset >= 7 * MiB
            uploader.upload()
            return uploader.request.response_headers  # type: ignore[union-attr]

        headers = await asyncio.to_thread(resume)
        asset_id = headers.get("Rindle-Asset-Id") or headers.get("rindle-asset-id")
        assert asset_id
        await _asset_of(media, asset_id, big_file)


async def test_tus_js_client_deferred_length_termination_and_expiry(
        runtime: tuple[Rindle, Any], big_file: Path) -> None:
    """Deferred length; an upload terminated with the client's own ``terminate`` (404 or
    410 afterwards, its residue purged) and one that expired (410): resuming either from
    its URL makes tus-js-client start a new upload, which completes."""
    from datetime import UTC, datetime, timedelta

    _node_modules()
    media, app = runtime
    async with LiveServer(app, access_log=False) as srv, httpx.AsyncClient() as client:
        endpoint = f"{srv.url}/rindle/tus/workshops/"
        common = {"endpoint": endpoint, "file": str(big_file), "metadata": _metadata(big_file),
                  "chunkSize": 8 * MiB}
        deferred = await asyncio.to_thread(_tus_js, {**common, "uploadLengthDeferred": True})
        assert deferred["ok"] and deferred["assetId"], deferred
        await _asset_of(media, deferred["assetId"], big_file)

        for ending in ("terminated", "expired"):
            first = await asyncio.to_thread(_tus_js, {**common, "stopAfter": 9 * MiB})
            assert first["aborted"] and first["sessionId"], first
            url, session_id = first["url"], first["sessionId"]
            row = await media.repo.get_session(session_id)
            assert row is not None
            if ending == "terminated":
                gone = await asyncio.to_thread(_tus_js, {"terminate": url})
                assert gone["ok"], gone
                head = await client.head(url, headers={"Tus-Resumable": "1.0.0"})
                assert head.status_code in (404, 410)
            else:
                await media.repo.update_session(
                    session_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
                head = await client.head(url, headers={"Tus-Resumable": "1.0.0"})
                assert head.status_code == 410
            # Ended, and then (the purge may already have run) gone with its staged asset.
            session = await media.repo.get_session(session_id)
            assert session is None or session.state in ("aborted", "expired"), session
            await media.drain()
            assert await media.repo.get_session(session_id) is None
            await _no_residue(media, row.upload_key)
            again = await asyncio.to_thread(_tus_js, {**common, "uploadUrl": url})
            assert again["ok"] and again["url"] != url, (ending, again)
            assert again["sessionId"] != session_id
            await _asset_of(media, again["assetId"], big_file)


async def test_tuspy_checksum_mismatch_appends_nothing(runtime: tuple[Rindle, Any],
                                                       big_file: Path) -> None:
    """A tuspy client whose Upload-Checksum lies about its chunk: 460, the offset stays
    where it was; the same client with an honest checksum then finishes the upload."""
    import hashlib as _hashlib

    from tusclient import client as tus_client
    from tusclient.exceptions import TusCommunicationError

    media, app = runtime
    async with LiveServer(app, access_log=False) as srv:
        tus = tus_client.TusClient(f"{srv.url}/rindle/tus/workshops/")

        def lie() -> tuple[str, int | None, int]:
            uploader = tus.uploader(str(big_file), chunk_size=4 * MiB, upload_checksum=True,
                                    metadata=_metadata(big_file))
            uploader.upload_chunk()  # one honest chunk
            # tuspy keeps its hash function name-mangled; swapping it is the lying client.
            uploader._BaseUploader__checksum_algorithm = (  # type: ignore[attr-defined]
                lambda chunk: _hashlib.sha1(b"not this chunk"))
            status = None
            try:
                uploader.upload_chunk()
            except TusCommunicationError as exc:
                status = exc.status_code
            return str(uploader.url), status, uploader.get_offset()

        url, status, offset = await asyncio.to_thread(lie)
        assert status == 460
        assert offset == 4 * MiB

        def finish() -> Any:
            uploader = tus.uploader(str(big_file), url=url, chunk_size=4 * MiB,
                                    upload_checksum=True)
            assert uploader.offset == 4 * MiB
            uploader.upload()
            return uploader.request.response_headers  # type: ignore[union-attr]

        headers = await asyncio.to_thread(finish)
        asset_id = headers.get("Rindle-Asset-Id") or headers.get("rindle-asset-id")
        assert asset_id
        await _asset_of(media, asset_id, big_file)


async def _no_residue(media: Rindle, key: str) -> None:
    """Nothing of the upload is left: no object under its key (the file, S3 tail objects),
    no S3 multipart upload."""
    storage = media.storage_for("workshops")
    for _ in range(100):  # the purge runs on the outbox, maybe in the other process
        left = [o.key async for o in storage.list_keys(key)]
        pending = (await storage.list_multipart_uploads(key)  # type: ignore[attr-defined]
                   if hasattr(storage, "list_multipart_uploads") else [])
        if not left and not pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"left behind: {left} {pending}")


async def _wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError("the second server exited")
            try:
                await client.options(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the second server did not start")
