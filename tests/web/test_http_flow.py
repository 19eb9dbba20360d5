"""The five-call flow and its failure modes, over HTTP against uvicorn, with httpx."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from rindle import Forbidden, LocalStorage, Rindle, RindleError
from rindle.delivery.authorizer import ACTIONS, require_allowed
from tests.conftest import SECRET, ImageProfile, LiveServer, MakeMedia
from tests.support.images import HTML, png, png_claiming, png_of_size


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


class RawRequest:
    """An HTTP/1.1 request on a raw socket, so a test decides when each byte of the body goes
    out, and whether the rest ever does."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, urlsplit(url), headers
        self.sent = 0  # body bytes handed to the socket so far
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self, first: bytes = b"") -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        self.reader, self.writer = await asyncio.open_connection(host, port)
        target = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        head = f"{self.method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in self.headers.items()) + "\r\n"
        self.writer.write(head.encode())
        await self.send(first)

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        self.sent += len(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def in_flight(root: Path) -> list[Path]:
    """Local storage's temporary files: bodies being received, not yet objects."""
    tmp = root / ".rindle-tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def put_and_vanish(url: str, data: bytes, root: Path,
                         caplog: pytest.LogCaptureFixture) -> None:
    """Send the headers and the first third of ``data``, wait until the server has written
    those bytes to its temporary file, then close the socket with the rest unsent; return
    once the server has noticed and cleaned up."""
    part = len(data) // 3
    put = RawRequest("PUT", url, {"Content-Type": "image/png",
                                  "Content-Length": str(len(data))})
    try:
        await put.start(data[:part])
        async with asyncio.timeout(10):  # only stops a hung test
            while not [p for p in in_flight(root) if p.stat().st_size >= part]:
                await asyncio.sleep(0.01)
    finally:
        put.close()  # the client goes away mid-body
    async with asyncio.timeout(10):
        while in_flight(root) or not [r for r in caplog.records
                                      if "went away before its body ended" in r.getMessage()]:
            await asyncio.sleep(0.01)


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
        assert await server_media.repo.count_by_state("session") == {}


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
        assert in_flight(local.root) == []  # type: ignore[attr-defined]
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
    assert stored_files(server_media.storages["local"].root) == []  # type: ignore[attr-defined]


async def test_hostile_filename_is_sanitized(server_media: Rindle) -> None:
    data = png(12, 12)
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = await send(client, data, filename="../../etc/\x00pass\x07wd\u202e.png")
        asset = await server_media.asset(body["asset_id"])
        assert asset.filename == "passwd.png"
        assert asset.storage_key.startswith(f"image/{asset.id}/")
        assert ".." not in asset.storage_key and "passwd" not in asset.storage_key


async def test_default_authorizer_denies(database_url: str, tmp_path: Path) -> None:
    # Built as an adopter who names no Authorizer builds it: the default decides everything.
    media = Rindle(database_url=database_url,
                   storages={"local": LocalStorage(root=tmp_path / "files")},
                   profiles=[ImageProfile], secret_keys=[SECRET])
    data = png(10, 10)
    async with LiveServer(adopter_app(media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        # The Python API's own upload path is trusted code; it makes something to refuse.
        asset = (await media.upload("image", data, filename="a.png")).asset
        await media.drain()
        session = await media.initiate_upload("image", filename="b.png",
                                              content_type="image/png", byte_size=len(data))
        refused = {
            "upload: initiate": await initiate(client, byte_size=len(data)),
            "upload: options": await client.get("/rindle/profiles/image/upload-options"),
            "upload: complete": await client.post(f"/rindle/uploads/{session.id}/complete"),
            "upload: abort": await client.delete(f"/rindle/uploads/{session.id}"),
            "view": await client.get(f"/rindle/assets/{asset.id}"),
            "subscribe": await client.get(f"/rindle/events/asset/{asset.id}"),
        }
        for what, r in refused.items():
            assert r.status_code == 403, (what, r.text)
            assert r.json()["error"]["code"] == "forbidden", what
        # Refused means nothing happened: no new session, the open one untouched.
        assert await media.repo.count_by_state("session") == {"completed": 1,
                                                               "initialized": 1}
        with pytest.raises(Forbidden):
            await media.url("image", asset.id)
        assert (await media.html.view(asset.id)).url is None
        # No HTTP route asks for `admin` yet (there is no console); every route asks through
        # require_allowed, so the default is checked there, for every action it knows.
        assert "admin" in ACTIONS
        for action in ACTIONS:
            with pytest.raises(Forbidden):
                await require_allowed(media, action, profile="image", asset=asset)


async def test_upload_options_tell_the_client_which_flows_work(server_media: Rindle) -> None:
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.get("/rindle/profiles/image/upload-options")
        assert r.status_code == 200
        body = r.json()
        assert body["strategies"] == ["tus", "presigned_put"]
        assert body["max_bytes"] == 1024 * 1024
        assert "image/png" in body["accept"]
        assert (await client.get("/rindle/profiles/nope/upload-options")).status_code == 404


async def test_a_put_cut_mid_body_keeps_nothing_and_the_session_takes_a_new_upload(
        server_media: Rindle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rindle")
    data = png_of_size(600_000)
    root = server_media.storages["local"].root  # type: ignore[attr-defined]
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data))).json()
        await put_and_vanish(body["upload"]["url"], data, root, caplog)
        session = await server_media.repo.get_session(body["session_id"])
        assert session is not None and session.state == "signed"
        local = server_media.storages["local"]
        assert await local.head(session.upload_key) is None
        assert in_flight(root) == [] and stored_files(root) == []
        # The same signed URL still takes the whole file, which then completes.
        put = await client.put(body["upload"]["url"], content=data,
                               headers=body["upload"]["headers"])
        assert put.status_code == 200 and put.json()["state"] == "uploaded"
        done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
        assert done.status_code == 200, done.text
        assert await local.head(session.upload_key) is not None


