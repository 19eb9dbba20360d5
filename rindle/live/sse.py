"""Server-Sent Events for one asset: ``GET /events/asset/{asset_id}`` as a raw ASGI app.

Why raw ASGI and not Starlette's ``StreamingResponse``: at 10-20k open connections every
object a connection keeps alive matters. ``StreamingResponse`` runs an extra task group per
connection and keeps ~146 GC-tracked objects alive per stream, and Python's collector
scanning them caused multi-second stalls. Here a stream is the server's own request task
running one coroutine, the hub's bounded subscriber queue and one ``__slots__`` object: no
task, timer or ``receive()`` waiter of its own. One task per endpoint sends the heartbeats
and notices departed clients for all streams (see :class:`SSEEndpoint`). Encoded events are
cached per published message, so an event is serialized once, not once per connection.

The wire format (``text/event-stream``)::

    retry: 3000

    event: state_change                  <- the current state first (``snapshot: true``)
    data: {"entity":"asset","id":...,"to":"ready","snapshot":true,"variants":{...}}

    event: variant_ready                 <- then every live event of the asset, as it comes
    data: {"asset_id":...,"variant":"thumb"}

    : ping                               <- a comment every ``heartbeat`` seconds

    event: resync                        <- the hub dropped events (a slow client) or Redis
    data: {}                                reconnected: a fresh snapshot follows at once

    event: state_change
    data: {..., "snapshot": true}

With ``?format=html`` every ``data`` is the HTML fragment htmx swaps in (``sse-swap``), from
:func:`rindle.web.templating.render_live_fragment`; events it has no fragment for are not
sent, and a fragment of several lines is sent as several ``data:`` lines.

Who may subscribe: a request carrying ``?token=`` from :func:`subscribe_token` (what the
template macros embed), or one the Authorizer allows the ``subscribe`` action for. Refusals
are 403 JSON bodies (``forbidden``, ``invalid_token``, ``token_expired``); an unknown asset
is a 404 ``not_found``. A token is checked when the stream opens: a stream open at its
expiry stays open, and a reconnect with an expired token is refused.

Memory per slow client is bounded: events wait only in the hub's bounded subscriber queue
(drop-oldest plus ``resync``), and each write awaits the server's backpressure, so nothing
else piles up. The subscription ends when the client disconnects: within
``disconnect_check`` seconds (1 s by default), even on a quiet stream.

Operations: call :func:`freeze_gc` once after start-up (see its docstring), and run uvicorn
with ``--timeout-graceful-shutdown`` (or call :meth:`SSEEndpoint.close_streams` when your
process starts to stop): an event stream never ends by itself, so a server waiting for open
responses to finish would otherwise wait forever.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

from broadcaster import Event
from starlette.routing import BaseRoute, Route

from .. import telemetry
from ..delivery.authorizer import AuthRequest, is_allowed
from ..errors import Forbidden, InvalidToken, NotFound, RindleError, ValidationError
from ..logs import get_logger
from .events import LiveEvent
from .hub import Live
from .redis_backend import RESYNC
from .snapshot import AssetSnapshot, snapshots_for

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ..delivery.signing import Signer
    from ..types import Catalog
    from .bounded import DropOldestQueue
    from .snapshot import Reads

    class Subscribing(Catalog, Reads, Protocol):
        """What live subscriptions use: who may subscribe, the signer of subscribe tokens,
        the asset rows for snapshots, and the hub."""

        @property
        def signer(self) -> Signer: ...

        @property
        def live(self) -> Live: ...

log = get_logger("rindle.live")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Renderer = Callable[[Any, str, dict[str, Any]], "str | None"]

SUBSCRIBE_PURPOSE = "live.subscribe"
"""The :class:`~rindle.delivery.signing.Signer` purpose of subscribe tokens."""

RESYNC_EVENT = "resync"
JSON, HTML = "json", "html"
FORMATS = (JSON, HTML)

_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]
_PING_FRAME = b": ping\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CACHE_SIZE = 512

# Queue items of our own, next to the hub's events. They are broadcaster Events so that the
# hub's drop-oldest logic (which reads ``.message``) can handle them like any other item.
_PING = Event("rindle:sse", "\x00ping")
_WAKE = Event("rindle:sse", "\x00wake")


# --- tokens and authorization (shared with the WebSocket endpoint) ---------------------------


class Signing(Protocol):
    """Anything holding the runtime's signer (the runtime itself, in practice)."""

    @property
    def signer(self) -> Signer: ...


