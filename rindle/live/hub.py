"""The broadcaster wiring: publish events to per-asset channels, subscribe from server code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlparse

from broadcaster import Broadcast

from ..logs import get_logger
from .bounded import BoundedBroadcast
from .events import LiveEvent, channel
from .redis_backend import REDIS_SCHEMES, RedisPubSubBackend

log = get_logger("rindle.live")


def make_broadcast(url: str, *, max_queue: int = 1000) -> Broadcast:
    """A ``Broadcast`` for ``url``, with Rindle's Redis backend and bounded subscriber queues.

    ``redis://`` and ``rediss://`` URLs use :class:`RedisPubSubBackend`; anything else
    (``memory://``, ``redis-stream://``, ``postgres://``, ``kafka://``) uses broadcaster's own
    backend. Either way each subscriber's queue holds at most ``max_queue`` events.
    """
    if urlparse(url).scheme in REDIS_SCHEMES:
        return BoundedBroadcast(backend=RedisPubSubBackend(url), max_queue=max_queue)
    return BoundedBroadcast(url, max_queue=max_queue)


class Live:
    """Publishes and subscribes through one ``broadcaster.Broadcast``.

    ``memory://`` reaches subscribers in this process only; with rq workers in other
    processes use a Redis URL so their events reach the web process. Redis gets Rindle's
    own backend (works with current redis-py, reconnects after a Redis restart) and every
    subscriber a bounded buffer: a subscriber that falls behind, or a reconnect, yields a
    ``resync`` event, after which it should re-read the current state.
    """

    def __init__(self, url: str = "memory://", *, max_queue: int = 1000) -> None:
        self.url = url
        self._broadcast = make_broadcast(url, max_queue=max_queue)
        self._connected = False

    def __repr__(self) -> str:
        return f"Live({self.url.split('@')[-1]!r})"

    async def connect(self) -> None:
        if not self._connected:
            await self._broadcast.connect()
            self._connected = True

    async def disconnect(self) -> None:
        if self._connected:
            await self._broadcast.disconnect()
            self._connected = False

    async def publish(self, kind: str, ident: str, event: LiveEvent) -> None:
        if not self._connected:
            return  # outside the lifespan (CLI, tests): there is nobody to hear it
        try:
            await self._broadcast.publish(channel(kind, ident), event.encode())
        except Exception as exc:  # a lost live event must never fail the change behind it
            log.warning("could not publish %s on %s:%s: %s", event.name, kind, ident, exc)

    def subscription(self, kind: str, ident: str) -> AbstractAsyncContextManager[Any]:
        """Subscribe now (not on first iteration): ``async with live.subscription(...) as s``.

        For endpoints that must subscribe before reading the current state, so nothing
        published in between is lost. Read events with :meth:`queue_of`.
        """
        return self._broadcast.subscribe(channel(kind, ident))

    @staticmethod
    def queue_of(subscriber: Any) -> Any:
        """The bounded queue of raw broadcaster events behind a subscription."""
        return subscriber._queue

    async def subscribe(self, kind: str, ident: str) -> AsyncIterator[LiveEvent]:
        """Yield the events of one subject as they are published, until the caller stops."""
        async with self._broadcast.subscribe(channel(kind, ident)) as subscriber:
            async for message in subscriber:  # type: ignore[union-attr]
                if message is None:
                    return
                yield LiveEvent.decode(message.message)
