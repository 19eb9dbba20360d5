"""Current-state payloads: what a live subscriber is sent first, before any event.

A client that renders a page and then subscribes would miss a change made in between, so the
SSE and WebSocket endpoints subscribe to the asset's channel first and then send the asset's
current state, shaped like a ``state_change`` event::

    {"entity": "asset", "id": ..., "asset_id": ..., "to": <state>, "snapshot": true,
     "variants": {name: state}}

Reads are coalesced: many subscribers of one asset connecting at once (a popular page, a
reconnect storm after a deploy) share one database read. A read is shared only by callers
that asked for it *before it started*, so every caller's read still begins after its own
subscription: nothing published in between is lost.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from .events import STATE_CHANGE

if TYPE_CHECKING:
    from ..app import Rindle
    from ..model.records import Asset, AssetVariant


def snapshot_data(asset: Asset, variants: list[AssetVariant]) -> dict[str, Any]:
    """The snapshot payload of an asset and its variant rows (a ``state_change`` shape)."""
    return {
        "entity": "asset",
        "id": asset.id,
        "asset_id": asset.id,
        "to": asset.state,
        "snapshot": True,
        "variants": {v.name: v.state for v in variants},
    }


class AssetSnapshot:
    """One read of an asset's current state, shared by every subscriber it was read for.

    ``data`` is the payload (treat it as read-only: it is shared). ``frames`` is a cache the
    endpoints use for the encoded event, one entry per output format.
    """

    __slots__ = ("asset", "data", "frames")

    name = STATE_CHANGE

    def __init__(self, asset: Asset, data: dict[str, Any]) -> None:
        self.asset = asset
        self.data = data
        self.frames: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"AssetSnapshot({self.asset.id!r}, to={self.data['to']!r})"


async def read_snapshot(media: Rindle, asset_id: str) -> AssetSnapshot | None:
    """Read one asset's current state now (not coalesced); ``None`` when it does not exist."""
    asset = await media.repo.get_asset(asset_id)
    if asset is None:
        return None
    variants = await media.repo.list_variants(asset_id)
    return AssetSnapshot(asset, snapshot_data(asset, variants))


class SnapshotReader:
    """Coalesces concurrent snapshot reads of the same asset (see the module docstring)."""

    def __init__(self, media: Rindle) -> None:
        self.media = media
        self._waiting: dict[str, asyncio.Task[AssetSnapshot | None]] = {}
        self.reads = 0  # database reads done, for tests and benchmarks

    async def read(self, asset_id: str) -> AssetSnapshot | None:
        """The asset's state as read by a query that starts after this call; ``None`` if gone."""
        task = self._waiting.get(asset_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(asset_id))
            task.add_done_callback(_retrieve)
            self._waiting[asset_id] = task
        # shield: one caller giving up (its client left) must not cancel the others' read
        return await asyncio.shield(task)

    async def _read(self, asset_id: str) -> AssetSnapshot | None:
        # From here on the read is under way: later callers must start a read of their own.
        if self._waiting.get(asset_id) is asyncio.current_task():
            del self._waiting[asset_id]
        self.reads += 1
        return await read_snapshot(self.media, asset_id)


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every caller may have gone (shielded and cancelled): mark the outcome as seen anyway.
    if not task.cancelled():
        task.exception()


_readers: weakref.WeakKeyDictionary[Rindle, SnapshotReader] = weakref.WeakKeyDictionary()


def snapshots_for(media: Rindle) -> SnapshotReader:
    """The runtime's shared :class:`SnapshotReader` (one per ``Rindle``)."""
    reader = _readers.get(media)
    if reader is None:
        reader = _readers[media] = SnapshotReader(media)
    return reader
