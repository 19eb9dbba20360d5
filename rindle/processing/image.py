"""The built-in image processor: libvips (through pyvips) builds image variants.

How a variant is made:

1. The pipeline hands over the original as a ``Source``: ``await source.path()`` is the file
   where it lies on Local storage, or one download into the job's scratch directory.
2. In a worker thread (the event loop never blocks on libvips) the loader is identified by
   content, the header is read and ``profile.max_pixels`` is checked *before* any pixel is
   decoded. Then the original is decoded **once** for all the asset's variants being built:
   ``pyvips.Image.thumbnail`` shrinks on load to the smallest scale that still serves the
   largest of them, auto-rotates by the EXIF orientation and converts to sRGB (through the
   embedded ICC profile when there is one); an opaque 8-bit PNG, which no loader can
   shrink, takes the same steps with one exact Lanczos reduce instead (see ``_decode``).
   Each variant is derived from that in-memory image (variants of one size share one
   resize) and saved with every piece of metadata stripped (EXIF, GPS, XMP, IPTC, ICC),
   the slowest encoders first, side by side. A 16-pixel placeholder and the header facts
   (orientation, alpha, pages) go into the asset's metadata.
3. Each output is written into the job's scratch directory and returned as an ``Output``;
   the pipeline stores it under a generated key and removes the directory.

Modes (see ``Variant``):

- ``fit``: inside the ``width`` x ``height`` box (either may be omitted: the image is then
  scaled by the one given), aspect ratio kept, **never enlarged**: an original smaller
  than the box comes out at its own size.
- ``fill``: scaled to cover the box (enlarging when the original is smaller), then cut to
  exactly ``width`` x ``height``; ``gravity`` says which part is kept.
- ``crop``: a ``width`` x ``height`` window cut from the original **at its own scale**
  (no resizing), placed by ``gravity``; only when the original is smaller than the box on
  an axis is it enlarged just enough to cover it. The output is always exactly the box.

Gravity: ``centre``, ``attention`` and ``entropy`` use libvips' own interest finders;
compass points keep the named edge or corner (``north`` keeps the top, ``south-east`` the
bottom-right corner, and so on).

Animated GIF and WebP originals give a still image of their **first frame**.

``format=None`` picks: ``webp`` for WebP originals, ``png`` for PNG originals and for GIFs
(or any other original) whose pixels really use transparency, ``jpeg`` otherwise (JPEG,
HEIC/HEIF, AVIF, TIFF, opaque GIF). ``quality`` applies to jpeg, webp and avif; avif is
written by ``heifsave`` with ``compression="av1"``.

Accepted inputs (by the loader libvips picks from the content, not the name): jpeg, png,
webp, gif, heif (HEIC/HEIF/AVIF) and tiff. SVG, JPEG XL and anything only ImageMagick
reads are refused unless passed in ``allowed_inputs``.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import functools
import logging
import os
import platform
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ..errors import RindleError
from ..logs import get_logger
from .processor import Context, Output, Source

if TYPE_CHECKING:
    from ..profile import Variant

_vips: Any
_IMPORT_ERROR: str | None
try:  # pyvips raises OSError (not ImportError) when the libvips shared library is missing
    import pyvips as _pyvips_module
except (ImportError, OSError) as _exc:  # pragma: no cover - depends on the install
    _vips = None
    _IMPORT_ERROR = f"{type(_exc).__name__}: {_exc}"
else:
    _vips = _pyvips_module
    _IMPORT_ERROR = None

__all__ = ["DEFAULT_INPUTS", "ImageProcessor", "capabilities"]

log = get_logger("rindle.processing")

#: Input formats decoded by default (names are the keys of ``_LOADER_CLASSES``).
DEFAULT_INPUTS: frozenset[str] = frozenset({"jpeg", "png", "webp", "gif", "heif", "tiff"})

# libvips loader class-name prefixes -> input format. Anything not listed (magickload,
# pdfload, matload, fitsload, openslide, ...) is refused before its header is read.
_LOADER_CLASSES: tuple[tuple[str, str], ...] = (
    ("VipsForeignLoadJpeg", "jpeg"),
    ("VipsForeignLoadPng", "png"),
    ("VipsForeignLoadSpng", "png"),
    ("VipsForeignLoadWebp", "webp"),
    ("VipsForeignLoadNsgif", "gif"),
    ("VipsForeignLoadGif", "gif"),
    ("VipsForeignLoadHeif", "heif"),
    ("VipsForeignLoadTiff", "tiff"),
    ("VipsForeignLoadJxl", "jxl"),
    ("VipsForeignLoadSvg", "svg"),
)

_OUTPUTS: dict[str, tuple[str, str]] = {  # format -> (extension, content type)
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "avif": ("avif", "image/avif"),
}

_SLOW_ENCODERS = frozenset({"webp", "avif"})  # several times a JPEG's encoding time
_SMART_GRAVITY = {"centre": "centre", "attention": "attention", "entropy": "entropy"}
_BIG = 10_000_000  # VIPS_MAX_COORD: "no limit" for the unconstrained side of a thumbnail
_CHUNK = 256 * 1024  # the block size of _strip_webp's copy

# Metadata that must never reach an output, on top of the saver's strip/keep option.
_DROP_PREFIXES = ("exif-", "xmp-", "iptc-", "gif-", "heif-", "png-comment-", "magick-")
_DROP_FIELDS = frozenset({"icc-profile-data", "orientation", "photoshop-data", "n-pages",
                          "page-height", "delay", "loop", "gif-delay", "gif-loop",
                          "background", "palette-bit-depth", "comment", "resolution-unit"})

# A 16x16 HEVC-coded HEIC (made by libvips' own heifsave) to prove HEIC decoding works.
_HEIC_SAMPLE = base64.b64decode(
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAa1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAA"
    "AAAAAAAAAAAAAA5waXRtAAAAAAACAAAAEGlkYXQAAAAAABAAEAAAADhpbG9jAQAAAERAAAIAAQAAAAAAAAHRAAEA"
    "AAAAAAAAKAACAAEAAAAAAAAAAQAAAAAAAAAIAAAAOGlpbmYAAAAAAAIAAAAVaW5mZQIAAAEAAQAAaHZjMQAAAAAV"
    "aW5mZQIAAAAAAgAAZ3JpZAAAAADYaXBycAAAALZpcGNvAAAAdmh2Y0MBA3AAAAAAAAAAAAAe8AD8/fj4AAAPAyAA"
    "AQAYQAEMAf//A3AAAAMAkAAAAwAAAwAeugJAIQABACpCAQEDcAAAAwCQAAADAAADAB6gIIEFluqumubgQEDAgAAA"
    "AwCAAAADAIQiAAEABkQBwXPBiQAAABRpc3BlAAAAAAAAAEAAAABAAAAAFGlzcGUAAAAAAAAAEAAAABAAAAAQcGl4"
    "aQAAAAADCAgIAAAAGmlwbWEAAAAAAAAAAgABAoECAAICA4QAAAAaaXJlZgAAAAAAAAAOZGltZwACAAEAAQAAADBt"
    "ZGF0AAAAJCgBrxkhORLvXaW9mziOjr39fW3ymSimlwTXiJkLA4GAjZGdOA=="
)


# --- capabilities ---------------------------------------------------------------------------


def _has_op(nickname: str) -> bool:
    return bool(_vips.type_find("VipsOperation", nickname))


def _optional_args(nickname: str) -> frozenset[str]:
    try:
        return frozenset(_vips.Introspect.get(nickname).optional_input)
    except Exception:  # pragma: no cover - an operation missing from this libvips
        return frozenset()


def _probe(fn: Any) -> bool:
    # libvips warns through pyvips' logger about the samples' colour metadata ("ignoring
    # nclx profile"); a probe's warnings are noise in `rindle doctor`'s output.
    logger = logging.getLogger("pyvips")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return bool(fn())
    except Exception:
        return False
    finally:
        logger.setLevel(level)


def _heic_decodes() -> bool:
    image = _vips.Image.new_from_buffer(_HEIC_SAMPLE, "")
    return bool(image.width == 16 and abs(image.getpoint(8, 8)[2] - 220) < 16)


def _avif_encodes() -> bool:
    image = (_vips.Image.black(16, 16, bands=3) + [40, 160, 220]).cast("uchar")
    data = image.heifsave_buffer(compression="av1", Q=50)
    return bool(data[4:12] == b"ftypavif" and _vips.Image.new_from_buffer(data, "").width == 16)


def _hevc_encodes() -> bool:
    image = (_vips.Image.black(16, 16, bands=3) + [40, 160, 220]).cast("uchar")
    data = image.heifsave_buffer(compression="hevc", Q=50)
    return bool(data[4:12] == b"ftypheic")


@functools.cache
def _capabilities() -> dict[str, Any]:
    if _vips is None:
        return {"available": False, "error": _IMPORT_ERROR, "libvips_version": None,
                "pyvips_version": None, "loaders": {}, "savers": {}, "heic_decode": False,
                "avif_encode": False, "hevc_encode": False, "outputs": []}
    loaders = {name: _has_op(f"{name}load") for name in
               ("jpeg", "png", "webp", "gif", "tiff", "heif", "svg", "jxl", "magick")}
    savers = {name: _has_op(f"{name}save") for name in
              ("jpeg", "png", "webp", "gif", "tiff", "heif", "jxl")}
    heif_save = savers["heif"]
    avif = heif_save and _probe(_avif_encodes)
    outputs = [f for f, ok in (("jpeg", savers["jpeg"]), ("png", savers["png"]),
                               ("webp", savers["webp"]), ("avif", avif)) if ok]
    return {
        "available": True,
        "error": None,
        "libvips_version": "{}.{}.{}".format(*(_vips.version(i) for i in range(3))),
        "pyvips_version": getattr(_vips, "__version__", None),
        "pyvips_api_mode": bool(getattr(_vips, "API_mode", False)),
        "loaders": loaders,
        "savers": savers,
        "heic_decode": loaders["heif"] and _probe(_heic_decodes),
        "avif_encode": avif,
        "hevc_encode": heif_save and _probe(_hevc_encodes),
        "metadata_option": next(iter(_strip_kwargs())),
        "outputs": outputs,
        "suffixes": list(_vips.get_suffixes()),
    }


def capabilities() -> dict[str, Any]:
    """What this machine's libvips can do, for ``rindle doctor`` and for skipping tests.

    Keys: ``available`` (pyvips imported and found libvips), ``error`` (why not),
    ``libvips_version`` ("8.14.1"), ``pyvips_version``, ``pyvips_api_mode``, ``loaders``
    and ``savers`` (format -> bool, by probing the libvips operation table),
    ``heic_decode`` (an embedded HEVC-coded HEIC sample really decodes), ``avif_encode``
    (``heifsave`` with AV1 really encodes), ``hevc_encode``, ``metadata_option`` (``keep``
    on libvips >= 8.15, ``strip`` before), ``outputs`` (variant formats that can be
    written) and ``suffixes`` (what ``pyvips.get_suffixes()`` reports). Probed once per
    process; a copy is returned.
    """
    return copy.deepcopy(_capabilities())


@functools.cache
def _strip_kwargs() -> dict[str, Any]:
    # libvips 8.15 replaced strip=True with keep=VIPS_FOREIGN_KEEP_NONE (0).
    if "keep" in _optional_args("jpegsave"):
        return {"keep": 0}
    return {"strip": True}


# --- the work done in a worker thread ------------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    format: str
    width: int
    height: int


def _decode_failed(exc: Exception, workdir: str) -> RindleError:
    detail = (getattr(exc, "detail", "") or "").strip()
    message = detail or str(getattr(exc, "message", "") or exc)
    message = " ".join(message.replace(workdir + "/", "").replace(workdir, "").split())
    return RindleError(f"the image could not be decoded: {message[:500]}",
                       code="image_decode_failed", reason=message[:500])


def _input_format(path: str) -> str | None:
    pointer = _vips.vips_lib.vips_foreign_find_load(path.encode())
    if pointer == _vips.ffi.NULL:
        return None
    name: str = _vips.ffi.string(pointer).decode()
    for prefix, fmt in _LOADER_CLASSES:
        if name.startswith(prefix):
            return fmt
    return name


def _offsets(gravity: str, width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    dx, dy = width - box_w, height - box_h
    left, top = dx // 2, dy // 2
    if "north" in gravity:
        top = 0
    elif "south" in gravity:
        top = dy
    if "west" in gravity:
        left = 0
    elif "east" in gravity:
        left = dx
    return left, top


def _cut(image: Any, gravity: str, box_w: int, box_h: int) -> Any:
    if image.width < box_w or image.height < box_h:  # a rounding pixel short: grow a little
        scale = max(box_w / image.width, box_h / image.height)
        image = image.resize(scale + 1e-6)
    if gravity in ("attention", "entropy"):
        # smartcrop reads its input many times; a sequentially loaded image can be read
        # only once, so it is rendered to memory first (bounded by profile.max_pixels).
        return image.copy_memory().smartcrop(box_w, box_h, interesting=gravity)
    left, top = _offsets(gravity, image.width, image.height, box_w, box_h)
    return image.crop(left, top, box_w, box_h)


def _to_srgb(image: Any) -> Any:
    if image.format == "ushort" and image.interpretation == "srgb":
        image = image.copy(interpretation="rgb16")
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands > 4:
        image = image.extract_band(0, n=4)
    return image


def _without_metadata(image: Any) -> Any:
    image = image.copy()
    for name in image.get_fields():
        if name in _DROP_FIELDS or name.startswith(_DROP_PREFIXES):
            image.remove(name)
    return image


def _really_transparent(image: Any) -> tuple[Any, bool]:
    """Whether the alpha band holds anything but opaque; the image comes back in memory."""
    if not image.hasalpha():
        return image, False
    image = image.copy_memory()  # sequential pixels can be read once: keep them for saving
    return image, image.extract_band(image.bands - 1).min() < 255


def _choose_format(image: Any, source: str, requested: str | None) -> tuple[Any, str]:
    if requested is not None:
        return image, requested
    if source == "webp":
        return image, "webp"
    if source == "png":
        return image, "png"
    image, transparent = _really_transparent(image)
    return image, "png" if transparent else "jpeg"


_WEBP_METADATA = (b"EXIF", b"XMP ", b"ICCP")
_VP8X_METADATA_FLAGS = 0x20 | 0x08 | 0x04  # ICC, EXIF, XMP


def _strip_webp(path: str) -> None:
    """Drop EXIF/XMP/ICC chunks from a WebP file, streaming it chunk by chunk.

    libvips before 8.15 rebuilds a small EXIF block (resolution, orientation 1, ...) and
    writes it into WebP files even with ``strip=True``; nothing private is in it, but the
    rule is "no metadata at all", so the RIFF container is rewritten without it.
    """
    tmp = path + ".strip"
    dropped = False
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        head = src.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            raise RindleError("libvips wrote a WebP file that is not RIFF/WEBP",
                              code="image_encode_failed")
        dst.write(head)
        while chunk_head := src.read(8):
            if len(chunk_head) < 8:
                raise RindleError("libvips wrote a truncated WebP file",
                                  code="image_encode_failed")
            fourcc, size = chunk_head[:4], int.from_bytes(chunk_head[4:], "little")
            padded = size + (size & 1)
            if fourcc in _WEBP_METADATA:
                src.seek(padded, os.SEEK_CUR)
                dropped = True
                continue
            dst.write(chunk_head)
            if fourcc == b"VP8X":
                payload = bytearray(src.read(padded))
                payload[0] &= ~_VP8X_METADATA_FLAGS & 0xFF
                dst.write(payload)
                continue
            while padded:
                block = src.read(min(padded, _CHUNK))
                if not block:
                    raise RindleError("libvips wrote a truncated WebP file",
                                      code="image_encode_failed")
                dst.write(block)
                padded -= len(block)
        total = dst.tell()
        dst.seek(4)
        dst.write((total - 8).to_bytes(4, "little"))
    if dropped:
        os.replace(tmp, path)
    else:
        os.remove(tmp)


def _save(image: Any, dst: str, fmt: str, quality: int) -> Any:
    strip = _strip_kwargs()
    if fmt == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image.jpegsave(dst, Q=quality, optimize_coding=True, **strip)
    elif fmt == "png":
        image.pngsave(dst, compression=6, **strip)
    elif fmt == "webp":
        image.webpsave(dst, Q=quality, **strip)
        _strip_webp(dst)
    elif fmt == "avif":
        extra = {"bitdepth": 8} if "bitdepth" in _optional_args("heifsave") else {}
        image.heifsave(dst, Q=quality, compression="av1", **extra, **strip)
    else:  # pragma: no cover - Variant.validate rejects other formats
        raise RindleError(f"cannot write {fmt!r} images", code="image_format_unsupported")
    return image


@dataclass(frozen=True)
class _Header:
    """What the header says, read before any pixel is decoded."""

    source: str  # the input format (a key of DEFAULT_INPUTS, or another loader's name)
    image: Any  # the sequential image opened for the header; its pixels are not read yet
    width: int  # as stored
    height: int
    orientation: int
    has_icc: bool
    alpha: bool
    facts: dict[str, Any]

    @property
    def oriented(self) -> tuple[int, int]:
        """The size once the EXIF orientation is applied."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def _inspect_source(src: str, max_pixels: int | None, allowed: frozenset[str],
                    workdir: str) -> _Header:
    """Loader, size, orientation, ICC presence and header facts, without decoding pixels."""
    source = _input_format(src)
    if source is None:
        raise RindleError("the image could not be decoded: libvips recognises no image format "
                          "in it", code="image_decode_failed", reason="unknown format")
    if source not in allowed:
        raise RindleError(f"images decoded by libvips' {source} loader are not accepted here",
                          code="image_format_unsupported", input=source)
    try:
        # Header only: libvips reads pixels when they are first asked for. The image is
        # opened as the decode would open it (fail_on included), so _decode may use it.
        header = _vips.Image.new_from_file(src, access="sequential", fail_on="error")
        width, height = header.width, header.height
        fields = header.get_fields()
        orientation = header.get("orientation") if "orientation" in fields else 1
        has_icc = "icc-profile-data" in fields
        pages = header.get("n-pages") if "n-pages" in fields else 1
        alpha = bool(header.hasalpha())
    except _vips.Error as exc:
        raise _decode_failed(exc, workdir) from None
    if max_pixels is not None and width * height > max_pixels:
        raise RindleError(f"{width}x{height} is over the limit of {max_pixels} pixels; the image "
                          "was not decoded", code="max_pixels_exceeded", width=width,
                          height=height)
    facts = {"orientation": orientation, "has_alpha": alpha, "pages": pages,
             "animated": pages > 1, "loader": source}
    return _Header(source, header, width, height, orientation, has_icc, alpha, facts)


