"""Judge an upload's type by its leading bytes, never its name, and read image dimensions."""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn

__all__ = [
    "MAX_HEADER_BYTES",
    "SNIFF_BYTES",
    "NeedMoreBytes",
    "Sniffed",
    "extensions_for",
    "image_size",
    "kind_for",
    "mime_for_extension",
    "sniff",
]

SNIFF_BYTES: int = 4096
MAX_HEADER_BYTES: int = 1 << 20

_OCTET_STREAM = "application/octet-stream"

# mime -> (kind, extensions); the first extension is the one to give a stored file.
_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "image/png": ("image", ("png",)),
    "image/jpeg": ("image", ("jpg", "jpeg", "jpe")),
    "image/gif": ("image", ("gif",)),
    "image/webp": ("image", ("webp",)),
    "image/heic": ("image", ("heic",)),
    "image/heif": ("image", ("heif",)),
    "image/avif": ("image", ("avif",)),
    "image/tiff": ("image", ("tif", "tiff")),
    "image/bmp": ("image", ("bmp",)),
    "image/x-icon": ("image", ("ico",)),
    "image/svg+xml": ("image", ("svg",)),
    "video/mp4": ("video", ("mp4", "m4v")),
    "video/quicktime": ("video", ("mov", "qt")),
    "video/webm": ("video", ("webm",)),
    "video/x-matroska": ("video", ("mkv",)),
    "video/ogg": ("video", ("ogv",)),
    "audio/mpeg": ("audio", ("mp3",)),
    "audio/wav": ("audio", ("wav",)),
    "audio/ogg": ("audio", ("ogg", "oga", "opus")),
    "audio/flac": ("audio", ("flac",)),
    "audio/mp4": ("audio", ("m4a",)),
    "application/pdf": ("document", ("pdf",)),
    "application/zip": ("other", ("zip",)),
    "text/html": ("text", ("html", "htm")),
    "text/xml": ("text", ("xml",)),
    "text/plain": ("text", ("txt",)),
    _OCTET_STREAM: ("other", ()),
}

# Names browsers and older tools still send, so callers can compare a claimed type with ours.
_ALIASES: dict[str, str] = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/vnd.microsoft.icon": "image/x-icon",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/x-m4a": "audio/mp4",
    "video/x-m4v": "video/mp4",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "application/xml": "text/xml",
}

_BY_EXTENSION: dict[str, str] = {ext: mime for mime, (_, exts) in _TYPES.items() for ext in exts}


class NeedMoreBytes(Exception):
    """image_size needs at least `required` leading bytes to find the dimensions."""

    required: int

    def __init__(self, required: int) -> None:
        super().__init__(f"need at least {required} leading bytes to find the image size")
        self.required = required


@dataclass(frozen=True)
class Sniffed:
    """What an upload's leading bytes say it is."""

    mime: str
    kind: str
    extensions: tuple[str, ...]


def _normalize_mime(mime: str) -> str:
    base = mime.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def extensions_for(mime: str) -> tuple[str, ...]:
    """Canonical extensions for a media type, preferred first; () when the type is unknown."""
    entry = _TYPES.get(_normalize_mime(mime))
    return entry[1] if entry else ()


def kind_for(mime: str) -> str | None:
    """The kind of a media type ("video/quicktime" -> "video"); None when it is unknown."""
    entry = _TYPES.get(_normalize_mime(mime))
    return entry[0] if entry else None


def mime_for_extension(ext: str) -> str | None:
    """The media type an extension stands for ("JPG", ".jpg", "jpg" -> "image/jpeg")."""
    key = ext.strip().lstrip(".").lower()
    return _BY_EXTENSION.get(key) if key else None


def _sniffed(mime: str) -> Sniffed:
    kind, extensions = _TYPES[mime]
    return Sniffed(mime=mime, kind=kind, extensions=extensions)


