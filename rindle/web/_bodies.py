"""Reading request bodies from clients that may stall or vanish half-way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from ..errors import RindleError

#: How long a body may go without a byte before it is cut (seconds).
DEFAULT_IDLE_TIMEOUT = 30.0


class UploadTimeout(RindleError):
    """The client stopped sending the body for longer than the idle timeout."""

    code = "upload_timeout"
    default_status = 408


def idle_limited(request: Request, seconds: float) -> AsyncIterator[bytes]:
    """The request's body chunks; ``UploadTimeout`` when none arrives for ``seconds``.

    ASGI servers keep a stalled body open for as long as the client likes (uvicorn has no
    read timeout mid-request), which would pin a worker and a temporary file forever. A
    vanished client surfaces as Starlette's ``ClientDisconnect``, which the router's error
    wrapper logs once, without a traceback.

    Only the time spent waiting for the next chunk counts, not the time the consumer takes
    between chunks (a slow disk, an fsync).
    """
    return _IdleLimited(request.stream().__aiter__(), seconds)


class _IdleLimited:
    """The idle watchdog: one timer for the whole body, not one per chunk.

    A body arrives as thousands of small chunks (uvicorn hands over 64 KiB at a time), so
    a cancel scope with a deadline around every read costs more than the read itself. Here
    a chunk costs a clock reading: the timer is armed once, and when it fires it looks at
    how long the current read has waited; if less than ``seconds`` it re-arms for the rest,
    so it fires about once per ``seconds`` however many chunks arrive. A read that waited
    too long is cut by cancelling the task waiting in it, and only that cancellation turns
    into ``UploadTimeout``; any other one goes on as it came.
    """

    __slots__ = ("_chunks", "_seconds", "_loop", "_since", "_waiter", "_timer", "_fired")

    def __init__(self, chunks: AsyncIterator[bytes], seconds: float) -> None:
        self._chunks = chunks
        self._seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._since: float | None = None  # when the read in progress began
        self._waiter: asyncio.Task[object] | None = None  # the task waiting in it
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def __aiter__(self) -> _IdleLimited:
        return self

    async def __anext__(self) -> bytes:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._waiter = asyncio.current_task()
        self._since = since = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(since + self._seconds, self._check)
        try:
            chunk = await self._chunks.__anext__()
        except BaseException as exc:
            self._disarm()
            if not self._fired:
                raise
            self._fired = False
            others = self._waiter.uncancel() if self._waiter is not None else 0
            if others or not isinstance(exc, asyncio.CancelledError):
                raise  # cancelled by someone else as well, or failed anyway: that one wins
            raise UploadTimeout(f"no byte of the body arrived for {self._seconds:g} seconds; "
                                "the upload was cut and nothing was kept") from None
        finally:
            self._since = None
        return chunk

    def _check(self) -> None:
        self._timer = None
        since = self._since
        if since is None or self._loop is None:
            return  # not reading (the consumer is busy, or done): the next read re-arms
        due = since + self._seconds
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        if self._waiter is not None:
            # The task is suspended inside the read, so the cancellation lands there.
            self._fired = True
            self._waiter.cancel()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class KeptBody:
    """A body whose bytes are kept however it ends (a tus PATCH): a client that goes away or
    stalls ends it quietly, and ``interrupted`` says why; the caller records what came."""

    def __init__(self, request: Request, idle_timeout: float) -> None:
        self._request = request
        self.idle_timeout = idle_timeout
        self.interrupted: str | None = None

    def __repr__(self) -> str:
        return f"KeptBody(interrupted={self.interrupted!r})"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Kept(self, _IdleLimited(self._request.stream().__aiter__(), self.idle_timeout))


class _Kept:
    """``KeptBody``'s iterator (a class, not a generator: it runs once per chunk)."""

    __slots__ = ("_body", "_chunks")

    def __init__(self, body: KeptBody, chunks: _IdleLimited) -> None:
        self._body = body
        self._chunks = chunks

    def __aiter__(self) -> _Kept:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except ClientDisconnect:
            self._body.interrupted = "the client went away"
            raise StopAsyncIteration from None
        except UploadTimeout:
            idle = self._body.idle_timeout
            self._body.interrupted = f"no byte of the body arrived for {idle:g} seconds"
            raise StopAsyncIteration from None
        return chunk


__all__ = ["DEFAULT_IDLE_TIMEOUT", "KeptBody", "UploadTimeout", "idle_limited"]
