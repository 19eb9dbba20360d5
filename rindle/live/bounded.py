"""A ``Broadcast`` whose subscriber queues are bounded: a slow consumer costs bounded memory.

broadcaster gives each subscriber an unbounded ``asyncio.Queue`` and its listener awaits
``queue.put`` for every subscriber, so one SSE client that stops reading grows memory without
limit. :class:`BoundedBroadcast` keeps broadcaster's API and gives each subscriber a queue of
at most ``max_queue`` events. When a queue is full the oldest events are dropped and a
``RESYNC`` marker (:data:`rindle.live.redis_backend.RESYNC`) takes their place at the head of
the queue, so the consumer learns of the gap with the very next event it reads, before any
event published after the gap. One marker covers any number of dropped events until the
consumer reads it. The listener never waits for a subscriber: one slow client delays nobody.

It also fixes broadcaster's race between two first subscribers of one channel (the second
replaced the first one's queue): a subscriber is registered before the backend subscribes,
and later subscribers of a channel still being subscribed wait for that subscription.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast, Event
from broadcaster._backends.base import BroadcastBackend
from broadcaster._base import Subscriber

from ..logs import get_logger
from .redis_backend import RESYNC

log = get_logger("rindle.live")


def _is_resync(item: Event | None) -> bool:
    return item is not None and item.message == RESYNC


class DropOldestQueue(asyncio.Queue[Event | None]):
    """An ``asyncio.Queue`` of at most ``maxsize`` events that never blocks the producer.

    ``offer`` replaces the oldest events with one ``RESYNC`` marker when the queue is full.
    The storage hooks (``_init``/``_put``/``_get`` on a deque in ``_queue``) are the ones the
    standard library's own ``LifoQueue`` and ``PriorityQueue`` override.
    """

    def __init__(self, channel: str, maxsize: int) -> None:
        if maxsize < 2:
            raise ValueError("a bounded subscriber queue needs room for a marker and an event")
        super().__init__(maxsize)
        self.channel = channel
        self.dropped = 0

    def _init(self, maxsize: int) -> None:
        self._queue: deque[Event | None] = deque()

    def _put(self, item: Event | None) -> None:
        self._queue.append(item)

    def _get(self) -> Event | None:
        return self._queue.popleft()

    def offer(self, event: Event) -> int:
        """Enqueue without waiting; return how many older events had to be dropped."""
        if not self.full():
            self.put_nowait(event)
            return 0
        # Full, so not empty and no reader is waiting: rearranging the deque wakes nobody.
        items = self._queue
        if _is_resync(items[0]):
            del items[1]  # the marker at the head already announces a gap: widen it
            dropped = 1
        else:
            items.popleft()
            items.popleft()
            items.appendleft(Event(self.channel, RESYNC))
            dropped = 2
        self.dropped += dropped
        self.put_nowait(event)
        return dropped

    def close(self) -> None:
        """Wake a reader still waiting with broadcaster's end-of-stream ``None``."""
        if self.full():
            self._queue.pop()
        self.put_nowait(None)


class BoundedBroadcast(Broadcast):
    """``broadcaster.Broadcast`` with bounded per-subscriber queues (see the module docstring).

    ``dropped`` counts the events dropped across all subscribers since start-up.
    """

    def __init__(self, url: str | None = None, *, backend: BroadcastBackend | None = None,
                 max_queue: int = 1000) -> None:
        if max_queue < 2:
            raise ValueError("max_queue must be at least 2")
        super().__init__(url, backend=backend)
        self.max_queue = max_queue
        self.dropped = 0
        self._subscribing: dict[str, asyncio.Event] = {}

    async def _listener(self) -> None:
        while True:
            event = await self._backend.next_published()
            for queue in list(self._subscribers.get(event.channel, ())):
                if isinstance(queue, DropOldestQueue):
                    self._offer(queue, event)
                else:  # pragma: no cover - every queue here is ours
                    queue.put_nowait(event)

    def _offer(self, queue: DropOldestQueue, event: Event) -> None:
        dropped = queue.offer(event)
        if dropped:
            self.dropped += dropped
            if queue.dropped == dropped:  # once per subscriber; the event itself is never logged
                log.warning("a subscriber of %s fell more than %d events behind; dropping its "
                            "oldest events and sending it a resync", queue.channel,
                            self.max_queue)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscriber]:
        queue = DropOldestQueue(channel, self.max_queue)
        subscribers = self._subscribers.setdefault(channel, set())
        first = not subscribers
        subscribers.add(queue)
        try:
            if first:
                ready = self._subscribing[channel] = asyncio.Event()
                try:
                    await self._backend.subscribe(channel)
                finally:
                    ready.set()
                    if self._subscribing.get(channel) is ready:
                        del self._subscribing[channel]
            elif (pending := self._subscribing.get(channel)) is not None:
                await pending.wait()
            yield Subscriber(queue)
        finally:
            subscribers.discard(queue)
            if not subscribers and self._subscribers.get(channel) is subscribers:
                del self._subscribers[channel]
                await self._backend.unsubscribe(channel)
            queue.close()