# --------------------------------------------------------------------------- sniffing

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # an empty archive has only the end record
    (b"fLaC", "audio/flac"),
)

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_QUICKTIME_BRANDS = frozenset({b"qt  "})
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
_MP4_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9",
        b"mp41", b"mp42", b"avc1", b"dash", b"M4V ", b"M4VH", b"M4VP", b"mmp4",
        b"f4v ", b"MSNV",
    }
)  # fmt: skip
# Most specific first: an AVIF or HEIC file also lists the generic mif1 brand.
_BRAND_ORDER: tuple[tuple[frozenset[bytes], str], ...] = (
    (_AVIF_BRANDS, "image/avif"),
    (_HEIC_BRANDS, "image/heic"),
    (_HEIF_BRANDS, "image/heif"),
    (_QUICKTIME_BRANDS, "video/quicktime"),
    (_M4A_BRANDS, "audio/mp4"),
    (_MP4_BRANDS, "video/mp4"),
)

_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_WHITESPACE = b"\t\n\x0c\r "
_UTF8_BOM = b"\xef\xbb\xbf"

# WHATWG MIME Sniffing, "identifying a resource with an unknown MIME type": each pattern must
# be followed by a tag-terminating byte (space or ">"). "<meta" is an addition of ours.
_HTML_PATTERNS: tuple[bytes, ...] = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div",
    b"<font", b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p",
    b"<!--", b"<meta",
)  # fmt: skip
_TAG_TERMINATORS = b" >"
_ELEMENT_NAME = re.compile(rb"<([A-Za-z_][A-Za-z0-9_.:\-]*)")
# C0 controls other than \t \n \f \r, DEL and C1 controls mark a file as binary.
_BINARY_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def sniff(head: bytes) -> Sniffed:
    """Detect a file's type from its first bytes; only the first SNIFF_BYTES are looked at.

    There is deliberately no filename parameter: a name is a claim, the bytes are evidence.
    """
    data = bytes(head[:SNIFF_BYTES])
    if not data:
        return _sniffed(_OCTET_STREAM)
    mime = _sniff_binary(data) or _sniff_markup(data)
    if mime is None:
        mime = "text/plain" if _is_text(data) else _OCTET_STREAM
    return _sniffed(mime)


