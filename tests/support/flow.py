"""One whole life of an upload over HTTP, for the telemetry tests: presigned upload,
completion, promotion, variants, delivery URLs, a live subscription and a tus upload.

It returns every credential the flow handed out, so a test can look for them where they
must never be (telemetry values, span attributes).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Profile, Rindle, Variant
from rindle.live.sse import subscribe_token
from tests.support.images import png

TUS = {"Tus-Resumable": "1.0.0"}


class Photos(Profile):
    """Two real (libvips) variants, so a flow runs one variant job with two outputs."""

    name = "photos"
    storage = "local"
    allow_mime = ["image/png"]
    max_bytes = 1024 * 1024
    variants = {"thumb": Variant(width=16, height=16, mode="fit", format="png"),
                "small": Variant(width=32, height=32, mode="fit", format="png")}


def app_for(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


@dataclass
class Flow:
    """What a flow made, and every secret it handed out (URLs and their token parts)."""

    asset_id: str = ""
    session_id: str = ""
    tus_asset_id: str = ""
    secrets: set[str] = field(default_factory=set)

    def keep(self, url: str) -> None:
        """A URL and its token: the last path segment and any query string."""
        self.secrets.add(url)
        parts = urlsplit(url)
        self.secrets.add(parts.path.rstrip("/").rsplit("/", 1)[-1])
        if parts.query:
            self.secrets.add(parts.query)


async def _wait_ready(media: Rindle, asset_id: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while (await media.asset(asset_id)).state != "ready":
            await media.drain()
            await asyncio.sleep(0.02)


async def upload_to_ready(media: Rindle, client: httpx.AsyncClient, flow: Flow, *,
                          data: bytes | None = None) -> None:
    """``POST /uploads`` -> PUT -> ``.../complete``, then wait until the asset is ready."""
    data = data or png(60, 40)
    created = await client.post("/rindle/uploads", json={
        "profile": "photos", "filename": "me.png", "content_type": "image/png",
        "byte_size": len(data)})
    assert created.status_code == 201, created.text
    body = created.json()
    flow.asset_id, flow.session_id = body["asset_id"], body["session_id"]
    flow.keep(body["upload"]["url"])
    put = await client.put(body["upload"]["url"], content=data,
                           headers=body["upload"]["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(f"/rindle/uploads/{flow.session_id}/complete")
    assert done.status_code == 200, done.text
    await _wait_ready(media, flow.asset_id)


async def whole_life(media: Rindle, client: httpx.AsyncClient) -> Flow:
    """The upload with an SSE subscriber watching it, then its delivery URLs, then a tus
    upload of a second file."""
    flow = Flow()
    data = png(60, 40)
    # The asset id is known once the upload is initiated; subscribe in between.
    created = await client.post("/rindle/uploads", json={
        "profile": "photos", "filename": "me.png", "content_type": "image/png",
        "byte_size": len(data)})
    body = created.json()
    flow.asset_id, flow.session_id = body["asset_id"], body["session_id"]
    flow.keep(body["upload"]["url"])
    token = subscribe_token(media, flow.asset_id)
    flow.secrets.add(token)
    events: list[bytes] = []
    async with client.stream("GET", f"/rindle/events/asset/{flow.asset_id}?token={token}") \
            as sse:
        assert sse.status_code == 200
        chunks = sse.aiter_raw()
        events.append(await anext(chunks))  # the snapshot: the stream is live
        put = await client.put(body["upload"]["url"], content=data,
                               headers=body["upload"]["headers"])
        assert put.status_code == 200, put.text
        done = await client.post(f"/rindle/uploads/{flow.session_id}/complete")
        assert done.status_code == 200, done.text
        await _wait_ready(media, flow.asset_id)
        async with asyncio.timeout(10):
            while b"variant_ready" not in b"".join(events):
                events.append(await anext(chunks))
    shown = (await client.get(f"/rindle/assets/{flow.asset_id}")).json()
    flow.keep(shown["url"])
    for variant in shown["variants"].values():
        flow.keep(variant["url"])
    for url in (await media.url("photos", flow.asset_id),
                await media.variant_url("photos", flow.asset_id, "thumb")):
        flow.keep(url)
        got = await client.get(url)
        assert got.status_code == 200
    flow.tus_asset_id = await _tus_upload(client, flow, png(30, 30))
    await media.drain()
    return flow


async def _tus_upload(client: httpx.AsyncClient, flow: Flow, data: bytes) -> str:
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in (("filename", "t.png"), ("filetype", "image/png")))
    created = await client.post("/rindle/tus/photos/", headers={
        **TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    flow.keep(location)
    head = await client.head(location, headers=TUS)
    assert head.headers["upload-offset"] == "0"
    patched = await client.patch(location, content=data, headers={
        **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert patched.status_code == 204, patched.text
    return patched.headers["rindle-asset-id"]
