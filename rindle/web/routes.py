"""The mountable router: parse the request, call the public API, render JSON. Nothing else."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from ..delivery.authorizer import require_allowed
from ..delivery.urls import absolute_url
from ..errors import DeliveryUnsupported, RindleError, ValidationError
from ..model.records import Asset
from ._files import object_response
from .serialize import asset_json
from .static import StaticFiles

if TYPE_CHECKING:
    from ..app import Rindle

log = logging.getLogger("rindle.web")

Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(exc: RindleError) -> JSONResponse:
    """The JSON error body for a Rindle error, with its status."""
    return JSONResponse(exc.to_dict(), status_code=exc.status_code,
                        headers={"Cache-Control": "no-store"})


def _errors(fn: Endpoint) -> Endpoint:
    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except RindleError as exc:
            if exc.status_code >= 500:
                log.error("%s %s failed: %r", request.method, request.url.path, exc)
            return error_response(exc)

    return wrapper


JSON_LIMIT = 64 * 1024
PART_LIST_LIMIT = 2 * 1024 * 1024  # 10,000 parts with their ETags fit with room to spare


async def _json_body(request: Request, *, limit: int = JSON_LIMIT) -> dict[str, Any]:
    # Read in chunks so an oversized body is refused without being held whole.
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ValidationError("the request body is too large for a JSON command",
                                  code="body_too_large")
    try:
        body = json.loads(bytes(raw) or b"{}")
    except ValueError:
        raise ValidationError("the body must be a JSON object", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object", code="invalid_json")
    return body


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a {kind.__name__}", code="invalid_field",
                              field=name)
    return value


def build_router(media: Rindle) -> Router:
    """The router an adopter mounts at ``media.router_path`` (``/rindle`` by default)."""

    async def authorize(request: Request, action: str, *, profile: str | None,
                        asset: Asset | None = None) -> None:
        await require_allowed(media, action, profile=profile, asset=asset, request=request)

    @_errors
    async def create_upload(request: Request) -> Response:
        body = await _json_body(request)
        profile = _field(body, "profile", str)
        filename = _field(body, "filename", str)
        content_type = _field(body, "content_type", str)
        byte_size = _field(body, "byte_size", int)
        await authorize(request, "upload", profile=profile)
        session = await media.initiate_upload(profile, filename=filename,
                                              content_type=content_type, byte_size=byte_size)
        ticket = await media.sign_url(session.id)
        upload = ticket.to_dict()
        upload["url"] = absolute_url(request, ticket.url)
        return JSONResponse({"session_id": session.id, "asset_id": session.asset_id,
                             "upload": upload}, status_code=201,
                            headers={"Cache-Control": "no-store"})

    @_errors
    async def complete_upload(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        session = await media.repo.get_session(session_id)
        await authorize(request, "upload", profile=session.profile if session else None)
        result = await media.verify_completion(session_id)
        return JSONResponse({"session_id": result.session.id,
                             "asset": await asset_json(media, result.asset, request=request)})

    @_errors
    async def abort_upload(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        session = await media.repo.get_session(session_id)
        await authorize(request, "upload", profile=session.profile if session else None)
        aborted = await media.broker.abort_upload(session_id)
        return JSONResponse({"session_id": aborted.id, "state": aborted.state},
                            headers={"Cache-Control": "no-store"})

    @_errors
    async def show_asset(request: Request) -> Response:
        asset = await media.asset(request.path_params["asset_id"])
        await authorize(request, "view", profile=asset.profile, asset=asset)
        return JSONResponse(await asset_json(media, asset, request=request),
                            headers={"Cache-Control": "no-store"})

    @_errors
    async def local_put(request: Request) -> Response:
        session = await media.broker.receive_local_put(
            request.path_params["token"], request.stream(), request.headers.get("content-type")
        )
        return JSONResponse({"session_id": session.id, "state": session.state})

    @_errors
    async def local_get(request: Request) -> Response:
        token = request.path_params["token"]
        for storage in media.storages.values():
            verify = getattr(storage, "verify_get_token", None)
            if verify is None:
                continue
            grant = verify(token)
            owner = media.storage_for(grant.key.split("/", 1)[0])
            max_age = int((grant.expires_at - datetime.now(UTC)).total_seconds())
            return await object_response(
                owner, grant.key, method=request.method, headers=request.headers,
                content_type=grant.content_type, filename=grant.filename,
                disposition=grant.disposition, max_age=max(0, max_age),
            )
        raise DeliveryUnsupported("no storage here serves files through Rindle")

    @_errors
    async def upload_options(request: Request) -> Response:
        name = request.path_params["profile"]
        await authorize(request, "upload", profile=name)
        return JSONResponse(media.upload_options(name))

    @_errors
    async def asset_fragment(request: Request) -> Response:
        q = request.query_params
        names, queries = q.getlist("v"), q.getlist("m")
        pairs = [(n, (queries[i] if i < len(queries) else "") or None)
                 for i, n in enumerate(names)]
        markup = await media.html.picture_fragment(
            request.path_params["asset_id"], variants=pairs, alt=q.get("alt", ""),
            sizes=q.get("sizes") or None, loading=q.get("loading", "lazy"), request=request)
        return HTMLResponse(str(markup), headers={"Cache-Control": "no-store"})

    routes: list[BaseRoute] = [
        Route("/profiles/{profile}/upload-options", upload_options, methods=["GET"]),
        Route("/fragments/asset/{asset_id}", asset_fragment, methods=["GET"]),
        Route("/static/{path}", StaticFiles(), methods=["GET", "HEAD"]),
        Route("/uploads", create_upload, methods=["POST"]),
        Route("/uploads/{session_id}/complete", complete_upload, methods=["POST"]),
        Route("/uploads/{session_id}", abort_upload, methods=["DELETE"]),
        Route("/assets/{asset_id}", show_asset, methods=["GET"]),
        Route("/local/{token}", local_put, methods=["PUT"]),
        Route("/files/{token}", local_get, methods=["GET", "HEAD"]),
    ]
    from ..live.sse import sse_routes
    from ..live.ws import ws_routes
    from .multipart_routes import multipart_routes
    from .uppy_routes import uppy_routes

    routes += multipart_routes(media)
    routes += sse_routes(media) + ws_routes(media)
    routes.append(Mount("/s3", routes=uppy_routes(media)))
    return Router(routes=routes)
