"""Metadata backfill: analyzers run again over stored assets, states untouched, resumable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rindle import Rindle
from tests.conftest import ImageProfile, MakeMedia
from tests.support.images import png
from tests.support.ops_app import OpsPhotos

REPO = Path(__file__).resolve().parents[2]


class _Stop(Exception):
    """The operator's Ctrl-C, half-way through."""


async def _forgotten(media: Rindle, n: int) -> list[str]:
    """``n`` ready photos whose analysis is lost, as if promoted before the analyzers."""
    ids = []
    for i in range(n):
        result = await media.upload(OpsPhotos, png(30 + i, 20), filename=f"{i}.png")
        ids.append(result.asset.id)
    await media.drain()
    for aid in ids:
        await media.repo.update_asset(aid, width=None, height=None, metadata={})
    return sorted(ids)


async def test_an_interrupted_backfill_resumes_where_it_stopped(make_media: MakeMedia) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        ids = await _forgotten(media, 3)
        states = {aid: (await media.asset(aid)).state for aid in ids}
        seen: list[int] = []

        def stop_after_one(n: int) -> None:
            seen.append(n)
            raise _Stop

        with pytest.raises(_Stop):
            await media.backfill_metadata(profile=OpsPhotos, progress=stop_after_one)
        first = await media.asset(ids[0])  # the walk goes in id order
        assert first.width in (30, 31, 32) and first.height == 20  # done before the stop
        assert (await media.asset(ids[1])).width is None  # not reached

        report = await media.backfill_metadata(profile=OpsPhotos)
        assert report.resumed_after == ids[0]
        assert (report.assets, report.changed, report.done) == (2, 2, True)
        for aid in ids:
            asset = await media.asset(aid)
            assert asset.width in (30, 31, 32) and asset.height == 20
            assert asset.state == states[aid]  # never a state change
        # Finished: the marker is gone, so the next run reads everything again.
        again = await media.backfill_metadata(profile=OpsPhotos)
        assert (again.resumed_after, again.assets, again.changed) == (None, 3, 0)


async def test_a_file_that_would_now_be_refused_is_flagged_not_quarantined(
        make_media: MakeMedia) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        [aid] = await _forgotten(media, 1)
        asset = await media.asset(aid)
        storage = media.storage_for(OpsPhotos)
        await storage.delete(asset.storage_key)  # the original is gone
        report = await media.backfill_metadata(profile=OpsPhotos)
        assert report.done and report.assets == 1
        after = await media.asset(aid)
        assert after.state == asset.state
        assert after.metadata["reprobe_problem"]["reason"] == "invalid_upload"


async def test_the_backfill_command(make_media: MakeMedia, tmp_path: Path) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        ids = await _forgotten(media, 2)
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": media.database_url,
           "RINDLE_TEST_FILES": str(tmp_path / "files"), "COLUMNS": "250"}
    out = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "rindle.cli", "backfill-metadata", "--profile", "ops_photos",
        "--json", "--app", "tests.support.ops_app:media"], capture_output=True, text=True,
        env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["assets"], report["changed"], report["done"]) == (2, 2, True)
    async with media.connected():
        for aid in ids:
            assert (await media.asset(aid)).width is not None