def _fit_shrink(header: _Header, box_w: int, box_h: int) -> tuple[float, float]:
    """The shrink of each stored axis that ``thumbnail(box_w, height=box_h, size="down")``
    applies (libvips' vips_thumbnail_calculate_shrink for a fit, no crop)."""
    target_w, target_h = (box_h, box_w) if header.orientation in (5, 6, 7, 8) else (box_w, box_h)
    shrink = max(1.0, header.width / target_w, header.height / target_h)
    return min(shrink, header.width), min(shrink, header.height)


@functools.cache
def _exact_reduce_is_faster() -> bool:
    # Measured on libvips 8.14 (Debian 12, the build that decodes HEIC). On 8.18 both ways
    # cost the same: its box shrink is no longer the slow part.
    version = (_vips.version(0), _vips.version(1))
    return version < (8, 15) and "gap" in _optional_args("resize")


def _decode(src: str, header: _Header, box_w: int, box_h: int) -> Any:
    """The original, fitted in the box, upright, in sRGB (or B_W) when it had a profile.

    ``thumbnail`` does it for every format, shrinking on load where the loader can (JPEG,
    WebP, HEIF thumbnails, TIFF pyramids). An opaque 8-bit PNG can't be shrunk on load,
    and there, on libvips 8.14, ``thumbnail``'s resize (a box shrink, then Lanczos 3 by
    the remaining factor of 2 to 4) costs nearly half as much as the decode itself, on the
    decoding thread. The same steps with one Lanczos 3 reduce by the whole factor
    (``gap=0``: no box shrink), the exact resampling that ``thumbnail`` approximates, cost a
    quarter of that: a 24 MP PNG to 1024 px took 470 ms instead of 590 ms, the decode alone
    405 ms. PNGs with alpha (premultiplied, hence reduced in float, where the box shrink
    pays) and 16-bit ones keep ``thumbnail``.
    """
    kw: dict[str, Any] = {"fail_on": "error"}
    if header.has_icc:
        # Only an embedded profile is transformed: export_profile on an image without one
        # shifts its colours; those go through colourspace("srgb") in _to_srgb instead.
        kw["export_profile"] = "srgb"
    image = header.image
    if (header.source != "png" or header.alpha or image.format != "uchar"
            or not _exact_reduce_is_faster()):
        return _vips.Image.thumbnail(src, box_w, height=box_h, size="down", **kw)
    # vips_thumbnail_build's steps for this case, in its order, with gap=0.
    hshrink, vshrink = _fit_shrink(header, box_w, box_h)
    if not header.has_icc:
        image = image.colourspace("b-w" if image.bands < 3 else "srgb")
    if hshrink != 1.0 or vshrink != 1.0:
        image = image.resize(1.0 / hshrink, vscale=1.0 / vshrink, gap=0.0)
    if header.has_icc:
        image = image.icc_transform("srgb", embedded=True, intent="relative", depth=8)
    if header.orientation != 1:
        image = image.copy_memory().autorot()  # a sequential image can't be rotated
    return image


