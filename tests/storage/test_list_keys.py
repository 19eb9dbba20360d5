"""``Storage.list_keys`` on every adapter: what is listed, in pages, in the API's key form."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rindle import LocalStorage
from rindle.delivery.signing import Signer
from rindle.storage.base import ObjectListing, Storage, StorageContext
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

KEYS = ["photos/a1/orig.png", "photos/a1/variants/thumb-1.webp", "photos/a2/orig.png",
        "photos2/b1/orig.png", "avatar/c1/orig.png"]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _listed(storage: Storage, prefix: str = "") -> dict[str, ObjectListing]:
    return {item.key: item async for item in storage.list_keys(prefix)}


@pytest.fixture(params=["local", "s3"])
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    storage: Storage
    if request.param == "local":
        storage = LocalStorage(root=tmp_path / "store")
    else:
        bucket: S3Bucket = request.getfixturevalue("s3")
        storage = bucket.storage(key_prefix="media")
    await storage.open(StorageContext(router_path="/rindle", sign=Signer(["k" * 32])))
    for i, key in enumerate(KEYS):
        await storage.write(key, _once(b"x" * (i + 1)), content_type="image/png")
    yield storage
    await storage.close()


async def test_every_object_under_a_prefix_with_its_size_and_time(adapter: Storage) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    everything = await _listed(adapter)
    assert sorted(everything) == sorted(KEYS)
    for i, key in enumerate(KEYS):
        item = everything[key]
        assert item.size == i + 1
        assert item.modified_at.tzinfo is not None
        assert before < item.modified_at < datetime.now(UTC) + timedelta(minutes=5)
        info = await adapter.head(key)  # the keys are the ones the rest of the API takes
        assert info is not None and info.size == item.size

    assert sorted(await _listed(adapter, "photos/")) == KEYS[:3]
    # A prefix is a string prefix, not a directory: "photos" also matches "photos2/".
    assert sorted(await _listed(adapter, "photos")) == sorted(KEYS[:4])
    assert sorted(await _listed(adapter, "photos/a1/")) == KEYS[:2]
    assert sorted(await _listed(adapter, "photos/a")) == KEYS[:3]
    assert sorted(await _listed(adapter, "photos/a1/variants/th")) == [KEYS[1]]
    assert await _listed(adapter, "nothing/") == {}
    assert await _listed(adapter, "photos/a1/orig.png/") == {}

    await adapter.delete(KEYS[0])
    assert KEYS[0] not in await _listed(adapter)


async def test_listing_goes_page_by_page(adapter: Storage) -> None:
    adapter._page_size = 2  # type: ignore[attr-defined]
    for i in range(5):
        await adapter.write(f"many/k{i}/o.bin", _once(b"y"))
    assert sorted(await _listed(adapter, "many/")) == [f"many/k{i}/o.bin" for i in range(5)]
    assert len(await _listed(adapter)) == len(KEYS) + 5
    # Stopping early is fine: the walk is closed, nothing is left open.
    async for _ in adapter.list_keys():
        break


async def test_s3_lists_only_below_its_key_prefix(s3: S3Bucket) -> None:
    storage = s3.storage(key_prefix="media")
    s3.put("elsewhere/x1/orig.png", b"not ours")
    s3.put("media/photos/", b"")  # a console's "folder" marker
    await storage.open(StorageContext(router_path="/rindle", sign=Signer(["k" * 32])))
    try:
        await storage.write("photos/a1/orig.png", _once(b"ours"))
        assert sorted(await _listed(storage)) == ["photos/a1/orig.png"]
        assert s3.keys() == ["elsewhere/x1/orig.png", "media/photos/", "media/photos/a1/orig.png"]
    finally:
        await storage.close()


async def test_local_skips_partial_writes_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = LocalStorage(root=root)
    await storage.open(StorageContext(router_path="/rindle", sign=Signer(["k" * 32])))
    await storage.write("photos/a1/orig.png", _once(b"ours"))
    (root / ".rindle-tmp" / "0123abcd.part").write_bytes(b"half an upload")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret.txt").write_bytes(b"not in the root")
    os.symlink(outside, root / "photos" / "linked-dir")
    os.symlink(outside / "deep" / "secret.txt", root / "photos" / "a1" / "linked-file.png")
    os.symlink(outside, root / "linked-root")
    (root / "photos" / "a1" / "bad..name").write_bytes(b"no key can name this")

    assert sorted(await _listed(storage)) == ["photos/a1/orig.png"]
    assert sorted(await _listed(storage, "photos/")) == ["photos/a1/orig.png"]
    # A prefix through a symlinked directory lists nothing rather than follow it.
    assert await _listed(storage, "linked-root/deep/") == {}
    assert await _listed(storage, ".rindle-tmp/") == {}
    assert await _listed(storage, "../") == {}
