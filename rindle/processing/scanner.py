"""The Scanner plug point: an adopter's malware or content check that can quarantine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model.records import Asset


@dataclass(frozen=True)
class ScanVerdict:
    """A scanner's answer: clean, or quarantine with a short stable reason."""

    clean: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> ScanVerdict:
        return cls(clean=True)

    @classmethod
    def quarantine(cls, reason: str) -> ScanVerdict:
        return cls(clean=False, reason=reason)


@runtime_checkable
class Scanner(Protocol):
    """Looks at an uploaded original before it becomes available.

    ``read()`` streams the object's bytes from storage on demand, so a scanner that only
    needs a hash or a prefix never downloads the whole file twice.
    """

    async def scan(self, asset: Asset, read: Callable[[], AsyncIterator[bytes]]) -> ScanVerdict:
        ...
