"""The demo app as a user runs it (`python -m demo_app`), driven over HTTP: on local disk,
and on S3 through the environment switch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.clips import Clips, needs_ffmpeg
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _start_demo(tmp_path: Path, extra_env: dict[str, str], *, module: str = "demo_app",
                ) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <module>`` (the demo, or an app wrapping it) on a free port, once it
    answers ``GET /``; its output goes to ``tmp_path/demo.log``."""
    port = free_port()
    # No sample lessons unless asked: ffmpeg at every one of the suite's demo starts would
    # cost minutes; tests/test_demo_cohort.py turns them on where it checks them.
    env = {**os.environ, "RINDLE_DEMO_VAR": str(tmp_path / "var"), "PORT": str(port),
           "RINDLE_DEMO_SAMPLE_MEDIA": "0", **extra_env}
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "demo.log").read_text()[-3000:])
        try:
            if httpx.get(base + "/", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the demo did not start")


@pytest.fixture
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    extra: dict[str, str] = getattr(request, "param", {}) or {}
    if extra.get("s3"):
        bucket: S3Bucket = request.getfixturevalue("s3")
        extra = {"RINDLE_S3_ENDPOINT_URL": bucket.endpoint_url, "RINDLE_S3_BUCKET": bucket.name}
    proc, base = _start_demo(tmp_path, extra)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def _upload(c: httpx.Client, profile: str, filename: str, content_type: str,
            data: bytes) -> dict[str, Any]:
    """The first two calls: initiate, then PUT the bytes to the signed URL."""
    r = c.post("/rindle/uploads", json={"profile": profile, "filename": filename,
                                        "content_type": content_type, "byte_size": len(data)})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    put = c.put(body["upload"]["url"], content=data, headers=body["upload"]["headers"])
    assert put.status_code == 200, put.text
    return body


def _settled(c: httpx.Client, slot: str, *, tries: int = 300) -> dict[str, Any]:
    """The user's ``slot`` asset once it is ready, degraded or quarantined."""
    for _ in range(tries):
        shown: dict[str, Any] = c.get(f"/users/1/{slot}").json()["asset"]
        if shown["state"] in ("ready", "degraded", "quarantined"):
            break
        time.sleep(0.1)
    return shown


def _five_calls(base: str) -> dict[str, object]:
    data = png(300, 200)
    with httpx.Client(base_url=base, timeout=30) as c:
        body = _upload(c, "avatar", "me.png", "image/png", data)
        assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
        assert c.put("/users/1/avatar", json={"asset_id": body["asset_id"]}).status_code == 200
        shown = _settled(c, "avatar")
        assert shown["state"] == "ready", shown
        assert c.get(shown["url"]).content == data
        thumb = c.get(shown["variants"]["thumb"]["url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
        assert shown["variants"]["thumb"]["width"] == 128
        page = c.get("/")
        assert "data-rindle-uploader" in page.text and "Your avatar" in page.text
        return shown


def test_demo_on_local_disk(demo: str) -> None:
    shown = _five_calls(demo)
    assert "/rindle/files/" in str(shown["url"])


@pytest.mark.parametrize("demo", [{"s3": "1"}], indirect=True)
def test_demo_on_s3(demo: str, s3: S3Bucket) -> None:
    shown = _five_calls(demo)
    assert str(shown["url"]).startswith(s3.endpoint_url)
    assert any(k.startswith("avatar/") for k in s3.keys())


def test_demo_with_rq_workers_and_redis_broadcast(tmp_path: Path) -> None:
    """The demo on rq: variants are built by a `rindle worker` process, and its events reach
    the web process over Redis."""
    import redis

    url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(url).flushdb()
    env = {"RINDLE_QUEUE": url, "RINDLE_BROADCAST_URL": url}
    proc, base = _start_demo(tmp_path, env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "rindle.cli", "worker", "--app", "demo_app.media:media"],
        cwd=ROOT, env={**os.environ, "RINDLE_DEMO_VAR": str(tmp_path / "var"), **env},
        stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        shown = _five_calls(base)
        assert shown["variants"]["large"]["width"] == 300  # never enlarged
    finally:
        for p in (worker, proc):
            p.terminate()
            p.wait(10)
    log = (tmp_path / "worker.log").read_text()
    assert "process_variants" in log or "Job OK" in log or "Successfully completed" in log, log


def test_demo_registers_the_lesson_and_episode_profiles(demo: str) -> None:
    with httpx.Client(base_url=demo, timeout=30) as c:
        lesson = c.get("/rindle/profiles/lesson/upload-options")
        episode = c.get("/rindle/profiles/episode/upload-options")
        page = c.get("/")
        wrong = c.put("/users/1/nope", json={"asset_id": "x"})
    assert lesson.status_code == 200, lesson.text
    body = lesson.json()
    assert body["accept"] == ["video/mp4", "video/quicktime", "video/webm"]
    assert body["max_bytes"] == 2 * 1024**3 and "mov" in body["extensions"]
    assert "tus" in body["strategies"]  # a 2 GB clip goes up resumably
    assert episode.status_code == 200
    assert episode.json()["accept"] == ["audio/mpeg", "audio/mp4", "audio/wav"]
    assert 'data-profile="lesson"' in page.text and 'data-profile="episode"' in page.text
    assert 'accept="video/mp4,video/quicktime,video/webm"' in page.text
    assert wrong.status_code == 404


@needs_ffmpeg
def test_a_lesson_clip_through_the_same_calls_as_an_avatar(demo: str, tmp_path: Path) -> None:
    clip = Clips(tmp_path).video_audio.read_bytes()
    with httpx.Client(base_url=demo, timeout=30) as c:
        body = _upload(c, "lesson", "intro.mp4", "video/mp4", clip)
        assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
        assert c.put("/users/1/avatar", json={"asset_id": body["asset_id"]}).status_code == 422
        assert c.put("/users/1/lesson", json={"asset_id": body["asset_id"]}).status_code == 200
        shown = _settled(c, "lesson")
        # Promotion ran ffprobe: the original is a verified video of the clip's size; ffmpeg
        # built the preset's renditions and poster.
        assert shown["state"] == "ready", shown
        assert set(shown["variants"]) == {"web_720p", "web_480p", "poster"}
        assert (shown["content_type"], shown["width"], shown["height"]) == ("video/mp4", 320, 240)
        assert c.get(shown["url"]).content == clip
        page = c.get("/").text
    lesson = page[page.index('<div id="lesson">'):]
    assert '<video class="rindle-video"' in lesson and 'width="320" height="240"' in lesson
    player = lesson[:lesson.index("</video>")]
    # Two renditions, then the original; the poster frame; nothing live once ready.
    assert player.count('<source src="') == 3 and player.count('type="video/mp4"') == 3
    assert 'poster="http' in player and "sse-connect" not in player


@needs_ffmpeg
def test_a_lesson_clip_on_rq_workers(tmp_path: Path) -> None:
    """The same five calls with the demo on rq and Redis broadcast: ffprobe and ffmpeg run in
    a `rindle worker` process, and the lesson ends ready with its renditions and poster."""
    import redis

    url = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(url).flushdb()
    env = {"RINDLE_QUEUE": url, "RINDLE_BROADCAST_URL": url}
    proc, base = _start_demo(tmp_path, env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "rindle.cli", "worker", "--app", "demo_app.media:media"],
        cwd=ROOT, env={**os.environ, "RINDLE_DEMO_VAR": str(tmp_path / "var"), **env},
        stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    clip = Clips(tmp_path).video_audio.read_bytes()
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            body = _upload(c, "lesson", "intro.mp4", "video/mp4", clip)
            # The asset's live stream, as the page's badge reads it: the worker's progress
            # reaches this web process through Redis.
            import threading

            events: list[str] = []
            listening = threading.Event()

            def listen() -> None:
                with httpx.Client(base_url=base, timeout=60) as sse, sse.stream(
                        "GET", f"/rindle/events/asset/{body['asset_id']}") as stream:
                    for line in stream.iter_lines():
                        listening.set()  # the current state arrives first, on connect
                        events.append(line)
                        if line.startswith("data:") and '"ready"' in line:
                            return

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            assert listening.wait(15), "the event stream never answered"
            assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
            assert c.put("/users/1/lesson", json={"asset_id": body["asset_id"]}).status_code == 200
            shown = _settled(c, "lesson", tries=600)
    finally:
        for p in (worker, proc):
            p.terminate()
            p.wait(20)
    assert shown["state"] == "ready", (shown, (tmp_path / "worker.log").read_text()[-2000:])
    listener.join(30)
    progress = [line for line in events if line.startswith("event: processing_progress")]
    assert progress, events[-20:]
    assert set(shown["variants"]) == {"web_720p", "web_480p", "poster"}
    # Both jobs ran in the worker process, not in the web process.
    log = (tmp_path / "worker.log").read_text()
    assert "Successfully completed rindle promote_asset" in log
    assert "Successfully completed rindle process_variants" in log
