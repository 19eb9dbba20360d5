"""The tus 1.0.0 endpoints of the router, per profile at ``/tus/{profile}/``.

The protocol's envelope — ``Tus-Resumable``, the headers each method reads and answers
with, method override, status codes — lives here; what a request does is
``rindle.upload.tus``. Every request but OPTIONS asks the profile's Authorizer (action
``upload``). Upload URLs end in a sealed token: a bearer credential, redacted from every log.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import RindleError
from ..upload import tus
from ..upload.tus import TusChecksum, TusError, TusUpload, TusUploads, check_length
from ._bodies import KeptBody
from ._http import authorize, error_response, log

if TYPE_CHECKING:
    from ..model.records import UploadSession
    from ._http import WebRuntime

#: What a browser's script may read of a tus response (a cross-origin client needs them).
EXPOSED = ("Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, "
           "Upload-Concat, Upload-Expires, Location, Tus-Resumable, Tus-Version, "
           "Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Rindle-Session-Id, "
           "Rindle-Asset-Id")
_OCTETS = "application/offset+octet-stream"
_OVERRIDABLE = frozenset({"PATCH", "DELETE", "HEAD"})


def tus_routes(media: WebRuntime, *, durable: bool = True) -> list[Route]:
    """``/tus/{profile}/`` (OPTIONS, POST) and ``/tus/{profile}/{token}`` (HEAD, PATCH,
    DELETE, OPTIONS; POST with ``X-HTTP-Method-Override``), relative to the router."""
    uploads = TusUploads(media, durable=durable)

    def location(request: Request, profile: str, session_id: str) -> str:
        base = f"{request.url.scheme}://{request.url.netloc}{media.router_path}"
        return f"{base}/tus/{profile}/{uploads.token(session_id)}"

    def described(upload: TusUpload, headers: dict[str, str]) -> dict[str, str]:
        headers["Upload-Offset"] = str(upload.offset)
        if upload.length is None:
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(upload.length)
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
        headers["Rindle-Session-Id"] = upload.session_id
        if upload.asset_id or upload.session.state == "completed":
            headers["Rindle-Asset-Id"] = upload.asset_id or upload.session.asset_id
        return headers

    async def collection(request: Request) -> Response:
        profile: str = request.path_params["profile"]
        return await _answer(request, lambda: create(request, profile))

    async def item(request: Request) -> Response:
        profile: str = request.path_params["profile"]
        method = _method(request)

        async def run() -> Response:
            if method == "OPTIONS":
                return await options(profile)
            session_id = uploads.session_id(request.path_params["token"])
            session = await media.repo.get_session(session_id)
            await authorize(media, request, "upload", profile=profile, session=session)
            if session is not None and session.profile != profile:
                raise TusError("this upload belongs to another profile",
                               code="session_not_found")
            if method == "HEAD":
                upload = await uploads.status(session_id)
                headers = _head(described(upload, {}), upload)
                partials = (upload.session.multipart_parts or {}).get("partials")
                if upload.concat == "final" and partials:
                    # The spec's HEAD of a final upload names the partial uploads it joined.
                    headers["Upload-Concat"] = "final;" + " ".join(
                        location(request, profile, p) for p in partials)
                return Response(status_code=200, headers=headers)
            if method == "PATCH":
                return await patch(request, session_id, session)
            if method == "DELETE":
                await uploads.terminate(session_id)
                return Response(status_code=204)
            raise TusError(f"{method} is not a tus method here", code="method_not_allowed")

        return await _answer(request, run, head=method == "HEAD")

    async def options(profile: str) -> Response:
        prof = media.profile(profile)
        return Response(status_code=204, headers={
            "Tus-Version": tus.VERSION, "Tus-Extension": ",".join(tus.EXTENSIONS),
            "Tus-Max-Size": str(prof.max_bytes),
            "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUMS)})

    async def create(request: Request, profile: str) -> Response:
        if _method(request) == "OPTIONS":
            return await options(profile)
        if _method(request) != "POST":
            raise TusError("create uploads with POST", code="method_not_allowed")
        await authorize(media, request, "upload", profile=profile)
        h = request.headers
        concat = h.get("upload-concat")
        partials: list[str] = []
        kind = None
        if concat is not None:
            kind, _, urls = concat.partition(";")
            if kind == "final":
                partials = [uploads.session_id(u.rstrip("/").rsplit("/", 1)[-1])
                            for u in urls.split()]
            elif kind != "partial" or urls:
                raise TusError("Upload-Concat must be `partial` or `final;<urls>`",
                               code="invalid_tus_header", header="Upload-Concat")
        length = check_length(h.get("upload-length"), "Upload-Length")
        deferred = h.get("upload-defer-length")
        if kind != "final":
            if deferred not in (None, "1") or (length is None) == (deferred is None):
                raise TusError("send exactly one of Upload-Length and Upload-Defer-Length: 1",
                               code="invalid_tus_header", header="Upload-Length")
        raw_metadata = h.get("upload-metadata")
        upload = await uploads.create(profile, length=length,
                                      metadata=tus.parse_metadata(raw_metadata),
                                      raw_metadata=raw_metadata, concat=kind,
                                      partials=partials)
        headers = {"Location": location(request, profile, upload.session_id)}
        if _has_body(request) and kind != "final":
            # creation-with-upload: the first bytes came with the POST.
            _require_octets(request)
            upload = await uploads.append(upload.session_id, 0,
                                          KeptBody(request, media.upload_idle_timeout),
                                          checksum=_checksum(request))
        return Response(status_code=201, headers=described(upload, headers))

    async def patch(request: Request, session_id: str,
                    session: UploadSession | None) -> Response:
        _require_octets(request)
        offset = check_length(request.headers.get("upload-offset"), "Upload-Offset")
        if offset is None:
            raise TusError("PATCH needs Upload-Offset", code="invalid_tus_header",
                           header="Upload-Offset")
        upload = await uploads.append(
            session_id, offset, KeptBody(request, media.upload_idle_timeout),
            length=check_length(request.headers.get("upload-length"), "Upload-Length"),
            checksum=_checksum(request), session=session)
        return Response(status_code=204, headers=described(upload, {}))

    return [
        Route("/{profile}/", collection, methods=["POST", "OPTIONS"]),
        Route("/{profile}/{token}", item,
              methods=["HEAD", "PATCH", "DELETE", "OPTIONS", "POST"]),
    ]


def _head(headers: dict[str, str], upload: TusUpload) -> dict[str, str]:
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    if upload.concat:
        headers["Upload-Concat"] = upload.concat
    return headers


async def _answer(request: Request, run: object, *, head: bool = False) -> Response:
    """Tus-Resumable checked and stamped on every answer; errors with their status."""
    method = _method(request)
    if method != "OPTIONS" and request.headers.get("tus-resumable") != tus.VERSION:
        response: Response = Response(status_code=412, headers={"Tus-Version": tus.VERSION})
    else:
        try:
            response = await run()  # type: ignore[operator]
        except RindleError as exc:
            if exc.status_code >= 500:
                log.error("%s tus failed: %r", method, exc)
            response = error_response(exc)
            if head:  # a HEAD answer has no body
                response = Response(status_code=exc.status_code)
    response.headers["Tus-Resumable"] = tus.VERSION
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    return response


def _method(request: Request) -> str:
    """The request's method, or the one ``X-HTTP-Method-Override`` names on a POST (for
    clients behind proxies that only pass GET and POST)."""
    override = request.headers.get("x-http-method-override", "").upper()
    if request.method == "POST" and override in _OVERRIDABLE:
        return override
    return request.method


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length.strip() != "0") or \
        "transfer-encoding" in request.headers


def _require_octets(request: Request) -> None:
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if ctype != _OCTETS:
        raise TusError(f"send the bytes with Content-Type: {_OCTETS}", code="tus_content_type")


def _checksum(request: Request) -> TusChecksum | None:
    header = request.headers.get("upload-checksum")
    return TusChecksum.parse(header) if header else None


__all__ = ["EXPOSED", "tus_routes"]
