"""Reading request bodies from clients that may stall or vanish half-way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.requests import ClientDisconnect, Request

from ..errors import RindleError

#: How long a body may go without a byte before it is cut (seconds).
DEFAULT_IDLE_TIMEOUT = 30.0


class UploadTimeout(RindleError):
    """The client stopped sending the body for longer than the idle timeout."""

    code = "upload_timeout"
    default_status = 408


async def idle_limited(request: Request, seconds: float) -> AsyncIterator[bytes]:
    """The request's body chunks; ``UploadTimeout`` when none arrives for ``seconds``.

    ASGI servers keep a stalled body open for as long as the client likes (uvicorn has no
    read timeout mid-request), which would pin a worker and a temporary file forever. A
    vanished client surfaces as Starlette's ``ClientDisconnect``, which the router's error
    wrapper logs once, without a traceback.
    """
    chunks = request.stream().__aiter__()
    while True:
        try:
            with anyio.fail_after(seconds):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadTimeout(f"no byte of the body arrived for {seconds:g} seconds; the "
                                "upload was cut and nothing was kept") from None
        yield chunk


class KeptBody:
    """A body whose bytes are kept however it ends (a tus PATCH): a client that goes away or
    stalls ends it quietly, and ``interrupted`` says why; the caller records what came."""

    def __init__(self, request: Request, idle_timeout: float) -> None:
        self._request = request
        self._idle = idle_timeout
        self.interrupted: str | None = None

    def __repr__(self) -> str:
        return f"KeptBody(interrupted={self.interrupted!r})"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in idle_limited(self._request, self._idle):
                yield chunk
        except ClientDisconnect:
            self.interrupted = "the client went away"
        except UploadTimeout as exc:
            self.interrupted = exc.message


__all__ = ["DEFAULT_IDLE_TIMEOUT", "KeptBody", "UploadTimeout", "idle_limited"]
