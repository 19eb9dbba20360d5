"""Video through the whole pipeline on the inline queue: upload, ffprobe, one ffmpeg for
the renditions, live progress to 100, ready rows; and a cancel mid-transcode that leaves no
ffmpeg and no scratch directory behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle, Web
from rindle.processing.workspace import SCRATCH_PREFIX
from tests.conftest import MakeMedia
from tests.support.clips import Clips, children_named, clips

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


class Lesson(Web):
    name = "lesson"
    storage = "local"
    with_480p = True


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return clips(tmp_path_factory)


@pytest.fixture
def av_media(make_media: MakeMedia, tmp_path: Path) -> Rindle:
    return make_media(profiles=[Lesson], scratch_dir=tmp_path / "scratch")


def _scratch_left(media: Rindle) -> list[Path]:
    root = Path(media.scratch_dir or tempfile.gettempdir())
    return sorted(root.glob(f"{SCRATCH_PREFIX}*")) if root.exists() else []


async def test_a_clip_becomes_ready_with_live_progress(av_media: Rindle, made: Clips) -> None:
    events: list[dict[str, Any]] = []
    async with av_media.connected():
        result = await av_media.upload("lesson", made.big.read_bytes(), filename="big.mp4")
        asset_id = result.asset.id

        async def listen() -> None:
            async for event in av_media.live.subscribe("asset", asset_id):
                if event.name == "processing_progress":
                    events.append(event.data)
                if event.name == "state_change" and event.data.get("to") in (
                        "ready", "degraded", "quarantined"):
                    return

        listener = asyncio.create_task(listen())
        await av_media.drain()
        await asyncio.wait_for(listener, 60)
        asset = await av_media.asset(asset_id)
        rows = {v.name: v for v in await av_media.repo.list_variants(asset_id)}
    assert asset.state == "ready", [(v.name, v.state, v.error_reason) for v in rows.values()]
    assert (rows["web_720p"].content_type, rows["web_720p"].width,
            rows["web_720p"].height) == ("video/mp4", 1280, 720)
    assert rows["web_480p"].height == 480 and rows["poster"].content_type == "image/jpeg"
    percents = [e["percent"] for e in events]
    assert percents and percents == sorted(percents) and percents[-1] == 100
    assert events[-1]["eta_seconds"] == 0
    assert any(0 < p < 100 for p in percents)
    assert _scratch_left(av_media) == []


async def test_cancelling_mid_transcode_leaves_nothing_running(av_media: Rindle,
                                                               made: Clips) -> None:
    async with av_media.connected():
        result = await av_media.upload("lesson", made.big.read_bytes(), filename="big.mp4")
        asset_id = result.asset.id
        deadline = time.monotonic() + 30
        while not children_named(os.getpid(), "ffmpeg"):  # the transcode has started
            assert time.monotonic() < deadline, "ffmpeg never started"
            await asyncio.sleep(0.02)
        cancelled = await av_media.cancel_processing(asset_id)
        assert cancelled
        stopped = time.monotonic()
        while children_named(os.getpid(), "ffmpeg"):
            assert time.monotonic() - stopped < 2, "ffmpeg still runs 2 s after the cancel"
            await asyncio.sleep(0.02)
        await av_media.drain()
        rows = await av_media.repo.list_variants(asset_id)
    assert {v.name: v.state for v in rows if v.name in cancelled} == {
        name: "cancelled" for name in cancelled}
    assert _scratch_left(av_media) == []