def subscribe_token(media: Signing, asset_id: str, *, expires_in: int = 3600) -> str:
    """A signed token that lets its bearer subscribe to one asset's events for a while.

    Put it in the stream URL (``?token=...``); the template macros do. It is checked when a
    stream opens or a WebSocket subscription starts, not afterwards.
    """
    return media.signer.dumps(SUBSCRIBE_PURPOSE, {"a": asset_id}, expires_in=expires_in)


async def check_subscribe(media: Subscribing, asset_id: str, *, token: str | None,
                          scope: Scope, use_authorizer: bool = True) -> None:
    """Raise unless this connection may subscribe to ``asset_id``'s events.

    A valid token for this asset allows it without asking the Authorizer (whether the asset
    exists is then learnt from the snapshot read). Otherwise the asset is loaded (``NotFound``)
    and the profile's Authorizer asked about ``subscribe``; a refusal raises the token's own
    error (``InvalidToken``/``TokenExpired``) when a bad token was given, else ``Forbidden``.
    ``use_authorizer=False`` accepts tokens only (a cross-site WebSocket, whose cookies
    prove nothing about who opened it).
    """
    token_error: RindleError | None = None
    if token:
        try:
            payload = media.signer.loads(SUBSCRIBE_PURPOSE, token)
        except InvalidToken as exc:
            token_error = exc
        else:
            if payload.get("a") == asset_id:
                return
            token_error = InvalidToken("the token is for another asset")
    if not use_authorizer:
        raise token_error or Forbidden("a subscribe token is required here")
    snap = await snapshots_for(media).read(asset_id)
    if snap is None:
        raise NotFound(f"asset {asset_id} does not exist")
    asset = snap.asset
    try:
        authorizer = media.authorizer_for(media.profile(asset.profile))
    except NotFound:  # a profile no longer configured: only the runtime's default decides
        authorizer = media.authorizer_for(None)
    from starlette.requests import HTTPConnection

    request = AuthRequest(action="subscribe", profile=asset.profile, asset=asset,
                          request=HTTPConnection(scope))
    if await is_allowed(authorizer, request):
        return
    raise token_error or Forbidden("subscribe is not allowed here")


def subscription(media: Subscribing, asset_id: str) -> AbstractAsyncContextManager[Any]:
    """The hub's subscription context for one asset (yields broadcaster's ``Subscriber``).

    ``Live.subscribe`` is an async generator that subscribes only when first iterated, which
    is too late for "subscribe, then read the snapshot"; this enters the subscription at once.
    """
    return media.live.subscription("asset", asset_id)


def subscriber_queue(subscriber: Any) -> DropOldestQueue:
    """The bounded queue behind a broadcaster ``Subscriber`` (read directly: fewer objects)."""
    queue: DropOldestQueue = Live.queue_of(subscriber)
    return queue


def is_resync(item: Event) -> bool:
    return item.message == RESYNC


GC_THRESHOLDS = (10_000, 10, 100)
"""What :func:`freeze_gc` sets by default (CPython's own are ``(700, 10, 10)``)."""


def freeze_gc(*, thresholds: tuple[int, int, int] | None = GC_THRESHOLDS) -> None:
    """Collect once, freeze what is alive, and make full collections rare.

    Call it once when the application has started (at the end of your lifespan's start-up,
    after ``media.lifespan`` is entered). Two things happen:

    * ``gc.collect()``, then ``gc.freeze()``: imports, templates, routes and the runtime are
      never scanned again. Frozen objects are still freed by reference counting; only cyclic
      garbage among them would stay, and there is none right after a collection.
    * ``gc.set_threshold(*thresholds)`` unless ``thresholds`` is ``None``. Every open stream
      keeps ~80 GC-tracked objects alive (uvicorn's, Starlette's and Rindle's), so 10k
      streams are ~0.8M objects, and a full collection of them stops the event loop for
      ~0.4 s. With CPython's default thresholds, measured here with 10k streams, that
      happened 8 times while they connected and 4 times in 10 s of publishing; with
      ``(10_000, 10, 100)`` it did not happen at all, and young collections stay short.

    Not done for you on the first connection: the collection is a pause of its own, which
    belongs to start-up, and the thresholds are the whole process's.
    """
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)


