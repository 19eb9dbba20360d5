"""Rindle's JS uploader (js/src/resumable.js) against a live Rindle on gcp-storage-emulator,
in Node: a 1 MiB+ file goes straight to the store in 256 KiB chunks and becomes an asset; a
chunk whose answer is lost is not sent again; a "crashed" tab resumes after a reload from its
sessionStorage record. Node, not chromium: gcp-storage-emulator answers a CORS preflight
(OPTIONS) with 501 and sends no Access-Control-* headers, so a page could not PUT to its
session URIs (real GCS answers CORS for the origin the session was opened for); Node's fetch
knows no CORS, and with no XMLHttpRequest there the flow sends its chunks with fetch.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AllowAll, Profile, Rindle
from tests.conftest import LiveServer, MakeMedia
from tests.support.gcs import GCSBucket, gcs_emulator_fixture, gcs_fixture  # noqa: F401
from tests.support.images import png

KiB = 1024
CHUNK = 256 * KiB
SIZE = 4 * CHUNK + 1000  # 1 MiB + 1000 bytes: five chunks, the last one short
ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "js" / "gcs" / "run_resumable.mjs"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js"),
    pytest.mark.skipif(not (ROOT / "node_modules" / "tus-js-client").is_dir(),
                       reason="needs the root npm install (npm ci)"),
]


class Lessons(Profile):
    name = "lessons"
    storage = "gcs"
    allow_mime = ["image/png"]
    max_bytes = 8 * 1024 * KiB


@pytest.fixture
def gcs_media(make_media: MakeMedia, gcs: GCSBucket) -> Rindle:
    # Over 1 MiB the uploader picks the resumable flow (a GCS profile offers it first).
    return make_media(storages={"gcs": gcs.storage()}, profiles=[Lessons],
                      authorizer=AllowAll(), multipart_threshold=CHUNK)


@pytest.fixture
def photo(tmp_path: Path) -> tuple[Path, bytes]:
    data = (png(16, 16) + bytes(range(251)) * (SIZE // 251 + 1))[:SIZE]
    path = tmp_path / "lesson.png"
    path.write_bytes(data)
    return path, data


def _app(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


async def _node(**opts: Any) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(DRIVER), json.dumps({"profile": "lessons", "chunkSize": CHUNK, **opts}),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, out.decode() + err.decode()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _starts(result: dict[str, Any]) -> list[int]:
    starts = []
    for put in result["puts"]:
        m = re.match(r"bytes (\d+)-", put["range"])
        assert m, put
        starts.append(int(m.group(1)))
    return starts


async def _assert_available(media: Rindle, asset_id: str, data: bytes, gcs: GCSBucket) -> None:
    await media.drain()
    asset = await media.asset(asset_id)
    assert asset.state == "available" and asset.byte_size == len(data)
    assert gcs.get(asset.storage_key) == data


@SQLITE
async def test_the_uploader_sends_chunks_to_gcs_and_survives_a_lost_answer(
        gcs_media: Rindle, gcs: GCSBucket, photo: tuple[Path, bytes]) -> None:
    path, data = photo
    async with LiveServer(_app(gcs_media)) as srv:
        result = await _node(endpoint=f"{srv.url}/rindle", file=str(path), loseAnswer=2)
        assert result["ok"], result
        await _assert_available(gcs_media, result["assetId"], data, gcs)
    assert result["strategy"] == "resumable"
    # Chunk 2 reached the store but its answer was lost: Rindle said how far the store got,
    # and the upload went on with chunk 3 (chunk 2 was not sent again).
    assert _starts(result) == [0, CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK]
    assert [p["range"] for p in result["puts"]][-1] == f"bytes {4 * CHUNK}-{SIZE - 1}/{SIZE}"
    assert all(p["range"].endswith("/*") for p in result["puts"][:-1])
    assert result["statuses"] == [308, 308, 308, 308, 200]
    # Storage requests carry neither Rindle's headers nor cookies.
    assert not any(p["rindleHeader"] for p in result["puts"])
    assert {p["credentials"] for p in result["puts"]} == {"omit"}
    sid = result["sessionId"]
    assert result["rindle"].count(f"GET /rindle/resumable/{sid}") == 2  # after the loss; verify
    assert result["progress"][-1] == SIZE
    assert result["stored"] == []  # the resume record went with completion


@SQLITE
async def test_a_crashed_tab_resumes_after_a_reload(gcs_media: Rindle, gcs: GCSBucket,
                                                   photo: tuple[Path, bytes],
                                                   tmp_path: Path) -> None:
    path, data = photo
    storage = tmp_path / "session-storage.json"
    async with LiveServer(_app(gcs_media)) as srv:
        endpoint = f"{srv.url}/rindle"
        first = await _node(endpoint=endpoint, file=str(path), storage=str(storage),
                            failAfter=2, attempts=1)
        assert not first["ok"] and first["code"] == "network_error", first
        assert first["statuses"] == [308, 308]
        assert gcs.partial_uploads() == [2 * CHUNK]
        [key] = first["stored"]
        record = json.loads(json.loads(storage.read_text())[key])
        assert record["byte_size"] == SIZE and record["asset_id"]
        uri = record["upload_url"]
        assert uri.startswith(gcs.endpoint_url)
        assert uri not in first["message"]

        second = await _node(endpoint=endpoint, file=str(path), storage=str(storage))
        assert second["ok"], second
        await _assert_available(gcs_media, second["assetId"], data, gcs)
    # No new session: Rindle's status said two chunks were in, and only the rest went.
    assert not any(call == "POST /rindle/resumable" for call in second["rindle"])
    assert second["rindle"][1] == f"GET /rindle/resumable/{record['session_id']}"
    assert _starts(second) == [2 * CHUNK, 3 * CHUNK, 4 * CHUNK]
    assert second["progress"][0] == 2 * CHUNK
    assert second["sessionId"] == record["session_id"]
    assert second["assetId"] == record["asset_id"]
    assert second["stored"] == []
