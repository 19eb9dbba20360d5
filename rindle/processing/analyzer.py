"""The Analyzer plug point, and the built-in image analyzer run during promotion."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..logs import get_logger

if TYPE_CHECKING:
    from ..app import Rindle
    from ..model.records import Asset
    from ..profile import Profile

log = get_logger("rindle.analyzer")


@runtime_checkable
class Analyzer(Protocol):
    """Adds facts about an original while it is being promoted.

    ``head`` holds the original's first bytes (at least the header the sniffer needed).
    Return a dict: ``width``/``height`` replace the asset's dimensions, every other key is
    merged into ``asset.metadata``. Return ``None`` for assets it has nothing to say about.
    An exception is logged and ignored: analysis never blocks promotion.
    """

    async def analyze(self, media: Rindle, profile: type[Profile], asset: Asset,
                      head: bytes) -> dict[str, Any] | None: ...


class ImageAnalyzer:
    """Header facts of images through libvips, without decoding pixels.

    Records ``orientation`` (EXIF, 1-8), ``has_alpha``, ``pages`` and ``animated``, and
    swaps width/height for EXIF orientations 5-8 so they are the dimensions people see
    (what ``<img width height>`` needs to avoid layout shift). The blurred ``placeholder``
    is made when variants are built, from the decode they share.
    """

    async def analyze(self, media: Rindle, profile: type[Profile], asset: Asset,
                      head: bytes) -> dict[str, Any] | None:
        if asset.kind != "image" or importlib.util.find_spec("pyvips") is None:
            return None
        import anyio.to_thread

        return await anyio.to_thread.run_sync(_header_facts, head)


def _header_facts(head: bytes) -> dict[str, Any] | None:
    import pyvips

    try:
        image = pyvips.Image.new_from_buffer(head, "", access="sequential")
        fields = image.get_fields()
        orientation = int(image.get("orientation")) if "orientation" in fields else 1
        pages = int(image.get("n-pages")) if "n-pages" in fields else 1
        facts: dict[str, Any] = {"orientation": orientation, "has_alpha": bool(image.hasalpha()),
                                 "pages": pages, "animated": pages > 1}
        width, height = image.width, image.height
    except pyvips.Error:
        return None  # a format libvips can't read from its header alone: the sniffer's facts stand
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    facts["width"], facts["height"] = width, height
    return facts


def builtin_analyzers() -> list[Analyzer]:
    """The analyzers every runtime runs first."""
    return [ImageAnalyzer()]
