"""The live events over one WebSocket (``WS /ws``): many asset subscriptions per socket.

The client sends JSON commands::

    {"op": "subscribe", "asset_id": "...", "token": "..."}     token optional (see below)
    {"op": "unsubscribe", "asset_id": "..."}

and receives::

    {"op": "subscribed", "asset_id": "..."}                    the subscription is live
    {"event": "state_change", "asset_id": "...", "data": {..., "snapshot": true}}
    {"event": "variant_ready", "asset_id": "...", "data": {...}}   every live event after it
    {"event": "resync", "asset_id": "...", "data": {}}            followed by a fresh snapshot
    {"op": "unsubscribed", "asset_id": "..."}
    {"op": "error", "code": "...", "message": "...", "asset_id": "..."}

``subscribed`` is sent once the hub's subscription is in place and the current state has
been read, and the snapshot follows it at once, so a client misses nothing between the two.
Authorization is the SSE endpoint's (:func:`rindle.live.sse.check_subscribe`): a subscribe
token for the asset, or the Authorizer's ``subscribe``. A refused subscription is an
``error`` message (``forbidden``, ``invalid_token``, ``token_expired``, ``not_found``); the
socket stays open. Browsers send cookies with cross-site WebSocket handshakes and CORS does
not apply to them, so a socket opened from another origin (``Origin`` not matching ``Host``
nor ``allowed_origins``) may subscribe with tokens only.

Each subscription is one task reading the hub's bounded queue (drop-oldest + ``resync``);
writes share one lock and await the server's backpressure, so a slow client costs bounded
memory. Closing the socket ends every subscription.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, WebSocketRoute

from .. import telemetry
from .._json import loads_object
from ..errors import RindleError, ValidationError
from ..logs import get_logger
from .events import LiveEvent
from .sse import (
    Receive,
    Scope,
    Send,
    check_subscribe,
    is_resync,
    snapshot_after_subscribe,
    subscriber_queue,
    subscription,
)

if TYPE_CHECKING:
    from .sse import Subscribing

log = get_logger("rindle.live")

MAX_MESSAGE = 8 * 1024
_CACHE_SIZE = 512


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class WSEndpoint:
    """The raw ASGI app behind ``WS /ws`` (see the module docstring).

    ``max_subscriptions`` bounds the subscriptions of one socket; ``allowed_origins`` lists
    further origins (``"https://app.example"``) whose sockets may use the Authorizer.
    """

    def __init__(self, media: Subscribing, *, max_subscriptions: int = 100,
                 allowed_origins: Collection[str] = ()) -> None:
        self.media = media
        self.max_subscriptions = max_subscriptions
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self._data: dict[str, tuple[str, str] | None] = {}
        self.open_sockets = 0
        #: Live subscriptions across every socket of this endpoint.
        self.open_subscriptions = 0

    def __repr__(self) -> str:
        return f"WSEndpoint(open_sockets={self.open_sockets})"

    def same_origin(self, scope: Scope) -> bool:
        """Whether the handshake came from this site (or no browser sent an ``Origin``)."""
        origin = _header(scope, b"origin")
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        host = (_header(scope, b"host") or "").lower()
        return bool(host) and urlsplit(origin).netloc == host

    def event_data(self, message: str) -> tuple[str, str] | None:
        """``(name, data as JSON)`` of a published message, decoded once per process."""
        try:
            return self._data[message]
        except KeyError:
            pass
        try:
            event = LiveEvent.decode(message)
            found: tuple[str, str] | None = (event.name, _json(event.data))
        except Exception:
            log.exception("cannot decode a live event for WebSocket clients; skipping it")
            found = None
        if len(self._data) >= _CACHE_SIZE:
            del self._data[next(iter(self._data))]
        self._data[message] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("WSEndpoint serves WebSocket connections only")
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        socket = _Socket(self, scope, send)
        self.open_sockets += 1
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.disconnect":
                    break
                if kind != "websocket.receive":
                    continue
                text = message.get("text")
                if text is None:
                    try:
                        text = bytes(message.get("bytes") or b"").decode()
                    except UnicodeDecodeError:
                        text = ""
                await socket.command(text)
        except OSError:  # the client went away while we answered it
            pass
        finally:
            self.open_sockets -= 1
            await socket.close()


class _Socket:
    """One connected client: its subscriptions (asset id -> task) and a write lock."""

    __slots__ = ("endpoint", "media", "scope", "_send", "lock", "subs", "closed",
                 "same_origin")

    def __init__(self, endpoint: WSEndpoint, scope: Scope, send: Send) -> None:
        self.endpoint = endpoint
        self.media = endpoint.media
        self.scope = scope
        self._send = send
        self.lock = asyncio.Lock()
        self.subs: dict[str, asyncio.Task[None]] = {}
        self.closed = False
        self.same_origin = endpoint.same_origin(scope)

    async def send(self, text: str) -> None:
        if self.closed:
            return
        async with self.lock:
            await self._send({"type": "websocket.send", "text": text})

    async def error(self, code: str, message: str, asset_id: str | None = None) -> None:
        body: dict[str, Any] = {"op": "error", "code": code, "message": message}
        if asset_id is not None:
            body["asset_id"] = asset_id
        await self.send(_json(body))

    async def command(self, text: str) -> None:
        if len(text) > MAX_MESSAGE:
            await self.error("message_too_large", f"a command is at most {MAX_MESSAGE} bytes")
            return
        try:
            body = loads_object(text, what="a command")
        except ValidationError as exc:  # not JSON, not an object, or nested too deeply
            await self.error(exc.code, f"{exc.message}; send one like "
                             '{"op": "subscribe", "asset_id": "..."}')
            return
        op = body.get("op")
        asset_id = body.get("asset_id")
        if op not in ("subscribe", "unsubscribe"):
            await self.error("unknown_op", "op must be subscribe or unsubscribe")
            return
        if not isinstance(asset_id, str) or not asset_id or len(asset_id) > 200:
            await self.error("missing_field", "asset_id must be a non-empty string")
            return
        if op == "subscribe":
            token = body.get("token")
            await self.subscribe(asset_id, token if isinstance(token, str) else None)
        else:
            await self.unsubscribe(asset_id)

    async def subscribe(self, asset_id: str, token: str | None) -> None:
        if asset_id in self.subs:
            await self.error("already_subscribed", "this socket is subscribed to that asset",
                             asset_id)
            return
        if len(self.subs) >= self.endpoint.max_subscriptions:
            await self.error("too_many_subscriptions",
                             f"at most {self.endpoint.max_subscriptions} subscriptions per "
                             "socket", asset_id)
            return
        try:
            await check_subscribe(self.media, asset_id, token=token, scope=self.scope,
                                  use_authorizer=self.same_origin)
        except RindleError as exc:
            self._refused(asset_id, exc.code)
            await self.error(exc.code, exc.message, asset_id)
            return
        if asset_id in self.subs or self.closed:  # a duplicate raced us while we checked
            return
        task = asyncio.get_running_loop().create_task(self._run(asset_id))
        self.subs[asset_id] = task
        task.add_done_callback(lambda t: self._forget(asset_id, t))

    def _refused(self, asset_id: str, code: str) -> None:
        telemetry.emit("rindle.live.subscribe", asset_id=asset_id, transport="ws",
                       format="json", outcome=code,
                       subscribers=self.endpoint.open_subscriptions)

    def _forget(self, asset_id: str, task: asyncio.Task[None]) -> None:
        if self.subs.get(asset_id) is task:
            del self.subs[asset_id]

    async def unsubscribe(self, asset_id: str) -> None:
        task = self.subs.pop(asset_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # no event of it may follow "unsubscribed"
        await self.send(_json({"op": "unsubscribed", "asset_id": asset_id}))

    async def close(self) -> None:
        self.closed = True
        tasks = list(self.subs.values())
        self.subs.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _event(self, asset_id: str, name: str, data_json: str) -> str:
        return f'{{"event":{_json(name)},"asset_id":{_json(asset_id)},"data":{data_json}}}'

    async def _run(self, asset_id: str) -> None:
        endpoint = self.endpoint
        opened: float | None = None
        sent = 0
        try:
            async with subscription(self.media, asset_id) as subscriber:
                queue = subscriber_queue(subscriber)
                snap = await snapshot_after_subscribe(self.media, queue, asset_id)
                if snap is None:
                    self._refused(asset_id, "not_found")
                    await self.error("not_found", f"asset {asset_id} does not exist", asset_id)
                    return
                await self.send(_json({"op": "subscribed", "asset_id": asset_id}))
                await self.send(self._event(asset_id, snap.name, _json(snap.data)))
                opened, sent = time.monotonic(), 1
                endpoint.open_subscriptions += 1
                telemetry.emit("rindle.live.subscribe", asset_id=asset_id, transport="ws",
                               format="json", outcome="ok",
                               subscribers=endpoint.open_subscriptions)
                while True:
                    item = await queue.get()
                    if item is None:  # the hub is shutting down
                        return
                    if is_resync(item):
                        reading = time.monotonic()
                        snap = await snapshot_after_subscribe(self.media, queue, asset_id)
                        telemetry.emit("rindle.live.resync", asset_id=asset_id,
                                       transport="ws", duration=time.monotonic() - reading)
                        await self.send(self._event(asset_id, "resync", "{}"))
                        if snap is None:
                            await self.error("not_found", f"asset {asset_id} was deleted",
                                             asset_id)
                            return
                        await self.send(self._event(asset_id, snap.name, _json(snap.data)))
                        sent += 1
                        continue
                    found = endpoint.event_data(item.message)
                    if found is not None:
                        await self.send(self._event(asset_id, *found))
                        sent += 1
        except asyncio.CancelledError:
            raise
        except OSError:  # the client went away mid-send
            self.closed = True
        except Exception:
            log.exception("the WebSocket subscription to asset %s failed", asset_id)
            try:
                await self.error("internal_error", "the subscription failed; subscribe again",
                                 asset_id)
            except Exception:
                self.closed = True
        finally:
            if opened is not None:
                endpoint.open_subscriptions -= 1
                telemetry.emit("rindle.live.unsubscribe", asset_id=asset_id, transport="ws",
                               duration=time.monotonic() - opened, events=sent,
                               subscribers=endpoint.open_subscriptions)


def ws_routes(media: Subscribing, *, max_subscriptions: int = 100,
              allowed_origins: Collection[str] = ()) -> list[BaseRoute]:
    """The WebSocket route to add to Rindle's router: ``WS /ws``."""
    endpoint = WSEndpoint(media, max_subscriptions=max_subscriptions,
                          allowed_origins=allowed_origins)
    return [WebSocketRoute("/ws", endpoint=endpoint, name="live_ws")]
