"""Small real image files built with the standard library."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(width: int = 64, height: int = 48) -> bytes:
    """A valid RGB PNG with a gradient."""
    rows = b"".join(
        b"\x00" + bytes(((x * 7) % 256, (y * 5) % 256, 128)[c] for x in range(width)
                        for c in range(3))
        for y in range(height)
    )
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression bomb's shape)."""
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b""))


def jpeg(width: int = 32, height: int = 16) -> bytes:
    """A JPEG-shaped file (SOI, JFIF, SOF0, EOI): enough for sniffing and header checks."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
            + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def png_of_size(size: int) -> bytes:
    """A PNG header padded with a repeating pattern to exactly ``size`` bytes: sniffs as a
    PNG, and any lost or reordered part shows up as different bytes."""
    head = png(16, 16)
    pattern = bytes(range(3, 250))
    return head + (pattern * (size // len(pattern) + 1))[: size - len(head)]
