"""Owner erasure: an owner's media goes, what other owners still use stays."""

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
ALICE, BOB = ("User", "alice"), ("User", "bob")


async def _world(media: Rindle) -> tuple[str, str, str]:
    """Alice has an avatar of her own and a cover she shares with Bob; Bob has his own."""
    ids = []
    for n in range(3):
        result = await media.upload(OpsPhotos, png(30 + n, 20), filename=f"{n}.png")
        ids.append(result.asset.id)
    await media.drain()
    own, shared, bobs = ids
    await media.attach(own, ALICE, "avatar")
    await media.attach(shared, ALICE, "cover")
    await media.attach(shared, BOB, "cover")
    await media.attach(bobs, BOB, "avatar")
    return own, shared, bobs


def _runtime(make_media: MakeMedia) -> Rindle:
    return make_media(profiles=[ImageProfile, OpsPhotos])


async def test_a_preview_changes_nothing(make_media: MakeMedia) -> None:
    media = _runtime(make_media)
    async with media.connected():
        own, shared, _ = await _world(media)
        plan = await media.preview_owner_erasure(ALICE)
        assert plan.to_dict() == {
            "owner_type": "User", "owner_id": "alice",
            "slots": [{"slot": "avatar", "asset_id": own}, {"slot": "cover", "asset_id": shared}],
            "assets_purged": [own], "assets_kept": [{"asset_id": shared, "other_owners": 1}],
            "stored_objects": 2,  # the original and its thumb
            "done": False}
        assert len(await media.repo.attachments_for_owner(*ALICE)) == 2


async def test_erasing_an_owner_purges_only_what_nobody_else_uses(make_media: MakeMedia) -> None:
    media = _runtime(make_media)
    async with media.connected():
        own, shared, bobs = await _world(media)
        own_keys = [(await media.asset(own)).storage_key] + [
            v.storage_key for v in await media.repo.list_variants(own) if v.storage_key]
        storage = media.storage_for(OpsPhotos)
        plan = await media.erase_owner(ALICE)
        assert plan.done and plan.assets_purged == [own]
        await media.drain()
        assert await media.repo.attachments_for_owner(*ALICE) == []
        assert await media.repo.get_asset(own) is None
        for key in own_keys:
            assert await storage.head(key) is None
        [record] = await media.purges(asset_id=own)
        assert record.reason == "owner_erased" and sorted(record.storage_keys) == sorted(own_keys)
        # Bob's page still works: his avatar and the cover he shares.
        assert {a.slot: a.asset_id for a in await media.repo.attachments_for_owner(*BOB)} == {
            "avatar": bobs, "cover": shared}
        assert (await media.asset(shared)).state == "ready"
        again = await media.erase_owner(ALICE)
        assert (again.slots, again.assets_purged) == ([], [])


async def _refuse_deletes_of(media: Rindle, owner_id: str) -> None:
    """A trigger that makes the database refuse to detach ``owner_id``'s slots: a real
    failure in the middle of a batch (on PostgreSQL and SQLite alike)."""
    if media.store.dialect == "postgresql":
        await media.repo.db.execute(
            "CREATE OR REPLACE FUNCTION rindle_test_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql", {})
        await media.repo.db.execute(
            "CREATE TRIGGER rindle_test_refuse BEFORE DELETE ON rindle_attachments FOR EACH ROW "
            f"WHEN (OLD.owner_id = '{owner_id}') EXECUTE FUNCTION rindle_test_refuse()", {})
    else:
        await media.repo.db.execute(
            "CREATE TRIGGER rindle_test_refuse BEFORE DELETE ON rindle_attachments "
            f"WHEN OLD.owner_id = '{owner_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END", {})


async def _allow_deletes(media: Rindle) -> None:
    if media.store.dialect == "postgresql":
        await media.repo.db.execute(
            "DROP TRIGGER rindle_test_refuse ON rindle_attachments", {})
    else:
        await media.repo.db.execute("DROP TRIGGER rindle_test_refuse", {})


async def test_a_batch_is_checked_before_any_work(make_media: MakeMedia) -> None:
    from rindle.errors import ValidationError

    media = _runtime(make_media)
    async with media.connected():
        own, shared, bobs = await _world(media)
        for owners, limit in (([], 1000), ([ALICE, BOB], 1), ([ALICE, ("User",)], 1000)):
            with pytest.raises(ValidationError) as refused:
                await media.erase_batch_owner_erasure(owners, max_owners=limit)  # type: ignore[arg-type]
            assert refused.value.code in ("invalid_batch", "invalid_owner")
        assert len(await media.repo.attachments_for_owner(*ALICE)) == 2  # nothing was done
        # A duplicate owner counts once (and a batch of two is then within a limit of 2).
        preview = await media.preview_batch_owner_erasure([ALICE, ALICE, BOB], max_owners=2)
        assert [(p.owner_type, p.owner_id) for p in preview.plans] == [ALICE, BOB]
        assert preview.to_dict()["preview"] is True


