"""Rindle's own processors, loaded only when a variant kind needs one and its library is there."""

from __future__ import annotations

import importlib.util

from .processor import Processor


def builtin_processor(kind: str) -> Processor | None:
    """Rindle's own processor for ``kind``, or ``None`` when its library is not installed."""
    if kind == "image" and importlib.util.find_spec("pyvips") is not None:
        from .image import ImageProcessor

        return ImageProcessor()
    return None


__all__ = ["builtin_processor"]
