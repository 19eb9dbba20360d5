"""The demo app as a user runs it (`python -m demo_app`), driven over HTTP: on local disk,
and on S3 through the environment switch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _start_demo(tmp_path: Path, extra_env: dict[str, str], *, module: str = "demo_app",
                ) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <module>`` (the demo, or an app wrapping it) on a free port, once it
    answers ``GET /``; its output goes to ``tmp_path/demo.log``."""
    port = free_port()
    env = {**os.environ, "RINDLE_DEMO_VAR": str(tmp_path / "var"), "PORT": str(port),
           **extra_env}
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


def _five_calls(base: str) -> dict[str, object]:
    data = png(300, 200)
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/rindle/uploads", json={"profile": "avatar", "filename": "me.png",
                                            "content_type": "image/png", "byte_size": len(data)})
        assert r.status_code == 201, r.text
        body = r.json()
        put = c.put(body["upload"]["url"], content=data, headers=body["upload"]["headers"])
        assert put.status_code == 200, put.text
        assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
        assert c.put("/users/1/avatar", json={"asset_id": body["asset_id"]}).status_code == 200
        for _ in range(200):
            shown = c.get("/users/1/avatar").json()["asset"]
            if shown["state"] == "ready":
                break
            time.sleep(0.1)
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
