"""The native resumable (GCS) endpoints of the router: parse, authorize, call, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..upload import resumable
from ._http import NO_STORE, authorize, authorized_session_id, errors, field, read_json

if TYPE_CHECKING:
    from ._http import WebRuntime


def resumable_routes(media: WebRuntime) -> list[Route]:
    """``POST /resumable``, ``GET|DELETE /resumable/{session_id}`` (relative to the router)."""

    @errors
    async def create(request: Request) -> Response:
        body = await read_json(request)
        profile = field(body, "profile", str)
        await authorize(media, request, "upload", profile=profile)
        started = await resumable.initiate_resumable_session(
            media, profile, filename=field(body, "filename", str),
            byte_size=field(body, "byte_size", int),
            content_type=field(body, "content_type", str),
            origin=request.headers.get("origin"))
        # The one answer that carries the store's session URI: never cached, never logged.
        return JSONResponse(started.to_dict(), status_code=201, headers=NO_STORE)

    @errors
    async def status(request: Request) -> Response:
        session_id = await authorized_session_id(media, request)
        found = await resumable.resumable_session_status(media, session_id)
        return JSONResponse(found.to_dict(), headers=NO_STORE)

    @errors
    async def cancel(request: Request) -> Response:
        session_id = await authorized_session_id(media, request)
        ended = await resumable.cancel_resumable_session(media, session_id)
        return JSONResponse({"session_id": ended.id, "state": ended.state}, headers=NO_STORE)

    return [
        Route("/resumable", create, methods=["POST"]),
        Route("/resumable/{session_id}", status, methods=["GET"]),
        Route("/resumable/{session_id}", cancel, methods=["DELETE"]),
    ]


__all__ = ["resumable_routes"]
