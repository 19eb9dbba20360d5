"""The mountable router: parse the request, call the public API, render JSON. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from ..delivery.urls import absolute_url
from ..errors import DeliveryUnsupported
from ..live.sse import sse_routes
from ..live.ws import ws_routes
from ..storage.base import Capability, local_files
from ._bodies import idle_limited
from ._files import object_response
from ._http import NO_STORE, authorize, authorized_session_id, error_response, errors, field
from ._http import read_json as read_json
from .multipart_routes import multipart_routes
from .resumable_routes import resumable_routes
from .serialize import asset_json
from .static import StaticFiles
from .streaming_routes import streaming_routes
from .templating import render_live_fragment
from .tus_routes import tus_routes
from .uppy_routes import uppy_routes

if TYPE_CHECKING:
    from ._http import WebRuntime

__all__ = ["build_router", "error_response", "read_json"]


def build_router(media: WebRuntime) -> Router:
    """The router an adopter mounts at ``media.router_path`` (``/rindle`` by default)."""

    @errors
    async def create_upload(request: Request) -> Response:
        body = await read_json(request)
        profile = field(body, "profile", str)
        filename = field(body, "filename", str)
        content_type = field(body, "content_type", str)
        byte_size = field(body, "byte_size", int)
        checksum = field(body, "checksum", str, required=False)
        await authorize(media, request, "upload", profile=profile)
        streaming = media.profile(profile).delivery.streaming
        if streaming is not None and streaming.ingest == "direct_upload":
            # The browser sends the file to the streaming provider, not to the storage.
            session, ticket = await media.create_direct_upload(
                profile, filename=filename, content_type=content_type, byte_size=byte_size,
                origin=request.headers.get("origin") or "*")
        else:
            # initiate_upload + sign_url, in one transaction.
            session, ticket = await media.broker.initiate_signed_upload(
                profile, filename=filename, content_type=content_type, byte_size=byte_size,
                checksum=checksum)
        upload = ticket.to_dict()
        upload["url"] = absolute_url(request, ticket.url)
        return JSONResponse({"session_id": session.id, "asset_id": session.asset_id,
                             "upload": upload}, status_code=201,
                            headers=NO_STORE)

    @errors
    async def complete_upload(request: Request) -> Response:
        # authorized_session_id, keeping the row it reads for verify_completion.
        session_id: str = request.path_params["session_id"]
        session = await media.repo.get_session(session_id)
        await authorize(media, request, "upload", profile=session.profile if session else None,
                        session=session)
        if session is not None and session.strategy == "direct_upload":
            result = await media.complete_direct_upload(session)
        else:
            result = await media.broker.verify_completion(session_id, session=session)
        return JSONResponse({"session_id": result.session.id,
                             "asset": await asset_json(media, result.asset, request=request)})

    @errors
    async def abort_upload(request: Request) -> Response:
        aborted = await media.abort_upload(await authorized_session_id(media, request))
        return JSONResponse({"session_id": aborted.id, "state": aborted.state},
                            headers=NO_STORE)

    @errors
    async def show_asset(request: Request) -> Response:
        asset = await media.asset(request.path_params["asset_id"])
        await authorize(media, request, "view", profile=asset.profile, asset=asset)
        return JSONResponse(await asset_json(media, asset, request=request),
                            headers=NO_STORE)

    @errors
    async def local_put(request: Request) -> Response:
        session = await media.broker.receive_local_put(
            request.path_params["token"], idle_limited(request, media.upload_idle_timeout),
            request.headers.get("content-type"))
        return JSONResponse({"session_id": session.id, "state": session.state})

    @errors
    async def local_get(request: Request) -> Response:
        local = [st for st in media.storages.values() if Capability.LOCAL in st.capabilities]
        if not local:
            raise DeliveryUnsupported("no storage here serves files through Rindle")
        # Any Local storage can open the token: they share the runtime's sealing keys. The
        # file belongs to the storage of the profile its key starts with.
        grant = local_files(local[0]).verify_get_token(request.path_params["token"])
        owner = media.storage_for(grant.key.split("/", 1)[0])
        max_age = int((grant.expires_at - datetime.now(UTC)).total_seconds())
        return await object_response(
            owner, grant.key, method=request.method, headers=request.headers,
            content_type=grant.content_type, filename=grant.filename,
            disposition=grant.disposition, max_age=max(0, max_age),
        )

    @errors
    async def upload_options(request: Request) -> Response:
        name = request.path_params["profile"]
        await authorize(media, request, "upload", profile=name)
        return JSONResponse(media.upload_options(name))

    @errors
    async def asset_fragment(request: Request) -> Response:
        q = request.query_params
        if q.get("kind") in ("video", "audio"):
            markup = await media.html.media_fragment(
                request.path_params["asset_id"], kind=q["kind"], variants=q.getlist("v"),
                poster=q.get("poster") or None, waveform=q.get("waveform") or None,
                controls=q.get("controls") != "0", original=q.get("original") != "0",
                request=request)
            return HTMLResponse(str(markup), headers=NO_STORE)
        names, queries = q.getlist("v"), q.getlist("m")
        pairs = [(n, (queries[i] if i < len(queries) else "") or None)
                 for i, n in enumerate(names)]
        markup = await media.html.picture_fragment(
            request.path_params["asset_id"], variants=pairs, alt=q.get("alt", ""),
            sizes=q.get("sizes") or None, loading=q.get("loading", "lazy"), request=request)
        return HTMLResponse(str(markup), headers=NO_STORE)

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
    routes += multipart_routes(media)
    routes += resumable_routes(media)
    routes += streaming_routes(media, idle_timeout=media.upload_idle_timeout)
    routes += sse_routes(media, render=render_live_fragment) + ws_routes(media)
    routes.append(Mount("/tus", routes=tus_routes(media, durable=media.durable_uploads)))
    routes.append(Mount("/s3", routes=uppy_routes(media)))
    return Router(routes=routes)
