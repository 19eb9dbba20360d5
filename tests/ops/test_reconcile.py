"""Storage reconciliation: missing originals and variants, orphans, dry runs and repairs."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rindle import NotFound, Profile, Rindle, Variant
from rindle.model.records import Asset
from rindle.ops.reconcile import reconcile_storage
from tests.conftest import ImageProfile, MakeMedia
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

DAY = 86400.0


class Photos(Profile):
    name = "photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=20, height=20)}


class Avatars(Profile):
    name = "avatars"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"small": Variant(width=16, height=16, format="webp")}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path / "files"  # make_media's storage root


@pytest.fixture
async def media(make_media: MakeMedia) -> AsyncIterator[Rindle]:
    runtime = make_media(profiles=[Photos, Avatars])
    async with runtime.connected():
        yield runtime


async def _uploaded(media: Rindle, profile: type[Profile]) -> Asset:
    result = await media.upload(profile, png(50, 40), filename="a.png")
    await media.drain()
    asset = await media.asset(result.asset.id)
    assert asset.state == "ready"
    return asset


async def _variant_key(media: Rindle, asset_id: str, name: str) -> str:
    row = await media.repo.get_variant(asset_id, name)
    assert row is not None and row.state == "ready" and row.storage_key
    return row.storage_key


async def _put(media: Rindle, key: str, data: bytes = b"stray") -> None:
    async def body() -> AsyncIterator[bytes]:
        yield data

    await media.storages["local"].write(key, body())


def _age_everything(files: Path, seconds: float = 2 * DAY) -> None:
    """Every stored file, as if written ``seconds`` ago."""
    then = time.time() - seconds
    for directory, _, names in os.walk(files):
        for name in names:
            os.utime(Path(directory) / name, (then, then))


def _keys(report_items: list[dict[str, object]]) -> list[str]:
    return sorted(str(item["key"]) for item in report_items)


class Scene:
    """Two ready assets; then, behind Rindle's back, one original and one variant file
    deleted, orphans dropped in and everything aged two days, then a fresh orphan."""

    def __init__(self, media: Rindle, files: Path) -> None:
        self.media = media
        self.files = files

    async def build(self) -> Scene:
        media = self.media
        self.a = await _uploaded(media, Photos)
        self.b = await _uploaded(media, Photos)
        self.a_thumb = await _variant_key(media, self.a.id, "thumb")
        self.b_thumb = await _variant_key(media, self.b.id, "thumb")
        # An upload still open: its object landed, the session is not completed.
        data = png(8, 8)
        self.session = await media.initiate_upload(Photos, filename="c.png",
                                                   content_type="image/png",
                                                   byte_size=len(data))
        await _put(media, self.session.upload_key, data)
        (self.files / self.a.storage_key).unlink()
        (self.files / self.b_thumb).unlink()
        self.stray = f"photos/{uuid.uuid4()}/stray.png"  # its asset has no row at all
        self.leftover = f"photos/{self.b.id}/variants/old-0123456789ab.webp"  # row: other keys
        self.probe = f"_rindle_doctor/{uuid.uuid4()}.txt"
        self.foreign = ["photos/README.txt", "elsewhere/x/y.bin"]  # not shaped by Rindle
        for key in [self.stray, self.leftover, self.probe, *self.foreign]:
            await _put(media, key)
        _age_everything(self.files)
        self.fresh = f"photos/{uuid.uuid4()}/fresh.png"  # within the grace period
        await _put(media, self.fresh)
        self.referenced = [self.b.storage_key, self.a_thumb, self.session.upload_key]
        return self

    def exists(self, key: str) -> bool:
        return (self.files / key).is_file()


@pytest.fixture
async def scene(media: Rindle, files: Path) -> Scene:
    return await Scene(media, files).build()


async def test_a_dry_run_lists_everything_and_changes_nothing(scene: Scene) -> None:
    media = scene.media
    ticks: list[int] = []
    report = await reconcile_storage(media, delete_orphans=True, progress=ticks.append)
    assert report.dry_run is True
    assert report.errors == []
    assert (report.assets_checked, report.variants_checked) == (2, 2)
    assert report.missing_originals == [{"asset_id": scene.a.id, "profile": "photos",
                                         "storage_key": scene.a.storage_key,
                                         "state": "ready"}]
    assert report.missing_variants == [{"asset_id": scene.b.id, "variant": "thumb",
                                        "storage_key": scene.b_thumb}]
    assert _keys(report.orphans) == sorted([scene.stray, scene.leftover, scene.probe])
    assert all(o["storage"] == "local" and o["size"] == len(b"stray")
               and float(str(o["age_seconds"])) > DAY for o in report.orphans)
    assert (report.variants_marked_missing, report.orphans_deleted) == (0, 0)
    # Checked: 2 originals, 2 variants, and every object listed under Rindle's prefixes.
    # a's thumb, b's original, the upload; 3 orphans; the fresh one; photos/README.txt
    listed = 3 + 3 + 1 + 1
    assert sum(ticks) == 2 + 2 + listed
    json.dumps(report.to_dict())

    row = await media.repo.get_variant(scene.b.id, "thumb")
    assert row is not None and row.state == "ready"
    assert (await media.asset(scene.a.id)).state == "ready"
    for key in [scene.stray, scene.leftover, scene.probe, scene.fresh, *scene.referenced]:
        assert scene.exists(key)


async def test_a_run_marks_lost_variants_missing_and_requeue_rebuilds_them(
        scene: Scene) -> None:
    media = scene.media
    report = await reconcile_storage(media, dry_run=False, batch=1)
    assert report.variants_marked_missing == 1
    assert [m["asset_id"] for m in report.missing_variants] == [scene.b.id]
    assert [m["asset_id"] for m in report.missing_originals] == [scene.a.id]
    assert report.orphans_deleted == 0 and scene.exists(scene.stray)  # not asked to delete
    row = await media.repo.get_variant(scene.b.id, "thumb")
    assert row is not None and row.state == "missing" and row.error_reason
    # An original cannot be rebuilt: its asset is left as it was.
    assert (await media.asset(scene.a.id)).state == "ready"
    assert (await media.asset(scene.b.id)).state == "ready"
    status = await media.runtime_status()
    assert [f["class"] for f in status["variants"]["findings"]] == ["missing"]

    assert await media.requeue_variants(scene.b.id) == ["thumb"]
    await media.drain()
    row = await media.repo.get_variant(scene.b.id, "thumb")
    assert row is not None and row.state == "ready" and row.storage_key == scene.b_thumb
    assert scene.exists(scene.b_thumb)

    again = await reconcile_storage(media, dry_run=False)
    assert (again.missing_variants, again.variants_marked_missing) == ([], 0)
    assert [m["asset_id"] for m in again.missing_originals] == [scene.a.id]


async def test_deleting_orphans_removes_only_them(scene: Scene) -> None:
    media = scene.media
    report = await reconcile_storage(media, dry_run=False, delete_orphans=True,
                                     orphan_grace=3600, batch=2)
    assert report.errors == []
    assert _keys(report.orphans) == sorted([scene.stray, scene.leftover, scene.probe])
    assert report.orphans_deleted == 3
    for key in [scene.stray, scene.leftover, scene.probe]:
        assert not scene.exists(key)
    for key in [scene.fresh, *scene.foreign, *scene.referenced]:
        assert scene.exists(key), key
    assert await media.storages["local"].head(scene.session.upload_key) is not None

    again = await reconcile_storage(media, dry_run=False, delete_orphans=True)
    assert (again.orphans, again.orphans_deleted) == ([], 0)


async def test_a_fresh_orphan_counts_only_without_a_grace_period(scene: Scene) -> None:
    media = scene.media
    default = await reconcile_storage(media)
    assert scene.fresh not in _keys(default.orphans)
    report = await reconcile_storage(media, orphan_grace=0)
    assert _keys(report.orphans) == sorted([scene.stray, scene.leftover, scene.probe,
                                            scene.fresh])


async def test_a_profile_narrows_both_directions(media: Rindle, files: Path) -> None:
    photo = await _uploaded(media, Photos)
    avatar = await _uploaded(media, Avatars)
    for asset in (photo, avatar):
        (files / asset.storage_key).unlink()
    avatar_small = await _variant_key(media, avatar.id, "small")
    (files / avatar_small).unlink()
    stray_photo = f"photos/{uuid.uuid4()}/o.png"
    stray_avatar = f"avatars/{uuid.uuid4()}/o.png"
    for key in (stray_photo, stray_avatar, f"_rindle_doctor/{uuid.uuid4()}.txt"):
        await _put(media, key)

    report = await reconcile_storage(media, profile="avatars", dry_run=False,
                                     delete_orphans=True, orphan_grace=0)
    assert (report.assets_checked, report.variants_checked) == (1, 1)
    assert [m["asset_id"] for m in report.missing_originals] == [avatar.id]
    assert [m["asset_id"] for m in report.missing_variants] == [avatar.id]
    assert _keys(report.orphans) == [stray_avatar]
    assert report.orphans_deleted == 1
    assert (files / stray_photo).is_file()
    photo_thumb = await media.repo.get_variant(photo.id, "thumb")
    assert photo_thumb is not None and photo_thumb.state == "ready"

    with pytest.raises(NotFound) as err:
        await reconcile_storage(media, profile="nope")
    assert err.value.code == "unknown_profile"


class S3Photos(Profile):
    name = "photos"
    storage = "s3"
    allow_mime = ["image/png"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_s3(make_media: MakeMedia, s3: S3Bucket) -> None:
    media = make_media(storages={"s3": s3.storage(key_prefix="media")}, profiles=[S3Photos])
    async with media.connected():
        kept = await _uploaded_s3(media)
        lost = await _uploaded_s3(media)
        s3.client.delete_object(Bucket=s3.name, Key=f"media/{lost.storage_key}")
        stray = f"photos/{uuid.uuid4()}/stray.png"
        s3.put(f"media/{stray}", b"stray")
        s3.put("photos/not-under-the-prefix/x.png", b"someone else's")
        storage = media.storages["s3"]
        storage._page_size = 1  # type: ignore[attr-defined]
        report = await reconcile_storage(media, dry_run=False, delete_orphans=True,
                                         orphan_grace=0)
        assert report.errors == []
        assert [m["asset_id"] for m in report.missing_originals] == [lost.id]
        assert report.orphans == [{"storage": "s3", "key": stray, "size": 5,
                                   "age_seconds": report.orphans[0]["age_seconds"]}]
        assert report.orphans_deleted == 1
        assert s3.keys() == sorted([f"media/{kept.storage_key}",
                                    "photos/not-under-the-prefix/x.png"])


async def test_the_reconcile_command_previews_until_told_to_act_on_s3(
        make_media: MakeMedia, s3: S3Bucket) -> None:
    """Real state in S3 (moto) and the parametrized database: without --execute the
    command reports the orphan and the lost variant and changes nothing; with it, both are
    handled."""
    import asyncio
    import subprocess
    import sys

    from tests.support.ops_app import OpsPhotos
    from tests.support.s3 import FAKE_ENV

    media = make_media(storages={"local": s3.storage(key_prefix="media")},
                       profiles=[ImageProfile, OpsPhotos])
    async with media.connected():
        result = await media.upload(OpsPhotos, png(40, 30), filename="a.png")
        await media.drain()
        thumb = await media.repo.get_variant(result.asset.id, "thumb")
        assert thumb is not None and thumb.state == "ready"
        s3.client.delete_object(Bucket=s3.name, Key=f"media/{thumb.storage_key}")
        stray = f"media/ops_photos/{uuid.uuid4()}/stray.png"
        s3.put(stray, b"stray")
    env = {**os.environ, **FAKE_ENV, "RINDLE_TEST_DATABASE_URL": media.database_url,
           "RINDLE_TEST_S3_BUCKET": s3.name, "RINDLE_TEST_S3_ENDPOINT": s3.endpoint_url,
           "COLUMNS": "250"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rindle.cli", "reconcile", "--app",
                               "tests.support.ops_app:media", "--orphan-grace", "0",
                               "--delete-orphans", "--json", *args], capture_output=True,
                              text=True, env=env, cwd=Path(__file__).resolve().parents[2],
                              timeout=120)

    preview = await asyncio.to_thread(run)
    assert preview.returncode == 0, preview.stderr
    seen = json.loads(preview.stdout)
    assert seen["dry_run"] is True and seen["orphans_deleted"] == 0
    assert [o["key"] for o in seen["orphans"]] == [stray.removeprefix("media/")]
    assert stray in s3.keys()
    async with media.connected():
        still = await media.repo.get_variant(result.asset.id, "thumb")
        assert still is not None and still.state == "ready"  # not marked without --execute
    done = await asyncio.to_thread(run, "--execute")
    assert done.returncode == 0, done.stderr
    acted = json.loads(done.stdout)
    assert (acted["dry_run"], acted["orphans_deleted"], acted["variants_marked_missing"]) == (
        False, 1, 1)
    assert stray not in s3.keys()
    async with media.connected():
        marked = await media.repo.get_variant(result.asset.id, "thumb")
        assert marked is not None and marked.state == "missing"


async def _uploaded_s3(media: Rindle) -> Asset:
    result = await media.upload(S3Photos, png(20, 20), filename="a.png")
    await media.drain()
    asset = await media.asset(result.asset.id)
    assert asset.state == "available"
    return asset


async def test_staging_keys_are_orphans_only_once_nothing_needs_them(media: Rindle,
                                                                     files: Path) -> None:
    """What a reused upload URL leaves on a finished upload's staging key is an orphan; the
    staging copy of an upload verified but not yet promoted is not."""
    done = await _uploaded(media, Photos)
    [finished] = await media.repo.sessions_for_asset(done.id)
    await _put(media, finished.upload_key, b"late PUT")
    data = png(8, 8)
    waiting = await media.initiate_upload(Photos, filename="w.png", content_type="image/png",
                                          byte_size=len(data))
    await _put(media, waiting.upload_key, data)
    for a, b in (("initialized", "signed"), ("signed", "verifying"), ("verifying", "completed")):
        await media.repo.transition_session(waiting.id, a, b)
    await media.repo.transition_asset(waiting.asset_id, "staged", "validating")
    _age_everything(files)
    report = await reconcile_storage(media, dry_run=False, delete_orphans=True)
    assert _keys(report.orphans) == [finished.upload_key]
    assert report.orphans_deleted == 1
    assert not (files / finished.upload_key).exists()
    assert (files / waiting.upload_key).read_bytes() == data
