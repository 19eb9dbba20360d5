"""Streaming-provider webhooks: ``POST /webhooks/{provider}`` (``/webhooks/mux``).

No Authorizer: the provider is the caller, and its signature (checked before anything is
read into a row) is the credential. The answer is 2xx for every verified event, also one
that names nothing of ours, so the provider does not retry it forever; 4xx for anything
unverified, and nothing changes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import telemetry
from ..delivery.streaming.events import apply_event
from ..errors import NotFound, RindleError
from ._bodies import idle_limited
from ._http import NO_STORE, errors

if TYPE_CHECKING:
    from ..delivery.streaming.events import StreamingRows
    from ..delivery.streaming.ingest import Ingesting

#: Webhook bodies are small JSON documents; a larger one is not the provider's.
WEBHOOK_LIMIT = 1024 * 1024


async def _body(request: Request, idle: float) -> bytes:
    chunks, size = [], 0
    async for chunk in idle_limited(request, idle):
        size += len(chunk)
        if size > WEBHOOK_LIMIT:
            raise RindleError("the webhook body is too large", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def streaming_routes(media: Ingesting, *, idle_timeout: float) -> list[BaseRoute]:
    rows: StreamingRows = media

    @errors
    async def webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        if name not in media.streaming_providers and not any(
                p.delivery.streaming is not None and p.delivery.streaming.provider_name == name
                for p in media.profiles.values()):
            raise NotFound(f"no streaming provider named {name!r} is configured")
        provider = media.streaming_provider(name)
        started = time.perf_counter()
        body = await _body(request, idle_timeout)
        try:
            event = provider.verify_webhook(body, request.headers)
        except RindleError as exc:
            telemetry.emit("rindle.streaming.webhook", provider=name, event_type=None,
                           outcome=exc.code, bytes=len(body),
                           duration=time.perf_counter() - started)
            raise
        outcome = await apply_event(rows, provider, event)
        telemetry.emit("rindle.streaming.webhook", provider=name, event_type=event.type,
                       outcome=outcome, bytes=len(body), duration=time.perf_counter() - started)
        return JSONResponse({"received": event.id, "outcome": outcome}, headers=NO_STORE)

    return [Route("/webhooks/{provider}", webhook, methods=["POST"])]


__all__ = ["streaming_routes"]
