"""The SSE endpoint over real HTTP: uvicorn on loopback, httpx as the client, no mocks.

The server runs in the test's own event loop, so some orderings are deterministic: events
published in one burst reach the hub's subscriber queue before the stream's writer runs.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Rindle
from rindle.delivery.authorizer import DenyAll
from rindle.live.events import LiveEvent, channel
from rindle.live.sse import SSEEndpoint, sse_frame, sse_routes, subscribe_token
from tests.conftest import LiveServer, MakeMedia

TIMEOUT = 5.0


def app_for(media: Rindle, **options: Any) -> tuple[Starlette, SSEEndpoint]:
    options.setdefault("disconnect_check", 0.1)  # streams end soon after their client left
    routes = sse_routes(media, **options)
    endpoint = routes[0].endpoint  # type: ignore[attr-defined]
    assert isinstance(endpoint, SSEEndpoint)
    return Starlette(routes=[Mount("/rindle", routes=routes)], lifespan=media.lifespan), endpoint


async def make_asset(media: Rindle, state: str = "ready",
                     variants: dict[str, str] | None = None) -> str:
    asset = await media.repo.insert_asset(profile="image", storage="local", state=state,
                                          storage_key=f"image/{uuid.uuid4().hex}.png")
    if variants:
        await media.repo.plan_variants(asset.id, [(n, "digest", "image") for n in variants])
        for name, vstate in variants.items():
            await media.repo.update_variant(asset.id, name, state=vstate)
    return asset.id


class SSEReader:
    """Reads an event stream block by block (a block ends with a blank line)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_raw()
        self.buffer = b""

    async def block(self, timeout: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(timeout):
            while b"\n\n" not in self.buffer:
                self.buffer += await anext(self._chunks)
        block, _, self.buffer = self.buffer.partition(b"\n\n")
        return block

    async def event(self, timeout: float = TIMEOUT) -> tuple[str, str]:
        """The next event as (name, data); comments and field-only blocks are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_block(await self.block(max(deadline - time.monotonic(), 0.01)))
            if parsed is not None:
                return parsed


def parse_block(block: bytes) -> tuple[str, str] | None:
    name, data = "message", []
    for line in block.decode().split("\n"):
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return (name, "\n".join(data)) if data else None


@asynccontextmanager
async def stream(client: httpx.AsyncClient, url: str) -> AsyncIterator[SSEReader]:
    async with client.stream("GET", url) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        yield SSEReader(response)


def subscribers(media: Rindle, asset_id: str) -> int:
    return len(media.live._broadcast._subscribers.get(channel("asset", asset_id), ()))


async def eventually(predicate: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --- framing ---------------------------------------------------------------------------------


def test_frame_splits_every_kind_of_line_break_into_data_lines() -> None:
    frame = sse_frame("state_change", "<b>one</b>\ntwo\r\nthree\rfour\u2028same line")
    assert frame == ("event: state_change\ndata: <b>one</b>\ndata: two\ndata: three\n"
                     "data: four\u2028same line\n\n").encode()
    assert sse_frame("x", "") == b"event: x\ndata: \n\n"


async def test_stream_starts_with_retry_headers_and_the_current_state(
        make_media: MakeMedia) -> None:
    media = make_media()
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "ready", {"thumb": "ready", "large": "failed"})
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            headers = sse.response.headers
            assert headers["content-type"] == "text/event-stream"
            assert headers["cache-control"] == "no-store"
            assert headers["x-accel-buffering"] == "no"
            assert await sse.block() == b"retry: 3000"
            raw = await sse.block()
            lines = raw.decode().split("\n")
            assert lines[0] == "event: state_change"
            assert len(lines) == 2 and lines[1].startswith("data: {")
            name, data = parse_block(raw) or ("", "")
            assert json.loads(data) == {"entity": "asset", "id": asset_id,
                                        "asset_id": asset_id, "to": "ready",
                                        "snapshot": True,
                                        "variants": {"large": "failed", "thumb": "ready"}}


async def test_a_committed_state_change_is_delivered_live(make_media: MakeMedia) -> None:
    media = make_media()
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "available")
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            name, data = await sse.event()
            assert (name, json.loads(data)["to"]) == ("state_change", "available")
            await media.repo.transition_asset(asset_id, "available", "processing")
            name, data = await sse.event()
            body = json.loads(data)
            assert name == "state_change"
            assert (body["from"], body["to"], body["asset_id"]) == ("available", "processing",
                                                                    asset_id)
            assert "snapshot" not in body
            await media.live.publish("asset", asset_id, LiveEvent(
                "variant_ready", {"asset_id": asset_id, "variant": "thumb"}))
            expected = json.dumps({"asset_id": asset_id, "variant": "thumb"},
                                  separators=(",", ":"))
            assert await sse.event() == ("variant_ready", expected)


async def test_html_format_sends_fragments_as_data_lines(make_media: MakeMedia) -> None:
    try:
        from rindle.web.templating import render_live_fragment  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"rindle.web.templating.render_live_fragment is not importable yet: {exc}")
    media = make_media()
    app, _ = app_for(media, render=render_live_fragment)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "available")
        async with stream(client, f"/rindle/events/asset/{asset_id}?format=html") as sse:
            name, data = await sse.event()
            assert name == "state_change"
            assert data == render_live_fragment(media, "state_change",
                                                {"entity": "asset", "to": "available"})
            assert "<span" in data and 'data-state="available"' in data
            await media.repo.transition_asset(asset_id, "available", "processing")
            name, data = await sse.event()
            assert name == "state_change" and 'data-state="processing"' in data
            # a multi-line fragment arrives as several data: lines, joined again by the client
            await media.live.publish("asset", asset_id, LiveEvent(
                "processing_progress", {"asset_id": asset_id, "percent": 40}))
            raw = await sse.block()
            name, data = parse_block(raw) or ("", "")
            assert name == "processing_progress" and "40" in data
            assert raw.count(b"\ndata: ") == data.count("\n") + 1


async def test_unknown_format_is_rejected(make_media: MakeMedia) -> None:
    media = make_media()
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        r = await client.get(f"/rindle/events/asset/{asset_id}?format=xml")
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "invalid_format"


# --- authorization ---------------------------------------------------------------------------


async def test_refusals_and_tokens(make_media: MakeMedia) -> None:
    media = make_media(authorizer=DenyAll())
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        other_id = await make_asset(media)
        url = f"/rindle/events/asset/{asset_id}"

        r = await client.get(url)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert r.headers["content-type"] == "application/json"

        token = subscribe_token(media, asset_id)
        async with stream(client, f"{url}?token={token}") as sse:
            name, data = await sse.event()
            assert name == "state_change" and '"to":"ready"' in data

        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        r = await client.get(f"{url}?token={tampered}")
        assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_token")

        r = await client.get(f"/rindle/events/asset/{other_id}?token={token}")
        assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_token")

        expired = media.signer.dumps("live.subscribe", {"a": asset_id}, expires_in=-10)
        r = await client.get(f"{url}?token={expired}")
        assert (r.status_code, r.json()["error"]["code"]) == (403, "token_expired")

        # a delivery token of another purpose is not a subscribe token
        wrong = media.signer.dumps("delivery", {"a": asset_id}, expires_in=60)
        r = await client.get(f"{url}?token={wrong}")
        assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_token")

        r = await client.post(url)
        assert r.status_code == 405
        await eventually(lambda: subscribers(media, asset_id) == 0)


async def test_the_authorizer_sees_the_asset_and_the_request(make_media: MakeMedia) -> None:
    seen: list[Any] = []

    class OnlyWithHeader:
        def authorize(self, request: Any) -> bool:
            seen.append(request)
            return bool(request.request.headers.get("x-user") == "ann")

    media = make_media(authorizer=OnlyWithHeader())
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        url = f"/rindle/events/asset/{asset_id}"
        assert (await client.get(url)).status_code == 403
        async with client.stream("GET", url, headers={"x-user": "ann"}) as response:
            assert response.status_code == 200
            assert (await SSEReader(response).event())[0] == "state_change"
        assert seen[-1].action == "subscribe"
        assert seen[-1].asset.id == asset_id and seen[-1].profile == "image"

        r = await client.get("/rindle/events/asset/no-such-asset", headers={"x-user": "ann"})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
        token = subscribe_token(media, "no-such-asset")
        r = await client.get(f"/rindle/events/asset/no-such-asset?token={token}")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
        assert subscribers(media, "no-such-asset") == 0


# --- buffering, heartbeat, clean-up ----------------------------------------------------------


async def test_overflow_sends_resync_then_a_fresh_snapshot(make_media: MakeMedia) -> None:
    media = make_media()
    media.live._broadcast.max_queue = 4  # type: ignore[attr-defined]  # each stream's bound
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "processing", {"thumb": "processing"})
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            name, data = await sse.event()
            assert json.loads(data)["to"] == "processing"
            await media.repo.update_asset(asset_id, state="ready")
            await media.repo.update_variant(asset_id, "thumb", state="ready")
            # Ten events in one burst: the memory backend and the hub take them all before
            # the stream's writer runs, so its queue of 4 overflows (drop-oldest + resync).
            for n in range(10):
                await media.live.publish("asset", asset_id, LiveEvent(
                    "processing_progress", {"asset_id": asset_id, "n": n}))
            assert await sse.event() == ("resync", "{}")
            assert media.live._broadcast.dropped >= 6  # type: ignore[attr-defined]
            name, data = await sse.event()
            assert name == "state_change"
            assert json.loads(data) == {"entity": "asset", "id": asset_id,
                                        "asset_id": asset_id, "to": "ready",
                                        "snapshot": True, "variants": {"thumb": "ready"}}
            # the events queued before that read are in the snapshot; new ones flow again
            await media.live.publish("asset", asset_id, LiveEvent(
                "processing_progress", {"asset_id": asset_id, "n": 99}))
            name, data = await sse.event()
            assert (name, json.loads(data)["n"]) == ("processing_progress", 99)


async def test_a_reconnect_resync_from_the_hub_sends_a_fresh_snapshot(
        make_media: MakeMedia) -> None:
    media = make_media()
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "available")
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            await sse.event()
            await media.repo.update_asset(asset_id, state="processing")
            # what the Redis backend publishes on a channel after a reconnect
            await media.live.publish("asset", asset_id, LiveEvent("resync", {}))
            assert await sse.event() == ("resync", "{}")
            name, data = await sse.event()
            assert name == "state_change" and json.loads(data)["to"] == "processing"
            assert json.loads(data)["snapshot"] is True


async def test_heartbeat_comments_keep_a_quiet_stream_alive(make_media: MakeMedia) -> None:
    media = make_media()
    app, _ = app_for(media, heartbeat=0.1)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            await sse.event()
            pings = [await sse.block(timeout=2) for _ in range(3)]
            assert pings == [b": ping"] * 3


async def test_disconnect_ends_the_subscription(make_media: MakeMedia) -> None:
    media = make_media()
    # the defaults: a 15 s heartbeat (the clean-up must not wait for it), 1 s checks
    app, endpoint = app_for(media, disconnect_check=1.0)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            await sse.event()
            async with stream(client, f"/rindle/events/asset/{asset_id}") as second:
                await second.event()
                assert subscribers(media, asset_id) == 2
                assert endpoint.open_streams == 2
            await eventually(lambda: subscribers(media, asset_id) == 1)
        await eventually(lambda: subscribers(media, asset_id) == 0)
        assert endpoint.open_streams == 0
        assert channel("asset", asset_id) not in media.live._broadcast._subscribers


async def test_close_streams_ends_open_streams_and_refuses_new_ones(
        make_media: MakeMedia) -> None:
    media = make_media()
    app, endpoint = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media)
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            await sse.event()
            endpoint.close_streams()
            with pytest.raises(StopAsyncIteration):  # the response ended cleanly
                await sse.block()
            assert sse.buffer == b""  # and nothing more was sent
        await eventually(lambda: subscribers(media, asset_id) == 0)
        r = await client.get(f"/rindle/events/asset/{asset_id}")
        assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")


async def test_many_subscribers_of_one_asset_share_snapshot_reads(
        make_media: MakeMedia) -> None:
    from rindle.live.snapshot import snapshots_for

    media = make_media()
    app, _ = app_for(media)
    async with LiveServer(app) as srv, \
            httpx.AsyncClient(base_url=srv.url,
                              limits=httpx.Limits(max_connections=50)) as client:
        asset_id = await make_asset(media)
        reader = snapshots_for(media)
        before = reader.reads

        async def one() -> str:
            async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
                return (await sse.event())[1]

        results = await asyncio.gather(*(one() for _ in range(30)))
        assert len(set(results)) == 1 and '"to":"ready"' in results[0]
        assert reader.reads - before <= 30  # never more than one read per stream
        await eventually(lambda: subscribers(media, asset_id) == 0)


async def test_snapshot_reads_are_shared_only_by_callers_waiting_before_the_read(
        media: Rindle) -> None:
    from rindle.live.snapshot import SnapshotReader

    asset_id = await make_asset(media, "available")
    reader = SnapshotReader(media)
    first = await asyncio.gather(*(reader.read(asset_id) for _ in range(20)))
    assert reader.reads == 1 and all(s is first[0] for s in first)
    assert first[0] is not None and first[0].data["to"] == "available"

    # A caller arriving while a read is under way gets a read of its own that starts later,
    # so a change committed in between is in its snapshot.
    early = asyncio.ensure_future(reader.read(asset_id))
    await asyncio.sleep(0)  # the shared read has started
    await media.repo.update_asset(asset_id, state="processing")
    late = await reader.read(asset_id)
    assert late is not None and late.data["to"] == "processing"
    await early
    assert reader.reads == 3
    assert await reader.read("missing") is None


async def test_client_gone_asks_receive_without_waiting() -> None:
    from rindle.live.sse import client_gone

    # a queue-fed receive, like hypercorn's and daphne's
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    assert client_gone(inbox.get) is False  # the request was read; nothing else yet
    assert inbox.empty() and not inbox._getters  # type: ignore[attr-defined]  # no waiter left
    inbox.put_nowait({"type": "http.disconnect"})
    assert client_gone(inbox.get) is True

    # an Event-based receive, like uvicorn's
    class Cycle:
        def __init__(self) -> None:
            self.event = asyncio.Event()
            self.disconnected = False

        async def receive(self) -> dict[str, Any]:
            if not self.disconnected:
                await self.event.wait()
            return {"type": "http.disconnect"}

    cycle = Cycle()
    assert client_gone(cycle.receive) is False
    assert not cycle.event._waiters
    cycle.disconnected = True
    cycle.event.set()
    assert client_gone(cycle.receive) is True


def test_freeze_gc_freezes_and_sets_the_thresholds() -> None:
    import gc

    from rindle.live.sse import GC_THRESHOLDS, freeze_gc

    before = gc.get_threshold()
    try:
        freeze_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
        gc.unfreeze()
        freeze_gc(thresholds=None)
        assert gc.get_threshold() == GC_THRESHOLDS  # left alone
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.redis
async def test_events_published_through_redis_reach_the_stream(make_media: MakeMedia) -> None:
    from tests.conftest import REDIS_URL

    media = make_media(broadcast_url=REDIS_URL)
    app, _ = app_for(media)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        asset_id = await make_asset(media, "available")
        async with stream(client, f"/rindle/events/asset/{asset_id}") as sse:
            assert json.loads((await sse.event())[1])["to"] == "available"
            await media.repo.transition_asset(asset_id, "available", "processing")
            name, data = await sse.event()
            assert (name, json.loads(data)["to"]) == ("state_change", "processing")
        await eventually(lambda: subscribers(media, asset_id) == 0)