def _sniff_binary(data: bytes) -> str | None:
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data.startswith(b"RIFF") and len(data) >= 12:
        if data[8:12] == b"WEBP":
            return "image/webp"
        if data[8:12] == b"WAVE":
            return "audio/wav"
        return None
    if data.startswith(b"OggS"):
        # Theora's identification header opens the first page of an Ogg video.
        return "video/ogg" if b"\x80theora" in data[:128] else "audio/ogg"
    if data[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if _ebml_doctype(data) == b"webm" else "video/x-matroska"
    if _is_ico(data):
        return "image/x-icon"
    if data.startswith(b"BM") and len(data) >= 18:
        if int.from_bytes(data[14:18], "little") in _BMP_DIB_SIZES:
            return "image/bmp"
        return None
    # ID3v2 tags are versions 2-4; requiring that keeps text starting "ID3 " out.
    if data.startswith(b"ID3") and len(data) >= 5 and data[3] in (2, 3, 4) and data[4] < 0xFF:
        return "audio/mpeg"
    if _is_mpeg_frame(data):
        return "audio/mpeg"
    return None


def _sniff_ftyp(data: bytes) -> str | None:
    size = int.from_bytes(data[0:4], "big")
    if size < 12 or len(data) < 12:
        return None
    major = data[8:12]
    end = min(size, len(data))
    compatible = [data[i : i + 4] for i in range(16, end - 3, 4)]
    # A decisive major brand wins: an M4A file may also list the video brand mp42.
    if major not in _HEIF_BRANDS:
        for brands, mime in _BRAND_ORDER:
            if major in brands:
                return mime
    for brands, mime in _BRAND_ORDER:
        if major in brands or any(brand in brands for brand in compatible):
            return mime
    return None


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at pos, and the position after it."""
    if pos >= len(data) or data[pos] == 0:
        return None
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, pos + length


def _ebml_doctype(data: bytes) -> bytes | None:
    header = _ebml_vint(data, 4, keep_marker=False)
    if header is None:
        return None
    size, pos = header
    end = min(pos + size, len(data))
    while pos < end:
        element = _ebml_vint(data, pos, keep_marker=True)
        if element is None:
            return None
        element_id, pos = element
        length = _ebml_vint(data, pos, keep_marker=False)
        if length is None:
            return None
        size, pos = length
        if element_id == 0x4282:
            return data[pos : pos + size].rstrip(b"\x00")
        pos += size
    return None


def _is_ico(data: bytes) -> bool:
    if not data.startswith(b"\x00\x00\x01\x00") or len(data) < 22:
        return False
    count = int.from_bytes(data[4:6], "little")
    planes = int.from_bytes(data[10:12], "little")
    return count > 0 and data[9] == 0 and planes in (0, 1)


# kbit/s by bitrate index, keyed by (MPEG-1?, layer); MPEG-2 and 2.5 share a table.
_MPEG_BITRATES: dict[tuple[bool, int], tuple[int, ...]] = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Hz by sample-rate index, keyed by the version bits (3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5).
_MPEG_SAMPLE_RATES: dict[int, tuple[int, int, int]] = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}


def _mpeg_frame_length(data: bytes, pos: int) -> int | None:
    """Length of the MPEG audio frame whose header starts at pos, None if it is not one."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version = (data[pos + 1] >> 3) & 0b11
    layer = 4 - ((data[pos + 1] >> 1) & 0b11)  # bits 3, 2, 1 mean layers I, II, III
    bitrate_index = data[pos + 2] >> 4
    rate_index = (data[pos + 2] >> 2) & 0b11
    padding = (data[pos + 2] >> 1) & 1
    # Reserved values rule a frame out; layer bits 00 (AAC's ADTS) and free-format bitrates
    # too, since a frame of unknown length cannot be confirmed by the next one.
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    if data[pos + 3] & 0b11 == 2:
        return None
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    sample_rate = _MPEG_SAMPLE_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // sample_rate + padding) * 4
    per_frame = 72 if layer == 3 and not mpeg1 else 144
    return per_frame * bitrate // sample_rate + padding


def _is_mpeg_frame(data: bytes) -> bool:
    # Two bytes of sync are too easy to hit by chance (a UTF-16 BOM is one), so demand that a
    # second frame header follows where the first frame ends; frames are well under 4 KiB.
    length = _mpeg_frame_length(data, 0)
    return length is not None and _mpeg_frame_length(data, length) is not None


def _sniff_markup(data: bytes) -> str | None:
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    data = data.lstrip(_WHITESPACE)
    if not data.startswith(b"<"):
        return None
    root, html_doctype = _first_element(data)
    if html_doctype or root == b"html":
        return "text/html"
    if root is not None and root.rsplit(b":", 1)[-1] == b"svg":
        return "image/svg+xml"
    lowered = data[:16].lower()
    for pattern in _HTML_PATTERNS:
        terminator = lowered[len(pattern) : len(pattern) + 1]
        if lowered.startswith(pattern) and terminator and terminator in _TAG_TERMINATORS:
            return "text/html"
    if lowered.startswith(b"<?xml"):
        return "text/xml"
    return None


def _first_element(data: bytes) -> tuple[bytes | None, bool]:
    """The first element's name after the XML prolog, and whether an HTML doctype came first."""
    pos = 0
    html_doctype = False
    while True:
        while pos < len(data) and data[pos] in _WHITESPACE:
            pos += 1
        if not data.startswith(b"<", pos):
            return None, html_doctype
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
            if end < 0:
                return None, html_doctype
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return None, html_doctype
            pos = end + 3
        elif data[pos : pos + 9].lower() == b"<!doctype":
            end = _doctype_end(data, pos)
            if end < 0:
                return None, html_doctype
            words = data[pos + 9 : end].split()
            html_doctype = html_doctype or (bool(words) and words[0].lower() == b"html")
            pos = end + 1
        else:
            match = _ELEMENT_NAME.match(data, pos)
            return (match.group(1) if match else None), html_doctype


def _doctype_end(data: bytes, pos: int) -> int:
    close = data.find(b">", pos)
    subset = data.find(b"[", pos)
    # An internal subset may itself contain ">" inside its declarations.
    if 0 <= subset < close:
        subset_end = data.find(b"]", subset)
        return -1 if subset_end < 0 else data.find(b">", subset_end)
    return close


def _is_text(data: bytes) -> bool:
    # A head cut at SNIFF_BYTES may end inside a multi-byte character; a whole file may not.
    final = len(data) < SNIFF_BYTES
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return _BINARY_CHARS.search(text) is None


# --------------------------------------------------------------------------- image size


def _need(required: int, have: int, what: str, slack: int = 0) -> NoReturn:
    if required > MAX_HEADER_BYTES:
        raise ValueError(
            f"{what} lies beyond the first {MAX_HEADER_BYTES} bytes (needs {required})"
        )
    raise NeedMoreBytes(max(min(required + slack, MAX_HEADER_BYTES), have + 1))


def _take(head: bytes, offset: int, length: int, what: str, slack: int = 0) -> bytes:
    end = offset + length
    if end > len(head):
        _need(end, len(head), what, slack)
    return head[offset:end]


def _expect(head: bytes, offset: int, magics: tuple[bytes, ...], what: str) -> None:
    """Fail fast on the wrong format, comparing only the bytes we already have."""
    for magic in magics:
        got = head[offset : offset + len(magic)]
        if got == magic[: len(got)]:
            return
    raise ValueError(f"not a {what}: wrong signature at offset {offset}")


def _checked(width: int, height: int, what: str) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise ValueError(f"{what} header gives an empty size {width}x{height}")
    return width, height


def _png_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"\x89PNG\r\n\x1a\n",), "PNG")
    _expect(head, 12, (b"IHDR",), "PNG (first chunk must be IHDR)")
    width, height = struct.unpack(">II", _take(head, 16, 8, "PNG IHDR"))
    return _checked(width, height, "PNG")