# --- encoding --------------------------------------------------------------------------------


def sse_frame(name: str, data: str) -> bytes:
    """One SSE event: ``event:`` then one ``data:`` line per line of ``data``, then a blank line."""
    lines = _LINE_BREAK.split(data)
    body = "".join(f"data: {line}\n" for line in lines)
    return f"event: {name}\n{body}\n".encode()


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


class _Frames:
    """Encoded frames per published message, shared by every stream of this process.

    The hub hands the same message string to each subscriber, so an event is decoded and
    encoded once per format, not once per connection. Bounded: the oldest entries go first.
    """

    __slots__ = ("media", "_cache")

    def __init__(self, media: Subscribing) -> None:
        self.media = media
        self._cache: dict[tuple[str, str], bytes | None] = {}

    def event(self, message: str, fmt: str, render: Renderer | None) -> bytes | None:
        key = (message, fmt)
        try:
            return self._cache[key]
        except KeyError:
            pass
        try:
            live = LiveEvent.decode(message)
            frame = self.encode(live.name, live.data, fmt, render)
        except Exception:  # not a LiveEvent, or a template error: skip it, keep streaming
            log.exception("cannot encode a live event for SSE; skipping it")
            frame = None
        if len(self._cache) >= _CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = frame
        return frame

    def encode(self, name: str, data: dict[str, Any], fmt: str,
               render: Renderer | None) -> bytes | None:
        if fmt == HTML and render is not None:
            html = render(self.media, name, data)
            return None if html is None else sse_frame(name, html)
        return sse_frame(name, _json(data))

    def snapshot(self, snap: AssetSnapshot, fmt: str, render: Renderer | None) -> bytes:
        frame = snap.frames.get(fmt)
        if frame is None:
            try:
                frame = self.encode(snap.name, snap.data, fmt, render) or b""
            except Exception:
                log.exception("cannot render the snapshot of asset %s", snap.asset.id)
                frame = b""
            snap.frames[fmt] = frame
        return frame

    def resync(self, fmt: str, render: Renderer | None) -> bytes:
        key = (RESYNC, fmt)
        frame = self._cache.get(key)
        if frame is None:
            frame = self.encode(RESYNC_EVENT, {}, fmt, render) or b""
            self._cache[key] = frame
        return frame


# --- one stream ------------------------------------------------------------------------------


class _Stream:
    """The per-connection state: the hub's queue, the server's ``receive``, liveness, ping."""

    __slots__ = ("queue", "receive", "gone", "due")

    def __init__(self, queue: DropOldestQueue, receive: Receive, due: float) -> None:
        self.queue = queue
        self.receive = receive
        self.gone = False
        self.due = due  # when the next heartbeat is due (loop time)

    def ping(self) -> None:
        # Only into an empty queue: with events pending, the connection is not idle anyway.
        if self.queue.empty():
            self.queue.put_nowait(_PING)

    def leave(self) -> None:
        self.gone = True
        # A full queue means the writer is busy and checks ``gone`` before it waits again.
        if not self.queue.full():
            self.queue.put_nowait(_WAKE)


def client_gone(receive: Receive) -> bool:
    """Whether the server already knows the client left, asked without waiting.

    Starts ``receive()`` and looks at its first step only: servers answer at once when a
    disconnect is pending (uvicorn, hypercorn and daphne do), and otherwise the call is
    abandoned before it waits (``close()`` runs its clean-up: uvicorn's ``Event.wait``
    removes its waiter, ``Queue.get`` its getter). Request body messages found on the way
    are read and dropped.
    """
    for _ in range(64):  # a GET's body, if a client sent one, is read at most this far
        step = receive().__await__()
        try:
            step.send(None)
        except StopIteration as done:
            message = done.value
            if not message or message.get("type") != "http.request":
                return True  # http.disconnect (or nonsense: stop streaming to it)
            continue
        except Exception:  # the server cannot even tell: treat the client as gone
            return True
        close = getattr(step, "close", None)
        if close is not None:
            close()
        return False
    return False


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"cache-control", b"no-store"),
        *(headers or []),
    ]})
    await send({"type": "http.response.body", "body": raw, "more_body": False})


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"))) if raw else {}


