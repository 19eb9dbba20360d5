"""The multipart endpoints of the router: parse, authorize, call rindle.upload.multipart, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..delivery.authorizer import require_allowed
from ..errors import ValidationError
from ..model.records import UploadSession
from ..upload import multipart
from .serialize import asset_json

if TYPE_CHECKING:
    from ..app import Rindle

_NO_STORE = {"Cache-Control": "no-store"}


def multipart_routes(media: Rindle) -> list[Route]:
    """``/multipart`` routes to include in the router (paths relative to its mount)."""
    # Imported here, not at the top: routes.py may import this module while it loads.
    from .routes import PART_LIST_LIMIT, _errors, _field, read_json

    async def authorize(request: Request, profile: str | None,
                        session: UploadSession | None = None) -> None:
        await require_allowed(media, "upload", profile=profile, session=session,
                              request=request)

    async def session_of(request: Request) -> str:
        """The path's session id, once the Authorizer allowed uploads to its profile."""
        session_id: str = request.path_params["session_id"]
        session = await media.repo.get_session(session_id)
        await authorize(request, session.profile if session else None, session)
        return session_id

    @_errors
    async def create(request: Request) -> Response:
        body = await read_json(request)
        profile = _field(body, "profile", str)
        filename = _field(body, "filename", str)
        content_type = _field(body, "content_type", str)
        byte_size = _field(body, "byte_size", int)
        await authorize(request, profile)
        started = await multipart.initiate_multipart_upload(
            media, profile, filename=filename, byte_size=byte_size, content_type=content_type)
        return JSONResponse({"session_id": started.session_id, "asset_id": started.asset_id,
                             "part_size": started.part_size, "part_count": started.part_count},
                            status_code=201, headers=_NO_STORE)

    @_errors
    async def sign_parts(request: Request) -> Response:
        session_id = await session_of(request)
        body = await read_json(request)
        numbers = _field(body, "part_numbers", list)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValidationError("part_numbers must be a list of integers",
                                  code="invalid_field", field="part_numbers")
        tickets = await multipart.sign_multipart_parts(media, session_id, numbers)
        return JSONResponse({"parts": {str(n): t.to_dict() for n, t in tickets.items()}},
                            headers=_NO_STORE)

    @_errors
    async def list_parts(request: Request) -> Response:
        session_id = await session_of(request)
        parts = await multipart.list_uploaded_parts(media, session_id)
        return JSONResponse({"parts": parts}, headers=_NO_STORE)

    @_errors
    async def complete(request: Request) -> Response:
        session_id = await session_of(request)
        body = await read_json(request, limit=PART_LIST_LIMIT)
        parts = _field(body, "parts", list)
        result = await multipart.complete_multipart_upload(media, session_id, parts)
        return JSONResponse({"session_id": result.session.id,
                             "asset": await asset_json(media, result.asset, request=request)},
                            headers=_NO_STORE)

    @_errors
    async def abort(request: Request) -> Response:
        session_id = await session_of(request)
        session = await multipart.abort_multipart_upload(media, session_id)
        return JSONResponse({"session_id": session.id, "state": session.state},
                            headers=_NO_STORE)

    return [
        Route("/multipart", create, methods=["POST"]),
        Route("/multipart/{session_id}/parts", sign_parts, methods=["POST"]),
        Route("/multipart/{session_id}/parts", list_parts, methods=["GET"]),
        Route("/multipart/{session_id}/complete", complete, methods=["POST"]),
        Route("/multipart/{session_id}", abort, methods=["DELETE"]),
    ]


__all__ = ["multipart_routes"]
