"""`rindle requeue` and `rindle regenerate` drive the repair API from a shell."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from rindle import Rindle
from tests.conftest import ImageProfile, MakeMedia
from tests.support.images import png
from tests.support.ops_app import OpsPhotos

REPO = Path(__file__).resolve().parents[2]


def _cli(media: Rindle, files: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": media.database_url,
           "RINDLE_TEST_FILES": str(files), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "rindle.cli", *args, "--app",
                           "tests.support.ops_app:media"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


async def test_requeue_every_failed_variant(make_media: MakeMedia, tmp_path: Path) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        ids = []
        for n in range(3):
            result = await media.upload(OpsPhotos, png(40 + n, 30), filename=f"{n}.png")
            ids.append(result.asset.id)
        await media.drain()
        # Two variants "failed" (say the storage was down); their assets are degraded.
        for aid in ids[:2]:
            await media.store.execute(
                "UPDATE rindle_variants SET state = 'failed', error_reason = 'storage down'"
                " WHERE asset_id = :id", {"id": aid})
            await media.repo.transition_asset(aid, "ready", "degraded")
        out = await asyncio.to_thread(_cli, media, tmp_path / "files", "requeue", "--failed")
        assert out.returncode == 0, out.stderr
        assert "queued 2 variant(s) of 2 asset(s)" in out.stderr
        for aid in ids:
            assert (await media.asset(aid)).state == "ready"
            thumb = await media.repo.get_variant(aid, "thumb")
            assert thumb is not None and thumb.state == "ready" and thumb.error_reason is None


async def test_requeue_reports_an_asset_it_cannot_requeue(make_media: MakeMedia,
                                                          tmp_path: Path) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        staged = await media.initiate_upload(OpsPhotos, filename="x.png",
                                             content_type="image/png", byte_size=10)
        out = await asyncio.to_thread(_cli, media, tmp_path / "files", "requeue", "--asset",
                                      staged.asset_id)
        assert out.returncode == 1
        assert f"{staged.asset_id}: [invalid_transition]" in out.stderr
        usage = await asyncio.to_thread(_cli, media, tmp_path / "files", "requeue")
        assert usage.returncode == 2 and "--failed or --missing" in usage.stderr


async def test_regenerate_after_a_recipe_change(make_media: MakeMedia, tmp_path: Path) -> None:
    from rindle import Profile, Variant

    class OldPhotos(Profile):
        name = "ops_photos"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"thumb": Variant(width=8, format="png")}  # ops_app's is 16 wide

    old = make_media(profiles=[ImageProfile, OldPhotos])
    async with old.connected():
        result = await old.upload(OldPhotos, png(40, 30), filename="a.png")
        await old.drain()
        before = await old.repo.get_variant(result.asset.id, "thumb")
        assert before is not None and before.width == 8
        preview = await asyncio.to_thread(_cli, old, tmp_path / "files", "regenerate",
                                          "--profile", "ops_photos", "--json")
        assert preview.returncode == 0, preview.stderr
        assert json.loads(preview.stdout) == {"dry_run": True, "marked_stale": 1,
                                              "planned_missing": 0, "queued": 1}
        unchanged = await old.repo.get_variant(result.asset.id, "thumb")
        assert unchanged is not None and (unchanged.state, unchanged.width) == ("ready", 8)
        out = await asyncio.to_thread(_cli, old, tmp_path / "files", "regenerate",
                                      "--profile", "ops_photos", "--execute")
        assert out.returncode == 0, out.stderr
        assert "1 marked stale" in out.stderr and "1 queued" in out.stderr
        after = await old.repo.get_variant(result.asset.id, "thumb")
        assert after is not None and (after.state, after.width) == ("ready", 16)


async def test_reconcile_then_requeue_the_missing(make_media: MakeMedia, tmp_path: Path) -> None:
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        result = await media.upload(OpsPhotos, png(40, 30), filename="a.png")
        await media.drain()
        thumb = await media.repo.get_variant(result.asset.id, "thumb")
        assert thumb is not None and thumb.storage_key
        storage = media.storage_for(OpsPhotos)
        await storage.delete(thumb.storage_key)  # a lifecycle rule, a stray script...
        files = tmp_path / "files"

        dry = await asyncio.to_thread(_cli, media, files, "reconcile", "--json")
        assert dry.returncode == 0, dry.stderr
        found = json.loads(dry.stdout)
        assert found["dry_run"] is True and found["variants_marked_missing"] == 0
        assert [v["variant"] for v in found["missing_variants"]] == ["thumb"]
        assert (await media.repo.get_variant(result.asset.id, "thumb")).state == "ready"  # type: ignore[union-attr]

        applied = await asyncio.to_thread(_cli, media, files, "reconcile", "--apply")
        assert applied.returncode == 0, applied.stderr
        assert "marked 1 variant(s) missing" in applied.stderr
        assert (await media.repo.get_variant(result.asset.id, "thumb")).state == "missing"  # type: ignore[union-attr]

        requeued = await asyncio.to_thread(_cli, media, files, "requeue", "--missing")
        assert requeued.returncode == 0, requeued.stderr
        rebuilt = await media.repo.get_variant(result.asset.id, "thumb")
        assert rebuilt is not None and rebuilt.state == "ready"
        assert await storage.head(str(rebuilt.storage_key)) is not None
