"""The demo's Starlette app: Rindle's router at /rindle, the operator console at /admin, plus
a tiny API of a user's media slots: an avatar (image), a lesson (video) and an episode
(audio)."""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rindle import AuthRequest, Profile
from rindle.admin import console
from rindle.errors import NotFound, RindleError, ValidationError
from rindle.live.sse import freeze_gc
from rindle.web.routes import error_response, read_json
from rindle.web.serialize import asset_json
from rindle.web.templating import AssetView, install

from . import cohort
from .media import (
    MUX_SIMULATOR,
    AvatarProfile,
    ClipProfile,
    EpisodeProfile,
    LessonProfile,
    StreamProfile,
    media,
)


class User:
    """A stand-in for the adopter's own model: anything with an ``id`` can own media."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with media.lifespan(app):
        try:
            # Cohort's members and their generated avatars, once (not again on restart);
            # their thumbnails are built before the first page is served, so the demo's
            # first visitor sees them ready and nothing competes with the first requests.
            await cohort.seed()
            await media.drain(timeout=60)
        except Exception:  # the rest of the demo works without them
            logging.getLogger("demo_app").exception("could not seed Cohort's members")
        # Thousands of open event streams: keep the collector from rescanning start-up objects.
        freeze_gc()
        try:
            yield
        finally:
            if MUX_SIMULATOR is not None:
                # Mounted, its own lifespan never runs: stop its webhooks and timers here.
                await MUX_SIMULATOR.aclose()


#: The demo has no accounts: this cookie (set by a link on the demo page) or header stands
#: for "signed in as an operator".
DEMO_ADMIN_COOKIE = "demo_admin"
DEMO_ADMIN_HEADER = "x-demo-admin"


class DemoOperators:
    """The console's Authorizer in the demo. The runtime's AllowAll lets anyone upload and
    view (so the demo can be driven with curl), but the console is not for everyone: it
    allows the ``admin`` action only to a request carrying the demo admin cookie or header.
    A real app asks its own session here (``request.request.session``, ``.user``)."""

    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        conn = request.request
        if request.action != "admin" or conn is None:
            return False
        return (conn.cookies.get(DEMO_ADMIN_COOKIE) == "1"
                or conn.headers.get(DEMO_ADMIN_HEADER) == "1")


async def become_operator(request: Request) -> Response:
    """The demo page's "open the console as an operator" link. A GET that sets a cookie is
    fine for a demo's stand-in login, not for a real one."""
    response = RedirectResponse("/admin/", status_code=303)
    response.set_cookie(DEMO_ADMIN_COOKIE, "1", path="/", httponly=True, samesite="lax")
    return response


