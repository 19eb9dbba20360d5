"""The Analyzer plug point, and the built-in image analyzer run during promotion."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..logs import get_logger
from .processor import Source

if TYPE_CHECKING:
    from ..model.records import Asset
    from .processor import Source

log = get_logger("rindle.analyzer")


class AnalyzedSource(Source, Protocol):
    """The original as an analyzer sees it: a ``Source`` plus its first bytes."""

    @property
    def head(self) -> bytes:
        """The original's first bytes (at least the header the sniffer needed)."""
        ...


@runtime_checkable
class Analyzer(Protocol):
    """Adds facts about an original while it is being promoted.

    ``asset`` carries what promotion found so far (``kind``, the sniffed ``content_type``,
    ``byte_size``, header ``width``/``height``, ``filename``, ``profile``); ``source`` reads
    the original: ``source.head`` (its first bytes), ``source.read``/``stream``, and
    ``await source.path()`` for a local file when a tool needs one. Return a dict:
    ``width``/``height`` replace the asset's dimensions, every other key is merged into
    ``asset.metadata``. Return ``None`` for assets it has nothing to say about. An exception
    is logged and ignored: analysis never blocks promotion.
    """

    async def analyze(self, asset: Asset, source: AnalyzedSource) -> dict[str, Any] | None:
        ...


class ImageAnalyzer:
    """Header facts of images through libvips, without decoding pixels.

    Records ``orientation`` (EXIF, 1-8), ``has_alpha``, ``pages`` and ``animated``, and
    swaps width/height for EXIF orientations 5-8 so they are the dimensions people see
    (what ``<img width height>`` needs to avoid layout shift). The blurred ``placeholder``
    is made when variants are built, from the decode they share.
    """

    async def analyze(self, asset: Asset, source: AnalyzedSource) -> dict[str, Any] | None:
        if asset.kind != "image" or importlib.util.find_spec("pyvips") is None:
            return None
        import anyio.to_thread

        return await anyio.to_thread.run_sync(_header_facts, source.head)


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
