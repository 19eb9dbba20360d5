"""The broker's direct and server-side flows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rindle import FileTooLarge, Rindle, UploadRejected, UploadUnsupported
from tests.support.images import png


async def test_initiate_sign_and_state(media: Rindle) -> None:
    session = await media.initiate_upload("image", filename="me.png", content_type="image/png",
                                          byte_size=100)
    assert session.state == "initialized"
    asset = await media.asset(session.asset_id)
    assert asset.state == "staged"
    assert asset.storage_key.startswith(f"image/{asset.id}/") and asset.storage_key.endswith(
        ".png")
    ticket = await media.broker.sign_url(session.id)
    assert ticket.method == "PUT" and ticket.headers == {"Content-Type": "image/png"}
    assert ticket.url not in repr(ticket)
    assert (await media.repo.get_session(session.id)).state == "signed"  # type: ignore[union-attr]
    again = await media.broker.sign_url(session.id)
    assert again.url.startswith("/rindle/local/")


async def test_server_upload_streams_to_storage_as_the_body_arrives(media: Rindle) -> None:
    # How little memory this takes is measured by bench/upload_memory.py; here: the bytes
    # reach storage while the body is still being produced, not after it was gathered.
    head = png(64, 64)
    chunk = b"\0" * 65536
    in_flight = media.storages["local"].root / ".rindle-tmp"  # type: ignore[attr-defined]
    on_disk: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield head
        for i in range(12):  # ~768 KiB more, under the 1 MiB limit
            [part] = in_flight.iterdir()  # the one temporary file being written
            on_disk.append(part.stat().st_size)
            # Everything handed over so far is in it (bar what a write buffer may hold).
            assert on_disk[-1] >= len(head) + (i - 1) * len(chunk)
            yield chunk

    result = await media.upload("image", body(), filename="big.png", content_type="image/png")
    assert result.asset.state == "validating"
    assert result.session.state == "completed" and result.session.strategy == "server"
    assert result.asset.byte_size == len(head) + 12 * 65536
    assert on_disk[-1] >= len(head) + 10 * len(chunk)  # on disk before the last chunk was made
    assert list(in_flight.iterdir()) == []
    stored = await media.storages["local"].head(result.session.upload_key)
    assert stored is not None and stored.size == result.asset.byte_size


async def test_server_upload_over_the_limit_keeps_nothing(media: Rindle) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield png(8, 8)
        for _ in range(40):
            yield b"\0" * 65536

    with pytest.raises(FileTooLarge):
        await media.upload("image", body(), filename="huge.png", content_type="image/png")
    await media.drain()
    assert await media.repo.list_assets() == []
    [purge] = await media.purges()
    assert purge.reason == "max_bytes_exceeded"
    files = media.storages["local"].root  # type: ignore[attr-defined]
    assert [p for p in files.rglob("*") if p.is_file()] == []


async def test_server_upload_of_nothing_is_refused(media: Rindle) -> None:
    with pytest.raises(UploadRejected) as err:
        await media.upload("image", b"", filename="e.png", content_type="image/png")
    assert err.value.code == "empty_file"


async def test_file_objects_are_read_in_chunks(media: Rindle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.png"
    path.write_bytes(png(33, 22))
    with path.open("rb") as fh:
        result = await media.upload("image", fh, content_type="image/png")
    assert result.asset.filename == "p.png"
    await media.drain()
    assert (await media.asset(result.asset.id)).width == 33


async def test_direct_upload_needs_a_storage_that_can(media: Rindle) -> None:
    media.storages["local"].capabilities = frozenset()  # type: ignore[misc]
    with pytest.raises(UploadUnsupported):
        await media.initiate_upload("image", filename="a.png", content_type="image/png",
                                    byte_size=10)
