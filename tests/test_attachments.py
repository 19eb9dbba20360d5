"""attach / detach / attachment_for, including 50 concurrent attaches to one slot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rindle import InvalidTransition, LocalStorage, Rindle, ValidationError
from rindle.processing.purge import purge_asset
from tests.conftest import MakeMedia
from tests.support.images import png


class User:
    def __init__(self, user_id: int) -> None:
        self.id = user_id


class Account:
    __rindle_owner_type__ = "accounts"

    def __init__(self, account_id: str) -> None:
        self.id = account_id


async def _asset(media: Rindle) -> str:
    return (await media.upload("image", png(8, 8), filename="a.png")).asset.id


async def test_attach_replace_and_purge(media: Rindle) -> None:
    first, second = await _asset(media), await _asset(media)
    await media.drain()
    att = await media.attach(first, User(1), "avatar")
    assert (att.owner_type, att.owner_id, att.slot, att.asset_id) == ("User", "1", "avatar",
                                                                      first)
    old_key = (await media.asset(first)).storage_key
    await media.attach(second, User(1), "avatar")
    await media.drain()
    found = await media.attachment_for(User(1), "avatar")
    assert found is not None and found.asset_id == second
    assert found.asset is not None and found.asset.id == second
    assert await media.repo.get_asset(first) is None
    assert await media.storages["local"].head(old_key) is None
    [record] = await media.purges(asset_id=first)
    assert record.reason == "replaced" and record.storage_keys == [old_key]


async def test_reattaching_the_same_asset_changes_nothing(media: Rindle) -> None:
    aid = await _asset(media)
    await media.attach(aid, User(2), "avatar")
    await media.attach(aid, User(2), "avatar")
    await media.drain()
    assert await media.repo.get_asset(aid) is not None
    assert await media.purges() == []


async def test_owner_types(media: Rindle) -> None:
    aid = await _asset(media)
    att = await media.attach(aid, Account("x"), "logo")
    assert att.owner_type == "accounts"
    att2 = await media.attach(aid, ("Team", 9), "logo")
    assert (att2.owner_type, att2.owner_id) == ("Team", "9")
    with pytest.raises(ValidationError):
        await media.attach(aid, object(), "logo")


async def test_detach_is_idempotent_and_attachment_for_reads_only(media: Rindle) -> None:
    aid = await _asset(media)
    assert await media.attachment_for(User(3), "avatar") is None
    assert await media.detach(User(3), "avatar") is False
    await media.attach(aid, User(3), "avatar")
    await media.drain()
    before = await media.repo.count_outbox()
    assert (await media.attachment_for(User(3), "avatar")) is not None
    assert await media.repo.count_outbox() == before
    assert await media.detach(User(3), "avatar") is True
    assert await media.detach(User(3), "avatar") is False
    await media.drain()
    assert await media.repo.get_asset(aid) is None


async def test_attaching_a_quarantined_asset_is_refused(media: Rindle) -> None:
    from rindle import InvalidTransition

    result = await media.upload("image", b"<html><body>x</body></html>", filename="x.png")
    await media.drain()
    with pytest.raises(InvalidTransition):
        await media.attach(result.asset.id, User(4), "avatar")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_fifty_concurrent_attaches_leave_one(make_media: MakeMedia) -> None:
    media = make_media()
    async with media.connected():
        ids = [await _asset(media) for _ in range(50)]
        await media.drain()
        # Keep the purges from running until every attach has committed.
        await media.queue.stop()
        results = await asyncio.gather(*(media.attach(a, User(42), "avatar") for a in ids))
        assert len(results) == 50
        attachments = await media.repo.attachments_for_owner("User", "42")
        assert len(attachments) == 1
        winner = attachments[0].asset_id
        purges = await media.repo.list_outbox(kind="purge_asset")
        scheduled = {p.payload["asset_id"] for p in purges}
        assert scheduled == set(ids) - {winner}
        assert len(purges) == 49


class _SlowDeletes(LocalStorage):
    """Local storage whose deletes wait for a signal: the window a purge spends deleting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deleting = asyncio.Event()
        self.go_on = asyncio.Event()

    async def delete(self, key: str) -> bool:
        self.deleting.set()
        await self.go_on.wait()
        return await super().delete(key)


async def test_an_asset_being_purged_cannot_be_attached_again(make_media: MakeMedia,
                                                              tmp_path: Path) -> None:
    # Without the guard, an attach landing while the purge deletes files would lose them
    # and then lose the attachment row with the asset's rows.
    storage = _SlowDeletes(root=tmp_path / "slow")
    media = make_media(storages={"local": storage})
    async with media.connected():
        aid = await _asset(media)
        purge = asyncio.create_task(purge_asset(media, aid, "detached"))
        await storage.deleting.wait()
        with pytest.raises(InvalidTransition) as err:
            await media.attach(aid, ("User", "1"), "avatar")
        assert err.value.actual == "purging"
        storage.go_on.set()
        assert await purge is True
        assert await media.repo.get_asset(aid) is None
        assert await media.repo.attachments_for_owner("User", "1") == []


async def test_an_attached_asset_is_not_purged(media: Rindle) -> None:
    aid = await _asset(media)
    await media.attach(aid, ("User", "1"), "avatar")
    assert await purge_asset(media, aid, "detached") is False
    assert "purging" not in (await media.asset(aid)).metadata
    await media.attach(aid, ("User", "2"), "avatar")  # still attachable