class SSEEndpoint:
    """The raw ASGI app behind ``GET /events/asset/{asset_id}`` (see the module docstring).

    ``heartbeat``: seconds between ``: ping`` comments (0 turns them off). ``retry_ms``: the
    reconnection delay announced to the browser. ``disconnect_check``: how often (seconds)
    every open stream asks the server, without waiting, whether its client left.
    ``open_streams`` counts the streams open now.

    One task per endpoint (the "ticker", running while streams are open) sends the
    heartbeats and notices departed clients, instead of a timer and a ``receive()`` task per
    connection: at 10k connections that is 12 fewer GC-tracked objects and ~2 KiB less per
    connection, and a faster connect. A client that leaves is noticed within
    ``disconnect_check`` seconds, or at the next write if the server reports it there.
    """

    def __init__(self, media: Subscribing, *, heartbeat: float = 15.0, retry_ms: int = 3000,
                 disconnect_check: float = 1.0, render: Renderer | None = None) -> None:
        if disconnect_check <= 0:
            raise ValueError("disconnect_check must be positive")
        self.media = media
        # The HTML fragments come from the web layer (which passes its renderer in), so
        # live/ never imports web/.
        self.render = render
        self.heartbeat = heartbeat
        self.retry_ms = retry_ms
        self.disconnect_check = disconnect_check
        self._frames = _Frames(media)
        self._streams: set[_Stream] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"SSEEndpoint(open_streams={self.open_streams})"

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def close_streams(self) -> None:
        """End every open stream (browsers reconnect after ``retry_ms``) and refuse new ones.

        For a process about to stop: open event streams would otherwise keep a graceful
        shutdown waiting.
        """
        self._closing = True
        for stream in list(self._streams):
            stream.leave()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError("SSEEndpoint serves HTTP requests only")
        if scope["method"] != "GET":
            await send_json(send, 405, {"error": {"code": "method_not_allowed",
                                                  "message": "use GET"}},
                            [(b"allow", b"GET")])
            return
        asset_id = str(scope.get("path_params", {}).get("asset_id", ""))
        query = _query(scope)
        try:
            if self._closing:
                raise RindleError("the server is shutting down", code="unavailable")
            fmt = query.get("format", JSON)
            if fmt not in FORMATS:
                raise ValidationError("format must be json or html", code="invalid_format")
            render = self.render if fmt == HTML else None
            if fmt == HTML and render is None:
                raise ValidationError("this event stream has no HTML fragments; use format=json",
                                      code="invalid_format")
            if not asset_id:
                raise NotFound("no asset id in the path")
            await check_subscribe(self.media, asset_id, token=query.get("token"), scope=scope)
        except RindleError as exc:
            telemetry.emit("rindle.live.subscribe", asset_id=asset_id or None, transport="sse",
                           format=query.get("format", JSON), outcome=exc.code,
                           subscribers=self.open_streams)
            status = 503 if exc.code == "unavailable" else exc.status_code
            await send_json(send, status, exc.to_dict())
            return
        await self._stream(asset_id, fmt, render, receive, send)

    async def _stream(self, asset_id: str, fmt: str, render: Renderer | None,
                      receive: Receive, send: Send) -> None:
        # One coroutine for the whole stream (no helper frames kept alive per connection).
        loop = asyncio.get_running_loop()
        frames = self._frames
        async with subscription(self.media, asset_id) as subscriber:
            queue = subscriber_queue(subscriber)
            snap = await snapshot_after_subscribe(self.media, queue, asset_id)
            if snap is None:
                telemetry.emit("rindle.live.subscribe", asset_id=asset_id, transport="sse",
                               format=fmt, outcome="not_found", subscribers=self.open_streams)
                await send_json(send, 404, NotFound(f"asset {asset_id} does not exist")
                                .to_dict())
                return
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send({"type": "http.response.body", "more_body": True,
                        "body": b"retry: %d\n\n" % self.retry_ms
                        + frames.snapshot(snap, fmt, render)})
            opened = loop.time()
            stream = _Stream(queue, receive, opened + self.heartbeat)
            self._streams.add(stream)
            self._start_ticker(loop)
            telemetry.emit("rindle.live.subscribe", asset_id=asset_id, transport="sse",
                           format=fmt, outcome="ok", subscribers=len(self._streams))
            sent = 1  # the snapshot
            try:
                while not stream.gone:
                    item = await queue.get()
                    if stream.gone or item is None:  # None: the hub unsubscribed us (shutdown)
                        break
                    if item is _PING:
                        frame: bytes | None = _PING_FRAME
                    elif item is _WAKE:
                        continue
                    elif item.message == RESYNC:
                        reading = loop.time()
                        snap = await snapshot_after_subscribe(self.media, queue, asset_id)
                        telemetry.emit("rindle.live.resync", asset_id=asset_id,
                                       transport="sse", duration=loop.time() - reading)
                        if snap is None:  # the asset was deleted meanwhile
                            break
                        frame = frames.resync(fmt, render) + frames.snapshot(snap, fmt, render)
                    else:
                        frame = frames.event(item.message, fmt, render)
                        if not frame:
                            continue
                    try:
                        await send({"type": "http.response.body", "body": frame,
                                    "more_body": True})
                    except OSError:  # servers that report a departed client here
                        stream.gone = True
                    else:
                        if frame is not _PING_FRAME:
                            sent += 1
            except Exception:  # e.g. the database failed a resync read: end this stream only
                log.exception("the event stream of asset %s failed; closing it", asset_id)
            finally:
                self._streams.discard(stream)
                if not self._streams and self._ticker is not None:
                    self._ticker.cancel()  # nothing left to watch; the next stream restarts it
                    self._ticker = None
                telemetry.emit("rindle.live.unsubscribe", asset_id=asset_id, transport="sse",
                               duration=loop.time() - opened, events=sent,
                               subscribers=len(self._streams))
        if self._closing or not stream.gone:
            # we were asked to stop, the hub closed, or the stream failed: end it cleanly
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _start_ticker(self, loop: asyncio.AbstractEventLoop) -> None:
        ticker = self._ticker
        if ticker is None or ticker.done() or ticker.get_loop() is not loop:
            self._ticker = loop.create_task(self._tick(), name="rindle SSE heartbeat")

    async def _tick(self) -> None:
        """Heartbeats and departed clients, for every open stream of this endpoint."""
        loop = asyncio.get_running_loop()
        heartbeat = self.heartbeat
        interval = min(self.disconnect_check, heartbeat) if heartbeat > 0 \
            else self.disconnect_check
        while self._streams:
            await asyncio.sleep(interval)
            now = loop.time()
            for n, stream in enumerate(list(self._streams)):
                if stream.gone:
                    continue
                if client_gone(stream.receive):
                    stream.leave()
                elif heartbeat > 0 and stream.due <= now:
                    stream.due = now + heartbeat
                    stream.ping()
                if n % 2048 == 2047:
                    await asyncio.sleep(0)  # let other work in between long rounds


