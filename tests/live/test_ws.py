"""The WebSocket endpoint over a real uvicorn server, with the ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from websockets.asyncio.client import ClientConnection, connect

from rindle import Rindle
from rindle.delivery.authorizer import DenyAll
from rindle.live.events import LiveEvent, channel
from rindle.live.sse import subscribe_token
from rindle.live.ws import WSEndpoint, ws_routes
from tests.conftest import LiveServer, MakeMedia
from tests.live.test_sse import eventually, make_asset, subscribers

TIMEOUT = 5.0


def app_for(media: Rindle, **options: Any) -> tuple[Starlette, WSEndpoint]:
    routes = ws_routes(media, **options)
    endpoint = routes[0].app  # type: ignore[attr-defined]
    assert isinstance(endpoint, WSEndpoint)
    return Starlette(routes=[Mount("/rindle", routes=routes)], lifespan=media.lifespan), endpoint


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        return json.loads(await ws.recv())


async def send(ws: ClientConnection, **body: Any) -> None:
    await ws.send(json.dumps(body))


async def test_subscribe_snapshot_events_unsubscribe(make_media: MakeMedia) -> None:
    media = make_media()
    app, endpoint = app_for(media)
    async with LiveServer(app) as srv:
        first = await make_asset(media, "available", {"thumb": "planned"})
        second = await make_asset(media, "ready")
        async with connect(f"ws://127.0.0.1:{srv.port}/rindle/ws") as ws:
            await send(ws, op="subscribe", asset_id=first)
            assert await recv(ws) == {"op": "subscribed", "asset_id": first}
            assert await recv(ws) == {"event": "state_change", "asset_id": first, "data": {
                "entity": "asset", "id": first, "asset_id": first, "to": "available",
                "snapshot": True, "variants": {"thumb": "planned"}}}
            await send(ws, op="subscribe", asset_id=second)
            assert await recv(ws) == {"op": "subscribed", "asset_id": second}
            snap = await recv(ws)
            assert (snap["asset_id"], snap["data"]["to"]) == (second, "ready")

            await media.repo.transition_asset(first, "available", "processing")
            event = await recv(ws)
            assert (event["event"], event["asset_id"]) == ("state_change", first)
            assert (event["data"]["from"], event["data"]["to"]) == ("available", "processing")
            await media.live.publish("asset", second, LiveEvent(
                "variant_ready", {"asset_id": second, "variant": "thumb"}))
            assert await recv(ws) == {"event": "variant_ready", "asset_id": second,
                                      "data": {"asset_id": second, "variant": "thumb"}}

            await send(ws, op="unsubscribe", asset_id=first)
            assert await recv(ws) == {"op": "unsubscribed", "asset_id": first}
            assert subscribers(media, first) == 0 and subscribers(media, second) == 1
            await media.live.publish("asset", first, LiveEvent(
                "processing_progress", {"asset_id": first, "percent": 5}))
            await media.live.publish("asset", second, LiveEvent(
                "processing_progress", {"asset_id": second, "percent": 6}))
            event = await recv(ws)  # only the asset still subscribed
            assert (event["asset_id"], event["data"]["percent"]) == (second, 6)
            assert endpoint.open_sockets == 1
        await eventually(lambda: subscribers(media, second) == 0)
        assert endpoint.open_sockets == 0
        assert channel("asset", second) not in media.live._broadcast._subscribers


async def test_refusals_are_errors_and_the_socket_stays_open(make_media: MakeMedia) -> None:
    media = make_media(authorizer=DenyAll())
    app, _ = app_for(media, max_subscriptions=2)
    async with LiveServer(app) as srv:
        asset_id = await make_asset(media)
        other = await make_asset(media)
        third = await make_asset(media)
        async with connect(f"ws://127.0.0.1:{srv.port}/rindle/ws") as ws:
            await send(ws, op="subscribe", asset_id=asset_id)
            error = await recv(ws)
            assert (error["op"], error["code"], error["asset_id"]) == ("error", "forbidden",
                                                                       asset_id)
            assert error["message"]

            expired = media.signer.dumps("live.subscribe", {"a": asset_id}, expires_in=-5)
            await send(ws, op="subscribe", asset_id=asset_id, token=expired)
            assert (await recv(ws))["code"] == "token_expired"
            await send(ws, op="subscribe", asset_id=asset_id, token="x" + expired)
            assert (await recv(ws))["code"] == "invalid_token"
            await send(ws, op="subscribe", asset_id=other,
                       token=subscribe_token(media, asset_id))
            assert (await recv(ws))["code"] == "invalid_token"
            await send(ws, op="subscribe", asset_id="missing",
                       token=subscribe_token(media, "missing"))
            assert (await recv(ws))["code"] == "not_found"

            await ws.send("not json")
            assert (await recv(ws))["code"] == "invalid_json"
            await send(ws, op="dance", asset_id=asset_id)
            assert (await recv(ws))["code"] == "unknown_op"
            await send(ws, op="subscribe")
            assert (await recv(ws))["code"] == "missing_field"

            # still open, and a valid token works
            await send(ws, op="subscribe", asset_id=asset_id,
                       token=subscribe_token(media, asset_id))
            assert await recv(ws) == {"op": "subscribed", "asset_id": asset_id}
            assert (await recv(ws))["data"]["snapshot"] is True
            await send(ws, op="subscribe", asset_id=asset_id,
                       token=subscribe_token(media, asset_id))
            assert (await recv(ws))["code"] == "already_subscribed"
            await send(ws, op="subscribe", asset_id=other, token=subscribe_token(media, other))
            assert (await recv(ws))["op"] == "subscribed"
            await recv(ws)
            await send(ws, op="subscribe", asset_id=third, token=subscribe_token(media, third))
            assert (await recv(ws))["code"] == "too_many_subscriptions"
        await eventually(lambda: subscribers(media, asset_id) + subscribers(media, other) == 0)


async def test_cross_site_sockets_need_a_token(make_media: MakeMedia) -> None:
    media = make_media()  # AllowAll: cookies alone would be enough on the same site
    app, _ = app_for(media, allowed_origins=["https://app.example"])
    async with LiveServer(app) as srv:
        asset_id = await make_asset(media)
        url = f"ws://127.0.0.1:{srv.port}/rindle/ws"
        async with connect(url, origin="https://evil.example") as ws:  # type: ignore[arg-type]
            await send(ws, op="subscribe", asset_id=asset_id)
            assert (await recv(ws))["code"] == "forbidden"
            await send(ws, op="subscribe", asset_id=asset_id,
                       token=subscribe_token(media, asset_id))
            assert (await recv(ws))["op"] == "subscribed"
        for origin in (f"http://127.0.0.1:{srv.port}", "https://app.example"):
            async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                await send(ws, op="subscribe", asset_id=asset_id)
                assert (await recv(ws))["op"] == "subscribed"


async def test_overflow_sends_resync_and_a_fresh_snapshot(make_media: MakeMedia) -> None:
    media = make_media()
    media.live._broadcast.max_queue = 4  # type: ignore[attr-defined]
    app, _ = app_for(media)
    async with LiveServer(app) as srv:
        asset_id = await make_asset(media, "processing")
        async with connect(f"ws://127.0.0.1:{srv.port}/rindle/ws") as ws:
            await send(ws, op="subscribe", asset_id=asset_id)
            await recv(ws)
            assert (await recv(ws))["data"]["to"] == "processing"
            await media.repo.update_asset(asset_id, state="ready")
            for n in range(10):
                await media.live.publish("asset", asset_id, LiveEvent(
                    "processing_progress", {"asset_id": asset_id, "n": n}))
            assert await recv(ws) == {"event": "resync", "asset_id": asset_id, "data": {}}
            snap = await recv(ws)
            assert snap["event"] == "state_change"
            assert (snap["data"]["to"], snap["data"]["snapshot"]) == ("ready", True)


@pytest.mark.parametrize("op", ["close", "drop"])
async def test_closing_the_socket_ends_every_subscription(make_media: MakeMedia,
                                                          op: str) -> None:
    media = make_media()
    app, endpoint = app_for(media)
    async with LiveServer(app) as srv:
        ids = [await make_asset(media) for _ in range(3)]
        ws = await connect(f"ws://127.0.0.1:{srv.port}/rindle/ws")
        for asset_id in ids:
            await send(ws, op="subscribe", asset_id=asset_id)
            assert (await recv(ws))["op"] == "subscribed"
            await recv(ws)
        assert all(subscribers(media, a) == 1 for a in ids)
        if op == "close":
            await ws.close()
        else:  # the TCP connection vanishes without a closing handshake
            ws.transport.abort()
        await eventually(lambda: all(subscribers(media, a) == 0 for a in ids))
        await eventually(lambda: endpoint.open_sockets == 0)
