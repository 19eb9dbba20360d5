"""Stale recipes, requeue, cancel and reprobe, with a real libvips processor."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from rindle.processing.processor import Output
from tests.conftest import SECRET
from tests.support.images import png


def photos(thumb: Variant) -> type[Profile]:
    class Photos(Profile):
        name = "photos"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"thumb": thumb, "large": Variant(width=60, height=60)}

    return Photos


def build(url: str, files: Path, profile: type[Profile], **kw: Any) -> Rindle:
    return Rindle(database_url=url, storages={"local": LocalStorage(root=files)},
                  profiles=[profile], secret_keys=[SECRET], authorizer=AllowAll(), **kw)


@pytest.fixture
def url(sqlite_url: str) -> str:
    return sqlite_url


async def test_a_changed_recipe_makes_variants_stale_then_regenerates(url: str,
                                                                       tmp_path: Path) -> None:
    v1 = photos(Variant(width=20, height=20))
    first = build(url, tmp_path / "f", v1)
    async with first.connected():
        asset = (await first.upload(v1, png(100, 50), filename="a.png")).asset
        await first.drain()
        old = await first.repo.get_variant(asset.id, "thumb")
        assert old is not None and old.state == "ready" and old.width == 20

    v2 = photos(Variant(width=40, height=40))
    assert v2.variants["thumb"].digest != v1.variants["thumb"].digest
    second = build(url, tmp_path / "f", v2)
    async with second.connected():
        large_before = await second.repo.get_variant(asset.id, "large")
        report = await second.regenerate_variants(profile="photos")
        assert (report.marked_stale, report.queued) == (1, 1)
        # Until rebuilt, the stale variant is still served.
        assert "/files/" in await second.variant_url("photos", asset.id, "thumb")
        await second.drain()
        new = await second.repo.get_variant(asset.id, "thumb")
        assert new is not None and new.state == "ready" and new.width == 40
        assert new.recipe_digest == v2.variants["thumb"].digest
        large = await second.repo.get_variant(asset.id, "large")
        assert large is not None and large_before is not None
        assert (large.generated_at, large.storage_key) == (
            large_before.generated_at, large_before.storage_key)  # untouched
        again = await second.regenerate_variants(profile="photos")
        assert (again.marked_stale, again.queued) == (0, 0)


async def test_a_new_variant_is_planned_for_old_assets(url: str, tmp_path: Path) -> None:
    class One(Profile):
        name = "photos"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"thumb": Variant(width=20)}

    media = build(url, tmp_path / "f", One)
    async with media.connected():
        asset = (await media.upload(One, png(80, 80), filename="a.png")).asset
        await media.drain()
    two = photos(Variant(width=20))
    media2 = build(url, tmp_path / "f", two)
    async with media2.connected():
        report = await media2.regenerate_variants(profile="photos", variant="large")
        await media2.drain()
        assert report.planned_missing == 1
        row = await media2.repo.get_variant(asset.id, "large")
        assert row is not None and row.state == "ready"


async def test_requeue_retries_failed_and_forces_ready(url: str, tmp_path: Path) -> None:
    prof = photos(Variant(width=20))
    media = build(url, tmp_path / "f", prof)
    async with media.connected():
        asset = (await media.upload(prof, png(50, 50), filename="a.png")).asset
        await media.drain()
        await media.repo.update_variant(asset.id, "thumb", state="failed",
                                        error_reason="simulated")
        await media.repo.update_asset(asset.id, state="degraded")
        assert await media.requeue_variants(asset.id) == ["thumb"]
        await media.drain()
        assert (await media.asset(asset.id)).state == "ready"  # repaired: degraded -> ready
        before = await media.repo.get_variant(asset.id, "large")
        assert await media.requeue_variants(asset.id, ["large"]) == []  # ready: needs force
        assert await media.requeue_variants(asset.id, ["large"], force=True) == ["large"]
        await media.drain()
        after = await media.repo.get_variant(asset.id, "large")
        assert before and after and after.generated_at and before.generated_at
        assert after.generated_at > before.generated_at
        with pytest.raises(Exception) as err:
            await media.requeue_variants(asset.id, ["nope"])
        assert getattr(err.value, "code", None) == "unknown_variant"


class SlowProcessor:
    """Builds its outputs only after ``release`` is set, so a test can cancel mid-job; it
    asks ``context.cancelled()`` first, as a long job would."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.stopped_early = 0

    async def process(self, source: Any, variant: Variant, context: Any) -> Output:
        raise AssertionError("a batch processor gets process_many")

    async def process_many(self, source: Any, variants: Mapping[str, Variant],
                           context: Any) -> dict[str, Output | Exception]:
        self.started.set()
        await self.release.wait()
        if await context.cancelled():
            self.stopped_early += 1
            return {}
        out: dict[str, Output | Exception] = {}
        for name in variants:
            path = context.scratch / f"{name}.bin"
            path.write_bytes(b"x")
            out[name] = Output(path=path, content_type="application/octet-stream")
        return out


