"""The Processor plug point: builds one variant of one asset; built-ins load lazily."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..app import Rindle
    from ..model.records import Asset
    from ..profile import Profile, Variant


@runtime_checkable
class Processor(Protocol):
    """Builds a variant and stores it; returns the variant row's new fields.

    The returned dict holds ``storage_key`` (required; the object must be stored before
    returning), and optionally ``content_type``, ``byte_size``, ``width``, ``height``,
    ``duration_ms``. Raise to fail the attempt; the job retries with backoff.
    """

    async def process(self, media: Rindle, profile: type[Profile], asset: Asset, name: str,
                      variant: Variant) -> dict[str, Any]: ...


def builtin_processor(kind: str) -> Processor | None:
    """Rindle's own processor for ``kind``, or ``None`` when its library is not installed."""
    if kind == "image" and importlib.util.find_spec("pyvips") is not None:
        from .image import ImageProcessor

        return ImageProcessor()
    return None
