"""The demo page in a real browser: upload through the uploader, watch progress, see the
badge reach ready over SSE and the picture switch to a variant. Screenshots are saved under
test-artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401
from tests.test_demo import _start_demo

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not Path("/usr/bin/chromium").exists(),
    reason="needs node and Debian's chromium (make test installs both)")


def _photo(path: Path, width: int, height: int) -> Path:
    import pyvips

    # Noise keeps the file large enough for the progress bar to move visibly.
    noise = pyvips.Image.gaussnoise(width, height, sigma=60, mean=128)
    image = noise.bandjoin([noise.rot180(), noise.flip("horizontal")]).cast("uchar")
    image.pngsave(str(path), compression=1)
    return path


def _node_finds(start: Path, package: str) -> bool:
    """Whether Node, run from ``start``, finds ``package`` in a node_modules folder there or
    above it: ``npm ci`` at the repository root (npm workspaces) hoists it to the top."""
    return any((folder / "node_modules" / package / "package.json").exists()
               for folder in (start, *start.parents))


def node_result(out: subprocess.CompletedProcess[str], log: Path, *,
                hide: tuple[str, ...] = ()) -> dict[str, Any]:
    """A browser script's last JSON line, which must say ``ok``; when it does not, the
    failure shows the result (less ``hide``) and the end of the demo's log."""
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, out.stdout + out.stderr
    result: dict[str, Any] = json.loads(lines[-1])
    if not result["ok"]:
        shown = {k: v for k, v in result.items() if k not in hide}
        raise AssertionError(json.dumps(shown, indent=1) + "\n--- demo.log (end) ---\n"
                             + (log.read_text()[-4000:] if log.exists() else "(none)"))
    return result


def _drive(base: str, image: Path, label: str, variant_width: int,
           reload_at: int | None = None) -> dict[str, object]:
    if not _node_finds(HERE, "playwright-core"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT,
                       check=True)
    out = subprocess.run(
        ["node", str(HERE / "demo_flow.mjs"), base, str(image), str(ARTIFACTS), label,
         str(variant_width), *([str(reload_at)] if reload_at else [])],
        capture_output=True, text=True, timeout=180)
    return node_result(out, image.parent / "demo.log")


def _check(result: dict[str, object], label: str, strategy: str) -> None:
    assert result["strategy"] == strategy
    progress = [float(p) for p in result["progress"]]  # type: ignore[union-attr]
    assert any(0 < p < 100 for p in progress), progress  # the bar moved
    assert "rindle:complete" in result["events"]  # type: ignore[operator]
    assert result["img"]["naturalWidth"] == 1024  # type: ignore[index]
    assert "ready" in str(result["badge"])
    for step in ("1-before", "2-uploading", "3-processing", "4-ready"):
        assert (ARTIFACTS / f"{label}-{step}.png").stat().st_size > 1000


def test_presigned_put_on_local(tmp_path: Path) -> None:
    proc, base = _start_demo(tmp_path, {})
    try:
        result = _drive(base, _photo(tmp_path / "photo.png", 1600, 1000), "local-put", 1024)
    finally:
        proc.terminate()
        proc.wait(10)
    _check(result, "local-put", "presigned_put")


def test_tus_on_local_for_a_large_file(tmp_path: Path) -> None:
    """Over the threshold, the browser's uploader resumes through Rindle's tus server
    (tus-js-client inside rindle.js) on Local storage."""
    proc, base = _start_demo(tmp_path, {"RINDLE_MULTIPART_THRESHOLD": str(256 * 1024)})
    try:
        photo = _photo(tmp_path / "photo.png", 1600, 1000)
        assert photo.stat().st_size > 256 * 1024
        result = _drive(base, photo, "local-tus", 1024)
    finally:
        proc.terminate()
        proc.wait(10)
    _check(result, "local-tus", "tus")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_tus_resumes_after_the_tab_reloads_mid_upload(tmp_path: Path, where: str,
                                                      request: pytest.FixtureRequest) -> None:
    """The tab reloads while a large file is going up over tus (on Local, and on S3 where
    the demo's default flow order also picks tus); choosing the same file again resumes the
    upload from what the server kept, with no new upload created, and it becomes ready."""
    env = {"RINDLE_MULTIPART_THRESHOLD": str(256 * 1024)}
    if where == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3")
        env |= {"RINDLE_S3_ENDPOINT_URL": bucket.endpoint_url, "RINDLE_S3_BUCKET": bucket.name}
    proc, base = _start_demo(tmp_path, env)
    try:
        photo = _photo(tmp_path / "photo.png", 1700, 1200)  # the avatar takes 8 MiB
        assert 4 * 1024 * 1024 < photo.stat().st_size < 8 * 1024 * 1024
        result = _drive(base, photo, f"{where}-tus-reload", 1024, reload_at=35)
    finally:
        proc.terminate()
        proc.wait(10)
    _check(result, f"{where}-tus-reload", "tus")
    calls: list[dict[str, object]] = result["tus"]  # type: ignore[assignment]
    before = [c for c in calls if not c["afterReload"]]
    after = [c for c in calls if c["afterReload"]]
    assert [c["method"] for c in before][:2] == ["POST", "PATCH"], calls
    assert "POST" not in [c["method"] for c in after], calls  # no new upload
    assert after[0]["method"] == "HEAD", calls  # asks how far it got
    patches = [c for c in after if c["method"] == "PATCH"]
    assert patches and int(str(patches[0]["offset"])) > 0, calls