async def test_a_failing_owner_stops_the_batch_and_a_rerun_finishes_it(
        make_media: MakeMedia) -> None:
    from rindle.ops.erasure import BatchOwnerFailed

    media = _runtime(make_media)
    async with media.connected():
        own, shared, bobs = await _world(media)
        carol = ("User", "carol")
        carols = (await media.upload(OpsPhotos, png(33, 20), filename="c.png")).asset.id
        await media.drain()
        await media.attach(carols, carol, "avatar")
        await _refuse_deletes_of(media, "bob")
        with pytest.raises(BatchOwnerFailed) as failed:
            await media.erase_batch_owner_erasure([ALICE, BOB, carol])
        # Alice (before Bob) is erased and reported; Bob failed; Carol was never touched.
        assert failed.value.code == "batch_owner_failed" and failed.value.owner == BOB
        assert [(p.owner_type, p.owner_id, p.done) for p in failed.value.partial.plans] == [
            ("User", "alice", True)]
        assert failed.value.to_dict()["error"]["details"] == {"owner": "User:bob",
                                                              "completed": 1}
        await media.drain()
        assert await media.repo.attachments_for_owner(*ALICE) == []
        assert len(await media.repo.attachments_for_owner(*BOB)) == 2
        assert len(await media.repo.attachments_for_owner(*carol)) == 1
        await _allow_deletes(media)
        rerun = await media.erase_batch_owner_erasure([ALICE, BOB, carol])
        await media.drain()
        assert [len(p.slots) for p in rerun.plans] == [0, 2, 1]  # Alice had nothing left
        for aid in (own, shared, bobs, carols):
            assert await media.repo.get_asset(aid) is None


async def test_erasing_two_sharing_owners_at_once_purges_their_shared_asset(
        make_media: MakeMedia) -> None:
    # Each erasure may see the other owner's link and keep the shared asset; neither may
    # leave it stored once both links are gone.
    media = _runtime(make_media)
    async with media.connected():
        own, shared, bobs = await _world(media)
        await asyncio.gather(media.erase_owner(ALICE), media.erase_owner(BOB))
        await media.drain()
        for aid in (own, shared, bobs):
            assert await media.repo.get_asset(aid) is None
        assert {p.reason for p in await media.purges()} == {"owner_erased"}


def _cli(media: Rindle, files: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": media.database_url,
           "RINDLE_TEST_FILES": str(files), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "rindle.cli", "erase", *args, "--app",
                           "tests.support.ops_app:media"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


async def test_the_erase_command_reads_a_file_of_owners(make_media: MakeMedia,
                                                       tmp_path: Path) -> None:
    media = _runtime(make_media)
    async with media.connected():
        own, shared, _ = await _world(media)
        owners = tmp_path / "owners.txt"
        owners.write_text("# erasure requests of 27 Nov\nUser:alice\n\n")
        files = tmp_path / "files"
        preview = await asyncio.to_thread(_cli, media, files, "--owners-file", str(owners),
                                          "--json")
        assert preview.returncode == 0, preview.stderr
        report = json.loads(preview.stdout)
        assert report["preview"] is True and report["plans"][0]["assets_purged"] == [own]
        assert await media.repo.get_asset(own) is not None  # a preview unless --execute
        done = await asyncio.to_thread(_cli, media, files, "--owners-file", str(owners),
                                       "--execute")
        assert done.returncode == 0, done.stderr
        assert ("1 owner(s): 2 slot(s) detached, purged 1 asset(s) (2 stored object(s)), "
                "kept 1 shared with other owners") in done.stderr
        assert await media.repo.get_asset(own) is None  # purged before the command ended
        bad = await asyncio.to_thread(_cli, media, files, "--owner", "alice")
        assert bad.returncode == 1 and "[invalid_owner]" in bad.stderr


async def test_the_erase_command_takes_json_and_a_limit(make_media: MakeMedia,
                                                        tmp_path: Path) -> None:
    media = _runtime(make_media)
    async with media.connected():
        own, shared, bobs = await _world(media)
        files = tmp_path / "files"
        owners = tmp_path / "owners.json"
        owners.write_text(json.dumps({"owners": ["User:alice", {"type": "User", "id": "bob"},
                                                "User:alice"]}))
        over = await asyncio.to_thread(_cli, media, files, "--owners-file", str(owners),
                                       "--max-owners", "1", "--execute")
        assert over.returncode == 1 and "[invalid_batch]" in over.stderr
        assert len(await media.repo.attachments_for_owner(*ALICE)) == 2
        done = await asyncio.to_thread(_cli, media, files, "--owners-file", str(owners),
                                       "--execute", "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["preview"], report["owners"], report["assets_purged"]) == (False, 2, 3)
        for aid in (own, shared, bobs):
            assert await media.repo.get_asset(aid) is None
