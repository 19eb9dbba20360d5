"""Declared checksums: signed into the presigned PUT, checked by Rindle's own route and by
the server-side upload as the body streams, and compared again at promotion."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import Profile, Rindle, ValidationError
from rindle.upload.checksums import Checksum, ChecksumMismatch
from tests.conftest import LiveServer, MakeMedia
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class S3Photo(Profile):
    name = "photo"
    storage = "s3"
    allow_mime = ["image/png"]


def sha256(data: bytes) -> str:
    return "sha256:" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def md5(data: bytes) -> str:
    return "md5:" + base64.b64encode(hashlib.md5(data).digest()).decode()


def _app(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


def _other(data: bytes) -> bytes:
    """The same PNG header and size, other bytes: sniffing alone would let it through."""
    return data[:-8] + bytes(8)


@pytest.mark.parametrize("value", ["", "sha256", "sha256:", "sha1:AAAA", "md5:not base64!",
                                   "sha256:" + base64.b64encode(b"short").decode()])
def test_malformed_checksums_are_refused(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Checksum.parse(value)
    assert caught.value.code == "invalid_checksum" and caught.value.status_code == 422


def test_a_checksum_matches_only_its_own_kind() -> None:
    data = b"hello"
    c = Checksum.parse(sha256(data))
    assert c.matches("sha256:" + hashlib.sha256(data).hexdigest()) is True
    assert c.matches("sha256:" + hashlib.sha256(b"other").hexdigest()) is False
    assert c.matches("etag:" + hashlib.md5(data).hexdigest()) is None
    m = Checksum.parse(md5(data))
    assert m.matches("etag:" + hashlib.md5(data).hexdigest()) is True
    assert m.matches("etag:" + hashlib.md5(data).hexdigest() + "-2") is None


@pytest.mark.parametrize("declare", [sha256, md5])
async def test_local_route_refuses_bytes_other_than_declared(make_media: MakeMedia,
                                                            declare: object) -> None:
    media = make_media()
    data = png(30, 20)
    checksum = declare(data)  # type: ignore[operator]
    async with LiveServer(_app(media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", json={
            "profile": "image", "filename": "a.png", "content_type": "image/png",
            "byte_size": len(data), "checksum": checksum})
        assert r.status_code == 201, r.text
        upload = r.json()["upload"]
        header = "x-amz-checksum-sha256" if checksum.startswith("sha256") else "Content-MD5"
        assert upload["headers"][header] == checksum.split(":", 1)[1]
        bad = await client.put(upload["url"], content=_other(data), headers=upload["headers"])
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "checksum_mismatch"
        session = await media.repo.get_session(r.json()["session_id"])
        assert session is not None and session.state == "signed"
        assert await media.storage_for("image").head(session.upload_key) is None
        good = await client.put(upload["url"], content=data, headers=upload["headers"])
        assert good.status_code == 200
        done = await client.post(f"/rindle/uploads/{session.id}/complete")
        assert done.status_code == 200
        await media.drain()
        asset = await media.asset(session.asset_id)
        assert asset.state == "available"
        assert asset.checksum == "sha256:" + hashlib.sha256(data).hexdigest()


async def test_server_side_upload_checks_the_declared_checksum(make_media: MakeMedia) -> None:
    media = make_media()
    data = png(30, 20)
    async with media.connected():
        with pytest.raises(ChecksumMismatch):
            await media.upload("image", _other(data), filename="a.png", checksum=md5(data))
        await media.drain()
        [purge] = await media.purges()
        assert purge.reason == "checksum_mismatch"
        ok = await media.upload("image", data, filename="a.png", checksum=md5(data))
        await media.drain()
        assert (await media.asset(ok.asset.id)).state == "available"


@SQLITE
async def test_s3_signs_the_checksum_and_promotion_catches_a_store_that_ignores_it(
        make_media: MakeMedia, s3: S3Bucket) -> None:
    media = make_media(storages={"s3": s3.storage()}, profiles=[S3Photo])
    data = png(30, 20)
    async with LiveServer(_app(media)) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", json={
            "profile": "photo", "filename": "a.png", "content_type": "image/png",
            "byte_size": len(data), "checksum": sha256(data)})
        assert r.status_code == 201, r.text
        body = r.json()
        upload = body["upload"]
        signed = parse_qs(urlsplit(upload["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
        # Real S3 refuses any other body (BadDigest) and the header can't be dropped.
        assert "x-amz-checksum-sha256" in signed
        assert upload["headers"]["x-amz-checksum-sha256"] == sha256(data).split(":", 1)[1]
        # moto enforces neither: the wrong bytes land, and promotion refuses them.
        put = await client.put(upload["url"], content=_other(data), headers=upload["headers"])
        assert put.status_code == 200
        assert (await client.post(f"/rindle/uploads/{body['session_id']}/complete")
                ).status_code == 200
        await media.drain()
        asset = await media.asset(body["asset_id"])
        assert asset.state == "quarantined" and asset.quarantine_reason == "checksum_mismatch"
        shown = (await client.get(f"/rindle/assets/{body['asset_id']}")).json()
        assert "url" not in shown


@SQLITE
async def test_s3_content_md5_is_signed(make_media: MakeMedia, s3: S3Bucket) -> None:
    media = make_media(storages={"s3": s3.storage()}, profiles=[S3Photo])
    data = png(30, 20)
    async with media.connected():
        session = await media.initiate_upload("photo", filename="a.png",
                                              content_type="image/png", byte_size=len(data),
                                              checksum=md5(data))
        ticket = await media.sign_url(session.id)
        signed = parse_qs(urlsplit(ticket.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert "content-md5" in signed
        assert ticket.headers["Content-MD5"] == md5(data).split(":", 1)[1]