def test_multipart_on_s3_with_rq_and_redis_broadcast(tmp_path: Path, s3: S3Bucket) -> None:
    """The demo in its production shape, switched by the environment alone: PostgreSQL,
    S3, rq and Redis broadcast. Variants are built by a separate worker process and the
    badge hears about them through Redis."""
    import asyncio
    import uuid

    from tests.conftest import _pg_admin, _pg_url

    database = f"rindle_demo_{uuid.uuid4().hex[:10]}"  # empty: the demo migrates it
    asyncio.run(_pg_admin(f'CREATE DATABASE "{database}"'))
    try:
        _production_shape(tmp_path, s3, _pg_url(database))
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _production_shape(tmp_path: Path, s3: S3Bucket, database_url: str) -> None:
    import os
    import sys

    import redis

    s3.allow_browser_uploads()
    url = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(url).flushdb()
    env = {"RINDLE_S3_ENDPOINT_URL": s3.endpoint_url, "RINDLE_S3_BUCKET": s3.name,
           "RINDLE_MULTIPART_THRESHOLD": str(1024 * 1024), "RINDLE_QUEUE": url,
           "RINDLE_LARGE_UPLOADS": "multipart,tus",
           "RINDLE_BROADCAST_URL": url, "RINDLE_DATABASE_URL": database_url}
    proc, base = _start_demo(tmp_path, env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "rindle.cli", "worker", "--app", "demo_app.media:media"],
        cwd=ROOT, env={**os.environ, "RINDLE_DEMO_VAR": str(tmp_path / "var"), **env},
        stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        photo = _photo(tmp_path / "photo.png", 1800, 1400)
        assert photo.stat().st_size > 6 * 1024 * 1024
        result = _drive(base, photo, "s3-multipart", 1024)
    finally:
        for p in (worker, proc):
            p.terminate()
            p.wait(10)
    _check(result, "s3-multipart", "multipart")
    assert s3.pending_uploads() == []


def _demo_flow(tmp_path: Path, script: str, clip: Path) -> dict[str, Any]:
    """Run a node script against a fresh demo: ``node <script> <base> <clip> <artifacts>``;
    its last JSON line, which must say ``ok``."""
    proc, base = _start_demo(tmp_path, {})
    try:
        out = subprocess.run(["node", str(HERE / script), base, str(clip), str(ARTIFACTS)],
                             capture_output=True, text=True, timeout=240)
    finally:
        proc.terminate()
        proc.wait(10)
    return node_result(out, tmp_path / "demo.log", hide=("requests",))


def test_a_lesson_clip_plays_its_720p_rendition(tmp_path: Path,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """The demo page's lesson uploader: the clip goes up, the live badge counts the
    transcode's percentage, and the <video> plays the 720p rendition (readyState >= 2)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    from tests.support.clips import ffmpeg

    # 20 s of 720p with sound: long enough for the badge to count the transcode.
    clip = tmp_path / "lesson.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=20",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=20", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
           str(clip))
    result = _demo_flow(tmp_path, "video_flow.mjs", clip)
    video = result["video"]
    assert video["readyState"] >= 2
    assert video["currentSrc"] == video["first"]  # the 720p rendition, first of the sources
    assert (video["videoWidth"], video["videoHeight"]) == (1280, 720)
    assert video["poster"]
    assert any("%" in badge for badge in result["badges"]), result["badges"]


def test_streaming_through_mux_push_direct_upload_and_cancel(tmp_path: Path) -> None:
    """The demo's streamed lesson and clip uploaders against its Mux simulator: the pushed
    720p gets a signed HLS source first, a clip goes straight from the browser to Mux's
    upload URL and plays, and a cancelled direct upload ends its session."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    from tests.support.clips import ffmpeg

    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    result = _demo_flow(tmp_path, "stream_flow.mjs", clip)
    for flow in ("push", "direct"):
        played = result[flow]
        assert (played["status"], played["playlist"], played["forged"]) == (200, "#EXTM3U", 403)
        assert played["sources"][0] == "application/vnd.apple.mpegurl"
        assert played["stream"] == "ready" and "token=" in played["hls"]
    assert result["push"]["sources"][1] == "video/mp4"  # the 720p MP4 stays the fallback
    assert result["direct"]["poster"] and "thumbnail.jpg?token=" in result["direct"]["poster"]
    assert result["directPut"] == 1
    assert result["cancel"]["status"] == 200 and result["cancel"]["body"]["state"] == "aborted"
    assert "rindle:complete" not in result["cancel"]["events"]