def _needed_scale(variant: Variant, ow: int, oh: int) -> float:
    """The scale of the original a variant needs; the shared decode serves the largest."""
    w, h = variant.width, variant.height
    if variant.mode == "fit" or w is None or h is None:
        return min(w / ow if w else float("inf"), h / oh if h else float("inf"), 1.0)
    if variant.mode == "crop" and ow >= w and oh >= h:
        return 1.0
    return max(w / ow, h / oh)


def _base_box(items: list[tuple[str, Variant]], ow: int, oh: int,
              scale: float) -> tuple[int, int]:
    """The thumbnail box of the shared decode, as (width, height=...).

    Only the side that binds is constrained: rounding both sides of a box computed from
    ``scale`` can make the other side bind instead and come out a pixel short. When the
    largest variant is a ``fit``, its own box is used, so it is exactly what an
    independent thumbnail would give.
    """
    if scale >= 1.0:
        return ow, oh
    largest = max(items, key=lambda item: _needed_scale(item[1], ow, oh))[1]
    if largest.mode == "fit" or largest.width is None or largest.height is None:
        return largest.width or _BIG, largest.height or _BIG
    if largest.width / ow >= largest.height / oh:  # the width binds the cover
        return largest.width, _BIG
    return _BIG, largest.height


def _derive(base: Any, variant: Variant, native: bool) -> Any:
    """One variant from the shared in-memory decode (already rotated and in sRGB)."""
    w, h = variant.width, variant.height
    if variant.mode == "fit" or w is None or h is None:
        if base.width <= (w or _BIG) and base.height <= (h or _BIG):
            return base  # what thumbnail_image(size="down") would give: no resize at all
        return base.thumbnail_image(w or _BIG, height=h or _BIG, size="down")
    gravity = variant.gravity
    if variant.mode == "crop" and native and base.width >= w and base.height >= h:
        return _cut(base, gravity, w, h)
    if gravity in _SMART_GRAVITY and variant.mode == "fill":
        return base.thumbnail_image(w, height=h, size="both", crop=_SMART_GRAVITY[gravity])
    if base.width * h >= base.height * w:  # relatively wider than the box: the height binds
        cover = base.thumbnail_image(_BIG, height=h, size="both")
    else:
        cover = base.thumbnail_image(w, height=_BIG, size="both")
    return _cut(cover, gravity, w, h)


