"""object_response() over a real LocalStorage, through a tiny Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rindle.delivery.signing import Signer
from rindle.storage.base import StorageContext
from rindle.storage.local import LocalStorage
from rindle.web._files import object_response

KEY = "docs/a1/report.txt"
DATA = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    s = LocalStorage(root=tmp_path / "store")
    sign = Signer(["a-very-long-secret-key-0001"])
    await s.open(StorageContext(router_path="/rindle", sign=sign))
    await s.write(KEY, _once(DATA))
    return s


@pytest.fixture
async def client(storage: LocalStorage) -> AsyncIterator[httpx.AsyncClient]:
    async def serve(request: Request) -> Response:
        return await object_response(
            storage,
            request.path_params["key"],
            method=request.method,
            headers=request.headers,
            content_type=request.query_params.get("type"),
            filename="report é.txt",
            disposition="attachment",
            max_age=int(request.query_params.get("max_age", "0")),
        )

    app = Starlette(routes=[Route("/objects/{key:path}", serve, methods=["GET", "HEAD"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


URL = f"/objects/{KEY}"


async def test_full_body_and_headers(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    r = await client.get(URL, params={"type": "text/plain"})
    assert r.status_code == 200
    assert r.content == DATA
    info = await storage.head(KEY)
    assert info is not None
    h = r.headers
    assert h["etag"] == info.etag
    assert h["content-length"] == str(len(DATA))
    assert h["content-type"] == "text/plain"
    assert h["accept-ranges"] == "bytes"
    assert h["last-modified"].endswith(" GMT")
    assert h["x-content-type-options"] == "nosniff"
    assert "sandbox" in h["content-security-policy"]
    assert h["content-security-policy"].startswith("default-src 'none'")
    assert h["cache-control"] == "private, no-store"
    assert h["content-disposition"] == (
        "attachment; filename=\"report _.txt\"; filename*=UTF-8''report%20%C3%A9.txt"
    )


async def test_content_type_fallback_and_max_age(client: httpx.AsyncClient) -> None:
    r = await client.get(URL, params={"max_age": "300"})
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "private, max-age=300"


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 35),
        ("bytes=-5", 31, 35),
        ("bytes=30-999", 30, 35),
        ("bytes=-100", 0, 35),
    ],
)
async def test_single_range(
    client: httpx.AsyncClient, range_header: str, start: int, end: int
) -> None:
    r = await client.get(URL, headers={"Range": range_header})
    assert r.status_code == 206
    assert r.content == DATA[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("range_header", ["bytes=36-", "bytes=100-200", "bytes=-0"])
async def test_unsatisfiable_range(client: httpx.AsyncClient, range_header: str) -> None:
    r = await client.get(URL, headers={"Range": range_header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert r.content == b""


@pytest.mark.parametrize(
    "range_header",
    ["bytes=0-1,4-5", "bytes=9-3", "bytes=abc", "bytes=", "bytes=-", "items=0-5", "0-5"],
)
async def test_multiple_or_malformed_ranges_get_the_full_body(
    client: httpx.AsyncClient, range_header: str
) -> None:
    r = await client.get(URL, headers={"Range": range_header})
    assert r.status_code == 200
    assert r.content == DATA
    assert "content-range" not in r.headers


async def test_non_ascii_digits_in_range_are_ignored(client: httpx.AsyncClient) -> None:
    # "²".isdigit() is True; the parser must not take it for a number.
    r = await client.get(URL, headers=[(b"Range", "bytes=\xb2-5".encode("latin-1"))])
    assert r.status_code == 200
    assert r.content == DATA


async def test_if_range(client: httpx.AsyncClient) -> None:
    etag = (await client.head(URL)).headers["etag"]
    matching = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert matching.status_code == 206
    assert matching.content == DATA[:4]

    stale = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == DATA

    weak = await client.get(URL, headers={"Range": "bytes=0-3", "If-Range": f"W/{etag}"})
    assert weak.status_code == 200


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match(client: httpx.AsyncClient, form: str) -> None:
    etag = (await client.get(URL)).headers["etag"]
    r = await client.get(URL, headers={"If-None-Match": form.format(etag=etag)})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert r.headers["cache-control"] == "private, no-store"


async def test_if_none_match_other_tag_sends_the_body(client: httpx.AsyncClient) -> None:
    r = await client.get(URL, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    assert r.content == DATA


async def test_if_modified_since(client: httpx.AsyncClient) -> None:
    last_modified = (await client.get(URL)).headers["last-modified"]
    r = await client.get(URL, headers={"If-Modified-Since": last_modified})
    assert r.status_code == 304
    old = await client.get(URL, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert old.status_code == 200


async def test_head_has_headers_but_no_body(client: httpx.AsyncClient) -> None:
    get = await client.get(URL)
    head = await client.head(URL, headers={"Range": "bytes=0-3"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(DATA))
    for name in ("etag", "content-type", "content-disposition", "cache-control"):
        assert head.headers[name] == get.headers[name]


async def test_missing_object_is_a_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/objects/docs/nope/missing.txt")
    assert r.status_code == 404
    body = r.json()
    assert body["error"]["code"] == "object_not_found"
    assert body["error"]["message"]


async def test_empty_object(client: httpx.AsyncClient, storage: LocalStorage) -> None:
    await storage.write("docs/empty.txt", _once(b""))
    r = await client.get("/objects/docs/empty.txt")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"
    ranged = await client.get("/objects/docs/empty.txt", headers={"Range": "bytes=0-"})
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"


async def test_plain_dict_headers_are_case_insensitive(storage: LocalStorage) -> None:
    response = await object_response(
        storage,
        KEY,
        method="get",
        headers={"RANGE": "bytes=0-1"},
        content_type=None,
        filename=None,
    )
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-1/{len(DATA)}"
    assert "content-disposition" in response.headers
    assert response.headers["content-disposition"] == "inline"
