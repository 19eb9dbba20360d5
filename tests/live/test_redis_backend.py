"""RedisPubSubBackend and BoundedBroadcast against a real Redis (and memory://), no mocks.

Pub/sub channels are global to a Redis server (not per database) and other tests share this
one, so every test uses channel names of its own.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from typing import Any

import pytest
from broadcaster import Event

from rindle.live.bounded import BoundedBroadcast, DropOldestQueue
from rindle.live.events import LiveEvent
from rindle.live.hub import make_broadcast
from rindle.live.redis_backend import (
    RESYNC,
    LivePublishError,
    RedisPubSubBackend,
)
from tests.conftest import REDIS_URL

REDIS_HOST, REDIS_PORT = "127.0.0.1", "6379"
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", REDIS_HOST, "--port", REDIS_PORT,
               "--save", "", "--appendonly", "no", "--dir", "/tmp",
               "--logfile", "/tmp/rindle-redis.log"]


def _channel(name: str) -> str:
    return f"rindle-test:{name}:{uuid.uuid4().hex[:12]}"


def _redis_answers() -> bool:
    done = subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", REDIS_PORT, "ping"],
                          capture_output=True, text=True, timeout=5)
    return done.stdout.strip() == "PONG"


def _stop_redis() -> None:
    subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", REDIS_PORT, "shutdown", "nosave"],
                   capture_output=True, timeout=10)  # errors ignored: it may say "closed"
    deadline = time.monotonic() + 5
    while _redis_answers() and time.monotonic() < deadline:
        time.sleep(0.02)


def _start_redis() -> None:
    """Start Redis unless it answers already; synchronous so it runs even when cancelled."""
    deadline = time.monotonic() + 10
    if not _redis_answers():
        subprocess.run(REDIS_START, capture_output=True, timeout=10)
    while not _redis_answers():
        if time.monotonic() > deadline:
            raise RuntimeError("Redis did not come back; see /tmp/rindle-redis.log")
        time.sleep(0.02)


def _message(n: int) -> str:
    return LiveEvent("processing_progress", {"asset_id": "a1", "n": n}).encode()


@pytest.mark.redis
async def test_round_trip_reaches_each_subscriber_of_its_channel_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel, other = _channel("a"), _channel("b")
    broadcast = make_broadcast(REDIS_URL)
    assert isinstance(broadcast, BoundedBroadcast)
    assert isinstance(broadcast._backend, RedisPubSubBackend)
    async with asyncio.timeout(10):
        async with broadcast:
            async with (broadcast.subscribe(channel) as first,
                        broadcast.subscribe(channel) as second,
                        broadcast.subscribe(other) as third):
                await broadcast.publish(channel, _message(1))
                await broadcast.publish(other, _message(2))
                await broadcast.publish(other, _message(3))
                await broadcast.publish(channel, _message(4))
                assert await first.get() == Event(channel, _message(1))
                assert await second.get() == Event(channel, _message(1))
                assert await third.get() == Event(other, _message(2))
                # isolation: the next event on `channel` is 4, not the 3 sent on `other`
                assert await first.get() == Event(channel, _message(4))
                assert await second.get() == Event(channel, _message(4))
                assert await third.get() == Event(other, _message(3))

                # Idle subscribers cost no CPU: the reader waits in one read of up to
                # poll_interval at a time, it does not spin (bench/live_idle_cpu.py measures
                # the CPU). A slow machine makes fewer reads here, never more.
                backend = broadcast._backend
                assert isinstance(backend, RedisPubSubBackend) and backend._pubsub is not None
                reads: list[float | None] = []
                read = backend._pubsub.get_message

                async def counted(*args: Any, **kwargs: Any) -> Any:
                    reads.append(kwargs.get("timeout"))
                    return await read(*args, **kwargs)

                monkeypatch.setattr(backend._pubsub, "get_message", counted)
                await asyncio.sleep(1.5 * backend.poll_interval)
                monkeypatch.undo()
                assert 1 <= len(reads) <= 2, reads
                assert set(reads) == {backend.poll_interval}

            # the last subscriber leaving unsubscribes; a new one subscribes afresh
            async with broadcast.subscribe(channel) as again:
                await broadcast.publish(channel, _message(5))
                assert await again.get() == Event(channel, _message(5))
    backend = broadcast._backend
    assert isinstance(backend, RedisPubSubBackend)
    assert backend._reader is None and backend._pubsub is None and backend._client is None
    assert not [t for t in asyncio.all_tasks() if "RedisPubSubBackend" in t.get_name()]


def test_resync_is_a_live_event() -> None:
    assert LiveEvent.decode(RESYNC) == LiveEvent("resync", {})
    assert LiveEvent("resync", {}).encode() == RESYNC


@pytest.mark.redis
async def test_subscription_survives_a_redis_restart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rindle.live")
    channel = _channel("restart")
    secret = f"payload-that-must-not-be-logged-{uuid.uuid4().hex}"
    broadcast = make_broadcast(REDIS_URL)
    publisher = RedisPubSubBackend(REDIS_URL, publish_retry=0.3)
    async with asyncio.timeout(30):
        async with broadcast:
            await publisher.connect()
            try:
                async with broadcast.subscribe(channel) as subscriber:
                    await broadcast.publish(channel, _message(1))
                    assert await subscriber.get() == Event(channel, _message(1))

                    try:
                        _stop_redis()
                        # Redis stays down until this returns: publish gives up after its
                        # publish_retry, or it would hang here; the timeout only stops that.
                        async with asyncio.timeout(10):
                            with pytest.raises(LivePublishError,
                                               match=r"unreachable for 0\.3s"):
                                await publisher.publish(channel, secret)
                    finally:
                        _start_redis()

                    # Redis is back; the reader reconnects, re-subscribes and says so
                    assert await subscriber.get() == Event(channel, RESYNC)
                    await broadcast.publish(channel, _message(2))
                    assert await subscriber.get() == Event(channel, _message(2))
            finally:
                await publisher.disconnect()

    records = [r for r in caplog.records if r.name == "rindle.live"]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "lost the Redis pub/sub connection" in warnings[0].getMessage()
    assert [r.getMessage() for r in records if "is back after" in r.getMessage()]
    assert secret not in caplog.text and '"n":' not in caplog.text


@pytest.mark.redis
async def test_a_subscriber_that_does_not_read_costs_at_most_max_queue_events() -> None:
    channel = _channel("overflow")
    broadcast = make_broadcast(REDIS_URL)
    assert isinstance(broadcast, BoundedBroadcast) and broadcast.max_queue == 1000
    async with asyncio.timeout(30):
        async with broadcast:
            async with (broadcast.subscribe(channel) as stuck,
                        broadcast.subscribe(channel) as reader):

                async def read_until(last: str) -> list[str]:
                    seen: list[str] = []
                    while not seen or seen[-1] != last:
                        seen.append((await reader.get()).message)
                    return seen

                reading = asyncio.create_task(read_until("1499"))
                for n in range(1500):
                    await broadcast.publish(channel, str(n))
                # a reading subscriber is not held up by the stuck one, and misses nothing
                assert await reading == [str(n) for n in range(1500)]

                queue = stuck._queue
                assert isinstance(queue, DropOldestQueue)
                assert queue.qsize() == broadcast.max_queue == len(queue._queue)
                items = [queue.get_nowait() for _ in range(queue.qsize())]
                # the gap is announced first, then the newest events in order
                assert items[0] == Event(channel, RESYNC)
                assert [e.message for e in items[1:] if e] == [str(n) for n in range(501, 1500)]
                assert queue.dropped == broadcast.dropped == 501

                # once the marker is read, a new overflow gets a new marker
                reading = asyncio.create_task(read_until("2500"))
                for n in range(1500, 2501):
                    await broadcast.publish(channel, str(n))
                assert len(await reading) == 1001
                assert queue.qsize() == broadcast.max_queue
                assert queue.get_nowait() == Event(channel, RESYNC)
                assert queue.get_nowait() == Event(channel, "1502")
                assert broadcast.dropped == 503


async def test_memory_url_still_works_through_make_broadcast() -> None:
    channel, other = _channel("mem"), _channel("mem-other")
    broadcast = make_broadcast("memory://")
    assert isinstance(broadcast, BoundedBroadcast)
    assert not isinstance(broadcast._backend, RedisPubSubBackend)
    async with asyncio.timeout(5):
        async with broadcast:
            async with (broadcast.subscribe(channel) as first,
                        broadcast.subscribe(channel) as second,
                        broadcast.subscribe(other) as third):
                await broadcast.publish(channel, _message(1))
                await broadcast.publish(other, _message(2))
                await broadcast.publish(channel, _message(3))
                assert [(await first.get()).message for _ in range(2)] == [_message(1),
                                                                         _message(3)]
                assert [(await second.get()).message for _ in range(2)] == [_message(1),
                                                                          _message(3)]
                assert (await third.get()).message == _message(2)
