"""What a plug-in is handed for one job: the original as a ``Source``, and a ``Context``.

The pipeline makes one ``Workspace`` per job: a private scratch directory (removed when the
job ends, whatever happens), the original read lazily from storage and materialized as a
local file at most once, and the context a processor reports through.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..model.records import Asset
from ..storage.base import Capability, Storage, local_files

#: The prefix of every job's scratch directory (``rindle cleanup`` sweeps old ones).
SCRATCH_PREFIX = "rindle-job-"
_CHUNK = 256 * 1024
#: Progress is published at most this often (seconds), and on every whole step of this size.
_PROGRESS_EVERY = 0.5
_PROGRESS_STEP = 5.0


class StoredSource:
    """An asset's original in its storage (the ``Source`` of processors and analyzers)."""

    def __init__(self, storage: Storage, asset: Asset, scratch: Callable[[], Awaitable[Path]],
                 *, head: bytes = b"") -> None:
        self._storage = storage
        self._asset = asset
        self._scratch = scratch
        self._path: Path | None = None
        self._lock = anyio.Lock()
        #: The first bytes, when the caller read them already (promotion's sniffing).
        self.head = head

    def __repr__(self) -> str:
        return f"StoredSource(asset={self._asset.id!r})"

    @property
    def asset(self) -> Asset:
        return self._asset

    async def path(self) -> Path:
        async with self._lock:
            if self._path is None:
                self._path = await self._materialize()
            return self._path

    async def _materialize(self) -> Path:
        key = self._asset.storage_key
        if Capability.LOCAL in self._storage.capabilities:
            # The file where it lies: libvips and ffmpeg read it without a copy.
            return Path(local_files(self._storage).local_path(key))
        suffix = Path(key).suffix
        target = (await self._scratch()) / f"original{suffix}"
        async with await anyio.open_file(target, "wb") as out:
            async for chunk in self._storage.stream(key, chunk_size=_CHUNK):
                await out.write(chunk)
        return target

    def stream(self, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._storage.stream(self._asset.storage_key, start=start, end=end,
                                    chunk_size=_CHUNK)

    async def read(self, start: int, length: int) -> bytes:
        return await self._storage.read_range(self._asset.storage_key, start, length)


Publish = Callable[[float], Awaitable[None]]
Cancelled = Callable[[], Awaitable[bool]]


class JobContext:
    """The ``Context`` of one job: scratch, the pixel limit, cancellation and progress."""

    def __init__(self, scratch: Path, *, max_pixels: int | None, cancelled: Cancelled,
                 publish: Publish) -> None:
        self._scratch = scratch
        self._max_pixels = max_pixels
        self._cancelled = cancelled
        self._publish = publish
        self._last: tuple[float, float] | None = None  # (percent, monotonic time) published
        #: What ``add_metadata`` collected, for the pipeline to merge into the asset.
        self.metadata: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"JobContext(scratch={str(self._scratch)!r})"

    @property
    def scratch(self) -> Path:
        return self._scratch

    @property
    def max_pixels(self) -> int | None:
        return self._max_pixels

    async def cancelled(self) -> bool:
        return await self._cancelled()

    async def progress(self, percent: float) -> None:
        percent = max(0.0, min(100.0, float(percent)))
        at = time.monotonic()
        if self._last is not None and percent < 100.0:
            last, when = self._last
            if percent <= last:
                return  # never backwards, never the same twice
            # A processor may report every frame: subscribers get a few events a second.
            if percent - last < _PROGRESS_STEP and at - when < _PROGRESS_EVERY:
                return
        self._last = (percent, at)
        await self._publish(percent)

    def add_metadata(self, facts: Mapping[str, Any]) -> None:
        self.metadata.update(facts)

    def part(self, name: str) -> JobContext:
        """A context for one of several variants built one by one: its own subdirectory of
        the scratch (so two calls writing ``out.jpg`` don't collide), the same callbacks and
        the same metadata."""
        scratch = self._scratch / name
        scratch.mkdir(exist_ok=True)
        child = JobContext(scratch, max_pixels=self._max_pixels, cancelled=self._cancelled,
                           publish=self._publish)
        child.metadata = self.metadata
        return child


class Workspace:
    """One job's scratch directory, created on first use and removed by ``close()``."""

    def __init__(self, parent: str | Path | None = None) -> None:
        self._parent = None if parent is None else Path(parent)
        self._dir: Path | None = None

    def __repr__(self) -> str:
        return f"Workspace({str(self._dir) if self._dir else 'unused'!r})"

    async def path(self) -> Path:
        """The directory (made now if needed)."""
        if self._dir is None:
            self._dir = Path(await anyio.to_thread.run_sync(self._make))
        return self._dir

    def _make(self) -> str:
        if self._parent is not None:
            self._parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self._parent)

    async def close(self) -> None:
        """Remove the directory and everything in it (shielded: runs even when cancelled)."""
        if self._dir is None:
            return
        target, self._dir = self._dir, None
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: shutil.rmtree(target, ignore_errors=True))


async def stream_file(path: Path, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
    """A file's bytes, in chunks: how the pipeline stores an output."""
    async with await anyio.open_file(path, "rb") as f:
        while chunk := await f.read(chunk_size):
            yield chunk


__all__ = ["SCRATCH_PREFIX", "JobContext", "StoredSource", "Workspace", "stream_file"]