async def stop_operator(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(DEMO_ADMIN_COOKIE, path="/")
    return response


templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
install(templates.env, media)
DEMO_USER = "1"


#: A user's media slots, each with the profile its asset must come from.
SLOTS: dict[str, type[Profile]] = {"avatar": AvatarProfile, "lesson": LessonProfile,
                                   "episode": EpisodeProfile, "stream": StreamProfile,
                                   "clip": ClipProfile}
#: The partial that renders each slot's asset.
PARTIALS = {"avatar": "_avatar.html", "lesson": "_lesson.html", "episode": "_episode.html",
            "stream": "_stream.html", "clip": "_stream.html"}


def _slot(request: Request) -> str:
    slot: str = request.path_params["slot"]
    if slot not in SLOTS:
        raise NotFound(f"there is no {slot!r} slot; use one of {', '.join(SLOTS)}")
    return slot


async def _attach(asset_id: str, user: User, slot: str) -> None:
    """Attach only media of the slot's profile: a lesson slot takes no avatar."""
    asset = await media.asset(asset_id)
    if asset.profile != SLOTS[slot].name:
        raise ValidationError(f"the {slot} slot takes {SLOTS[slot].name} uploads, not "
                              f"{asset.profile}", code="invalid_slot")
    await media.attach(asset_id, user, slot)


async def _slot_view(request: Request, user_id: str, slot: str) -> AssetView | None:
    attachment = await media.attachment_for(User(user_id), slot)
    if attachment is None or attachment.asset is None:
        return None
    return await media.html.view(attachment.asset, request=request)


async def home(request: Request) -> Response:
    views = {slot: await _slot_view(request, DEMO_USER, slot) for slot in SLOTS}
    return templates.TemplateResponse(request, "index.html", {
        "user_id": DEMO_USER,
        "view": views["avatar"],
        "views": views,
        "accept": ",".join(AvatarProfile.allow_mime),
        "accepts": {slot: ",".join(p.allow_mime) for slot, p in SLOTS.items()},
        "base": f"{request.url.scheme}://{request.url.netloc}",
        "operator": request.cookies.get(DEMO_ADMIN_COOKIE) == "1",
    })


async def post_slot_html(request: Request) -> Response:
    """htmx: the uploader finished; attach the asset and render the slot's live block."""
    form = await request.form()
    asset_id = form.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        return HTMLResponse("<p>Upload first.</p>", status_code=422)
    user_id = request.path_params["user_id"]
    try:
        slot = _slot(request)
        await _attach(asset_id, User(user_id), slot)
    except RindleError as exc:
        return HTMLResponse(f"<p>Could not attach: {html.escape(exc.message)}</p>",
                            status_code=exc.status_code)
    return templates.TemplateResponse(request, PARTIALS[slot],
                                      {"view": await _slot_view(request, user_id, slot)})


async def put_slot(request: Request) -> Response:
    try:
        slot = _slot(request)
        # The router's reader, not request.json(): it wants Content-Type: application/json
        # (a cross-site form cannot send that) and bounds the body's size and nesting.
        body = await read_json(request)
        asset_id = body.get("asset_id")
        if not isinstance(asset_id, str):
            raise ValidationError("asset_id is required", code="missing_field")
        user = User(request.path_params["user_id"])
        await _attach(asset_id, user, slot)
        asset = await media.asset(asset_id)
        return JSONResponse({"user_id": user.id, "slot": slot,
                             "asset": await asset_json(media, asset, request=request)})
    except RindleError as exc:
        return error_response(exc)


async def get_slot(request: Request) -> Response:
    try:
        slot = _slot(request)
    except RindleError as exc:
        return error_response(exc)
    user = User(request.path_params["user_id"])
    attachment = await media.attachment_for(user, slot)
    if attachment is None or attachment.asset is None:
        return JSONResponse({"error": {"code": "not_found", "message": f"no {slot}"}},
                            status_code=404)
    return JSONResponse({"user_id": user.id, "slot": slot,
                         "asset": await asset_json(media, attachment.asset, request=request)})


async def delete_slot(request: Request) -> Response:
    try:
        slot = _slot(request)
    except RindleError as exc:
        return error_response(exc)
    removed = await media.detach(User(request.path_params["user_id"]), slot)
    return JSONResponse({"removed": removed})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/users/{user_id}/{slot}", get_slot, methods=["GET"]),
        Route("/users/{user_id}/{slot}", put_slot, methods=["PUT"]),
        Route("/users/{user_id}/{slot}", delete_slot, methods=["DELETE"]),
        Route("/users/{user_id}/{slot}/html", post_slot_html, methods=["POST"]),
        # Cohort: members, their posts, the feed and member erasure (demo_app/cohort.py).
        *cohort.routes(templates),
        Mount("/static", app=StaticFiles(directory=str(Path(__file__).parent / "static")),
              name="static"),
        Route("/demo/operator", become_operator, methods=["GET"]),
        Route("/demo/operator/off", stop_operator, methods=["GET"]),
        Mount("/rindle", app=media.router),
        # The operator console, behind its own Authorizer (see DemoOperators).
        Mount("/admin", app=console(media, authorizer=DemoOperators())),
        # The local Mux simulator, when no MUX_TOKEN_ID points the demo at Mux itself.
        *([Mount("/_mux", app=MUX_SIMULATOR.app)] if MUX_SIMULATOR is not None else []),
    ],
    lifespan=lifespan,
)
