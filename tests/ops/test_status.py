"""The runtime status report: counts, findings with samples, repairs, and the command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rindle import NotFound, Rindle, ValidationError

REPO = Path(__file__).resolve().parents[2]


async def _asset(media: Rindle, n: int, *, profile: str = "image",
                 state: str = "processing") -> str:
    asset = await media.repo.insert_asset(profile=profile, storage="local",
                                          storage_key=f"{profile}/{n}.png")
    path = ["staged", "validating", "analyzing", "promoting", "available", "processing"]
    for a, b in zip(path, path[1:], strict=False):
        if a == state:
            break
        await media.repo.transition_asset(asset.id, a, b)
    return asset.id


async def _variant(media: Rindle, asset_id: str, name: str, *path: str, **values: object) -> None:
    await media.repo.plan_variants(asset_id, [(name, "d" * 64, "image")])
    states = ("planned", *path)
    for a, b in zip(states, states[1:], strict=False):
        await media.repo.transition_variant(asset_id, name, a, b,
                                            **(values if b == states[-1] else {}))


async def _age(media: Rindle, table: str, column: str, row_id: str, seconds: float) -> None:
    await media.store.execute(f"UPDATE {table} SET {column} = :t WHERE id = :id",
                              {"t": datetime.now(UTC) - timedelta(seconds=seconds),
                               "id": row_id})


async def test_an_empty_runtime_is_healthy(media: Rindle) -> None:
    report = await media.runtime_status()
    assert report["healthy"] is True
    assert report["recommendations"] == []
    assert report["assets"] == {"counts": {}, "total": 0, "findings": []}
    assert report["outbox"]["oldest_pending_age_seconds"] is None
    json.dumps(report)  # JSON-ready as it is


async def test_findings_carry_counts_ages_samples_and_repairs(media: Rindle) -> None:
    a1 = await _asset(media, 1)
    await _variant(media, a1, "thumb", "queued", "processing", "failed",
                   error_reason="the image could not be decoded")
    await _variant(media, a1, "large", "queued")
    row = await media.repo.get_variant(a1, "large")
    assert row is not None
    await _age(media, "rindle_variants", "updated_at", row.id, 3600)
    a2 = await _asset(media, 2)
    await _variant(media, a2, "thumb", "queued", "processing", "ready")
    await media.repo.mark_stale("image", "thumb", "e" * 64)
    await _variant(media, a2, "fresh", "queued")  # queued just now: not starved
    session = await media.initiate_upload("image", filename="x.png", content_type="image/png",
                                          byte_size=10)
    await _age(media, "rindle_upload_sessions", "expires_at", session.id, 7200)
    job = await media.repo.add_outbox("process_variants", {"asset_id": a1})
    await media.repo.mark_outbox_failed(job.id, "StorageError: bucket gone", final=True)

    report = await media.runtime_status(limit=1)

    assert report["healthy"] is False
    assert report["variants"]["counts"] == {"failed": 1, "queued": 2, "stale": 1}
    assert report["assets"]["counts"] == {"processing": 2, "staged": 1}
    by_class = {f["class"]: f for s in ("variants", "upload_sessions", "assets", "outbox")
                for f in report[s]["findings"]}
    assert set(by_class) == {"failed", "stale", "queue_starved", "abandoned_uploads",
                             "failed_jobs"}
    failed = by_class["failed"]
    assert failed["count"] == 1
    assert failed["samples"] == [{"state": "failed", "age_seconds": failed["samples"][0][
        "age_seconds"], "asset_id": a1, "variant": "thumb", "attempts": 0,
        "error": "the image could not be decoded"}]
    assert by_class["queue_starved"]["oldest_age_seconds"] >= 3600
    assert by_class["queue_starved"]["samples"][0]["variant"] == "large"
    assert by_class["abandoned_uploads"]["samples"][0]["session_id"] == session.id
    assert 7000 < by_class["abandoned_uploads"]["oldest_age_seconds"] < 7400
    assert by_class["failed_jobs"]["samples"][0]["error"] == "StorageError: bucket gone"
    actions = {r["class"]: r["action"] for r in report["recommendations"]}
    assert actions == {"failed": "requeue", "stale": "regenerate",
                       "queue_starved": "check workers", "abandoned_uploads": "cleanup",
                       "failed_jobs": "inspect"}


async def test_samples_are_limited_and_oldest_first(media: Rindle) -> None:
    ids = []
    for n in range(4):
        aid = await _asset(media, n)
        await _variant(media, aid, "thumb", "queued", "processing", "failed")
        row = await media.repo.get_variant(aid, "thumb")
        assert row is not None
        await _age(media, "rindle_variants", "updated_at", row.id, 100 * (n + 1))
        ids.append(aid)
    report = await media.runtime_status(limit=2)
    failed = report["variants"]["findings"][0]
    assert failed["count"] == 4
    assert [s["asset_id"] for s in failed["samples"]] == [ids[3], ids[2]]


async def test_one_profile_at_a_time(make_media: object) -> None:
    from rindle import Profile

    class Other(Profile):
        name = "other"
        storage = "local"
        allow_mime = ["image/png"]

    from tests.conftest import ImageProfile

    media: Rindle = make_media(profiles=[ImageProfile, Other])  # type: ignore[operator]
    async with media.connected():
        mine = await _asset(media, 1)
        theirs = await _asset(media, 2, profile="other")
        for aid in (mine, theirs):
            await _variant(media, aid, "thumb", "queued", "processing", "failed")
        report = await media.runtime_status(profile="other")
        assert report["assets"]["total"] == 1
        assert report["variants"]["findings"][0]["samples"][0]["asset_id"] == theirs
        with pytest.raises(NotFound):
            await media.runtime_status(profile="nope")
        with pytest.raises(ValidationError):
            await media.runtime_status(limit=0)


async def test_the_status_command(media: Rindle, tmp_path: Path) -> None:
    aid = await _asset(media, 1)
    # Error text with brackets must come out as written (rich would read it as markup).
    await _variant(media, aid, "thumb", "queued", "processing", "failed",
                   error_reason="cannot read [/tmp/rindle-image-x/src] [bold]")
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": media.database_url,
           "RINDLE_TEST_FILES": str(tmp_path / "files"), "COLUMNS": "250"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rindle.cli", "status", "--app",
                               "tests.support.ops_app:media", *args], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=120)

    as_json = await asyncio.to_thread(run, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["variants"]["counts"] == {"failed": 1}
    table = await asyncio.to_thread(run)
    assert table.returncode == 0, table.stderr
    assert f"{aid}/thumb (cannot read [/tmp/rindle-image-x/src] [bold])" in table.stdout
    assert "requeue" in table.stdout


async def test_a_delayed_job_is_not_reported_as_waiting(media: Rindle) -> None:
    async with media.store.transaction():
        await media.outbox.add("purge_upload", {"asset_id": "a", "storage": "local",
                                                "key": "k"}, delay_seconds=3600)
    report = await media.runtime_status()
    assert report["outbox"]["counts"] == {"pending": 1}
    assert report["outbox"]["oldest_pending_age_seconds"] is None


async def test_tus_uploads_past_expiry_and_an_outbox_backlog_are_findings(
        media: Rindle) -> None:
    tus = await media.broker.initiate_upload("image", filename="big.png",
                                             content_type="image/png", byte_size=10,
                                             strategy="tus")
    put = await media.initiate_upload("image", filename="x.png", content_type="image/png",
                                      byte_size=10)
    for session in (tus, put):
        await _age(media, "rindle_upload_sessions", "expires_at", session.id, 600)
    late = await media.repo.add_outbox("purge_asset", {"asset_id": "gone"})
    await _age(media, "rindle_outbox", "available_at", late.id, 900)
    report = await media.runtime_status()
    by_class = {f["class"]: f for s in ("upload_sessions", "outbox")
                for f in report[s]["findings"]}
    assert by_class["abandoned_uploads"]["count"] == 2
    [sample] = by_class["tus_expired"]["samples"]
    assert (sample["session_id"], sample["strategy"]) == (tus.id, "tus")
    assert by_class["outbox_backlog"]["count"] == 1
    assert 850 < by_class["outbox_backlog"]["oldest_age_seconds"] < 1000
    how = {r["class"]: r["how"] for r in report["recommendations"]}
    assert "--execute" in how["tus_expired"] and "rindle sweep" in how["outbox_backlog"]
    assert report["healthy"] is False
