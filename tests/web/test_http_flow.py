"""The five-call flow and its failure modes, over HTTP against uvicorn, with httpx."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from rindle import Rindle, RindleError
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import HTML, png, png_claiming


class User:
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def adopter_app(media: Rindle) -> Starlette:
    """An adopter's app: Rindle's router plus its own route that attaches an avatar."""

    async def put_avatar(request: Request) -> JSONResponse:
        body = await request.json()
        att = await media.attach(body["asset_id"], User(request.path_params["uid"]), "avatar")
        return JSONResponse({"asset_id": att.asset_id})

    async def get_avatar(request: Request) -> JSONResponse:
        att = await media.attachment_for(User(request.path_params["uid"]), "avatar")
        assert att is not None and att.asset is not None
        return JSONResponse({"url": await media.url("image", att.asset, request=request)})

    return Starlette(
        routes=[Route("/users/{uid}/avatar", put_avatar, methods=["PUT"]),
                Route("/users/{uid}/avatar", get_avatar, methods=["GET"]),
                Mount("/rindle", app=media.router)],
        lifespan=media.lifespan,
    )


async def initiate(client: httpx.AsyncClient, *, filename: str = "me.png",
                   content_type: str = "image/png", byte_size: int) -> httpx.Response:
    return await client.post("/rindle/uploads", json={
        "profile": "image", "filename": filename, "content_type": content_type,
        "byte_size": byte_size})


async def send(client: httpx.AsyncClient, data: bytes, *, filename: str = "me.png",
               content_type: str = "image/png") -> dict[str, Any]:
    r = await initiate(client, filename=filename, content_type=content_type, byte_size=len(data))
    assert r.status_code == 201, r.text
    body = r.json()
    put = await client.put(body["upload"]["url"], content=data,
                           headers=body["upload"]["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
    assert done.status_code == 200, done.text
    return body


@pytest.fixture
def server_media(make_media: MakeMedia) -> Rindle:
    return make_media()


async def test_five_call_flow_returns_the_same_bytes(server_media: Rindle,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = png(300, 200)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await initiate(client, byte_size=len(data))
        assert r.status_code == 201
        body = r.json()
        upload = body["upload"]
        assert upload["method"] == "PUT"
        assert upload["url"].startswith(f"{srv.url}/rindle/local/")
        assert upload["headers"] == {"Content-Type": "image/png"}
        assert upload["expires_at"]

        put = await client.put(upload["url"], content=data, headers=upload["headers"])
        assert put.status_code == 200 and put.json()["state"] == "uploaded"

        done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
        assert done.status_code == 200
        assert done.json()["asset"]["state"] == "validating"

        await server_media.drain()
        attach = await client.put("/users/7/avatar", json={"asset_id": body["asset_id"]})
        assert attach.status_code == 200

        url = (await client.get("/users/7/avatar")).json()["url"]
        assert url.startswith(f"{srv.url}/rindle/files/")
        got = await client.get(url)
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"] == 'inline; filename="me.png"'

        shown = (await client.get(f"/rindle/assets/{body['asset_id']}")).json()
        assert shown["state"] == "available"
        assert (shown["width"], shown["height"]) == (300, 200)
        assert shown["content_type"] == "image/png"
        assert shown["byte_size"] == len(data)

    # No bearer credential reaches a server log line (the test's own client logs are not ours).
    token = upload["url"].rsplit("/", 1)[1]
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "uvicorn.access" for r in server_records)
    for record in server_records:
        assert token not in record.getMessage()
        assert url.rsplit("/", 1)[1] not in record.getMessage()


async def test_files_route_serves_ranges_and_etags(server_media: Rindle) -> None:
    data = png(100, 100)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await send(client, data)
        await server_media.drain()
        await client.put("/users/1/avatar", json={"asset_id": body["asset_id"]})
        url = (await client.get("/users/1/avatar")).json()["url"]
        part = await client.get(url, headers={"Range": "bytes=0-7"})
        assert part.status_code == 206
        assert part.content == data[:8]
        assert part.headers["content-range"] == f"bytes 0-7/{len(data)}"
        etag = part.headers["etag"]
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304


@pytest.mark.parametrize("payload,status,code", [
    ({"byte_size": 2 * 1024 * 1024}, 413, "max_bytes_exceeded"),
    ({"content_type": "text/html", "filename": "x.html"}, 415, "mime_not_allowed"),
    ({"byte_size": 0}, 422, "empty_file"),
    ({"profile": "nope"}, 404, "unknown_profile"),
    ({"byte_size": "12"}, 422, "invalid_field"),
    ({"filename": None}, 422, "missing_field"),
])
async def test_initiate_refuses_before_signing(server_media: Rindle, payload: dict[str, Any],
                                               status: int, code: str) -> None:
    body = {"profile": "image", "filename": "a.png", "content_type": "image/png",
            "byte_size": 100, **payload}
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code
        assert "upload" not in r.json()
        # Nothing was created: no asset row, no session.
        assert await server_media.repo.list_assets() == []


async def test_invalid_json_body(server_media: Rindle) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", content=b"{not json",
                              headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_json"


async def test_tampered_and_expired_tokens(server_media: Rindle) -> None:
    data = png(10, 10)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data))).json()
        url = body["upload"]["url"]
        head, _, token = url.rpartition("/")
        bad = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
        r = await client.put(f"{head}/{bad}", content=data, headers={"content-type": "image/png"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "invalid_token"
        assert token not in r.text and bad not in r.text

        storage = server_media.storages["local"]
        expired = await storage.presign_put("image/x/y.png", content_type="image/png",
                                            byte_size=len(data), expires_in=-5,
                                            session_id=body["session_id"])
        r = await client.put(f"{srv.url}{expired.url}", content=data,
                             headers={"content-type": "image/png"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "token_expired"

        gone = await client.get(f"{srv.url}/rindle/files/{bad}")
        assert gone.status_code == 403


async def test_put_larger_than_declared_keeps_nothing(server_media: Rindle) -> None:
    data = png(20, 20)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data) - 10)).json()
        r = await client.put(body["upload"]["url"], content=data,
                             headers={"content-type": "image/png"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "declared_size_exceeded"
        asset = await server_media.asset(body["asset_id"])
        session = await server_media.repo.get_session(body["session_id"])
        local = server_media.storages["local"]
        assert await local.head(asset.storage_key) is None
        assert session is not None and await local.head(session.upload_key) is None
        done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
        assert done.status_code == 409
        assert done.json()["error"]["code"] == "object_missing"


async def test_put_with_another_content_type_is_refused(server_media: Rindle) -> None:
    data = png(20, 20)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data))).json()
        r = await client.put(body["upload"]["url"], content=data,
                             headers={"content-type": "text/html"})
        assert r.status_code == 415
        assert r.json()["error"]["code"] == "content_type_mismatch"


@pytest.mark.parametrize("data,filename,content_type,reason", [
    (png(40, 40), "photo.jpg", "image/jpeg", "extension_mime_mismatch"),
    (HTML, "cat.png", "image/png", "mime_not_allowed"),
    (png_claiming(30000, 30000), "bomb.png", "image/png", "max_pixels_exceeded"),
])
async def test_bad_files_end_in_quarantine(server_media: Rindle, data: bytes, filename: str,
                                           content_type: str, reason: str) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await send(client, data, filename=filename, content_type=content_type)
        await server_media.drain()
        shown = (await client.get(f"/rindle/assets/{body['asset_id']}")).json()
        assert shown["state"] == "quarantined"
        assert shown["quarantine_reason"] == reason
        assert "url" not in shown
        with pytest.raises(RindleError) as err:
            await server_media.url("image", body["asset_id"])
        assert err.value.code == "asset_not_deliverable"


async def test_completing_twice_and_after_expiry(server_media: Rindle) -> None:
    data = png(12, 12)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await send(client, data)
        again = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "session_already_completed"

        r = (await initiate(client, byte_size=len(data))).json()
        await client.put(r["upload"]["url"], content=data, headers={"content-type": "image/png"})
        from datetime import UTC, datetime, timedelta

        await server_media.repo.update_session(
            r["session_id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
        late = await client.post(f"/rindle/uploads/{r['session_id']}/complete")
        assert late.status_code == 410
        assert late.json()["error"]["code"] == "session_expired"
        await server_media.drain()
        # The expired upload's bytes and rows are purged, and the purge is recorded.
        purges = await server_media.purges(asset_id=r["asset_id"])
        assert [p.reason for p in purges] == ["upload_expired"]
        unknown = await client.post("/rindle/uploads/nope/complete")
        assert unknown.status_code == 404


async def test_zero_byte_upload_is_refused_and_kept_nowhere(server_media: Rindle) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = (await initiate(client, byte_size=10)).json()
        put = await client.put(r["upload"]["url"], content=b"",
                               headers={"content-type": "image/png"})
        assert put.status_code == 200
        done = await client.post(f"/rindle/uploads/{r['session_id']}/complete")
        assert done.status_code == 409
        assert done.json()["error"]["code"] == "size_mismatch"
        await server_media.drain()
        assert await server_media.repo.get_asset(r["asset_id"]) is None
        assert [p.reason for p in await server_media.purges()] == ["size_mismatch"]


async def test_hostile_filename_is_sanitized(server_media: Rindle) -> None:
    data = png(12, 12)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await send(client, data, filename="../../etc/\x00pass\x07wd\u202e.png")
        asset = await server_media.asset(body["asset_id"])
        assert asset.filename == "passwd.png"
        assert asset.storage_key.startswith(f"image/{asset.id}/")
        assert ".." not in asset.storage_key and "passwd" not in asset.storage_key


async def test_default_authorizer_denies(make_media: MakeMedia) -> None:
    from rindle import DenyAll

    media = make_media(authorizer=DenyAll())
    async with LiveServer(adopter_app(media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await initiate(client, byte_size=10)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"


async def test_upload_options_tell_the_client_which_flows_work(server_media: Rindle) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get("/rindle/profiles/image/upload-options")
        assert r.status_code == 200
        body = r.json()
        assert body["strategies"] == ["presigned_put"]
        assert body["max_bytes"] == 1024 * 1024
        assert "image/png" in body["accept"]
        assert (await client.get("/rindle/profiles/nope/upload-options")).status_code == 404


async def test_a_cancelled_upload_is_aborted_and_purged(server_media: Rindle) -> None:
    data = png(20, 20)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data))).json()
        # The browser cancels mid-PUT: Local storage keeps nothing of a broken body.
        r = await client.delete(f"/rindle/uploads/{body['session_id']}")
        assert r.status_code == 200 and r.json()["state"] == "aborted"
        again = await client.delete(f"/rindle/uploads/{body['session_id']}")
        assert again.status_code == 200
        await server_media.drain()
        assert await server_media.repo.get_asset(body["asset_id"]) is None
        assert [p.reason for p in await server_media.purges()] == ["upload_aborted"]


async def test_a_huge_json_body_is_refused_without_reading_it_all(server_media: Rindle) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", content=b'{"x": "' + b"a" * 200_000 + b'"}',
                              headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "body_too_large"
