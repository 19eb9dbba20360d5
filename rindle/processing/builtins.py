"""Rindle's own processors, loaded only when a variant kind needs one and its library is there."""

from __future__ import annotations

import importlib.util
import shutil

from .processor import Processor


def builtin_processor(kind: str) -> Processor | None:
    """Rindle's own processor for ``kind``, or ``None`` when its library is not installed:
    ``image`` needs pyvips; ``video`` and ``audio`` need the ffmpeg and ffprobe programs."""
    if kind == "image" and importlib.util.find_spec("pyvips") is not None:
        from .image import ImageProcessor

        return ImageProcessor()
    if kind in ("video", "audio") and shutil.which("ffmpeg") and shutil.which("ffprobe"):
        from .av import AudioProcessor, VideoProcessor

        return VideoProcessor() if kind == "video" else AudioProcessor()
    return None


__all__ = ["builtin_processor"]
