"""Streaming through Mux, end to end against the local Mux simulator under uvicorn.

The app and the simulator are real HTTP servers: Rindle's Mux provider calls the
simulator's API over httpx, the simulator fetches the signed source URL from the app's
file route and posts signed webhooks to ``/rindle/webhooks/mux``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from rindle import Rindle
from rindle.model.records import ProviderAsset
from tests.support.clips import clips, needs_ffmpeg
from tests.support.events import assert_no_secret, captured, named
from tests.support.mux_app import (
    KEY_ID,
    TOKEN_SECRET,
    WEBHOOK_SECRET,
    DirectLesson,
    PublicStream,
    PushedLesson,
    QuickStream,
    StreamingApp,
    signing_key,
    streaming_app,
)

pytestmark = needs_ffmpeg


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def row_of(media: Rindle, asset_id: str) -> ProviderAsset | None:
    rows = await media.repo.provider_assets_for(asset_id)
    return rows[0] if rows else None


async def row_in(media: Rindle, asset_id: str, state: str) -> ProviderAsset | None:
    row = await row_of(media, asset_id)
    return row if row is not None and row.state == state else None


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> Any:
    """The app and the simulator, on SQLite and on PostgreSQL."""
    async with streaming_app(database_url, tmp_path) as running:
        yield running


async def upload(app: StreamingApp, profile: type, path: Path) -> str:
    with path.open("rb") as f:
        result = await app.media.upload(profile, f, filename="lesson.mp4")
    return result.asset.id


def claims_of(url: str, audience: str) -> dict[str, Any]:
    token = url.split("token=", 1)[1]
    _, public = signing_key()
    header = jwt.get_unverified_header(token)
    assert header["kid"] == KEY_ID and header["alg"] == "RS256"
    return jwt.decode(token, public, algorithms=["RS256"], audience=audience)


async def test_server_push_of_the_720p_rendition_to_a_signed_playback_url(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    media, sim = app.media, app.sim
    asset_id = await upload(app, PushedLesson, clips(tmp_path_factory).video_audio)
    row = await eventually(lambda: row_in(media, asset_id, "ready"), timeout=60)
    # Mux fetched the web_720p rendition through the signed, absolute source URL.
    variant = await media.repo.get_variant(asset_id, "web_720p")
    assert variant is not None and variant.state == "ready" and row.source == "web_720p"
    stored = (Path(media.storages["local"].root) / str(variant.storage_key)).read_bytes()  # type: ignore[attr-defined]
    [fetch] = sim.fetches
    assert fetch.ok and fetch.sha256 == hashlib.sha256(stored).hexdigest()
    assert fetch.url.startswith(app.url + "/rindle/files/")
    # The simulator's asset carries Rindle's row id as passthrough, with a signed policy.
    remote = sim.assets[str(row.provider_asset_id)]
    assert remote["passthrough"] == row.id
    assert [p["policy"] for p in remote["playback_ids"]] == ["signed"]
    assert row.playback_policy == "signed" and row.playback_id() is not None

    before = int(time.time())
    url = await media.streaming_url(PushedLesson, asset_id)
    assert url.startswith(f"{sim.base_url}/stream/{row.playback_id()}.m3u8?token=")
    claims = claims_of(url, "v")
    assert claims["sub"] == row.playback_id()
    assert before + 900 - 5 <= claims["exp"] <= int(time.time()) + 900 + 5  # the runtime TTL
    async with httpx.AsyncClient() as client:
        played = await client.get(url)
        assert played.status_code == 200 and played.text.startswith("#EXTM3U")
        forged = await client.get(url[:-4] + "AAAA")
        assert forged.status_code == 403
    thumb = await media.streaming_url(PushedLesson, asset_id, kind="thumbnail", expires_in=120)
    assert claims_of(thumb, "t")["exp"] <= int(time.time()) + 125
    board = await media.streaming_url(PushedLesson, asset_id, kind="storyboard")
    assert claims_of(board, "s")["sub"] == row.playback_id()
    # The row took its state from Mux's webhooks (their delivery to the live channel is
    # tests/delivery/test_mux_ops.py's).
    assert row.last_event_id is not None and row.last_event_at is not None


async def test_streaming_url_before_ready_and_for_a_refused_viewer(
        sqlite_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from rindle import DenyAll, NotFound

    async with streaming_app(sqlite_url, tmp_path) as app:
        app.sim.processing_delay = 30.0
        asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
        await eventually(lambda: row_in(app.media, asset_id, "processing"))
        with pytest.raises(NotFound) as early:
            await app.media.streaming_url(QuickStream, asset_id)
        assert early.value.code == "streaming_not_ready"
        app.media.authorizer = DenyAll()
        from rindle import Forbidden

        with pytest.raises(Forbidden):
            await app.media.streaming_url(QuickStream, asset_id)


async def test_public_playback_only_when_the_profile_opts_in(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    asset_id = await upload(app, PublicStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(app.media, asset_id, "ready"))
    url = await app.media.streaming_url(PublicStream, asset_id)
    assert url == f"{app.sim.base_url}/stream/{row.playback_id()}.m3u8"
    assert [p["policy"] for p in row.playback_ids] == ["public"]


def _signed(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Mux-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


async def test_forged_stale_and_unknown_secret_webhooks_change_nothing(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    media = app.media
    app.sim.processing_delay = 30.0
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(media, asset_id, "processing"))
    remote = dict(app.sim.assets[str(row.provider_asset_id)], status="ready")
    body = json.dumps({"type": "video.asset.ready", "id": "evt-forged",
                       "object": {"type": "asset", "id": row.provider_asset_id},
                       "data": remote}).encode()
    hook = f"{app.url}/rindle/webhooks/mux"
    async with httpx.AsyncClient() as client:
        cases = {
            "bad signature": (_signed(body, WEBHOOK_SECRET) | {
                "Mux-Signature": f"t={int(time.time())},v1={'0' * 64}"}, 401,
                "webhook_signature_invalid"),
            "unknown secret": (_signed(body, "some-other-secret"), 401,
                               "webhook_signature_invalid"),
            "stale timestamp": (_signed(body, WEBHOOK_SECRET, int(time.time()) - 3600), 401,
                                "webhook_timestamp_stale"),
            "no signature": ({"Content-Type": "application/json"}, 400,
                             "webhook_signature_malformed"),
        }
        for label, (headers, status, code) in cases.items():
            r = await client.post(hook, content=body, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), label
            assert WEBHOOK_SECRET not in r.text
        # Signed with the real secret but hostile: nested past any sane depth, or no object.
        for hostile in (b'{"a":' * 5000 + b'1' + b'}' * 5000, b'[1, 2]', b'not json'):
            r = await client.post(hook, content=hostile, headers=_signed(hostile, WEBHOOK_SECRET))
            assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
        # The same body, properly signed, is the provider's and applies.
        ok = await client.post(hook, content=body, headers=_signed(body, WEBHOOK_SECRET))
        assert ok.status_code == 200 and ok.json()["outcome"] == "applied"
    assert (await row_of(media, asset_id)).state == "ready"  # type: ignore[union-attr]


async def test_a_replayed_webhook_is_ignored(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    from rindle import telemetry

    emitted: list[tuple[str, dict[str, Any]]] = []
    detach = telemetry.attach("rindle.", lambda name, _, meta: emitted.append((name, meta)))
    app.sim.duplicate_webhooks = True
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(app.media, asset_id, "ready"))
    await app.sim.settle()
    outcomes = [d for d in app.sim.deliveries if d.event_type == "video.asset.ready"]
    assert len(outcomes) == 2 and {d.event_id for d in outcomes} == {row.last_event_id}
    assert all(d.ok for d in outcomes)
    seen = await app.media.repo.db.fetch_all(
        "SELECT event_id FROM rindle_provider_events WHERE event_type = 'video.asset.ready'")
    assert [r["event_id"] for r in seen] == [row.last_event_id]
    # A replay of an older event after ready changes nothing either.
    created = await app.sim.send_webhook("video.asset.created",
                                         app.sim.assets[str(row.provider_asset_id)])
    assert created.status_code == 200 and created.json()["outcome"] == "stale"
    assert (await row_of(app.media, asset_id)).state == "ready"  # type: ignore[union-attr]
    detach()
    pushes = [m for n, m in emitted if n == "rindle.streaming.push"]
    assert [(p["outcome"], p["source"], p["provider"]) for p in pushes] == [
        ("ok", "original", "mux")]
    hooks = [(m["event_type"], m["outcome"]) for n, m in emitted
             if n == "rindle.streaming.webhook"]
    assert hooks.count(("video.asset.ready", "applied")) == 1
    assert hooks.count(("video.asset.ready", "duplicate")) == 1
    assert ("video.asset.created", "stale") in hooks
    moves = [(m["from_state"], m["to_state"]) for n, m in emitted
             if n == "rindle.provider_asset.state_change" and m["asset_id"] == asset_id]
    assert moves[-1] == ("processing", "ready") and moves[0][0] == "pending"


async def test_mux_answering_500_then_200_is_retried_with_backoff(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    app.sim.fail_next("POST", "/video/v1/assets", status=500, times=2)
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    await eventually(lambda: row_in(app.media, asset_id, "ready"))
    posts = [r for r in app.sim.requests
             if r.method == "POST" and r.path == "/video/v1/assets"]
    assert len(posts) == 3 and len(app.sim.assets) == 1


async def test_a_mux_that_does_not_answer_in_time_is_tried_again(
        sqlite_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    async with streaming_app(sqlite_url, tmp_path, mux_options={"timeout": 0.5}) as app:
        # The stalled create makes its asset after all, after the retry made another.
        app.sim.stall_next("POST", "/video/v1/assets", seconds=2.0)
        asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
        row = await eventually(lambda: row_in(app.media, asset_id, "ready"))
        posts = [r for r in app.sim.requests
                 if r.method == "POST" and r.path == "/video/v1/assets"]
        assert len(posts) == 2
        # The copy is deleted at Mux; its events (its deletion too) leave the row alone.
        await app.sim.wait_for(lambda: any(r.method == "DELETE" for r in app.sim.requests),
                               timeout=15)
        await app.sim.wait_for(lambda: any(d.event_type == "video.asset.deleted"
                                           for d in app.sim.deliveries), timeout=15)
        await app.sim.settle()
        assert list(app.sim.assets) == [row.provider_asset_id]
        after = await row_of(app.media, asset_id)
        assert after is not None and after.state == "ready"
        assert after.provider_asset_id == row.provider_asset_id


async def test_a_push_mux_keeps_refusing_errors_the_row_after_the_job_attempts(
        sqlite_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    async with streaming_app(sqlite_url, tmp_path, mux_options={"retries": 0},
                             job_max_attempts=2) as app:
        app.sim.fail_next("POST", "/video/v1/assets", status=503, times=10)
        asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
        row = await eventually(lambda: row_in(app.media, asset_id, "errored"))
        assert "503" in str(row.last_sync_error)
        status = await app.media.runtime_status()
        [errored] = status["streaming"]["findings"]
        assert errored["class"] == "streaming_errored" and errored["count"] == 1
        assert "503" in errored["samples"][0]["error"] and not status["healthy"]


async def test_purge_deletes_the_mux_asset(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    media = app.media
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(media, asset_id, "ready"))
    owner = ("user", "42")
    await media.attach(asset_id, owner, "lesson")
    assert str(row.provider_asset_id) in app.sim.assets
    await media.erase_owner(owner)
    await eventually(lambda: _gone(media, asset_id))
    assert str(row.provider_asset_id) not in app.sim.assets
    deletes = [r for r in app.sim.requests if r.method == "DELETE"]
    assert deletes and deletes[0].path.endswith(str(row.provider_asset_id))


async def _gone(media: Rindle, asset_id: str) -> bool:
    return await media.repo.get_asset(asset_id) is None


async def test_direct_upload_out_of_order_webhooks_and_complete(
        app: StreamingApp) -> None:
    """ready arrives before upload.asset_created: the row is found by its passthrough and
    lands ready; the later events change nothing; the session completes either way."""
    media, sim = app.media, app.sim
    sim.hold_webhooks()
    with captured() as events:
        body = await _direct_upload_out_of_order(app)
    upload_url = body["upload"]["url"]
    assert_no_secret(events, [upload_url, urlsplit(upload_url).path.rsplit("/", 1)[-1]])
    for stage in ("rindle.upload.initiate.stop", "rindle.upload.sign",
                  "rindle.upload.complete.stop", "rindle.upload.complete.exception"):
        [(_, meta)] = named(events, stage, session_id=body["session_id"])
        assert meta["strategy"] == "direct_upload"
    [(_, early)] = named(events, "rindle.upload.complete.exception")
    assert early["error"] == "upload_incomplete"
    session = await media.repo.get_session(body["session_id"])
    assert session is not None and session.state == "completed"
    row = await row_of(media, body["asset_id"])
    assert row is not None and row.state == "ready" and row.ingest_mode == "direct_upload"
    assert "token=" in await media.streaming_url(DirectLesson, body["asset_id"])
    # Nothing of it is in Rindle's storage, and nothing says so: no URL, no reconcile alarm.
    from rindle import DeliveryUnsupported

    with pytest.raises(DeliveryUnsupported):
        await media.url(DirectLesson, body["asset_id"])
    report = await media.reconcile_storage()
    assert report.missing_originals == []


async def _direct_upload_out_of_order(app: StreamingApp) -> dict[str, Any]:
    """The HTTP half of the test above; the body of ``POST /uploads``."""
    media, sim = app.media, app.sim
    async with httpx.AsyncClient() as client:
        created = await client.post(f"{app.url}/rindle/uploads", json={
            "profile": DirectLesson.name, "filename": "talk.mp4", "content_type": "video/mp4",
            "byte_size": 11}, headers={"Origin": "http://example.test"})
        assert created.status_code == 201, created.text
        body = created.json()
        upload = body["upload"]
        assert upload["method"] == "PUT" and upload["url"].startswith(f"{sim.base_url}/upload/")
        # Completing before the file arrived: 409, and nothing moves.
        early = await client.post(f"{app.url}/rindle/uploads/{body['session_id']}/complete")
        assert early.status_code == 409 and early.json()["error"]["code"] == "upload_incomplete"
        put = await client.put(upload["url"], content=b"hello video")
        assert put.status_code == 200
        await sim.wait_for(lambda: any(h.type == "video.asset.ready" for h in sim.held),
                           timeout=10)
        await sim.release_webhooks(order="reverse")
        await sim.settle()
        asset = await eventually(lambda: _asset_in(media, body["asset_id"], "ready"))
        assert asset.kind == "video" and asset.duration_ms == 3000
        done = await client.post(f"{app.url}/rindle/uploads/{body['session_id']}/complete")
        assert done.status_code == 200 and done.json()["asset"]["state"] == "ready"
        shown = (await client.get(f"{app.url}/rindle/assets/{body['asset_id']}")).json()
        assert shown["streaming"]["state"] == "ready" and "url" not in shown
        assert shown["streaming"]["url"].startswith(f"{sim.base_url}/stream/")
    return dict(body)


async def test_a_direct_upload_longer_than_the_profile_allows_is_quarantined_and_deleted(
        app: StreamingApp) -> None:
    from rindle import DeliveryUnsupported

    media, sim = app.media, app.sim
    sim.next_duration = 120.0  # DirectLesson takes at most 60 s
    session, ticket = await media.create_direct_upload(DirectLesson, filename="long.mp4",
                                                       content_type="video/mp4", byte_size=4)
    async with httpx.AsyncClient() as client:
        assert (await client.put(ticket.url, content=b"long")).status_code == 200
    asset = await eventually(lambda: _asset_in(media, session.asset_id, "quarantined"))
    assert asset.quarantine_reason == "max_duration_exceeded"
    row = await row_of(media, session.asset_id)
    assert row is not None
    await sim.wait_for(lambda: str(row.provider_asset_id) not in sim.assets, timeout=10)
    with pytest.raises(DeliveryUnsupported) as refused:
        await media.streaming_url(DirectLesson, session.asset_id)
    assert refused.value.code == "asset_not_deliverable"
    await eventually(lambda: row_in(media, session.asset_id, "deleted"))


async def _asset_in(media: Rindle, asset_id: str, state: str) -> Any:
    asset = await media.repo.get_asset(asset_id)
    return asset if asset is not None and asset.state == state else None


async def test_direct_upload_cancel_stops_the_provider_upload(app: StreamingApp) -> None:
    media, sim = app.media, app.sim
    async with httpx.AsyncClient() as client:
        created = (await client.post(f"{app.url}/rindle/uploads", json={
            "profile": DirectLesson.name, "filename": "talk.mp4", "content_type": "video/mp4",
            "byte_size": 11})).json()
        cancelled = await client.delete(f"{app.url}/rindle/uploads/{created['session_id']}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "aborted"
        upload_id = next(iter(sim.uploads))
        assert sim.uploads[upload_id]["status"] == "cancelled"
        late = await client.put(created["upload"]["url"], content=b"hello video")
        assert late.status_code >= 400
        again = await client.delete(f"{app.url}/rindle/uploads/{created['session_id']}")
        assert again.status_code == 200
    await eventually(lambda: _gone(media, created["asset_id"]))


async def test_a_lost_webhook_is_reported_and_repaired_by_sync(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    media, sim = app.media, app.sim
    sim.webhook_url = None  # every webhook is lost
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(media, asset_id, "uploading"))
    await sim.wait_for(lambda: sim.assets[str(row.provider_asset_id)]["status"] == "ready")
    status = await media.runtime_status(streaming_stuck_after=0)
    [stuck] = status["streaming"]["findings"]
    assert stuck["class"] == "streaming_stuck" and stuck["count"] == 1
    assert stuck["samples"][0]["asset_id"] == asset_id
    assert [r["action"] for r in status["recommendations"]] == ["sync"]
    [synced] = await media.sync_streaming(stuck_after=0)
    assert synced.state == "ready" and synced.playback_id() is not None


async def test_rindle_streaming_sync_repairs_a_lost_webhook(
        app: StreamingApp, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    from tests.support.mux_app import KEY_ID as _KEY
    from tests.support.mux_app import TOKEN_ID

    media, sim = app.media, app.sim
    sim.webhook_url = None
    asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
    row = await eventually(lambda: row_in(media, asset_id, "uploading"))
    await sim.wait_for(lambda: sim.assets[str(row.provider_asset_id)]["status"] == "ready")
    env = {**os.environ, "RINDLE_TEST_DATABASE_URL": app.media.database_url,
           "RINDLE_TEST_FILES": str(tmp_path / "files"), "MUX_TOKEN_ID": TOKEN_ID,
           "MUX_TOKEN_SECRET": TOKEN_SECRET, "MUX_API_URL": sim.base_url,
           "MUX_WEBHOOK_SECRETS": WEBHOOK_SECRET, "MUX_SIGNING_KEY_ID": _KEY,
           "COLUMNS": "250"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rindle.cli", "streaming", "sync",
                               "--app", "tests.support.mux_cli_app:media", *args],
                              env=env, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])

    out = await asyncio.to_thread(run, "--stuck-after", "0")
    said = out.stdout + out.stderr  # the report goes where the other commands' does
    assert out.returncode == 0, said
    assert f"asset {asset_id} at mux: ready" in said and "synced 1" in said
    assert TOKEN_SECRET not in said
    assert (await row_of(media, asset_id)).state == "ready"  # type: ignore[union-attr]
    again = await asyncio.to_thread(run, "--asset", asset_id)
    assert again.returncode == 0 and "ready" in again.stdout + again.stderr


async def test_no_secret_token_or_signed_url_reaches_the_logs(
        app: StreamingApp, tmp_path_factory: pytest.TempPathFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app.sim.fail_next("POST", "/video/v1/assets", status=500, times=1)
    with captured() as events:
        asset_id = await upload(app, QuickStream, clips(tmp_path_factory).video_only)
        await eventually(lambda: row_in(app.media, asset_id, "ready"))
        url = await app.media.streaming_url(QuickStream, asset_id)
    token = url.split("token=", 1)[1]
    source = app.sim.fetches[0].url
    # Rindle's loggers, the app's server, and Rindle's HTTP client's lines about its calls to
    # Mux (the simulator's own client logs its fetch of the source URL: that is Mux's log).
    text = "\n".join(r.getMessage() for r in caplog.records
                     if r.name.startswith(("rindle", "uvicorn"))
                     or (r.name == "httpx" and app.sim.base_url in r.getMessage()))
    assert "/video/v1/assets" in text and "POST /rindle/webhooks/mux" in text
    for secret in (TOKEN_SECRET, WEBHOOK_SECRET, token, source.split("/files/", 1)[1]):
        assert secret not in text
    row = await row_of(app.media, asset_id)
    assert str(row.provider_asset_id) not in repr(row)
    # Nor any telemetry value: provider calls name their path template, not the ids in it.
    assert_no_secret(events, [TOKEN_SECRET, WEBHOOK_SECRET, token, source,
                              str(row.provider_asset_id), str(row.playback_id())])
    calls = [(d["method"], d["path"], d["status"], d["outcome"])
             for _, d in named(events, "rindle.streaming.request")]
    assert calls[0] == ("POST", "/video/v1/assets", 500, "retry")
    assert calls[1][:2] == ("POST", "/video/v1/assets") and calls[1][3] == "ok"
    assert {p for _, p, _, _ in calls} <= {"/video/v1/assets", "/video/v1/assets/{id}"}
    [(played, meta)] = named(events, "rindle.delivery.signed", url_kind="streaming")
    assert (meta["variant"], meta["mode"], played["ttl"]) == ("video", "signed", 900)
    [(_, source_signed)] = named(events, "rindle.delivery.signed", url_kind="original")
    assert source_signed["mode"] == "signed"  # the source URL handed to Mux