async def test_a_cancelled_upload_is_aborted_and_purged(
        server_media: Rindle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rindle")
    data = png_of_size(600_000)
    root = server_media.storages["local"].root  # type: ignore[attr-defined]
    async with LiveServer(adopter_app(server_media)) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        body = (await initiate(client, byte_size=len(data))).json()
        # The browser cancels mid-PUT: the socket closes with two thirds of the body unsent,
        # then the uploader tells Rindle.
        await put_and_vanish(body["upload"]["url"], data, root, caplog)
        assert in_flight(root) == []
        r = await client.delete(f"/rindle/uploads/{body['session_id']}")
        assert r.status_code == 200 and r.json()["state"] == "aborted"
        again = await client.delete(f"/rindle/uploads/{body['session_id']}")
        assert again.status_code == 200
        late = await client.put(body["upload"]["url"], content=data,
                                headers=body["upload"]["headers"])
        assert late.status_code == 409 and late.json()["error"]["code"] == "session_closed"
        await server_media.drain()
        assert await server_media.repo.get_asset(body["asset_id"]) is None
        assert [p.reason for p in await server_media.purges()] == ["upload_aborted"]
    assert stored_files(root) == []


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_huge_json_body_is_refused_without_reading_it_all(server_media: Rindle,
                                                                  framing: str) -> None:
    # 64 MiB announced (by its length, or as an open-ended chunked body); the client sends
    # at most CAP of it, a piece at a time, and stops there: only a server that answers
    # without waiting for the rest can answer at all.
    total, piece, cap = 64 * 1024 * 1024, 16 * 1024, 1024 * 1024
    chunked = framing == "chunked"
    headers = {"Content-Type": "application/json"}
    headers.update({"Transfer-Encoding": "chunked"} if chunked
                   else {"Content-Length": str(total)})
    async with LiveServer(adopter_app(server_media)) as srv:
        post = RawRequest("POST", f"{srv.url}/rindle/uploads", headers)
        try:
            await post.start()
            answer = asyncio.create_task(post.response())
            first = b'{"x": "'
            while not answer.done() and post.sent < cap:
                data = first + b"a" * (piece - len(first))
                first = b""
                try:
                    await post.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                except ConnectionError:
                    break  # the server answered and hung up; the answer is in the buffer
                await asyncio.sleep(0.002)
            async with asyncio.timeout(10):  # only stops a hung test
                status, _, raw = await answer
        finally:
            post.close()
    error = json.loads(raw)["error"]
    assert status == 413 and error["code"] == "body_too_large"
    assert post.sent <= cap < total  # answered with 63 of the 64 MiB never sent
    if chunked:  # no length to judge by: the server counted past its limit, then stopped
        assert post.sent > error["details"]["limit"]
