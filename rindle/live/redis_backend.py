"""A Redis pub/sub backend for broadcaster that keeps working when Redis restarts.

broadcaster 0.3.1 is dormant and its own ``redis://`` backend has three gaps Rindle cannot live
with: it delivers nothing with redis-py 8, it never reconnects after a Redis restart
(encode/broadcaster#144), and it hands each subscriber an unbounded queue. This module keeps
broadcaster's API (``Broadcast(backend=RedisPubSubBackend(url))``) and closes the first two;
:mod:`rindle.live.bounded` closes the third (``rindle.live.hub.make_broadcast`` wires both
together).

What the backend promises:

* **Delivery** with current redis-py (``redis.asyncio``): one pub/sub connection reads every
  subscribed channel; ``publish`` uses the client's connection pool.
* **Subscribed means subscribed.** ``subscribe(channel)`` returns once Redis has confirmed the
  subscription (or after ``subscribe_wait`` seconds during an outage — the channel is then
  subscribed as soon as Redis is back), so "subscribe, then read the current state, then
  stream" loses nothing in between.
* **Reconnects.** When reading fails (connection closed, timeout, Redis loading) the reader
  reconnects with capped exponential backoff (``initial_backoff`` doubling up to
  ``max_backoff``, with jitter), re-subscribes every channel that is subscribed *now*, and
  keeps going. Redis pub/sub keeps no history, so messages published during the outage are
  lost: after the reconnect, each re-subscribed channel receives the synthetic event
  ``Event(channel, RESYNC)`` before any new message, telling consumers to re-read the state.
  ``RESYNC`` has the shape of :meth:`rindle.live.events.LiveEvent.encode`
  (``LiveEvent("resync", {})``).
* **Publishing during an outage** retries for ``publish_retry`` seconds, then raises
  :class:`LivePublishError` (``Live.publish`` already swallows and logs publish errors: a
  lost live event never fails the change that caused it).
* **Logging** goes to ``logging.getLogger("rindle.live")``: one warning when an outage starts
  and one info line when it ends, never one per attempt, and never a message payload.
* **Start-up fails fast**: ``connect()`` pings Redis and raises if it is unreachable, so a
  wrong URL surfaces when the application starts rather than as silence later.

Buffers: broadcaster gives each subscriber an unbounded ``asyncio.Queue``, so one slow SSE
client could grow memory without limit. :class:`rindle.live.bounded.BoundedBroadcast`
(what :func:`rindle.live.hub.make_broadcast` returns) bounds that queue, dropping the oldest
events and inserting a ``RESYNC`` marker when it overflows; Rindle's SSE layer additionally
bounds each connection's own send buffer. Between Redis and broadcaster's listener the
backend keeps a bounded queue too (``buffer``): when it is full the reader stops reading,
Redis buffers for us and, past its ``client-output-buffer-limit pubsub``, drops the
connection — which ends in a reconnect and a ``RESYNC`` like any other outage.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from broadcaster import Event
from broadcaster._backends.base import BroadcastBackend

from .._backoff import backoff
from ..logs import get_logger

if TYPE_CHECKING:  # redis is an optional dependency: imported when a backend connects
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = get_logger("rindle.live")

RESYNC = '{"event":"resync","data":{}}'
"""The synthetic message sent on a channel whose subscribers may have missed messages."""

REDIS_SCHEMES = ("redis", "rediss")


class LivePublishError(ConnectionError):
    """A live event could not be published: Redis stayed unreachable for the retry window."""


def _transient_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # redis' BusyLoadingError (Redis still loading its data set) is a ConnectionError;
    # builtin TimeoutError (asyncio's, since 3.11) is an OSError.
    return (RedisConnectionError, RedisTimeoutError, OSError)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class RedisPubSubBackend(BroadcastBackend):
    """A ``BroadcastBackend`` on Redis pub/sub that reconnects, re-subscribes and resyncs.

    ``url`` is a ``redis://`` or ``rediss://`` URL. Extra keyword arguments go to
    ``redis.asyncio.Redis.from_url``. redis-py's own retries are switched off: this backend
    decides when to retry, so that it knows when a connection was lost and can tell
    subscribers with ``RESYNC``.

    Tuning: ``initial_backoff``/``max_backoff`` bound the reconnect delay; ``publish_retry`` is
    how long ``publish`` keeps trying before :class:`LivePublishError`; ``subscribe_wait`` how
    long ``subscribe`` waits for Redis' confirmation; ``poll_interval`` how long one read
    waits; a pub/sub connection quiet for ``health_check_interval`` seconds is sent a PING and
    treated as dead if nothing comes back for twice as long (0 disables this); ``buffer`` bounds
    the queue between the reader and broadcaster's listener.
    """

    def __init__(
        self,
        url: str,
        *,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
        publish_retry: float = 1.0,
        subscribe_wait: float = 2.0,
        poll_interval: float = 1.0,
        health_check_interval: float = 10.0,
        buffer: int = 10_000,
        **redis_options: Any,
    ) -> None:
        # BroadcastBackend.__init__ only raises NotImplementedError: not called on purpose.
        if urlparse(url).scheme not in REDIS_SCHEMES:
            raise ValueError("RedisPubSubBackend needs a redis:// or rediss:// URL")
        if not 0 < initial_backoff <= max_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        self.url = url
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.publish_retry = publish_retry
        self.subscribe_wait = subscribe_wait
        self.poll_interval = poll_interval
        self.health_check_interval = health_check_interval
        self._buffer = buffer
        self._redis_options = redis_options
        parsed = urlparse(url)  # for log lines: never the password
        self._where = f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path}"

        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue(buffer)
        self._lock = asyncio.Lock()  # serializes SUBSCRIBE/UNSUBSCRIBE and reconnects
        self._wake = asyncio.Event()  # set when a channel is subscribed or the connection broke
        self._errors: tuple[type[BaseException], ...] = ()

        self._channels: set[str] = set()  # what broadcaster wants subscribed now
        self._broken = False  # the pub/sub connection failed outside the reader
        # Per channel, on the current pub/sub connection: SUBSCRIBEs sent and confirmed, and
        # the subscribe() calls waiting for confirmation number N (None: the next connection's).
        self._sent: dict[str, int] = defaultdict(int)
        self._confirmed: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, list[tuple[int | None, asyncio.Future[None]]]] = {}
        self._resync: set[str] = set()  # channels to send RESYNC once re-subscribed
        self._outage_since: float | None = None
        self._attempts = 0
        self._last_read = 0.0
        self._last_ping = 0.0
        self._opened_in_outage = False

    def __repr__(self) -> str:
        return f"RedisPubSubBackend({self._where!r})"

    # -- the BroadcastBackend API ------------------------------------------------------------

    async def connect(self) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        if self._reader is not None:
            raise RuntimeError(f"{self!r} is already connected")
        options: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            "socket_timeout": 5.0,
            "socket_keepalive": True,
        }
        options.update(self._redis_options)
        options["retry"] = Retry(NoBackoff(), 0)  # we retry, and we need to see every failure
        options["health_check_interval"] = 0  # the reader pings itself: redis-py hides PONGs
        client = Redis.from_url(self.url, **options)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._errors = _transient_errors()
        self._client = client
        self._queue = asyncio.Queue(self._buffer)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._channels.clear()
        self._reset_connection_state()
        self._waiters.clear()
        self._resync.clear()
        self._outage_since = None
        self._attempts = 0
        self._reader = asyncio.create_task(self._read_forever(), name=f"{self!r} reader")

    async def disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])  # not `await reader`: that would eat our own cancel
        for waiters in self._waiters.values():
            for _, future in waiters:
                future.cancel()
        self._waiters.clear()
        self._channels.clear()
        await self._drop_pubsub()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with self._lock:
            target: int | None = None
            if self._pubsub is not None and not self._broken:
                try:
                    await self._pubsub.subscribe(channel)
                except self._errors as exc:
                    self._connection_lost(exc)
                else:
                    self._sent[channel] += 1
                    target = self._sent[channel]
            entry = (target, future)
            self._waiters.setdefault(channel, []).append(entry)
        self._wake.set()
        try:
            async with asyncio.timeout(self.subscribe_wait):
                await future
        except TimeoutError:
            pass  # Redis is away: the channel stays wanted and is subscribed on reconnect
        finally:
            waiters = self._waiters.get(channel, [])
            if entry in waiters:
                waiters.remove(entry)
            if not waiters:
                self._waiters.pop(channel, None)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._resync.discard(channel)
        async with self._lock:
            if self._pubsub is not None and not self._broken:
                try:
                    await self._pubsub.unsubscribe(channel)
                except self._errors as exc:
                    self._connection_lost(exc)

    async def publish(self, channel: str, message: Any) -> None:
        if self._client is None:
            raise RuntimeError(f"{self!r} is not connected")
        deadline = time.monotonic() + self.publish_retry
        delay = 0.05
        attempts = 0
        while True:
            attempts += 1
            try:
                # bounded, so that a dead peer cannot hold a publisher past the retry window
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.25)):
                    await self._client.publish(channel, message)
                return
            except self._errors as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LivePublishError(
                        f"could not publish on {channel!r}: Redis at {self._where} unreachable "
                        f"for {self.publish_retry:g}s ({attempts} attempts; {_describe(exc)})"
                    ) from exc
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.5)

    async def next_published(self) -> Event:
        return await self._queue.get()

    # -- the reader ----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read_once()
            except self._errors as exc:
                self._connection_lost(exc)
                await self._drop_pubsub()
            except Exception as exc:  # a bug must not silently end delivery: log, reconnect
                self._connection_lost(exc, unexpected=True)
                await self._drop_pubsub()

    async def _read_once(self) -> None:
        if self._broken:
            await self._drop_pubsub()
        if not self._channels:
            self._wake.clear()
            await self._wake.wait()
            return
        if self._pubsub is None:
            if self._outage_since is not None:
                await asyncio.sleep(self._backoff())
                self._attempts += 1
            await self._open()
            return
        message = await self._pubsub.get_message(timeout=self.poll_interval)
        now = time.monotonic()
        if message is not None:
            self._last_read = now
            await self._handle(message)
        elif self.health_check_interval:
            # A quiet connection is pinged; one that stays silent after that is a dead peer
            # (a half-open TCP connection would otherwise wait for messages forever).
            idle = now - self._last_read
            if idle > 2 * self.health_check_interval + self.poll_interval:
                raise TimeoutError(f"no reply to PING for {idle:.0f}s")
            if idle > self.health_check_interval and self._last_ping <= self._last_read:
                self._last_ping = now
                async with self._lock:
                    await self._pubsub.ping()

    async def _open(self) -> None:
        assert self._client is not None
        async with self._lock:
            channels = set(self._channels)
            if not channels:
                return
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(*channels)
            except BaseException:
                await self._close_quietly(pubsub)
                raise
            self._pubsub = pubsub
            self._broken = False
            self._last_read = self._last_ping = time.monotonic()
            self._opened_in_outage = self._outage_since is not None
            self._reset_connection_state()
            for channel in channels:
                self._sent[channel] = 1
            for channel, waiters in self._waiters.items():
                self._waiters[channel] = [(1 if channel in channels else None, f)
                                          for _, f in waiters]
            if self._outage_since is not None:
                self._resync = channels

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = _text(message.get("type"))
        if kind == "message":
            await self._queue.put(Event(_text(message["channel"]), _text(message["data"])))
        elif kind == "subscribe":
            channel = _text(message["channel"])
            self._confirmed[channel] += 1
            if self._outage_since is not None and self._opened_in_outage and not self._broken:
                self._recovered()
            done = self._confirmed[channel]
            for target, future in self._waiters.get(channel, []):
                if target is not None and target <= done and not future.done():
                    future.set_result(None)
            if channel in self._resync:
                self._resync.discard(channel)
                if channel in self._channels:
                    await self._queue.put(Event(channel, RESYNC))
        elif kind == "unsubscribe":
            channel = _text(message["channel"])
            if channel not in self._channels:  # forget the counts of channels nobody wants
                self._sent.pop(channel, None)
                self._confirmed.pop(channel, None)

    # -- connection state ----------------------------------------------------------------------

    def _reset_connection_state(self) -> None:
        self._sent.clear()
        self._confirmed.clear()

    def _backoff(self) -> float:
        return backoff(self._attempts + 1, self.initial_backoff, self.max_backoff,
                       jitter=0.25)

    def _connection_lost(self, exc: BaseException, *, unexpected: bool = False) -> None:
        self._broken = True
        self._wake.set()
        if self._outage_since is None:  # log once per outage, not once per attempt
            self._outage_since = time.monotonic()
            self._attempts = 0
            if unexpected:
                log.error("unexpected error on the Redis pub/sub connection to %s; "
                          "reconnecting", self._where, exc_info=exc)
            else:
                log.warning("lost the Redis pub/sub connection to %s (%s); reconnecting, "
                            "%d channel(s) to re-subscribe", self._where, _describe(exc),
                            len(self._channels))

    def _recovered(self) -> None:
        assert self._outage_since is not None
        log.info("Redis pub/sub connection to %s is back after %.1fs (%d attempt(s)); "
                 "re-subscribed %d channel(s), sending resync", self._where,
                 time.monotonic() - self._outage_since, self._attempts + 1, len(self._resync))
        self._outage_since = None
        self._attempts = 0

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._broken = False
        self._reset_connection_state()
        if pubsub is not None:
            await self._close_quietly(pubsub)

    @staticmethod
    async def _close_quietly(pubsub: PubSub) -> None:
        try:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except Exception:  # the connection is already gone: nothing left to close
            pass