def _gif_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"GIF87a", b"GIF89a"), "GIF")
    width, height = struct.unpack("<HH", _take(head, 6, 4, "GIF logical screen"))
    return _checked(width, height, "GIF")


# SOF0..SOF15 minus DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Asked for beyond a segment's end: DQT and DHT usually sit between the last APPn and the SOF,
# and fetching them in one go beats a round trip per segment.
_JPEG_LOOKAHEAD = 1024


def _jpeg_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"\xff\xd8",), "JPEG")
    pos = 2
    while True:
        if pos >= len(head):
            _need(pos + 2, len(head), "JPEG SOF", _JPEG_LOOKAHEAD)
        if head[pos] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at offset {pos}")
        while pos < len(head) and head[pos] == 0xFF:  # fill bytes may pad any marker
            pos += 1
        if pos >= len(head):
            _need(pos + 1, len(head), "JPEG SOF", _JPEG_LOOKAHEAD)
        marker = head[pos]
        pos += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM and RSTn stand alone
            continue
        if marker in (0x00, 0xD8, 0xD9, 0xDA):
            raise ValueError(f"corrupt JPEG: marker 0x{marker:02X} before any SOF")
        length = int.from_bytes(_take(head, pos, 2, "JPEG segment", _JPEG_LOOKAHEAD), "big")
        if length < 2:
            raise ValueError(f"corrupt JPEG: segment 0x{marker:02X} has length {length}")
        if marker in _JPEG_SOF:
            if length < 8:
                raise ValueError(f"corrupt JPEG: SOF segment of length {length}")
            height, width = struct.unpack(">HH", _take(head, pos + 3, 4, "JPEG SOF"))
            return _checked(width, height, "JPEG")
        # APPn segments (EXIF, ICC, XMP) can be tens of KB; jump to the end without reading.
        pos += length
        if pos > len(head):
            _need(pos, len(head), "JPEG SOF", _JPEG_LOOKAHEAD)


