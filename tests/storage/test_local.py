"""LocalStorage against real files in a temporary directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from rindle.delivery.signing import Signer
from rindle.errors import (
    ConfigurationError,
    DeliveryUnsupported,
    FileTooLarge,
    InvalidToken,
    ObjectNotFound,
    StorageError,
    TokenExpired,
)
from rindle.storage.base import Capability, Storage, StorageContext
from rindle.storage.local import LocalGetGrant, LocalPutGrant, LocalStorage

KEY = "avatar/0b7e4c/9f3c2a.png"
SECRET = "a-very-long-secret-key-0001"


def _context(*keys: str) -> StorageContext:
    return StorageContext(router_path="/rindle", sign=Signer(list(keys or [SECRET])))


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _tamper(token: str) -> str:
    # Index 5 is inside a full base64 group, so the decoded payload really changes.
    return token[:5] + ("A" if token[5] != "A" else "B") + token[6:]


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    s = LocalStorage(root=tmp_path / "store")
    await s.open(_context())
    yield s
    await s.close()


async def test_satisfies_the_storage_protocol(storage: LocalStorage) -> None:
    assert isinstance(storage, Storage)
    assert Capability.LOCAL in storage.capabilities
    assert Capability.MULTIPART_UPLOAD not in storage.capabilities


async def test_round_trip(storage: LocalStorage) -> None:
    data = bytes(range(256)) * 4
    info = await storage.write(KEY, _chunks(data[:100], b"", data[100:]), content_type="image/png")
    assert info.key == KEY
    assert info.size == len(data)
    assert info.content_type == "image/png"
    assert info.etag is not None and info.etag.startswith('"') and info.etag.endswith('"')
    assert info.modified_at is not None and info.modified_at.tzinfo is not None

    head = await storage.head(KEY)
    assert head is not None
    assert (head.size, head.etag, head.modified_at) == (info.size, info.etag, info.modified_at)

    assert await storage.read_range(KEY, 10, 5) == data[10:15]
    assert await storage.read_range(KEY, 1020, 100) == data[1020:]
    assert await storage.read_range(KEY, 5000, 10) == b""
    assert await _collect(storage.stream(KEY)) == data
    assert await _collect(storage.stream(KEY, start=3, end=700, chunk_size=64)) == data[3:701]
    assert await _collect(storage.stream(KEY, start=1000)) == data[1000:]

    assert await storage.delete(KEY) is True
    assert await storage.head(KEY) is None
    assert await storage.delete(KEY) is False
    with pytest.raises(ObjectNotFound):
        await storage.read_range(KEY, 0, 1)
    with pytest.raises(ObjectNotFound):
        await _collect(storage.stream(KEY))


async def test_overwrite_changes_the_etag(storage: LocalStorage) -> None:
    first = await storage.write(KEY, _chunks(b"one"))
    second = await storage.write(KEY, _chunks(b"two!"))
    assert second.size == 4
    assert second.etag != first.etag
    assert await storage.read_range(KEY, 0, 10) == b"two!"


async def test_head_of_a_directory_is_none(storage: LocalStorage) -> None:
    await storage.write(KEY, _chunks(b"x"))
    assert await storage.head("avatar") is None
    assert await storage.delete("avatar") is False


async def test_large_chunked_write_is_streamed(storage: LocalStorage) -> None:
    # How little memory a write holds is measured by bench/upload_memory.py; here: each chunk
    # reaches the disk before the next one is asked for, and the key appears only at the end.
    chunk_size, count = 64 * 1024, 48  # 3 MiB
    expected = hashlib.sha256()
    in_flight = storage.root / ".rindle-tmp"

    async def produce() -> AsyncIterator[bytes]:
        for i in range(count):
            # Until the last chunk is handed over, nothing may exist under the key.
            assert not (storage.root / KEY).exists()
            if i:  # the chunks handed over are on disk, bar what a write buffer may hold
                [part] = in_flight.iterdir()
                assert part.stat().st_size >= (i - 1) * chunk_size
            chunk = bytes([i]) * chunk_size
            expected.update(chunk)
            yield chunk

    info = await storage.write(KEY, produce(), max_bytes=chunk_size * count)
    assert info.size == chunk_size * count
    assert _leftovers(storage.root) == [storage.root / KEY]

    actual = hashlib.sha256()
    async for chunk in storage.stream(KEY):
        actual.update(chunk)
    assert actual.hexdigest() == expected.hexdigest()
    assert await storage.read_range(KEY, chunk_size * 47 - 1, 2) == bytes([46, 47])


async def test_max_bytes_overflow_leaves_nothing(storage: LocalStorage) -> None:
    with pytest.raises(FileTooLarge) as caught:
        await storage.write(KEY, _chunks(b"12345", b"67890", b"X"), max_bytes=10)
    assert caught.value.code == "max_bytes_exceeded"
    assert await storage.head(KEY) is None
    assert _leftovers(storage.root) == []


async def test_exactly_max_bytes_is_accepted(storage: LocalStorage) -> None:
    info = await storage.write(KEY, _chunks(b"12345", b"67890"), max_bytes=10)
    assert info.size == 10


async def test_failing_chunk_iterator_leaves_nothing(storage: LocalStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial data"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await storage.write(KEY, broken())
    assert await storage.head(KEY) is None
    assert _leftovers(storage.root) == []


async def test_failed_overwrite_keeps_the_old_object(storage: LocalStorage) -> None:
    await storage.write(KEY, _chunks(b"original"))
    with pytest.raises(FileTooLarge):
        await storage.write(KEY, _chunks(b"far too long"), max_bytes=4)
    assert await storage.read_range(KEY, 0, 100) == b"original"


async def test_delete_prunes_empty_parents_only(storage: LocalStorage) -> None:
    await storage.write("a/b/one.bin", _chunks(b"1"))
    await storage.write("a/two.bin", _chunks(b"2"))
    assert await storage.delete("a/b/one.bin") is True
    assert not (storage.root / "a" / "b").exists()
    assert (storage.root / "a").is_dir()
    assert await storage.delete("a/two.bin") is True
    assert not (storage.root / "a").exists()
    assert storage.root.is_dir()


@pytest.mark.parametrize(
    "key",
    ["", "../x", "a/../../x", "/abs", "a\\b", "a\x00b", "a//b", "./a", "a/", ".rindle-tmp/x"],
)
async def test_unsafe_keys_are_refused(storage: LocalStorage, key: str) -> None:
    for attempt in (
        storage.head(key),
        storage.read_range(key, 0, 1),
        storage.write(key, _chunks(b"x")),
        storage.delete(key),
        storage.signed_url(key, expires_in=60),
        storage.presign_put(
            key, content_type="image/png", byte_size=1, expires_in=60, session_id="s"
        ),
    ):
        with pytest.raises(StorageError) as caught:
            await attempt
        assert caught.value.code == "invalid_storage_key"
    with pytest.raises(StorageError):
        await _collect(storage.stream(key))


async def test_symlink_out_of_root_is_refused(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside, storage.root / "link")
    with pytest.raises(StorageError) as caught:
        await storage.read_range("link/secret.txt", 0, 10)
    assert caught.value.code == "invalid_storage_key"
    with pytest.raises(StorageError):
        await storage.write("link/new.txt", _chunks(b"x"))
    assert not (outside / "new.txt").exists()


async def test_open_without_create_needs_an_existing_root(tmp_path: Path) -> None:
    missing = LocalStorage(root=tmp_path / "missing", create=False)
    with pytest.raises(ConfigurationError) as caught:
        await missing.open(_context())
    assert caught.value.code == "storage_root_missing"
    assert not (tmp_path / "missing").exists()

    (tmp_path / "present").mkdir()
    present = LocalStorage(root=tmp_path / "present", create=False)
    await present.open(_context())
    assert (tmp_path / "present" / ".rindle-tmp").is_dir()


async def test_signing_needs_open(tmp_path: Path) -> None:
    s = LocalStorage(root=tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        await s.signed_url(KEY, expires_in=60)
    assert caught.value.code == "storage_not_open"


async def test_presign_put_round_trip(storage: LocalStorage) -> None:
    before = datetime.now(UTC)
    ticket = await storage.presign_put(
        KEY, content_type="image/png", byte_size=1234, expires_in=600, session_id="sess-1"
    )
    assert ticket.method == "PUT"
    assert ticket.url.startswith("/rindle/local/")
    assert ticket.headers == {"Content-Type": "image/png"}
    assert ticket.expires_at is not None
    assert before + timedelta(seconds=598) <= ticket.expires_at <= before + timedelta(seconds=601)

    grant = storage.verify_put_token(_token(ticket.url))
    assert grant == LocalPutGrant(session_id="sess-1", expires_at=grant.expires_at)
    assert abs(grant.expires_at - ticket.expires_at) <= timedelta(seconds=1)

    with pytest.raises(InvalidToken) as caught:
        storage.verify_put_token(_tamper(_token(ticket.url)))
    assert caught.value.code == "invalid_token"


async def test_signed_url_round_trip(storage: LocalStorage) -> None:
    url = await storage.signed_url(
        KEY,
        expires_in=60,
        filename="café.png",
        content_type="image/png",
        disposition="attachment",
    )
    assert url.startswith("/rindle/files/")
    grant = storage.verify_get_token(_token(url))
    assert grant == LocalGetGrant(
        key=KEY,
        filename="café.png",
        content_type="image/png",
        disposition="attachment",
        expires_at=grant.expires_at,
    )
    bare = storage.verify_get_token(_token(await storage.signed_url(KEY, expires_in=60)))
    assert (bare.filename, bare.content_type, bare.disposition) == (None, None, "inline")

    with pytest.raises(InvalidToken):
        storage.verify_get_token(_tamper(_token(url)))
    with pytest.raises(ValueError):
        await storage.signed_url(KEY, expires_in=60, disposition="form-data")


async def test_tokens_are_bound_to_their_purpose(storage: LocalStorage) -> None:
    get_token = _token(await storage.signed_url(KEY, expires_in=60))
    ticket = await storage.presign_put(
        KEY, content_type="image/png", byte_size=1, expires_in=60, session_id="s"
    )
    put_token = _token(ticket.url)
    with pytest.raises(InvalidToken):
        storage.verify_put_token(get_token)
    with pytest.raises(InvalidToken):
        storage.verify_get_token(put_token)


async def test_expired_tokens(storage: LocalStorage) -> None:
    ticket = await storage.presign_put(
        KEY, content_type="image/png", byte_size=1, expires_in=-1, session_id="s"
    )
    with pytest.raises(TokenExpired) as caught:
        storage.verify_put_token(_token(ticket.url))
    assert caught.value.code == "token_expired"
    url = await storage.signed_url(KEY, expires_in=-1)
    with pytest.raises(TokenExpired):
        storage.verify_get_token(_token(url))


async def test_malformed_payload_is_an_invalid_token(storage: LocalStorage) -> None:
    sign = Signer([SECRET])
    bad_payloads: list[dict[str, object]] = [
        {"k": KEY, "n": "12", "t": "image/png", "s": "s"},
        {"k": KEY, "n": True, "t": "image/png", "s": "s"},
        {"k": "../etc/passwd", "n": 1, "t": "image/png", "s": "s"},
        {"n": 1, "t": "image/png", "s": "s"},
    ]
    for payload in bad_payloads:
        with pytest.raises(InvalidToken):
            storage.verify_put_token(sign.dumps("local.put", payload, expires_in=60))
    bad_get = sign.dumps("local.get", {"k": KEY, "f": None, "t": None, "d": "x"}, expires_in=60)
    with pytest.raises(InvalidToken):
        storage.verify_get_token(bad_get)


async def test_key_rotation(tmp_path: Path) -> None:
    old, new = "old-secret-key-000000001", "new-secret-key-000000001"
    before = LocalStorage(root=tmp_path)
    await before.open(_context(old))
    during = LocalStorage(root=tmp_path)
    await during.open(_context(new, old))
    after = LocalStorage(root=tmp_path)
    await after.open(_context(new))

    old_token = _token(await before.signed_url(KEY, expires_in=60))
    assert during.verify_get_token(old_token).key == KEY
    with pytest.raises(InvalidToken):
        after.verify_get_token(old_token)

    # During rotation the new key signs, so the new tokens outlive the old key.
    new_token = _token(await during.signed_url(KEY, expires_in=60))
    assert after.verify_get_token(new_token).key == KEY
    with pytest.raises(InvalidToken):
        before.verify_get_token(new_token)


async def test_public_url(tmp_path: Path) -> None:
    public = LocalStorage(root=tmp_path, public_base_url="https://cdn.example.com/media/")
    assert public.public_url(KEY) == f"https://cdn.example.com/media/{KEY}"

    private = LocalStorage(root=tmp_path)
    with pytest.raises(DeliveryUnsupported) as caught:
        private.public_url(KEY)
    assert caught.value.code == "delivery_unsupported"
    assert "public_base_url" in caught.value.message


def test_repr_shows_only_the_root(tmp_path: Path) -> None:
    s = LocalStorage(root=tmp_path, public_base_url="https://cdn.example.com")
    assert repr(s) == f"LocalStorage(root={str(tmp_path.resolve())!r})"
    assert s.root == tmp_path.resolve()


async def test_cancelled_write_leaves_nothing(storage: LocalStorage) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"first"
        await anyio.sleep(10)
        yield b"never"

    with anyio.move_on_after(0.1) as scope:
        await storage.write(KEY, slow())
    assert scope.cancelled_caught
    assert await storage.head(KEY) is None
    assert _leftovers(storage.root) == []


async def test_disk_errors_become_storage_errors(storage: LocalStorage) -> None:
    await storage.write("taken", _chunks(b"a file, not a directory"))
    with pytest.raises(StorageError) as caught:
        await storage.write("taken/child.bin", _chunks(b"x"))
    assert caught.value.code == "storage_error"
    assert [p.name for p in _leftovers(storage.root)] == ["taken"]
