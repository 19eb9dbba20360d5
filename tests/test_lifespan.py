"""media.lifespan works as a Starlette lifespan and inside a FastAPI app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Rindle
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import png


async def _roundtrip(media: Rindle, app: object, prefix: str) -> None:
    data = png(10, 10)
    async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        assert media.store.connected
        r = await client.post(f"{prefix}/uploads", json={
            "profile": "image", "filename": "a.png", "content_type": "image/png",
            "byte_size": len(data)})
        assert r.status_code == 201, r.text
        up = r.json()["upload"]
        assert (await client.put(up["url"], content=data, headers=up["headers"])).status_code == 200
        done = await client.post(f"{prefix}/uploads/{r.json()['session_id']}/complete")
        assert done.status_code == 200
    assert not media.store.connected


async def test_starlette_lifespan(make_media: MakeMedia) -> None:
    media = make_media()
    app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
    await _roundtrip(media, app, "/rindle")


async def test_fastapi_lifespan_and_mount(make_media: MakeMedia) -> None:
    media = make_media()
    app = FastAPI(lifespan=media.lifespan)
    app.mount("/rindle", media.router)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"db": media.store.connected}

    await _roundtrip(media, app, "/rindle")
