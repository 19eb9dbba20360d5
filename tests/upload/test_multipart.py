"""Multipart direct uploads through the Python API, against moto's S3 and a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rindle import (
    FileTooLarge,
    LocalStorage,
    NotFound,
    Profile,
    Rindle,
    SessionExpired,
    UploadRejected,
    UploadUnsupported,
    ValidationError,
)
from rindle.upload import multipart as mp
from rindle.upload.multipart import MultipartSession, plan_parts
from tests.conftest import MakeMedia
from tests.support.events import assert_no_secret, captured, named
from tests.support.images import png_of_size
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

MiB = 1024 * 1024
TiB = 1024 * 1024 * MiB
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class VideoProfile(Profile):
    name = "clip"
    storage = "s3"
    allow_mime = ["image/png"]  # promotion judges content; a padded PNG stands in for media
    max_bytes = 64 * MiB


class HugeProfile(Profile):
    name = "huge"
    storage = "s3"
    allow_mime = ["image/png"]
    max_bytes = 10 * TiB


class LocalOnlyProfile(Profile):
    name = "local_only"
    storage = "local"
    allow_mime = ["image/png"]




@pytest.fixture
async def media(make_media: MakeMedia, s3: S3Bucket, tmp_path: Any) -> AsyncIterator[Rindle]:
    runtime = make_media(storages={"s3": s3.storage(),
                                   "local": LocalStorage(root=tmp_path / "files")},
                         profiles=[VideoProfile, HugeProfile, LocalOnlyProfile])
    async with runtime.connected():
        yield runtime


async def _put_parts(client: httpx.AsyncClient, media: Rindle, started: MultipartSession,
                     data: bytes, numbers: list[int],
                     signed: list[str] | None = None) -> dict[int, str]:
    tickets = await mp.sign_multipart_parts(media, started.session_id, numbers)
    assert sorted(tickets) == sorted(numbers)
    etags = {}
    for n in numbers:
        if signed is not None:
            signed.append(tickets[n].url)
        chunk = data[(n - 1) * started.part_size: n * started.part_size]
        r = await client.put(tickets[n].url, content=chunk, headers=tickets[n].headers)
        assert r.status_code == 200, r.text
        etags[n] = r.headers["etag"]
    return etags


def test_plan_parts_within_s3_limits() -> None:
    assert plan_parts(1) == (8 * MiB, 1)
    assert plan_parts(20 * MiB) == (8 * MiB, 3)
    assert plan_parts(8 * MiB * 10_000) == (8 * MiB, 10_000)
    size, count = plan_parts(100 * 1024 * MiB)
    assert (size, count) == (11 * MiB, 9310)
    size, count = plan_parts(5 * TiB)
    assert size % MiB == 0 and count <= 10_000 and size * count >= 5 * TiB
    assert plan_parts(12 * MiB, 5 * MiB) == (5 * MiB, 3)
    with pytest.raises(FileTooLarge):
        plan_parts(5 * TiB + 1)
    with pytest.raises(ValidationError):
        plan_parts(12 * MiB, 4 * MiB)
    with pytest.raises(ValidationError):
        plan_parts(100 * 1024 * MiB, 5 * MiB)  # would need more than 10,000 parts


async def test_three_parts_with_resume(media: Rindle, s3: S3Bucket) -> None:
    """Runs on SQLite and PostgreSQL: 5 MiB + 5 MiB + the rest, resumed after a 'reload'."""
    data = png_of_size(10 * MiB + 4321)
    with captured() as events:
        signed_urls = await _three_parts(media, s3, data)
    assert len(signed_urls) == 4
    assert_no_secret(events, [urlsplit(url).query for url in signed_urls])
    [(initiated, meta)] = named(events, "rindle.upload.initiate.stop", strategy="multipart")
    assert initiated["bytes"] == len(data)
    signed = named(events, "rindle.upload.sign", session_id=meta["session_id"])
    assert sorted(m["parts"] for m, _ in signed) == [1, 1, 2]
    assert all(3500 < m["ttl"] <= 3600 for m, _ in signed)
    [(completed, _)] = named(events, "rindle.upload.complete.stop", strategy="multipart")
    assert completed["bytes"] == len(data)


async def _three_parts(media: Rindle, s3: S3Bucket, data: bytes) -> list[str]:
    """The flow of the test above; the part URLs it signed (their queries are signatures)."""
    signed: list[str] = []
    started = await mp.initiate_multipart_upload(media, "clip", filename="clip.png",
                                                 byte_size=len(data), content_type="image/png",
                                                 part_size=5 * MiB)
    assert (started.part_size, started.part_count) == (5 * MiB, 3)
    session = await media.repo.get_session(started.session_id)
    assert session is not None and session.state == "signed"
    assert session.strategy == "multipart" and session.multipart_upload_id
    assert session.multipart_parts["part_size"] == 5 * MiB
    assert session.multipart_upload_id not in repr(session)

    ticket = await mp.sign_multipart_part(media, started.session_id, 3)
    signed.append(ticket.url)
    q = {k: v[0] for k, v in parse_qs(urlsplit(ticket.url).query).items()}
    assert q["partNumber"] == "3"
    assert "content-length" in q["X-Amz-SignedHeaders"].split(";")
    ttl = int(q["X-Amz-Expires"])
    assert 3500 < ttl <= 3600
    assert ticket.expires_at is not None
    assert abs((ticket.expires_at - datetime.now(UTC)).total_seconds() - ttl) < 5

    async with httpx.AsyncClient() as client:
        first = await _put_parts(client, media, started, data, [1], signed)
        assert (await media.repo.get_session(started.session_id)).state == "uploading"  # type: ignore[union-attr]

        # The page reloads: the client only knows the session id and asks what is there.
        listed = await mp.list_uploaded_parts(media, started.session_id)
        assert [(p["part_number"], p["size"]) for p in listed] == [(1, 5 * MiB)]
        assert listed[0]["etag"] == first[1]
        done = {p["part_number"] for p in listed}
        rest = [n for n in range(1, started.part_count + 1) if n not in done]
        etags = {**first, **await _put_parts(client, media, started, data, rest, signed)}

    result = await mp.complete_multipart_upload(
        media, started.session_id,
        [{"part_number": n, "etag": etags[n]} for n in sorted(etags)])
    assert result.session.state == "completed"
    assert result.asset.state == "validating"
    assert result.asset.byte_size == len(data)
    await media.drain()
    asset = await media.asset(started.asset_id)
    assert asset.state == "available"
    assert s3.get(asset.storage_key) == data
    assert s3.pending_uploads() == []
    return signed


@SQLITE
async def test_abort_leaves_nothing_behind(media: Rindle, s3: S3Bucket) -> None:
    data = png_of_size(9 * MiB)
    started = await mp.initiate_multipart_upload(media, "clip", filename="a.png",
                                                 byte_size=len(data), content_type="image/png")
    assert started.part_count == 2
    async with httpx.AsyncClient() as client:
        await _put_parts(client, media, started, data, [1])
    assert len(s3.pending_uploads()) == 1

    with captured() as events:
        session = await mp.abort_multipart_upload(media, started.session_id)
        assert session.state == "aborted"
        assert s3.pending_uploads() == []
        again = await mp.abort_multipart_upload(media, started.session_id)  # idempotent
        assert again.state == "aborted"
    aborts = named(events, "rindle.upload.abort", session_id=started.session_id)
    assert [d["strategy"] for _, d in aborts] == ["multipart", "multipart"]
    await media.drain()
    assert await media.repo.get_asset(started.asset_id) is None
    assert [p.reason for p in await media.purges(asset_id=started.asset_id)] == [
        "upload_aborted"]
    assert s3.keys() == []
    with pytest.raises(NotFound):
        await mp.sign_multipart_part(media, started.session_id, 1)


@SQLITE
async def test_wrong_etag_keeps_the_session_completable(media: Rindle, s3: S3Bucket) -> None:
    data = png_of_size(6 * MiB)
    started = await mp.initiate_multipart_upload(media, "clip", filename="a.png",
                                                 byte_size=len(data), content_type="image/png",
                                                 part_size=5 * MiB)
    async with httpx.AsyncClient() as client:
        etags = await _put_parts(client, media, started, data, [1, 2])
    right: list[dict[str, Any]] = [{"part_number": 1, "etag": etags[1]},
                                   {"part_number": 2, "etag": etags[2]}]
    wrong_lists: list[Any] = [
        [{"part_number": 1, "etag": etags[1]},
         {"part_number": 2, "etag": '"0123456789abcdef0123456789abcdef"'}],
        [],
        [right[1], right[0]],
        [right[0], right[0]],
        [right[0]],
        [right[0], {"part_number": 3, "etag": etags[2]}],
        [right[0], {"part_number": 2, "etag": 7}],
        [right[0], {"part_number": "2", "etag": etags[2]}],
        "nope",
    ]
    messages = []
    for parts in wrong_lists:
        with pytest.raises(ValidationError) as caught:
            await mp.complete_multipart_upload(media, started.session_id, parts)
        assert caught.value.code == "invalid_parts", parts
        assert "X-Amz" not in caught.value.message
        messages.append(caught.value.message)
    assert "ETag given for part 2 does not match" in messages[0]
    session = await media.repo.get_session(started.session_id)
    assert session is not None and session.state == "uploading"
    assert len(s3.pending_uploads()) == 1

    # Quotes around ETags are optional.
    result = await mp.complete_multipart_upload(
        media, started.session_id, [{**p, "etag": p["etag"].strip('"')} for p in right])
    assert result.session.state == "completed"
    with pytest.raises(UploadRejected) as twice:
        await mp.complete_multipart_upload(media, started.session_id, right)
    assert twice.value.code == "session_already_completed"
    assert s3.get(result.session.upload_key) == data  # staged until promotion moves it
    await media.drain()
    assert s3.get(result.asset.storage_key) == data
    assert result.session.upload_key not in s3.keys()


@SQLITE
async def test_oversize_is_refused_before_anything_exists(media: Rindle, s3: S3Bucket) -> None:
    with pytest.raises(FileTooLarge) as over_profile:
        await mp.initiate_multipart_upload(media, "clip", filename="a.png",
                                           byte_size=64 * MiB + 1, content_type="image/png")
    assert over_profile.value.code == "max_bytes_exceeded"
    with pytest.raises(FileTooLarge) as over_s3:
        await mp.initiate_multipart_upload(media, "huge", filename="a.png",
                                           byte_size=5 * TiB + 1, content_type="image/png")
    assert "5 TiB" in over_s3.value.message
    with pytest.raises(UploadUnsupported):
        await mp.initiate_multipart_upload(media, "local_only", filename="a.png",
                                           byte_size=100, content_type="image/png")
    with pytest.raises(ValidationError) as no_type:
        await mp.initiate_multipart_upload(media, "clip", filename="noext", byte_size=100)
    assert no_type.value.code == "content_type_required"
    with pytest.raises(UploadRejected):
        await mp.initiate_multipart_upload(media, "clip", filename="a.png", byte_size=0,
                                           content_type="image/png")
    assert await media.repo.list_assets() == []
    assert s3.pending_uploads() == []
    assert s3.keys() == []

    # Exactly 5 TiB is fine: about 10,000 parts of whole MiB.
    started = await mp.initiate_multipart_upload(media, "huge", filename="a.png",
                                                 byte_size=5 * TiB, content_type="image/png")
    assert started.part_count <= 10_000 and started.part_size % MiB == 0
    await mp.abort_multipart_upload(media, started.session_id)


@SQLITE
async def test_part_numbers_and_session_state_are_checked(media: Rindle, s3: S3Bucket) -> None:
    started = await mp.initiate_multipart_upload(media, "clip", filename="a.png",
                                                 byte_size=9 * MiB, content_type="image/png")
    bad_numbers: list[list[Any]] = [[0], [3], [], [True], ["1"]]
    for numbers in bad_numbers:
        with pytest.raises(ValidationError) as caught:
            await mp.sign_multipart_parts(media, started.session_id, numbers)
        assert caught.value.code == "invalid_part_number"
    tickets = await mp.sign_multipart_parts(media, started.session_id, [2, 1, 2])
    assert sorted(tickets) == [1, 2]
    assert tickets[1].headers == {} and tickets[1].method == "PUT"

    with pytest.raises(NotFound) as unknown:
        await mp.sign_multipart_part(media, "no-such-session", 1)
    assert unknown.value.code == "session_not_found"
    presigned = await media.initiate_upload("clip", filename="b.png", content_type="image/png",
                                            byte_size=10)
    with pytest.raises(UploadUnsupported):
        await mp.sign_multipart_part(media, presigned.id, 1)

    await media.repo.update_session(started.session_id,
                                    expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(SessionExpired):
        await mp.sign_multipart_part(media, started.session_id, 1)
    with pytest.raises(SessionExpired):
        await mp.complete_multipart_upload(media, started.session_id,
                                           [{"part_number": 1, "etag": "x"}])
    # Expiry takes the parts away too, and the staged asset is purged.
    assert s3.pending_uploads() == []
    await media.drain()
    assert await media.repo.get_asset(started.asset_id) is None