def _webp_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"RIFF",), "WebP")
    _expect(head, 8, (b"WEBP",), "WebP")
    chunk = _take(head, 12, 4, "WebP chunk", slack=14)
    if chunk == b"VP8 ":
        _expect(head, 23, (b"\x9d\x01\x2a",), "WebP VP8 key frame")
        width, height = struct.unpack("<HH", _take(head, 26, 4, "WebP VP8 header"))
        # The top two bits of each field are an upscaling hint, not part of the size.
        return _checked(width & 0x3FFF, height & 0x3FFF, "WebP VP8")
    if chunk == b"VP8L":
        header = _take(head, 20, 5, "WebP VP8L header")
        if header[0] != 0x2F:
            raise ValueError("not a WebP: VP8L signature byte missing")
        bits = int.from_bytes(header[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        canvas = _take(head, 24, 6, "WebP VP8X canvas")
        return int.from_bytes(canvas[0:3], "little") + 1, int.from_bytes(canvas[3:6], "little") + 1
    raise ValueError(f"not a WebP: unknown first chunk {chunk!r}")


def _bmp_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"BM",), "BMP")
    dib_size = int.from_bytes(_take(head, 14, 4, "BMP header", slack=8), "little")
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER keeps 16-bit unsigned sizes
        width, height = struct.unpack("<HH", _take(head, 18, 4, "BMP header"))
    elif dib_size >= 16:
        width, height = struct.unpack("<ii", _take(head, 18, 8, "BMP header"))
        height = abs(height)  # negative means rows are stored top-down
    else:
        raise ValueError(f"corrupt BMP: DIB header size {dib_size}")
    return _checked(width, height, "BMP")


_TIFF_ENTRY = 12


