"""The mountable router: parse the request, call the public API, render JSON. Nothing else."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from .._json import loads_object
from ..delivery.authorizer import require_allowed
from ..delivery.urls import absolute_url
from ..errors import DeliveryUnsupported, RindleError, ValidationError
from ..logs import get_logger
from ..model.records import Asset
from ._bodies import DEFAULT_IDLE_TIMEOUT, UploadTimeout, idle_limited
from ._files import object_response
from .serialize import asset_json
from .static import StaticFiles

if TYPE_CHECKING:
    from ..app import Rindle

log = get_logger("rindle.web")

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
                log.error("%s %s failed: %r", request.method, fn.__name__, exc)
            elif isinstance(exc, UploadTimeout):
                log.warning("%s %s: %s", request.method, fn.__name__, exc.message)
                # The rest of the body will never be read: the connection can't be reused.
                response = error_response(exc)
                response.headers["Connection"] = "close"
                return response
            return error_response(exc)
        except ClientDisconnect:
            # One line, no traceback: a client closing the tab is routine, and a traceback
            # per disconnect would let anyone flood the log.
            log.info("%s %s: the client went away before its body ended; nothing was kept",
                     request.method, fn.__name__)
            return Response(status_code=400)

    return wrapper


JSON_LIMIT = 64 * 1024
PART_LIST_LIMIT = 2 * 1024 * 1024  # 10,000 parts with their ETags fit with room to spare


def _is_json_type(header: str) -> bool:
    """``application/json`` or ``application/<x>+json``, with any parameters."""
    mime = header.partition(";")[0].strip().lower()
    kind, _, sub = mime.partition("/")
    return kind == "application" and (sub == "json" or (sub.endswith("+json") and sub != "+json"))


def _announces_body(request: Request) -> bool:
    """Whether the headers say a body follows (HTTP/1.1 sends none without them)."""
    length = request.headers.get("content-length")
    return (length is not None and length.strip() != "0") or \
        "transfer-encoding" in request.headers


def _json_required() -> ValidationError:
    return ValidationError("send the JSON body with `Content-Type: application/json`",
                           code="json_required")


def _too_large(limit: int) -> ValidationError:
    return ValidationError(f"the request body is too large for a JSON command (at most "
                           f"{limit} bytes)", code="body_too_large", limit=limit)


async def read_json(request: Request, *, limit: int = JSON_LIMIT) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body, which needs no content type.

    Public so an adopter's own JSON routes read bodies by the same rules (size, depth,
    content type, idle timeout) as Rindle's.

    A non-empty body must say it is JSON: an HTML form on another site can POST
    ``text/plain`` (no CORS preflight) with the user's cookies, but cannot send
    ``application/json`` without a preflight the browser refuses.
    """
    is_json = _is_json_type(request.headers.get("content-type", ""))
    if not is_json and _announces_body(request):
        raise _json_required()  # refused before a byte of the body is read
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    # Read in chunks so an oversized body (chunked, or lying about its length) is refused
    # without being held whole.
    raw = bytearray()
    async for chunk in idle_limited(request, DEFAULT_IDLE_TIMEOUT):
        if chunk and not is_json:  # a body the headers did not announce (e.g. HTTP/2)
            raise _json_required()
        raw += chunk
        if len(raw) > limit:
            raise _too_large(limit)
    if not raw:
        return {}
    return loads_object(raw)


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
        body = await read_json(request)
        profile = _field(body, "profile", str)
        filename = _field(body, "filename", str)
        content_type = _field(body, "content_type", str)
        byte_size = _field(body, "byte_size", int)
        checksum = _field(body, "checksum", str, required=False)
        await authorize(request, "upload", profile=profile)
        session = await media.initiate_upload(profile, filename=filename,
                                              content_type=content_type, byte_size=byte_size,
                                              checksum=checksum)
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
            request.path_params["token"], idle_limited(request, media.upload_idle_timeout),
            request.headers.get("content-type"))
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
