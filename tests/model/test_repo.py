"""Queries and transitions on both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from rindle import InvalidTransition, NotFound, Rindle
from rindle.model.records import Change


async def _asset(media: Rindle, **kw: object) -> str:
    a = await media.repo.insert_asset(profile="image", storage="local",
                                      storage_key=f"image/{id(kw)}/{len(kw)}.png",
                                      metadata={"nested": {"a": [1, 2]}}, **kw)
    return a.id


async def test_json_and_timestamps_round_trip(media: Rindle) -> None:
    asset = await media.repo.require_asset(await _asset(media))
    assert asset.metadata == {"nested": {"a": [1, 2]}}
    assert isinstance(asset.metadata, dict)
    assert asset.created_at is not None and asset.created_at.tzinfo is not None
    assert asset.created_at.utcoffset() == UTC.utcoffset(None)


async def test_transition_is_conditional(media: Rindle) -> None:
    aid = await _asset(media)
    moved = await media.repo.transition_asset(aid, "staged", "validating")
    assert moved.state == "validating"
    with pytest.raises(InvalidTransition) as err:
        await media.repo.transition_asset(aid, "staged", "validating")
    assert (err.value.from_state, err.value.to_state, err.value.actual) == (
        "staged", "validating", "validating")
    assert err.value.code == "invalid_transition"


async def test_illegal_transition_names_from_and_to(media: Rindle) -> None:
    aid = await _asset(media)
    with pytest.raises(InvalidTransition) as err:
        await media.repo.transition_asset(aid, "staged", "ready")
    assert "staged -> ready" in str(err.value)
    assert (await media.repo.require_asset(aid)).state == "staged"


async def test_missing_row_is_not_found(media: Rindle) -> None:
    with pytest.raises(NotFound):
        await media.repo.transition_asset("00000000-0000-0000-0000-000000000000", "staged",
                                          "validating")


async def test_two_actors_never_both_win(media: Rindle) -> None:
    aid = await _asset(media)
    results = await asyncio.gather(
        *(media.repo.transition_asset(aid, "staged", "validating") for _ in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(winners) == 1 and len(losers) == 9


async def test_changes_are_published_after_commit_only(media: Rindle) -> None:
    seen: list[Change] = []

    async def listener(change: Change) -> None:
        seen.append(change)

    media.store.listeners.append(listener)
    aid = await _asset(media)
    with pytest.raises(RuntimeError):
        async with media.store.transaction():
            await media.repo.transition_asset(aid, "staged", "validating")
            assert seen == []
            raise RuntimeError("roll back")
    assert seen == []
    assert (await media.repo.require_asset(aid)).state == "staged"
    async with media.store.transaction():
        await media.repo.transition_asset(aid, "staged", "validating")
        assert seen == []
    assert [(c.entity, c.from_state, c.to_state) for c in seen] == [
        ("asset", "staged", "validating")]


async def test_transitions_publish_live_events_and_telemetry(media: Rindle) -> None:
    from rindle import telemetry

    got: list[tuple[str, dict[str, object], dict[str, object]]] = []
    detach = telemetry.attach("rindle.asset",
                              lambda name, numbers, meta: got.append((name, numbers, meta)))
    aid = await _asset(media)
    events = []

    async def listen() -> None:
        async for event in media.live.subscribe("asset", aid):
            events.append(event)
            return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.05)
    try:
        await media.repo.transition_asset(aid, "staged", "validating")
        await asyncio.wait_for(task, 5)
    finally:
        detach()
    assert events[0].name == "state_change"
    assert events[0].data["from"] == "staged" and events[0].data["to"] == "validating"
    assert got == [("rindle.asset.state_change", {}, {
        "asset_id": aid, "profile": "image", "from_state": "staged", "to_state": "validating",
        "reason": None})]
