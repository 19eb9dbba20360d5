"""Uppy's own tus uploader (@uppy/core + @uppy/tus, bundled with esbuild during the test) in
Debian's chromium against the demo's tus server: a page served same-origin with the demo
uploads a ~2 MiB PNG in 1 MiB chunks, reads ``Rindle-Asset-Id`` from the final PATCH, and the
asset behind it becomes ready."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.test_browser import _node_finds, _photo, pytestmark  # noqa: F401
from tests.test_demo import _start_demo

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024


def _start(tmp_path: Path, page_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The demo wrapped with the test page (tests/e2e/uppy_app.py), on a free port."""
    return _start_demo(tmp_path, {"RINDLE_UPPY_PAGE": str(page_dir)},
                       module="tests.e2e.uppy_app")


def _metadata(header: str) -> dict[str, str]:
    pairs = (item.strip().split(" ", 1) for item in header.split(","))
    return {k: base64.b64decode(v).decode() for k, v in pairs}


def test_uppy_tus_uploads_to_the_demo_in_chromium(tmp_path: Path) -> None:
    if not all(_node_finds(HERE, p) for p in ("playwright-core", "@uppy/tus", "esbuild")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT,
                       check=True)
    photo = _photo(tmp_path / "photo.png", 1000, 700)
    size = photo.stat().st_size
    assert 1.5 * MiB < size < 4 * MiB, size
    page_dir = tmp_path / "page"
    page_dir.mkdir()
    proc, base = _start(tmp_path, page_dir)
    try:
        out = subprocess.run(["node", str(HERE / "uppy_flow.mjs"), base, str(page_dir),
                              str(photo)], capture_output=True, text=True, timeout=180)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        assert lines, out.stdout + out.stderr
        result = json.loads(lines[-1])
        assert result["ok"], json.dumps(result, indent=1)

        # Uppy's upload-success response (the final PATCH's XHR) and onAfterResponse agree.
        asset_id = result["success"]["assetId"]
        assert asset_id and result["afterResponseAssetId"] == asset_id
        assert result["success"]["sessionId"]
        assert result["success"]["uploadURL"].startswith(f"{base}/rindle/tus/avatar/")
        assert result["result"] == {"successful": 1, "failed": 0}
        assert _metadata(result["metadata"]) == {"filename": "photo.png",
                                                 "filetype": "image/png"}
        # One creation POST, then 1 MiB PATCHes up to the whole file.
        methods = [r["method"] for r in result["responses"]]
        assert methods[0] == "POST" and set(methods[1:]) == {"PATCH"}
        offsets = [int(r["offset"]) for r in result["responses"][1:]]
        assert offsets == [min((i + 1) * MiB, size) for i in range(len(offsets))]
        assert offsets[-1] == size and len(offsets) == -(-size // MiB)
        assert any(0 < p < size for p in result["progress"])

        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                shown = client.get(f"/rindle/assets/{asset_id}").json()
                if shown["state"] == "ready":
                    break
                time.sleep(0.1)
            assert shown["state"] == "ready", shown
            assert shown["byte_size"] == size
            assert client.get(shown["url"]).content == photo.read_bytes()
            assert shown["variants"]["large"]["state"] == "ready"
    finally:
        proc.terminate()
        proc.wait(10)