def _placeholder(base: Any) -> str:
    """A tiny blurred preview as a data URI, shown while the real image loads."""
    tiny = base.thumbnail_image(16, height=16, size="down")
    if tiny.hasalpha():
        tiny = tiny.flatten(background=[255, 255, 255])
    data = tiny.webpsave_buffer(Q=30, **_strip_kwargs())
    return "data:image/webp;base64," + base64.b64encode(data).decode()


@dataclass(frozen=True)
class _Batch:
    outputs: dict[str, tuple[str, _Rendered] | RindleError]
    facts: dict[str, Any]


def _render_many(src: str, workdir: str, items: list[tuple[str, Variant]],
                 max_pixels: int | None, allowed: frozenset[str]) -> _Batch:
    """Decode once, at the smallest scale that serves every variant, then derive each one.

    Deriving the smaller sizes from the shared decode instead of decoding the original once
    per variant is what makes a variant set cheaper than independent thumbnails; a single
    variant (a requeue) decodes exactly what it needs. Runs in a worker thread.
    """
    header = _inspect_source(src, max_pixels, allowed, workdir)
    source, facts = header.source, header.facts
    ow, oh = header.oriented
    for _, variant in items:
        if variant.format == "avif" and not _capabilities()["avif_encode"]:
            raise RindleError("this libvips cannot write AVIF (heifsave with an AV1 encoder)",
                              code="image_format_unsupported", output="avif")
    scale = min(1.0, max(_needed_scale(v, ow, oh) for _, v in items))
    try:
        bw, bh = _base_box(items, ow, oh, scale)
        base = _to_srgb(_decode(src, header, bw, bh)).copy_memory()
    except _vips.Error as exc:
        raise _decode_failed(exc, workdir) from None
    del header  # the sequential header image holds the file open
    native = scale >= 1.0

    def placeholder() -> None:
        try:
            facts["placeholder"] = _placeholder(base)
        except _vips.Error:
            pass  # a preview is a nicety; the variants still get built

    # Variants of the same geometry (one size as JPEG and as WebP) share one derived image,
    # resized once and kept in memory for their encoders.
    def geometry(variant: Variant) -> tuple[Any, ...]:
        return variant.mode, variant.width, variant.height, variant.gravity

    uses: dict[tuple[Any, ...], int] = {}
    for _, variant in items:
        uses[geometry(variant)] = uses.get(geometry(variant), 0) + 1
    derived: dict[tuple[Any, ...], Any] = {}
    derive_locks = {key: threading.Lock() for key in uses}

    def derive(variant: Variant) -> Any:
        key = geometry(variant)
        if uses[key] == 1:
            return _derive(base, variant, native)
        with derive_locks[key]:
            if key not in derived:
                derived[key] = _derive(base, variant, native).copy_memory()
            return derived[key]

    def build(name: str, variant: Variant) -> tuple[str, _Rendered] | RindleError:
        try:
            image = _without_metadata(derive(variant))
            image, fmt = _choose_format(image, source, variant.format)
            dst = str(Path(workdir) / f"{name}.{_OUTPUTS[fmt][0]}")
            image = _save(image, dst, fmt, variant.quality)
            return dst, _Rendered(fmt, image.width, image.height)
        except _vips.Error as exc:
            return _decode_failed(exc, workdir)
        except RindleError as exc:
            return exc

    # Encoders (WebP, AVIF) are single-threaded and release the GIL: encode the outputs
    # side by side, the slowest first (the largest, and WebP/AVIF before JPEG/PNG at the
    # same size; the placeholder last), so the cores stay busy after the shared decode.
    def cost(item: tuple[str, Variant]) -> tuple[float, bool]:
        return -_needed_scale(item[1], ow, oh), item[1].format not in _SLOW_ENCODERS

    order = sorted(items, key=cost)
    workers = min(len(order), os.cpu_count() or 1)
    if workers <= 1:
        outputs = {name: build(name, variant) for name, variant in order}
        placeholder()
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rindle-encode") as pool:
            futures = {name: pool.submit(build, name, variant) for name, variant in order}
            pool.submit(placeholder).result()
            outputs = {name: futures[name].result() for name, _ in items}
    return _Batch(outputs, facts)


