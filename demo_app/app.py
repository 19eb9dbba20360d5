"""The demo's Starlette app: Rindle's router at /rindle plus a tiny user/avatar API."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates

from rindle.errors import RindleError, ValidationError
from rindle.live.sse import freeze_gc
from rindle.web.routes import error_response, read_json
from rindle.web.serialize import asset_json
from rindle.web.templating import AssetView, install

from .media import AvatarProfile, media


class User:
    """A stand-in for the adopter's own model: anything with an ``id`` can own media."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with media.lifespan(app):
        # Thousands of open event streams: keep the collector from rescanning start-up objects.
        freeze_gc()
        yield


templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
install(templates.env, media)
DEMO_USER = "1"


async def _avatar_view(request: Request, user_id: str) -> AssetView | None:
    attachment = await media.attachment_for(User(user_id), "avatar")
    if attachment is None or attachment.asset is None:
        return None
    return await media.html.view(attachment.asset, request=request)


async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "index.html", {
        "user_id": DEMO_USER,
        "view": await _avatar_view(request, DEMO_USER),
        "accept": ",".join(AvatarProfile.allow_mime),
        "base": f"{request.url.scheme}://{request.url.netloc}",
    })


async def post_avatar_html(request: Request) -> Response:
    """htmx: the uploader finished; attach the asset and render the live avatar block."""
    form = await request.form()
    asset_id = form.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        return HTMLResponse("<p>Upload first.</p>", status_code=422)
    user_id = request.path_params["user_id"]
    try:
        await media.attach(asset_id, User(user_id), "avatar")
    except RindleError as exc:
        return HTMLResponse(f"<p>Could not attach: {html.escape(exc.message)}</p>",
                            status_code=exc.status_code)
    return templates.TemplateResponse(request, "_avatar.html",
                                      {"view": await _avatar_view(request, user_id)})


async def put_avatar(request: Request) -> Response:
    try:
        # The router's reader, not request.json(): it wants Content-Type: application/json
        # (a cross-site form cannot send that) and bounds the body's size and nesting.
        body = await read_json(request)
        asset_id = body.get("asset_id")
        if not isinstance(asset_id, str):
            raise ValidationError("asset_id is required", code="missing_field")
        user = User(request.path_params["user_id"])
        attachment = await media.attach(asset_id, user, "avatar")
        asset = await media.asset(attachment.asset_id)
        return JSONResponse({"user_id": user.id, "slot": "avatar",
                             "asset": await asset_json(media, asset, request=request)})
    except RindleError as exc:
        return error_response(exc)


async def get_avatar(request: Request) -> Response:
    user = User(request.path_params["user_id"])
    attachment = await media.attachment_for(user, "avatar")
    if attachment is None or attachment.asset is None:
        return JSONResponse({"error": {"code": "not_found", "message": "no avatar"}},
                            status_code=404)
    return JSONResponse({"user_id": user.id, "slot": "avatar",
                         "asset": await asset_json(media, attachment.asset, request=request)})


async def delete_avatar(request: Request) -> Response:
    removed = await media.detach(User(request.path_params["user_id"]), "avatar")
    return JSONResponse({"removed": removed})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/users/{user_id}/avatar", get_avatar, methods=["GET"]),
        Route("/users/{user_id}/avatar", put_avatar, methods=["PUT"]),
        Route("/users/{user_id}/avatar", delete_avatar, methods=["DELETE"]),
        Route("/users/{user_id}/avatar/html", post_avatar_html, methods=["POST"]),
        Mount("/rindle", app=media.router),
    ],
    lifespan=lifespan,
)
