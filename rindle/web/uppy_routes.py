"""Companion-shaped S3 endpoints, so @uppy/aws-s3 6.x (``companionEndpoint``) uploads to Rindle.

Mount them under the router at ``/s3`` (the paths below are relative to that mount)::

    Mount("/s3", routes=uppy_routes(media))

and point Uppy at the router itself: ``companionEndpoint: "/rindle"`` (Uppy appends ``/s3/...``).

How Companion's names map onto Rindle (Uppy never sees S3's upload id or chooses a key):

* ``uploadId`` is the Rindle upload session id; ``key`` is the Rindle asset id. Every request
  that carries both looks the session up by ``uploadId`` and refuses a ``key`` that is not its
  asset's id.
* The profile is Uppy's file metadata ``profile`` (Uppy's ``meta: {profile: "avatar"}``),
  or ``default_profile`` given here.
* The file size is Uppy's file metadata ``size``: Companion's protocol does not carry it, but
  Rindle binds every part's exact length into its signature and refuses files over the
  profile's ``max_bytes`` before anything is signed, so it needs the size up front. One line
  of Uppy configuration adds it (``onBeforeFileAdded``, see docs/guides/uppy.md).
* Uppy, not the server, cuts a file into parts. Rindle plans the parts exactly as
  @uppy/aws-s3 6.x does (``max(5 MiB, ceil(size / 10000))``, or the adopter's ``chunk_size``
  mirroring their ``getChunkSize``), so each part it signs has the length Uppy will send.

Uppy's single-request path (``GET /params``, then an S3 POST-policy upload) has no completion
call, so the upload becomes an asset only when something calls ``POST /params/complete``; the
guide shows the one-line ``upload-success`` hook. ``shouldUseMultipart: true`` avoids that:
every non-empty file then goes through ``/multipart`` and its ``complete`` call.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..delivery.urls import absolute_url
from ..errors import ValidationError
from ..model.records import UploadSession
from ..upload import multipart, post_policy
from ..upload.post_policy import POST_STRATEGY
from ._http import NO_STORE, PART_LIST_LIMIT, authorize, authorized_session, errors, read_json
from .serialize import asset_json

if TYPE_CHECKING:
    from ._http import WebRuntime

_METADATA_QUERY = re.compile(r"^metadata\[(.+)\]$")

ChunkSize = Callable[[int], int]


def uppy_part_size(byte_size: int, chunk_size: ChunkSize | None = None) -> int:
    """The part size @uppy/aws-s3 6.x cuts a ``byte_size`` file into (S3Uploader's rule):
    ``getChunkSize(size)`` or ``ceil(size / 10000)``, at least 5 MiB, and raised again when
    that would make more than 10,000 parts."""
    size = int(chunk_size(byte_size)) if chunk_size else math.ceil(byte_size / multipart.MAX_PARTS)
    size = max(size, multipart.MIN_PART_SIZE)
    if math.ceil(byte_size / size) > multipart.MAX_PARTS:
        size = math.ceil(byte_size / multipart.MAX_PARTS)
    return size


def uppy_routes(media: WebRuntime, *, default_profile: str | None = None,
                chunk_size: ChunkSize | None = None) -> list[Route]:
    """The Companion-compatible routes, relative to their mount (``/s3`` under the router).

    ``default_profile`` is used when Uppy sends no ``profile`` metadata; ``chunk_size`` must
    mirror a custom Uppy ``getChunkSize`` (it receives the file size, returns bytes).
    """
    def profile_of(metadata: dict[str, Any]) -> str:
        profile = metadata.get("profile") or default_profile
        if not isinstance(profile, str) or not profile:
            raise ValidationError("which profile? Set Uppy's `meta: {profile: \"...\"}` (it is "
                                  "sent as file metadata)", code="profile_required",
                                  field="profile")
        return profile

    async def session_of(request: Request) -> UploadSession:
        """The path's session, once the Authorizer allowed it and ``?key=`` names its asset."""
        session = await authorized_session(media, request, "upload_id")
        key = request.query_params.get("key")
        if not key:
            raise ValidationError("the key query parameter is required (?key=...)",
                                  code="missing_field", field="key")
        if key != session.asset_id:
            raise ValidationError("key does not belong to this upload", code="key_mismatch",
                                  field="key")
        return session

    def location(request: Request, asset_id: str) -> str:
        return absolute_url(request, f"{media.router_path}/assets/{asset_id}")

    # --- single request: GET /params, then Uppy POSTs the file straight to S3 ----------------

    @errors
    async def params(request: Request) -> Response:
        query = request.query_params
        metadata = {m.group(1): v for k, v in query.multi_items()
                    if (m := _METADATA_QUERY.match(k))}
        profile = profile_of(metadata)
        await authorize(media, request, "upload", profile=profile)
        post = await post_policy.initiate_post_upload(
            media, profile, filename=_str(query.get("filename"), "filename"),
            content_type=_str(query.get("type"), "type"),
            byte_size=_size(metadata.get("size"), required=False))
        return JSONResponse({"method": "POST", "url": post.url, "fields": post.fields,
                             "expires": post.expires_in}, headers=NO_STORE)

    @errors
    async def params_complete(request: Request) -> Response:
        """What Uppy's ``upload-success`` hook calls with ``response.body.key``: verify the
        upload (idempotent: an already completed one answers with its asset)."""
        key = request.query_params.get("key")
        if not key:
            body = await read_json(request)
            key = body.get("key")
        if not isinstance(key, str) or not key:
            raise ValidationError("key is required (Uppy's response.body.key)",
                                  code="missing_field", field="key")
        session = await post_policy.session_for_key(media.repo, key)
        await authorize(media, request, "upload", profile=session.profile if session else None,
                        session=session)
        session = await post_policy.require_session_for_key(media.repo, key)
        asset = await post_policy.complete_post_upload(media, session)
        return JSONResponse({"session_id": session.id,
                             "asset": await asset_json(media, asset, request=request)},
                            headers=NO_STORE)

    # --- multipart -------------------------------------------------------------------------

    @errors
    async def create(request: Request) -> Response:
        body = await read_json(request)
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object", code="invalid_field",
                                  field="metadata")
        profile = profile_of(metadata)
        await authorize(media, request, "upload", profile=profile)
        byte_size = _size(metadata.get("size", body.get("size")), required=True)
        assert byte_size is not None
        started = await multipart.initiate_multipart_upload(
            media, profile, filename=_str(body.get("filename"), "filename"),
            byte_size=byte_size, content_type=_str(body.get("type"), "type"),
            part_size=uppy_part_size(byte_size, chunk_size))
        return JSONResponse({"uploadId": started.session_id, "key": started.asset_id},
                            headers=NO_STORE)

    @errors
    async def list_parts(request: Request) -> Response:
        session = await session_of(request)
        parts = await multipart.list_uploaded_parts(media, session.id)
        return JSONResponse([{"PartNumber": p["part_number"], "ETag": p["etag"],
                              "Size": p["size"]} for p in parts], headers=NO_STORE)

    @errors
    async def sign_part(request: Request) -> Response:
        session = await session_of(request)
        number: int = request.path_params["part_number"]
        ticket = await multipart.sign_multipart_part(media, session.id, number)
        return JSONResponse({"url": ticket.url, "headers": ticket.headers,
                             "expires": _seconds_left(ticket.expires_at)}, headers=NO_STORE)

    @errors
    async def sign_batch(request: Request) -> Response:
        session = await session_of(request)
        raw = request.query_params.get("partNumbers") or ""
        try:
            numbers = [int(n) for n in raw.split(",")]
        except ValueError:
            raise ValidationError("partNumbers must be a comma-separated list of integers",
                                  code="invalid_field", field="partNumbers") from None
        tickets = await multipart.sign_multipart_parts(media, session.id, numbers)
        return JSONResponse({"presignedUrls": {str(n): t.url for n, t in tickets.items()}},
                            headers=NO_STORE)

    @errors
    async def complete(request: Request) -> Response:
        session = await session_of(request)
        body = await read_json(request, limit=PART_LIST_LIMIT)
        raw = body.get("parts")
        if not isinstance(raw, list) or not all(
                isinstance(p, dict) and isinstance(p.get("PartNumber"), int)
                and not isinstance(p.get("PartNumber"), bool)
                and isinstance(p.get("ETag"), str) for p in raw):
            raise ValidationError("parts must be a list of {PartNumber, ETag} objects",
                                  code="invalid_parts")
        parts = sorted(({"part_number": p["PartNumber"], "etag": p["ETag"]} for p in raw),
                       key=lambda p: p["part_number"])
        result = await multipart.complete_multipart_upload(media, session.id, parts)
        return JSONResponse({"location": location(request, result.asset.id),
                             "key": result.asset.id, "session_id": result.session.id,
                             "asset": await asset_json(media, result.asset, request=request)},
                            headers=NO_STORE)

    @errors
    async def abort(request: Request) -> Response:
        session = await session_of(request)
        await multipart.abort_multipart_upload(media, session.id)
        return JSONResponse({}, headers=NO_STORE)

    return [
        Route("/params", params, methods=["GET"]),
        Route("/params/complete", params_complete, methods=["POST"]),
        Route("/multipart", create, methods=["POST"]),
        Route("/multipart/{upload_id}", list_parts, methods=["GET"]),
        Route("/multipart/{upload_id}", abort, methods=["DELETE"]),
        Route("/multipart/{upload_id}/batch", sign_batch, methods=["GET"]),
        Route("/multipart/{upload_id}/complete", complete, methods=["POST"]),
        Route("/multipart/{upload_id}/{part_number:int}", sign_part, methods=["GET"]),
    ]


# --- helpers -------------------------------------------------------------------------------


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name} is required (a string)", code="missing_field",
                              field=name)
    return value


def _size(value: Any, *, required: bool) -> int | None:
    """Uppy metadata ``size``: a number in JSON, a decimal string in a query."""
    if value is None or value == "":
        if required:
            raise ValidationError(
                "the file size is required: add it to Uppy's file metadata with "
                "`onBeforeFileAdded: (f) => ({ ...f, meta: { ...f.meta, size: f.size } })`",
                code="byte_size_required", field="size")
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError("metadata size must be a non-negative integer",
                              code="invalid_field", field="size")
    return value


def _seconds_left(expires_at: Any) -> int:
    return max(1, int(expires_at.timestamp() - time.time()))


__all__ = ["POST_STRATEGY", "uppy_part_size", "uppy_routes"]