_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
_arena_lock = threading.Lock()
_arena_cap: int | None = None


def _cap_malloc_arenas(limit: int) -> None:
    """Cap glibc's malloc arenas for this process, once, unless the operator set it.

    glibc gives each new thread that allocates its own arena (up to 8 per core) and keeps
    freed memory in it. libvips decodes and encodes on several threads (ours and its own
    pool), so every job leaves megabytes stranded in per-thread arenas: measured here, a
    24 MP JPEG's variants grew the process by 27 MiB with the default and 14 MiB with two
    arenas, at the same speed. Long-running workers creep up the same way. This is the
    remedy libvips users apply with ``MALLOC_ARENA_MAX=2`` (imgproxy's image does); an
    explicit ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES=glibc.malloc.arena_max=N`` in the
    environment always wins.
    """
    global _arena_cap
    with _arena_lock:
        if (_arena_cap is not None or "MALLOC_ARENA_MAX" in os.environ
                or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")):
            return
        _arena_cap = limit
        if platform.libc_ver()[0] != "glibc":
            return
        try:
            ok = ctypes.CDLL(None).mallopt(_M_ARENA_MAX, limit)
        except (OSError, AttributeError):  # pragma: no cover - not glibc after all
            return
        log.debug("malloc arenas capped at %d (mallopt returned %d)", limit, ok)


# --- the processor --------------------------------------------------------------------------


class ImageProcessor:
    """Builds ``kind="image"`` variants with libvips; see the module docstring for the rules.

    It is a ``BatchProcessor``: the pipeline hands it every image variant of an asset at
    once, and it decodes the original once for all of them. ``allowed_inputs`` names the
    libvips loaders accepted (``DEFAULT_INPUTS``: jpeg, png, webp, gif, heif, tiff; ``svg``
    and ``jxl`` may be added).

    ``malloc_arena_max`` (default 2) caps glibc's malloc arenas for the whole process when
    the first image is processed, so memory freed by libvips' threads is reused instead of
    stranded per thread; ``None`` leaves the allocator alone. ``MALLOC_ARENA_MAX`` in the
    environment takes precedence; other C libraries are not touched.
    """

    def __init__(self, *, allowed_inputs: Iterable[str] = DEFAULT_INPUTS,
                 malloc_arena_max: int | None = 2) -> None:
        if malloc_arena_max is not None and malloc_arena_max < 1:
            raise ValueError("malloc_arena_max must be at least 1 (or None)")
        self.allowed_inputs = frozenset(allowed_inputs)
        self.malloc_arena_max = malloc_arena_max

    def __repr__(self) -> str:
        return f"ImageProcessor(allowed_inputs={sorted(self.allowed_inputs)})"

    async def process(self, source: Source, variant: Variant, context: Context) -> Output:
        """Build one variant of the original (a requeue decodes just what it needs)."""
        result = (await self.process_many(source, {"variant": variant}, context))["variant"]
        if isinstance(result, BaseException):
            raise result
        return result

    async def process_many(self, source: Source, variants: Mapping[str, Variant],
                           context: Context) -> dict[str, Output | Exception]:
        """Build several variants of one original from a single decode.

        Each variant's ``Output`` (its file in the scratch directory), or the error that
        stopped it. The original's header facts and a tiny blurred placeholder go to
        ``context.add_metadata``.
        """
        if _vips is None:
            raise RindleError(f"pyvips cannot load libvips ({_IMPORT_ERROR}); install the "
                              "system libvips (Debian: libvips42)",
                              code="image_processor_unavailable")
        if self.malloc_arena_max is not None:
            _cap_malloc_arenas(self.malloc_arena_max)
        src = str(await source.path())
        batch = await anyio.to_thread.run_sync(
            _render_many, src, str(context.scratch), list(variants.items()),
            context.max_pixels, self.allowed_inputs)
        context.add_metadata(batch.facts)
        results: dict[str, Output | Exception] = {}
        for name, built in batch.outputs.items():
            if isinstance(built, RindleError):
                results[name] = built
                continue
            dst, rendered = built
            results[name] = Output(path=Path(dst), content_type=_OUTPUTS[rendered.format][1],
                                   width=rendered.width, height=rendered.height)
        return results