async def snapshot_after_subscribe(media: Subscribing, queue: DropOldestQueue,
                                   asset_id: str) -> AssetSnapshot | None:
    """The asset's current state for a subscriber whose queue is ``queue``; ``None`` if gone.

    Events already queued when the read began are dropped from the queue: they were published
    after their commit and before the read started, so the snapshot contains them, and sending
    them after it would move the client's view backwards for a moment. A resync marker among
    them means another gap, so the state is read again.
    """
    reader = snapshots_for(media)
    while True:
        before = queue.qsize()
        snap = await reader.read(asset_id)
        if snap is None:
            return None
        again = False
        for _ in range(min(before, queue.qsize())):
            item = queue.get_nowait()
            if item is None:  # the hub is closing: leave the end-of-stream mark for the reader
                queue.put_nowait(None)
                break
            if item is not _PING and item is not _WAKE and is_resync(item):
                again = True
                break
        if not again:
            return snap


def sse_routes(media: Subscribing, *, heartbeat: float = 15.0, retry_ms: int = 3000,
               disconnect_check: float = 1.0,
               render: Renderer | None = None) -> list[BaseRoute]:
    """The SSE route to add to Rindle's router: ``GET /events/asset/{asset_id}``.

    ``render(media, event_name, data)`` makes the HTML fragments of ``?format=html``
    (Rindle's router passes :func:`rindle.web.templating.render_live_fragment`).
    """
    endpoint = SSEEndpoint(media, heartbeat=heartbeat, retry_ms=retry_ms,
                           disconnect_check=disconnect_check, render=render)
    return [Route("/events/asset/{asset_id}", endpoint=endpoint, methods=["GET"],
                  name="live_events_asset")]
