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
from typing import TYPE_CHECKING, Any, Protocol

from .events import STATE_CHANGE

if TYPE_CHECKING:
    from ..model.records import Asset, AssetVariant
    from ..model.repo import Repo


class Reads(Protocol):
    """What snapshots read: the asset and variant rows."""

    @property
    def repo(self) -> Repo: ...


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


async def read_snapshot(media: Reads, asset_id: str) -> AssetSnapshot | None:
    """Read one asset's current state now (not coalesced); ``None`` when it does not exist."""
    asset = await media.repo.get_asset(asset_id)
    if asset is None:
        return None
    variants = await media.repo.list_variants(asset_id)
    return AssetSnapshot(asset, snapshot_data(asset, variants))


class _Pending:
    """Per asset: the callers waiting for the next read, and whether a read is running."""

    __slots__ = ("waiters", "running", "task")

    def __init__(self) -> None:
        self.waiters: asyncio.Future[AssetSnapshot | None] | None = None
        self.running = False
        self.task: asyncio.Task[None] | None = None


class SnapshotReader:
    """Coalesces snapshot reads of the same asset (see the module docstring).

    At most one read per asset runs at a time. Callers arriving while it runs wait for the
    next one, which starts when it ends and serves all of them: under a steady stream of
    new subscribers the database sees one read per read-duration, not one per subscriber.
    """

    def __init__(self, media: Reads) -> None:
        self.media = media
        self._assets: dict[str, _Pending] = {}
        self.reads = 0  # database reads done, for tests and benchmarks

    async def read(self, asset_id: str) -> AssetSnapshot | None:
        """The asset's state as read by a query that starts after this call; ``None`` if gone."""
        pending = self._assets.get(asset_id)
        if pending is None:
            pending = self._assets[asset_id] = _Pending()
        if pending.waiters is None:
            pending.waiters = asyncio.get_running_loop().create_future()
            pending.waiters.add_done_callback(_retrieve)
        waiters = pending.waiters
        if not pending.running:
            pending.running = True
            pending.task = asyncio.get_running_loop().create_task(self._run(asset_id, pending))
        # shield: one caller giving up (its client left) must not cancel the others' read
        return await asyncio.shield(waiters)

    async def _run(self, asset_id: str, pending: _Pending) -> None:
        try:
            while pending.waiters is not None:
                # From here on this read is under way: later callers wait for the next one.
                waiters, pending.waiters = pending.waiters, None
                self.reads += 1
                try:
                    result = await read_snapshot(self.media, asset_id)
                except Exception as exc:
                    if not waiters.done():
                        waiters.set_exception(exc)
                except BaseException:
                    waiters.cancel()
                    raise
                else:
                    if not waiters.done():
                        waiters.set_result(result)
        finally:
            pending.running = False
            if pending.waiters is not None:  # cancelled with callers left: fail them too
                pending.waiters.cancel()
                pending.waiters = None
            if self._assets.get(asset_id) is pending:
                del self._assets[asset_id]


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Every caller may have gone (shielded and cancelled): mark the outcome as seen anyway.
    if not future.cancelled():
        future.exception()


_readers: weakref.WeakKeyDictionary[Reads, SnapshotReader] = weakref.WeakKeyDictionary()


def snapshots_for(media: Reads) -> SnapshotReader:
    """The runtime's shared :class:`SnapshotReader` (one per ``Rindle``)."""
    reader = _readers.get(media)
    if reader is None:
        reader = _readers[media] = SnapshotReader(media)
    return reader
