"""The multipart endpoints of the router: parse, authorize, call rindle.upload.multipart, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ValidationError
from ..upload import multipart
from ._http import (
    NO_STORE,
    PART_LIST_LIMIT,
    authorize,
    authorized_session_id,
    errors,
    field,
    read_json,
)
from .serialize import asset_json

if TYPE_CHECKING:
    from ._http import WebRuntime


def multipart_routes(media: WebRuntime) -> list[Route]:
    """``/multipart`` routes to include in the router (paths relative to its mount)."""

    async def session_of(request: Request) -> str:
        return await authorized_session_id(media, request)

    @errors
    async def create(request: Request) -> Response:
        body = await read_json(request)
        profile = field(body, "profile", str)
        filename = field(body, "filename", str)
        content_type = field(body, "content_type", str)
        byte_size = field(body, "byte_size", int)
        await authorize(media, request, "upload", profile=profile)
        started = await multipart.initiate_multipart_upload(
            media, profile, filename=filename, byte_size=byte_size, content_type=content_type)
        return JSONResponse({"session_id": started.session_id, "asset_id": started.asset_id,
                             "part_size": started.part_size, "part_count": started.part_count},
                            status_code=201, headers=NO_STORE)

    @errors
    async def sign_parts(request: Request) -> Response:
        session_id = await session_of(request)
        body = await read_json(request)
        numbers = field(body, "part_numbers", list)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValidationError("part_numbers must be a list of integers",
                                  code="invalid_field", field="part_numbers")
        tickets = await multipart.sign_multipart_parts(media, session_id, numbers)
        return JSONResponse({"parts": {str(n): t.to_dict() for n, t in tickets.items()}},
                            headers=NO_STORE)

    @errors
    async def list_parts(request: Request) -> Response:
        session_id = await session_of(request)
        parts = await multipart.list_uploaded_parts(media, session_id)
        return JSONResponse({"parts": parts}, headers=NO_STORE)

    @errors
    async def complete(request: Request) -> Response:
        session_id = await session_of(request)
        body = await read_json(request, limit=PART_LIST_LIMIT)
        parts = field(body, "parts", list)
        result = await multipart.complete_multipart_upload(media, session_id, parts)
        return JSONResponse({"session_id": result.session.id,
                             "asset": await asset_json(media, result.asset, request=request)},
                            headers=NO_STORE)

    @errors
    async def abort(request: Request) -> Response:
        session_id = await session_of(request)
        session = await multipart.abort_multipart_upload(media, session_id)
        return JSONResponse({"session_id": session.id, "state": session.state},
                            headers=NO_STORE)

    return [
        Route("/multipart", create, methods=["POST"]),
        Route("/multipart/{session_id}/parts", sign_parts, methods=["POST"]),
        Route("/multipart/{session_id}/parts", list_parts, methods=["GET"]),
        Route("/multipart/{session_id}/complete", complete, methods=["POST"]),
        Route("/multipart/{session_id}", abort, methods=["DELETE"]),
    ]


__all__ = ["multipart_routes"]
