"""What every route of the router shares: error bodies, JSON bodies, fields, authorization.

The routes in ``routes.py``, ``multipart_routes.py`` and ``uppy_routes.py`` parse a request,
ask the Authorizer, call the public API and render JSON; the parsing and asking live here
once, so the three files can't drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .._json import loads_object
from ..delivery.authorizer import require_allowed
from ..errors import NotFound, RindleError, ValidationError
from ..logs import get_logger
from ..model.records import Asset, UploadSession
from ._bodies import DEFAULT_IDLE_TIMEOUT, UploadTimeout, idle_limited

if TYPE_CHECKING:
    from ..delivery.signing import Signer
    from ..delivery.streaming.ingest import Ingesting
    from ..delivery.urls import Delivering
    from ..live.sse import Subscribing
    from ..profile import Profile
    from ..storage.base import UploadTicket
    from ..upload.broker import UploadResult
    from ..upload.multipart import MultipartRuntime
    from .templating import Html

    class WebRuntime(MultipartRuntime, Subscribing, Delivering, Ingesting, Protocol):
        """What the router uses of the runtime: the public API and the subsystems' views."""

        @property
        def router_path(self) -> str: ...

        @property
        def upload_idle_timeout(self) -> float: ...

        @property
        def durable_uploads(self) -> bool: ...

        @property
        def signer(self) -> Signer: ...

        @property
        def html(self) -> Html: ...

        def upload_options(self, profile: type[Profile] | str) -> dict[str, Any]: ...

        async def initiate_upload(self, profile: type[Profile] | str, *,
                                  filename: str | None, content_type: str | None = None,
                                  byte_size: int | None = None,
                                  checksum: str | None = None) -> UploadSession: ...

        async def sign_url(self, session_id: str) -> UploadTicket: ...

        async def verify_completion(self, session_id: str) -> UploadResult: ...

        async def asset(self, asset_id: str) -> Asset: ...

        async def create_direct_upload(self, profile: type[Profile] | str, *,
                                       filename: str | None, content_type: str | None = None,
                                       byte_size: int | None = None,
                                       origin: str = "*") -> tuple[UploadSession, UploadTicket]:
            ...

        async def complete_direct_upload(self, session: UploadSession) -> UploadResult: ...

        async def abort_upload(self, session_id: str) -> UploadSession: ...


log = get_logger("rindle.web")

Endpoint = Callable[[Request], Awaitable[Response]]
NO_STORE = {"Cache-Control": "no-store"}
JSON_LIMIT = 64 * 1024
PART_LIST_LIMIT = 2 * 1024 * 1024  # 10,000 parts with their ETags fit with room to spare


def error_response(exc: RindleError) -> JSONResponse:
    """The JSON error body for a Rindle error, with its status."""
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=NO_STORE)


def errors(fn: Endpoint) -> Endpoint:
    """Wrap a route: Rindle errors become their JSON body and status; a stalled body and a
    vanished client are logged once, without a traceback."""

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

    Public (as ``rindle.web.routes.read_json``) so an adopter's own JSON routes read bodies
    by the same rules (size, depth, content type, idle timeout) as Rindle's.

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


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    """``body[name]`` checked to be a ``kind`` (``missing_field``/``invalid_field``)."""
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a {kind.__name__}", code="invalid_field",
                              field=name)
    return value


async def authorize(media: WebRuntime, request: Request, action: str, *,
                    profile: str | None, asset: Asset | None = None,
                    session: UploadSession | None = None) -> None:
    """``Forbidden`` unless the profile's Authorizer (or the runtime's) allows ``action``."""
    await require_allowed(media, action, profile=profile, asset=asset, session=session,
                          request=request)


async def authorized_session_id(media: WebRuntime, request: Request,
                                param: str = "session_id") -> str:
    """The upload session id the path names, once the Authorizer allowed uploads to its
    profile. An unknown id is asked about with the runtime's Authorizer, so a caller who may
    not upload learns nothing about which sessions exist; the API then says it's unknown."""
    session_id: str = request.path_params[param]
    session = await media.repo.get_session(session_id)
    await authorize(media, request, "upload", profile=session.profile if session else None,
                    session=session)
    return session_id


async def authorized_session(media: WebRuntime, request: Request,
                             param: str = "session_id") -> UploadSession:
    """Like ``authorized_session_id``, for routes that need the row itself (404
    ``session_not_found`` when there is none)."""
    session_id = await authorized_session_id(media, request, param)
    session = await media.repo.get_session(session_id)
    if session is None:
        raise NotFound(f"upload session {session_id} does not exist", code="session_not_found")
    return session


__all__ = ["JSON_LIMIT", "NO_STORE", "PART_LIST_LIMIT", "authorize", "authorized_session",
           "authorized_session_id",
           "error_response", "errors", "field", "read_json"]
