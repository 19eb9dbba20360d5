"""The Processor plug point: turns an original into one variant's file; built-ins load lazily.

A processor is a function of its inputs. It gets the original as a ``Source`` (read it as a
stream, or ask for ``await source.path()``: a local file, in place on Local storage and
downloaded once per job elsewhere), the variant's recipe, and a ``Context`` (a private
scratch directory, the profile's pixel limit, cancellation checks, progress reports). It
writes its output into the scratch directory and returns an ``Output`` naming the file and
its content type. The pipeline does the rest: it stores the file under a generated key,
records the processing run, moves the variant row, publishes live events and removes the
scratch directory, whatever happens.

A processor that builds several variants better together (one decode for all sizes) also
implements ``process_many`` (``BatchProcessor``); the pipeline then hands it every variant
of the asset that uses it in one call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model.records import Asset
    from ..profile import Variant


@dataclass(frozen=True)
class Output:
    """One built file in the scratch directory, and what it is.

    ``path`` must lie inside the job's scratch directory (the pipeline reads it from there
    and removes it afterwards); ``content_type`` is served with it. Dimensions and duration
    are recorded on the variant row when given.
    """

    path: Path
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


class Source(Protocol):
    """The original of one asset, read on demand. ``asset`` holds what promotion found:
    ``kind``, ``content_type``, ``byte_size``, ``width``, ``height``, ``metadata``."""

    @property
    def asset(self) -> Asset: ...

    async def path(self) -> Path:
        """A local file with the original's bytes: in place where the storage keeps files on
        this machine, else downloaded into the scratch directory once per job."""
        ...

    def stream(self, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` inclusive (``None``: to the end)."""
        ...

    async def read(self, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start``."""
        ...


class Context(Protocol):
    """What a processor may ask of the job that runs it."""

    @property
    def scratch(self) -> Path:
        """A private directory for this job's files; the pipeline removes it."""
        ...

    @property
    def max_pixels(self) -> int | None:
        """The profile's pixel limit: refuse (before decoding) an original over it."""
        ...

    async def cancelled(self) -> bool:
        """Whether the variants being built were cancelled meanwhile: a long job checks now
        and then, and stops early (its output would be dropped anyway)."""
        ...

    async def progress(self, percent: float) -> None:
        """Report how far the job is (0-100); subscribers get ``processing_progress``."""
        ...

    def add_metadata(self, facts: Mapping[str, Any]) -> None:
        """Facts about the original learnt on the way (a placeholder, a duration), merged
        into ``asset.metadata`` once the job ends."""
        ...


@runtime_checkable
class Processor(Protocol):
    """Builds one variant's file from an original (see the module docstring).

    Raise to fail the attempt: a ``RindleError`` that is not ``retryable`` (a corrupt file)
    fails the variant for good; anything else is retried with backoff.
    """

    async def process(self, source: Source, variant: Variant, context: Context) -> Output: ...


@runtime_checkable
class BatchProcessor(Processor, Protocol):
    """A processor that builds several variants of one asset together."""

    async def process_many(self, source: Source, variants: Mapping[str, Variant],
                           context: Context) -> Mapping[str, Output | Exception]:
        """Every named variant's ``Output``, or the exception that stopped that one. A name
        left out was cancelled. Raising fails them all alike."""
        ...


__all__ = ["BatchProcessor", "Context", "Output", "Processor", "Source"]