def _tiff_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"II*\x00", b"MM\x00*"), "TIFF")
    header = _take(head, 0, 8, "TIFF header")
    order = "<" if header[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", header[4:8])
    if ifd < 8:
        raise ValueError(f"corrupt TIFF: IFD0 offset {ifd} points into the header")
    (count,) = struct.unpack(order + "H", _take(head, ifd, 2, "TIFF IFD0", slack=16 * _TIFF_ENTRY))
    if count == 0:
        raise ValueError("corrupt TIFF: IFD0 has no entries")
    table_end = ifd + 2 + count * _TIFF_ENTRY
    found: dict[int, int] = {}
    for index in range(count):
        start = ifd + 2 + index * _TIFF_ENTRY
        if start + _TIFF_ENTRY > len(head):
            _need(table_end, len(head), "TIFF IFD0")
        tag, kind, values = struct.unpack(order + "HHI", head[start : start + 8])
        if tag not in (256, 257):
            continue
        if values != 1:
            raise ValueError(f"corrupt TIFF: tag {tag} has {values} values")
        if kind == 3:  # SHORT, left-justified in the 4-byte value field
            (found[tag],) = struct.unpack(order + "H", head[start + 8 : start + 10])
        elif kind == 4:  # LONG
            (found[tag],) = struct.unpack(order + "I", head[start + 8 : start + 12])
        else:
            raise ValueError(f"corrupt TIFF: tag {tag} has type {kind}, not SHORT or LONG")
        if 256 in found and 257 in found:
            return _checked(found[256], found[257], "TIFF")
    raise ValueError("corrupt TIFF: IFD0 lacks ImageWidth (256) or ImageLength (257)")


def _ico_size(head: bytes) -> tuple[int, int]:
    _expect(head, 0, (b"\x00\x00\x01\x00",), "ICO")
    fields = _take(head, 4, 4, "ICO directory")
    if int.from_bytes(fields[0:2], "little") == 0:
        raise ValueError("corrupt ICO: no images in the directory")
    # One byte per side, so 256 is stored as 0.
    return fields[2] or 256, fields[3] or 256


def _heif_size(head: bytes) -> tuple[int, int]:
    pos = 0
    while True:
        # Top-level boxes may lie past the bytes we have: ask for them.
        box = _take(head, pos, 8, "HEIF meta box", slack=8)
        size = int.from_bytes(box[0:4], "big")
        box_type = box[4:8]
        header = 8
        if size == 1:
            size = int.from_bytes(_take(head, pos + 8, 8, "HEIF box size"), "big")
            header = 16
        elif size == 0:
            raise ValueError(f"HEIF: box {box_type!r} runs to the end of the file; no meta box")
        if size < header:
            raise ValueError(f"corrupt HEIF: box {box_type!r} at offset {pos} has size {size}")
        if pos == 0 and box_type != b"ftyp":
            raise ValueError("not a HEIF: the file does not start with an ftyp box")
        end = pos + size
        if box_type == b"meta":
            if end > len(head):
                _need(end, len(head), "HEIF meta box")
            return _heif_meta_size(head, pos + header, end)
        pos = end


def _boxes(head: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each box in [start, end), which must hold them exactly."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise ValueError(f"corrupt HEIF: truncated box header at offset {pos}")
        size = int.from_bytes(head[pos : pos + 4], "big")
        box_type = head[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError(f"corrupt HEIF: truncated box header at offset {pos}")
            size = int.from_bytes(head[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"corrupt HEIF: box {box_type!r} at offset {pos} has size {size}")
        yield box_type, pos + header, pos + size
        pos += size


def _heif_meta_size(head: bytes, start: int, end: int) -> tuple[int, int]:
    if start + 4 > end:
        raise ValueError("corrupt HEIF: meta box too short")
    primary: int | None = None
    properties: list[tuple[int, int] | None] = []
    associations: dict[int, list[int]] = {}
    for box_type, box_start, box_end in _boxes(head, start + 4, end):  # skip version/flags
        if box_type == b"pitm":
            primary = _parse_pitm(head, box_start, box_end)
        elif box_type == b"iprp":
            for child, child_start, child_end in _boxes(head, box_start, box_end):
                if child == b"ipco":
                    properties = [
                        _parse_ispe(head, s, e) if t == b"ispe" else None
                        for t, s, e in _boxes(head, child_start, child_end)
                    ]
                elif child == b"ipma":
                    _parse_ipma(head, child_start, child_end, associations)
    if primary is not None:
        for index in associations.get(primary, ()):
            # Property indices are 1-based; 0 means "no property".
            if 1 <= index <= len(properties):
                found = properties[index - 1]
                if found is not None:
                    return _checked(*found, "HEIF ispe")
    sizes = [size for size in properties if size is not None]
    if not sizes:
        raise ValueError("HEIF: no ispe (image spatial extents) property")
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    return _checked(width, height, "HEIF ispe")


def _parse_pitm(head: bytes, start: int, end: int) -> int:
    id_size = 2 if start < end and head[start] == 0 else 4
    if start + 4 + id_size > end:
        raise ValueError("corrupt HEIF: pitm box too short")
    return int.from_bytes(head[start + 4 : start + 4 + id_size], "big")


def _parse_ispe(head: bytes, start: int, end: int) -> tuple[int, int]:
    if start + 12 > end:
        raise ValueError("corrupt HEIF: ispe box too short")
    width, height = struct.unpack(">II", head[start + 4 : start + 12])
    return width, height


def _parse_ipma(head: bytes, start: int, end: int, into: dict[int, list[int]]) -> None:
    if start + 8 > end:
        raise ValueError("corrupt HEIF: ipma box too short")
    version = head[start]
    flags = int.from_bytes(head[start + 1 : start + 4], "big")
    count = int.from_bytes(head[start + 4 : start + 8], "big")
    id_size = 2 if version < 1 else 4
    index_size = 2 if flags & 1 else 1
    index_mask = 0x7FFF if index_size == 2 else 0x7F  # top bit is the "essential" flag
    pos = start + 8
    # Each entry consumes bytes and is bounds-checked, so a huge count ends at the box edge.
    for _ in range(count):
        if pos + id_size + 1 > end:
            raise ValueError("corrupt HEIF: ipma entries run past the box")
        item = int.from_bytes(head[pos : pos + id_size], "big")
        n = head[pos + id_size]
        pos += id_size + 1
        if pos + n * index_size > end:
            raise ValueError("corrupt HEIF: ipma associations run past the box")
        indices = into.setdefault(item, [])
        for _ in range(n):
            indices.append(int.from_bytes(head[pos : pos + index_size], "big") & index_mask)
            pos += index_size


_SIZE_READERS: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "image/png": _png_size,
    "image/gif": _gif_size,
    "image/jpeg": _jpeg_size,
    "image/webp": _webp_size,
    "image/bmp": _bmp_size,
    "image/tiff": _tiff_size,
    "image/x-icon": _ico_size,
    "image/heic": _heif_size,
    "image/heif": _heif_size,
    "image/avif": _heif_size,
}


def image_size(head: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) read from an image's header without decoding pixels; no rotation.

    None for types without dimensions here (SVG, audio, video...). Raises NeedMoreBytes
    when the header is cut short (never asking beyond MAX_HEADER_BYTES), ValueError when
    the structure is corrupt or the size lies further in than that.
    """
    reader = _SIZE_READERS.get(_normalize_mime(mime))
    if reader is None:
        return None
    return reader(bytes(head))
