"""The demo's Starlette app: Rindle's router at /rindle plus a tiny user/avatar API."""

from __future__ import annotations

import html

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from rindle.errors import RindleError, ValidationError
from rindle.web.routes import error_response
from rindle.web.serialize import asset_json

from .media import AvatarProfile, media


class User:
    """A stand-in for the adopter's own model: anything with an ``id`` can own media."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


async def home(request: Request) -> Response:
    base = f"{request.url.scheme}://{request.url.netloc}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cohort — Rindle demo</title></head>
<body>
<h1>Cohort</h1>
<p>Rindle's demo app. The router is mounted at <code>/rindle</code>; profile
<code>{html.escape(AvatarProfile.name)}</code> accepts PNG, JPEG, WebP and HEIC up to 8 MB.</p>
<h2>Upload an avatar with curl</h2>
<pre>
curl -s -X POST {base}/rindle/uploads -H 'content-type: application/json' \\
  -d '{{"profile":"avatar","filename":"me.png","content_type":"image/png",'\\
'"byte_size":'$(stat -c%s me.png)'}}'
curl -s -X PUT "$UPLOAD_URL" -H 'content-type: image/png' --data-binary @me.png
curl -s -X POST {base}/rindle/uploads/$SESSION_ID/complete
curl -s -X PUT {base}/users/1/avatar -H "content-type: application/json" \\
  -d '{{"asset_id":"'$ASSET_ID'"}}'
curl -s {base}/users/1/avatar
</pre>
</body></html>"""
    return HTMLResponse(page)


async def put_avatar(request: Request) -> Response:
    try:
        body = await request.json()
        asset_id = body.get("asset_id") if isinstance(body, dict) else None
        if not isinstance(asset_id, str):
            raise ValidationError("asset_id is required", code="missing_field")
        user = User(request.path_params["user_id"])
        attachment = await media.attach(asset_id, user, "avatar")
        asset = await media.asset(attachment.asset_id)
        return JSONResponse({"user_id": user.id, "slot": "avatar",
                             "asset": await asset_json(media, asset, request=request)})
    except ValueError:
        return error_response(ValidationError("the body must be JSON", code="invalid_json"))
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
        Mount("/rindle", app=media.router),
    ],
    lifespan=media.lifespan,
)