async def test_cancel_stops_a_running_job_at_its_checkpoint(url: str, tmp_path: Path) -> None:
    class Slow(Profile):
        name = "slow"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"a": Variant(width=5, kind="slow"), "b": Variant(width=6, kind="slow")}

    proc = SlowProcessor()
    media = build(url, tmp_path / "f", Slow, processors={"slow": proc})
    async with media.connected():
        asset = (await media.upload(Slow, png(10, 10), filename="a.png")).asset
        await asyncio.wait_for(proc.started.wait(), 10)
        assert sorted(await media.cancel_processing(asset.id)) == ["a", "b"]
        proc.release.set()
        await media.drain()
        rows = {v.name: v.state for v in await media.repo.list_variants(asset.id)}
        assert rows == {"a": "cancelled", "b": "cancelled"}
        assert proc.stopped_early == 1
        stored = [o.key async for o in media.storage_for(Slow).list_keys(f"slow/{asset.id}/")]
        assert [k for k in stored if "/variants/" in k] == []
        runs = await media.repo.runs_for_asset(asset.id)
        assert {r.state for r in runs} == {"cancelled"}
        assert (await media.asset(asset.id)).state == "ready"
        # Cancelled work can be queued again.
        assert sorted(await media.requeue_variants(asset.id)) == ["a", "b"]
        await media.drain()
        rows = {v.name: v.state for v in await media.repo.list_variants(asset.id)}
        assert rows == {"a": "ready", "b": "ready"}


async def test_reprobe_redetects_without_changing_state(url: str, tmp_path: Path) -> None:
    prof = photos(Variant(width=20))
    media = build(url, tmp_path / "f", prof)
    async with media.connected():
        asset = (await media.upload(prof, png(64, 32), filename="a.png")).asset
        await media.drain()
        await media.repo.update_asset(asset.id, width=1, height=1, content_type="x/y")
        fixed = await media.reprobe(asset.id)
        assert (fixed.width, fixed.height, fixed.content_type) == (64, 32, "image/png")
        assert fixed.state == "ready"
        assert "reprobe_problem" not in fixed.metadata


async def test_analysis_and_placeholder_in_metadata(url: str, tmp_path: Path) -> None:
    import pyvips

    image = (pyvips.Image.black(300, 200, bands=3) + [200, 30, 30]).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)

    class Jpegs(Profile):
        name = "jpegs"
        storage = "local"
        allow_mime = ["image/jpeg"]
        variants = {"t": Variant(width=50)}

    media = build(url, tmp_path / "f", Jpegs)
    async with media.connected():
        asset = (await media.upload(Jpegs, image.jpegsave_buffer(Q=90),
                                    filename="r.jpg")).asset
        await media.drain()
        got = await media.asset(asset.id)
    # Dimensions as people see them (EXIF orientation 6 turns 300x200 to portrait).
    assert (got.width, got.height) == (200, 300)
    assert got.metadata["orientation"] == 6
    assert got.metadata["has_alpha"] is False and got.metadata["animated"] is False
    assert got.metadata["placeholder"].startswith("data:image/webp;base64,")
    assert len(got.metadata["placeholder"]) < 600
