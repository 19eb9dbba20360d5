"""Abandoned uploads expire and are purged; old scratch directories are removed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rindle import Rindle, SessionExpired
from rindle.model.records import Change, UploadSession
from rindle.ops.cleanup import expire_uploads, sweep_scratch_dirs
from tests.conftest import MakeMedia
from tests.support.images import png

REPO = Path(__file__).resolve().parents[2]


async def _abandoned(media: Rindle, *, state: str = "signed",
                     expired_ago: float = 600) -> UploadSession:
    data = png(8, 8)
    session = await media.initiate_upload("image", filename="a.png", content_type="image/png",
                                          byte_size=len(data))
    storage = media.storage_for("image")

    async def body() -> AsyncIterator[bytes]:
        yield data

    await storage.write(session.upload_key, body(), content_type="image/png")  # the PUT landed
    await media.repo.transition_session(session.id, "initialized", "signed")
    if state == "uploaded":
        await media.repo.transition_session(session.id, "signed", "uploaded")
    when = datetime.now(UTC) - timedelta(seconds=expired_ago)
    await media.repo.update_session(session.id, expires_at=when)
    found = await media.repo.get_session(session.id)
    assert found is not None
    return found


async def test_a_dry_run_changes_nothing(media: Rindle) -> None:
    session = await _abandoned(media)
    report = await expire_uploads(media, dry_run=True)
    assert (report.sessions_found, report.sessions_expired, report.session_ids) == (
        1, 1, [session.id])
    assert (await media.repo.get_session(session.id)).state == "signed"  # type: ignore[union-attr]


async def test_an_abandoned_upload_expires_and_its_files_are_purged(media: Rindle) -> None:
    session = await _abandoned(media)
    asset = await media.asset(session.asset_id)
    live = await media.initiate_upload("image", filename="b.png", content_type="image/png",
                                       byte_size=10)  # not expired: left alone
    storage = media.storage_for("image")
    assert await storage.head(session.upload_key) is not None
    report = await expire_uploads(media)
    assert (report.sessions_found, report.sessions_expired, report.errors) == (1, 1, [])
    await media.drain()
    assert await media.repo.get_asset(session.asset_id) is None
    assert await storage.head(session.upload_key) is None
    purges = await media.purges(asset_id=session.asset_id)
    assert [(p.reason, p.storage_keys) for p in purges] == [
        ("upload_expired", [asset.storage_key, session.upload_key])]
    assert (await media.repo.get_session(live.id)).state == "initialized"  # type: ignore[union-attr]
    again = await expire_uploads(media)
    assert again.sessions_found == 0


async def test_an_uploaded_but_never_completed_session_fails_as_expired(media: Rindle) -> None:
    session = await _abandoned(media, state="uploaded")
    moves: list[tuple[str, str | None]] = []

    async def record(change: Change) -> None:
        if change.entity == "session":
            moves.append((change.to_state, change.reason))

    media.store.listeners.append(record)
    await expire_uploads(media)
    # The machine lets an uploaded session only go on to verifying, which then fails.
    assert moves == [("verifying", None), ("failed", "expired")]
    await media.drain()
    assert await media.repo.get_asset(session.asset_id) is None


async def test_a_session_finished_meanwhile_is_skipped(media: Rindle) -> None:
    session = await _abandoned(media)
    await media.repo.transition_session(session.id, "signed", "aborted")
    assert await media.broker.expire(session) is False
    assert (await media.repo.get_session(session.id)).state == "aborted"  # type: ignore[union-attr]


async def test_limit_and_batches(media: Rindle) -> None:
    sessions = [await _abandoned(media, expired_ago=600 + i) for i in range(7)]
    first = await expire_uploads(media, limit=3, batch=2)
    assert (first.sessions_found, first.sessions_expired) == (3, 3)
    # Oldest expiry first.
    assert first.session_ids == [s.id for s in sessions[::-1][:3]]
    rest = await expire_uploads(media, batch=2)
    assert (rest.sessions_found, rest.sessions_expired) == (4, 4)


async def test_uploads_just_past_expiry_get_a_grace_period(media: Rindle) -> None:
    # A client handed a ticket moments before expiry may still be finishing.
    recent = await _abandoned(media, expired_ago=60)
    report = await expire_uploads(media)
    assert report.sessions_found == 0
    later = await expire_uploads(media, now=datetime.now(UTC) + timedelta(seconds=600))
    assert later.session_ids == [recent.id]


async def test_a_streamed_server_upload_is_not_expired_while_it_may_still_run(
        media: Rindle) -> None:
    session = await media.broker.initiate_upload("image", filename="s.png",
                                                 content_type="image/png", byte_size=10,
                                                 strategy="server")
    await media.repo.update_session(session.id,
                                    expires_at=datetime.now(UTC) - timedelta(hours=2))
    assert (await expire_uploads(media)).sessions_found == 0
    two_days = datetime.now(UTC) + timedelta(days=2)
    assert (await expire_uploads(media, now=two_days)).session_ids == [session.id]


async def test_a_server_upload_expired_while_streaming_keeps_nothing(
        make_media: MakeMedia, tmp_path: Path) -> None:
    media = make_media()
    data = png(16, 16)
    streaming = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield data[:64]
        streaming.set()
        await asyncio.sleep(0.5)  # the sweeper runs meanwhile
        yield data[64:]

    async def sweeper() -> None:
        await streaming.wait()
        later = datetime.now(UTC) + timedelta(days=3)  # as if the process hung for days
        assert (await expire_uploads(media, now=later)).sessions_expired == 1
        await media.drain()

    async with media.connected():
        upload = media.upload("image", slow(), filename="a.png", content_type="image/png")
        results = await asyncio.gather(upload, sweeper(), return_exceptions=True)
        assert isinstance(results[0], SessionExpired), results
        assert results[1] is None
        assert await media.repo.list_assets() == []
    left = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert left == []


async def test_the_sweeper_expires_abandoned_uploads(make_media: MakeMedia) -> None:
    media = make_media(sweep_interval=0.05)
    async with media.connected():
        session = await _abandoned(media)
    async with media.connected(sweeper=True):
        for _ in range(200):
            if await media.repo.get_asset(session.asset_id) is None:
                break
            await asyncio.sleep(0.05)
        assert await media.repo.get_asset(session.asset_id) is None
        assert [p.reason for p in await media.purges(asset_id=session.asset_id)] == [
            "upload_expired"]


def test_old_scratch_directories_are_removed(make_media: MakeMedia, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    media = make_media(scratch_dir=str(scratch))
    old, young, other = (scratch / "rindle-job-old", scratch / "rindle-job-young",
                         scratch / "someone-elses")
    for d in (old, young, other):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "f").write_bytes(b"x")
    day_ago = time.time() - 2 * 86400
    for d in (old, other):
        os.utime(d, (day_ago, day_ago))
    dry = sweep_scratch_dirs(media, dry_run=True)
    assert dry.scratch_dirs_removed == 1 and old.exists()
    report = sweep_scratch_dirs(media)
    assert report.scratch_dirs_removed == 1 and report.errors == []
    assert not old.exists() and young.exists() and other.exists()


def _cli(database_url: str, files: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": database_url,
           "RINDLE_TEST_FILES": str(files), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "rindle.cli", *args,
                           "--app", "tests.support.ops_app:media"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


async def test_the_cleanup_command(media: Rindle, tmp_path: Path) -> None:
    session = await _abandoned(media)
    files = tmp_path / "files"  # make_media's storage root
    # A preview by default: the same JSON report as the real run, and nothing changes.
    dry = await asyncio.to_thread(_cli, media.database_url, files, "cleanup", "--json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["session_ids"] == [session.id] and preview["dry_run"] is True
    assert (await media.repo.get_session(session.id)).state != "expired"  # type: ignore[union-attr]
    same = await asyncio.to_thread(_cli, media.database_url, files, "cleanup", "--dry-run",
                                   "--format", "json")
    assert json.loads(same.stdout)["session_ids"] == [session.id]
    done = await asyncio.to_thread(_cli, media.database_url, files, "cleanup", "--execute")
    assert done.returncode == 0, done.stderr
    assert "expired 1 of 1 abandoned upload session(s)" in done.stderr
    assert await media.repo.get_asset(session.asset_id) is None  # purged before it exited


async def test_webhook_event_ids_are_forgotten_after_a_month(media: Rindle) -> None:
    from datetime import UTC, datetime, timedelta

    for event_id, age in (("old-1", 40), ("old-2", 31), ("recent", 2)):
        assert await media.repo.record_provider_event("mux", event_id, "video.asset.ready",
                                                      None)
        await media.store.execute(
            "UPDATE rindle_provider_events SET received_at = :t WHERE event_id = :e",
            {"t": datetime.now(UTC) - timedelta(days=age), "e": event_id})
    preview = await media.expire_uploads(dry_run=True)
    assert preview.provider_events_pruned == 2
    done = await media.expire_uploads()
    assert done.provider_events_pruned == 2
    left = await media.repo.db.fetch_all("SELECT event_id FROM rindle_provider_events", {})
    assert [r["event_id"] for r in left] == ["recent"]
    # A replay of a forgotten event is applied again; of a remembered one, it is not.
    assert not await media.repo.record_provider_event("mux", "recent", "x", None)
