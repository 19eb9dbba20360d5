"""Content sniffing and header-only image dimensions, on files built here from the specs."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import pytest

from rindle.upload.sniff import (
    MAX_HEADER_BYTES,
    SNIFF_BYTES,
    NeedMoreBytes,
    Sniffed,
    extensions_for,
    image_size,
    mime_for_extension,
    sniff,
)

# --------------------------------------------------------------------------- builders


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_png(width: int, height: int, *, pixels: bool = True) -> bytes:
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if not pixels:  # a header that only claims a size, as an attacker's file would
        return b"\x89PNG\r\n\x1a\n" + ihdr
    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + ihdr
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def make_jpeg(width: int, height: int, *, exif_bytes: int = 0, sof: int = 0xC0) -> bytes:
    app0 = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    app1 = b""
    if exif_bytes:
        # One segment holds at most 65533 payload bytes, so big metadata spans EXIF + XMP.
        exif = b"Exif\x00\x00" + b"MM\x00*" + bytes(min(exif_bytes, 65533) - 10)
        app1 = jpeg_segment(0xE1, exif)
        rest = exif_bytes - len(exif)
        while rest > 0:
            chunk = min(rest, 65000)
            app1 += jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + b" " * chunk)
            rest -= chunk
    dqt = jpeg_segment(0xDB, b"\x00" + bytes(range(1, 65)))
    # A DHT (0xC4) sits in the SOF range and must not be read as a size.
    dht = jpeg_segment(0xC4, b"\x00" + bytes([0, 1] + [0] * 14) + b"\x00")
    components = b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sof_segment = jpeg_segment(sof, struct.pack(">BHHB", 8, height, width, 3) + components)
    sos = jpeg_segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00")
    return b"\xff\xd8" + app0 + app1 + dqt + dht + sof_segment + sos + b"\x12\x34\x56" + b"\xff\xd9"


def make_gif(width: int, height: int) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
    )


def riff(form: bytes, chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + form + chunks


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def make_webp_vp8(width: int, height: int) -> bytes:
    # Frame tag (key frame), start code, then 14-bit sizes with 2 upscaling bits set.
    frame = b"\x50\x02\x00" + b"\x9d\x01\x2a"
    frame += struct.pack("<HH", width | (1 << 14), height | (2 << 14)) + bytes(20)
    return riff(b"WEBP", riff_chunk(b"VP8 ", frame))


def make_webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14) | (1 << 28)  # alpha hint set
    return riff(b"WEBP", riff_chunk(b"VP8L", b"\x2f" + struct.pack("<I", bits) + bytes(10)))


def make_webp_vp8x(width: int, height: int) -> bytes:
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = riff_chunk(b"VP8X", b"\x10\x00\x00\x00" + canvas)
    return riff(b"WEBP", vp8x + riff_chunk(b"ALPH", bytes(8)))


def make_bmp(width: int, height: int) -> bytes:
    row = (width * 3 + 3) // 4 * 4
    pixels = bytes(row * abs(height))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def make_bmp_core(width: int, height: int) -> bytes:
    info = struct.pack("<IHHHH", 12, width, height, 1, 24)
    return b"BM" + struct.pack("<IHHI", 26, 0, 0, 26) + info


def make_tiff(order: str, width: int, height: int, *, width_type: int = 3) -> bytes:
    e = "<" if order == "II" else ">"
    magic = b"II*\x00" if order == "II" else b"MM\x00*"

    def entry(tag: int, kind: int, value: int) -> bytes:
        packed = struct.pack(e + "HH", value, 0) if kind == 3 else struct.pack(e + "I", value)
        return struct.pack(e + "HHI", tag, kind, 1) + packed

    entries = [
        entry(254, 4, 0),  # NewSubfileType, before the size tags as the sort order requires
        entry(256, width_type, width),
        entry(257, 4, height),
        entry(258, 3, 8),
        entry(259, 3, 1),
    ]
    ifd = struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    return magic + struct.pack(e + "I", 8) + ifd + bytes(width * height)


def make_ico(width: int, height: int) -> bytes:
    entry = struct.pack("<BBBBHHII", width % 256, height % 256, 0, 0, 1, 32, 40, 22)
    return b"\x00\x00\x01\x00" + struct.pack("<H", 1) + entry + bytes(40)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def ispe(width: int, height: int) -> bytes:
    return full_box(b"ispe", 0, 0, struct.pack(">II", width, height))


def infe(item_id: int, item_type: bytes) -> bytes:
    return full_box(b"infe", 2, 0, struct.pack(">HH", item_id, 0) + item_type + b"\x00")


def make_heif(
    major: bytes = b"heic",
    compatible: bytes = b"mif1heic",
    *,
    codec: bytes = b"hvc1",
    with_ipma: bool = True,
    wide_ipma: bool = False,
) -> bytes:
    """Item 1 is a 6000x4000 hidden image, item 2 the 640x480 primary: neither first nor
    largest, so only following pitm -> ipma -> ipco finds the right ispe."""
    ftyp = box(b"ftyp", major + struct.pack(">I", 0) + compatible)
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0) + b"pict" + bytes(12) + b"\x00")
    pitm = full_box(b"pitm", 0, 0, struct.pack(">H", 2))
    iinf = full_box(b"iinf", 0, 0, struct.pack(">H", 2) + infe(1, codec) + infe(2, codec))
    config = box(b"hvcC" if codec == b"hvc1" else b"av1C", bytes(8))
    ipco = box(b"ipco", ispe(6000, 4000) + config + ispe(640, 480) + box(b"irot", b"\x01"))
    if wide_ipma:  # version 1 (32-bit item ids), flags 1 (16-bit property indices)
        entries = struct.pack(">IB", 1, 2) + struct.pack(">HH", 0x8001, 0x8002)
        entries += struct.pack(">IB", 2, 3) + struct.pack(">HHH", 0x8002, 3, 4)
        ipma = full_box(b"ipma", 1, 1, struct.pack(">I", 2) + entries)
    else:
        entries = struct.pack(">HB", 1, 2) + bytes([0x81, 0x82])
        entries += struct.pack(">HB", 2, 3) + bytes([0x82, 0x03, 0x04])
        ipma = full_box(b"ipma", 0, 0, struct.pack(">I", 2) + entries)
    iprp = box(b"iprp", ipco + (ipma if with_ipma else b""))
    meta = full_box(b"meta", 0, 0, hdlr + pitm + iinf + iprp)
    return ftyp + meta + box(b"mdat", bytes(64))


def make_ftyp_file(major: bytes, compatible: bytes) -> bytes:
    ftyp = box(b"ftyp", major + struct.pack(">I", 0x200) + compatible)
    return ftyp + box(b"free", b"") + box(b"mdat", bytes(32))


def make_ebml(doctype: bytes) -> bytes:
    elements = (
        b"\x42\x86\x81\x01"  # EBMLVersion 1
        + b"\x42\xf7\x81\x01"  # EBMLReadVersion 1
        + b"\x42\xf2\x81\x04"  # EBMLMaxIDLength 4
        + b"\x42\xf3\x81\x08"  # EBMLMaxSizeLength 8
        + b"\x42\x82"
        + bytes([0x80 | len(doctype)])
        + doctype
        + b"\x42\x87\x81\x04"  # DocTypeVersion
        + b"\x42\x85\x81\x02"  # DocTypeReadVersion
    )
    segment = b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements + segment


# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 // 44100 = 417 bytes.
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)


def make_id3_mp3() -> bytes:
    frame = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x03Song\x00"
    return b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame + MP3_FRAME * 2


def make_wav() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    return riff(b"WAVE", riff_chunk(b"fmt ", fmt) + riff_chunk(b"data", bytes(400)))


def make_ogg(first_packet: bytes) -> bytes:
    header = b"OggS\x00\x02" + bytes(8) + struct.pack("<II", 0x1234, 0) + bytes(4)
    return header + bytes([1, len(first_packet)]) + first_packet


def make_flac() -> bytes:
    streaminfo = struct.pack(">HH", 4096, 4096) + bytes(6) + b"\x0a\xc4\x42\xf0" + bytes(24)
    return b"fLaC" + bytes([0x80, 0, 0, len(streaminfo)]) + streaminfo


def make_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return buffer.getvalue()


HTML = b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n"
SVG = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Generator: Some Editor 1.0 -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>\n'
)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


# --------------------------------------------------------------------------- sniff()


@pytest.mark.parametrize(
    ("data", "mime", "kind", "extension"),
    [
        (make_png(2, 2), "image/png", "image", "png"),
        (make_jpeg(64, 48), "image/jpeg", "image", "jpg"),
        (make_gif(3, 5), "image/gif", "image", "gif"),
        (make_webp_vp8(30, 20), "image/webp", "image", "webp"),
        (make_webp_vp8l(30, 20), "image/webp", "image", "webp"),
        (make_webp_vp8x(30, 20), "image/webp", "image", "webp"),
        (make_heif(), "image/heic", "image", "heic"),
        (make_heif(b"mif1", b"mif1heic"), "image/heic", "image", "heic"),
        (make_heif(b"mif1", b"mif1miaf"), "image/heif", "image", "heif"),
        (make_heif(b"avif", b"mif1avifmiaf", codec=b"av01"), "image/avif", "image", "avif"),
        (make_tiff("II", 4, 3), "image/tiff", "image", "tif"),
        (make_tiff("MM", 4, 3), "image/tiff", "image", "tif"),
        (make_bmp(4, 3), "image/bmp", "image", "bmp"),
        (make_ico(16, 16), "image/x-icon", "image", "ico"),
        (SVG, "image/svg+xml", "image", "svg"),
        (make_ftyp_file(b"isom", b"isomiso2avc1mp41"), "video/mp4", "video", "mp4"),
        (make_ftyp_file(b"mp42", b"mp42isom"), "video/mp4", "video", "mp4"),
        (make_ftyp_file(b"qt  ", b"qt  "), "video/quicktime", "video", "mov"),
        (make_ftyp_file(b"M4A ", b"M4A mp42isom"), "audio/mp4", "audio", "m4a"),
        (make_ebml(b"webm"), "video/webm", "video", "webm"),
        (make_ebml(b"matroska"), "video/x-matroska", "video", "mkv"),
        (make_id3_mp3(), "audio/mpeg", "audio", "mp3"),
        (MP3_FRAME * 3, "audio/mpeg", "audio", "mp3"),
        (make_wav(), "audio/wav", "audio", "wav"),
        (make_ogg(b"\x01vorbis" + bytes(23)), "audio/ogg", "audio", "ogg"),
        (make_ogg(b"\x80theora" + bytes(35)), "video/ogg", "video", "ogv"),
        (make_flac(), "audio/flac", "audio", "flac"),
        (PDF, "application/pdf", "document", "pdf"),
        (make_zip(), "application/zip", "other", "zip"),
        (HTML, "text/html", "text", "html"),
        ("plain words, naïve café\n\ttab\r\n".encode(), "text/plain", "text", "txt"),
    ],
)
def test_sniff_detects_type_from_content(data: bytes, mime: str, kind: str, extension: str) -> None:
    result = sniff(data)
    assert result == Sniffed(mime=mime, kind=kind, extensions=extensions_for(mime))
    assert result.extensions[0] == extension


def test_sniff_has_no_name_to_be_fooled_by() -> None:
    # A PNG uploaded as "photo.jpg" is still a PNG: the claimed name never reaches sniff().
    png = make_png(1, 1)
    assert mime_for_extension("photo.jpg".rsplit(".", 1)[1]) == "image/jpeg"
    assert sniff(png).mime == "image/png"
    assert sniff(png).extensions == ("png",)


def test_sniff_only_needs_the_first_sniff_bytes() -> None:
    jpeg = make_jpeg(10, 10, exif_bytes=70_000)
    assert sniff(jpeg[:SNIFF_BYTES]) == sniff(jpeg)
    assert sniff(jpeg).mime == "image/jpeg"
    # A text file whose binary tail lies past the window is judged on the window alone.
    assert sniff(b"a" * SNIFF_BYTES + b"\x00\x01").mime == "text/plain"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02\x03binary",
        b"\xff\xfe\x00\x00",
        b"text with a NUL\x00 inside",
        b"escape \x1b[31m codes",
        b"\xc3\x28 invalid utf-8",
        b"RIFF\x10\x00\x00\x00AVI LIST",
        b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx ",
        b"\xff\xfe" + "UTF-16 text; its BOM looks like MPEG sync".encode("utf-16-le") * 40,
        MP3_FRAME,  # a lone frame sync with nothing after it is not proof of MP3
        b"\xff\xf1\x50\x80" + bytes(400),  # AAC ADTS: layer bits 00
    ],
)
def test_sniff_unknown_is_octet_stream(data: bytes) -> None:
    result = sniff(data)
    assert result.mime == "application/octet-stream"
    assert result.kind == "other"
    assert result.extensions == ()


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf  \n<!doctype HTML><p>x</p>",
        b"<HTML>",
        b"  <head>\n",
        b"<script>alert(1)</script>",
        b"<iframe src=x>",
        b"<!-- comment --><p>hi</p>",
        b"<meta charset=utf-8>",
        b"<a href='x'>link</a>",
        b"<div>",
        b"<style>p{}</style>",
        b"<title>t</title>",
        b"<table>",
        b"<p>para",
        b"<br>",
        b"<body onload=x>",
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"></html>',
        b"<!DOCTYPE html><svg onload=alert(1)></svg>",
    ],
)
def test_sniff_html_patterns(data: bytes) -> None:
    assert sniff(data).mime == "text/html"
    assert sniff(data).kind == "text"


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"\xef\xbb\xbf\n  <svg>",
        b"<!-- leading comment -->\n<svg width='1'></svg>",
        b'<?xml version="1.0"?><!DOCTYPE svg [ <!ENTITY x "<b>"> ]><svg/>',
        b"<?xml version='1.0'?>\n<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>",
    ],
)
def test_sniff_svg_is_judged_by_its_first_element(data: bytes) -> None:
    assert sniff(data).mime == "image/svg+xml"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"<pa>not a known tag</pa>", "text/plain"),  # "<p" needs a tag terminator
        (b"<svgfoo/>", "text/plain"),
        (b"<3 you", "text/plain"),
        (b"<?xml version='1.0'?><feed/>", "text/xml"),
        (b"BMW and other brands", "text/plain"),  # "BM" alone is not a bitmap
        (b"ID3 tags explained", "text/plain"),  # nor "ID3" an MP3
    ],
)
def test_sniff_near_misses(data: bytes, mime: str) -> None:
    assert sniff(data).mime == mime


def test_sniff_text_cut_inside_a_character_at_the_window_edge() -> None:
    text = ("é" * SNIFF_BYTES).encode()  # two bytes each: the cut may split one
    assert sniff(text[: SNIFF_BYTES - 1]).mime == "application/octet-stream"  # whole file
    assert sniff(b"a" + text).mime == "text/plain"  # cut at SNIFF_BYTES: split char is fine


def test_sniff_truncated_files_still_give_the_type() -> None:
    assert sniff(make_png(1, 1)[:8]).mime == "image/png"
    assert sniff(make_jpeg(1, 1)[:3]).mime == "image/jpeg"
    assert sniff(make_heif()[:12]).mime == "image/heic"
    assert sniff(make_ebml(b"webm")[:4]).mime == "video/x-matroska"  # doctype not seen yet


def test_sniff_never_raises_on_random_bytes() -> None:
    rng = random.Random(20240601)
    prefixes = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"\x1a\x45\xdf\xa3",
                b"\x00\x00\x00\x18ftyp", b"<", b"<?xml", b"<!--", b"\xef\xbb\xbf", b"BM",
                b"\x00\x00\x01\x00", b"ID3", b"OggS", b"\xff\xfb"]  # fmt: skip
    for _ in range(2000):
        data = rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 300))
        result = sniff(data)
        assert isinstance(result, Sniffed)
        assert result.extensions == extensions_for(result.mime)
        assert result.kind in {"image", "video", "audio", "document", "text", "other"}


# --------------------------------------------------------------------------- mime tables


def test_extensions_for_and_mime_for_extension() -> None:
    assert extensions_for("image/jpeg") == ("jpg", "jpeg", "jpe")
    assert extensions_for("IMAGE/JPEG; charset=binary") == ("jpg", "jpeg", "jpe")
    assert extensions_for("image/jpg") == ("jpg", "jpeg", "jpe")
    assert extensions_for("application/x-nonsense") == ()
    assert extensions_for("application/octet-stream") == ()
    for ext in ("JPG", ".jpg", "jpg", " jpeg ", "jpe"):
        assert mime_for_extension(ext) == "image/jpeg"
    assert mime_for_extension("heic") == "image/heic"
    assert mime_for_extension("exe") is None
    assert mime_for_extension("") is None
    assert mime_for_extension(".") is None


def test_every_preferred_extension_maps_back_to_its_type() -> None:
    for mime in ("image/png", "image/tiff", "video/mp4", "audio/ogg", "text/html", "image/avif"):
        assert mime_for_extension(extensions_for(mime)[0]) == mime


# --------------------------------------------------------------------------- image_size()


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (make_png(3, 2), "image/png", (3, 2)),
        (make_png(30000, 30000, pixels=False), "image/png", (30000, 30000)),
        (make_gif(300, 200), "image/gif", (300, 200)),
        (make_jpeg(1920, 1080), "image/jpeg", (1920, 1080)),
        (make_jpeg(800, 600, sof=0xC2), "image/jpeg", (800, 600)),  # progressive
        (make_webp_vp8(1023, 767), "image/webp", (1023, 767)),
        (make_webp_vp8l(16383, 1), "image/webp", (16383, 1)),
        (make_webp_vp8x(20000, 3), "image/webp", (20000, 3)),
        (make_bmp(7, 5), "image/bmp", (7, 5)),
        (make_bmp(7, -5), "image/bmp", (7, 5)),  # top-down rows
        (make_bmp_core(9, 4), "image/bmp", (9, 4)),
        (make_tiff("II", 6, 4), "image/tiff", (6, 4)),
        (make_tiff("MM", 6, 4), "image/tiff", (6, 4)),
        (make_tiff("MM", 70000, 2, width_type=4), "image/tiff", (70000, 2)),
        (make_ico(48, 32), "image/x-icon", (48, 32)),
        (make_ico(256, 256), "image/x-icon", (256, 256)),  # stored as 0
        (make_heif(), "image/heic", (640, 480)),
        (make_heif(wide_ipma=True), "image/heic", (640, 480)),
        (make_heif(b"avif", b"mif1avifmiaf", codec=b"av01"), "image/avif", (640, 480)),
        (make_heif(b"mif1", b"mif1miaf"), "image/heif", (640, 480)),
    ],
)
def test_image_size(data: bytes, mime: str, size: tuple[int, int]) -> None:
    assert sniff(data).mime == mime
    assert image_size(data, mime) == size


def test_heif_falls_back_to_largest_ispe_without_associations() -> None:
    assert image_size(make_heif(with_ipma=False), "image/heic") == (6000, 4000)


def test_image_size_accepts_mime_aliases_and_parameters() -> None:
    assert image_size(make_jpeg(5, 6), "image/jpg") == (5, 6)
    assert image_size(make_png(5, 6), "Image/PNG; q=1") == (5, 6)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (SVG, "image/svg+xml"),
        (make_ftyp_file(b"isom", b"isom"), "video/mp4"),
        (make_id3_mp3(), "audio/mpeg"),
        (PDF, "application/pdf"),
        (b"anything", "application/octet-stream"),
    ],
)
def test_image_size_is_none_for_types_without_a_header_size(data: bytes, mime: str) -> None:
    assert image_size(data, mime) is None


def read_size_incrementally(data: bytes, mime: str) -> tuple[tuple[int, int] | None, int]:
    """Feed image_size the way an uploader would; return the size and the rounds it took."""
    have = SNIFF_BYTES
    for rounds in range(1, 50):
        try:
            return image_size(data[:have], mime), rounds
        except NeedMoreBytes as exc:
            assert have < exc.required <= MAX_HEADER_BYTES
            assert exc.required <= len(data) + 1024, "asked for far more than the file holds"
            have = exc.required
    raise AssertionError("image_size kept asking for more bytes")


def test_jpeg_with_large_exif_asks_for_more_then_succeeds() -> None:
    jpeg = make_jpeg(4032, 3024, exif_bytes=70_000)
    sof_offset = jpeg.index(b"\xff\xc0")
    assert sof_offset > 70_000
    with pytest.raises(NeedMoreBytes) as excinfo:
        image_size(jpeg[:SNIFF_BYTES], "image/jpeg")
    assert SNIFF_BYTES < excinfo.value.required <= MAX_HEADER_BYTES
    assert image_size(jpeg, "image/jpeg") == (4032, 3024)
    size, rounds = read_size_incrementally(jpeg, "image/jpeg")
    assert size == (4032, 3024)
    assert rounds <= 4


def test_heif_meta_past_the_first_window_is_requested_whole() -> None:
    heif = make_heif()
    ftyp_end = struct.unpack(">I", heif[:4])[0]
    padded = heif[:ftyp_end] + box(b"free", bytes(10_000)) + heif[ftyp_end:]
    with pytest.raises(NeedMoreBytes) as excinfo:
        image_size(padded[:SNIFF_BYTES], "image/heic")
    assert excinfo.value.required > 10_000
    assert read_size_incrementally(padded, "image/heic")[0] == (640, 480)


@pytest.mark.parametrize(
    ("data", "mime", "required"),
    [
        (make_png(1, 1)[:20], "image/png", 24),
        (make_gif(1, 1)[:7], "image/gif", 10),
        (make_bmp(1, 1)[:10], "image/bmp", 26),
        (make_tiff("MM", 1, 1)[:6], "image/tiff", 8),
        (make_ico(1, 1)[:4], "image/x-icon", 8),
        (make_webp_vp8x(2, 2)[:12], "image/webp", 30),
    ],
)
def test_truncated_headers_raise_need_more_bytes(data: bytes, mime: str, required: int) -> None:
    with pytest.raises(NeedMoreBytes) as excinfo:
        image_size(data, mime)
    assert excinfo.value.required == required


def test_truncated_headers_of_every_format_ask_for_more_and_recover() -> None:
    files = {
        "image/png": make_png(3, 2),
        "image/jpeg": make_jpeg(3, 2, exif_bytes=100),
        "image/gif": make_gif(3, 2),
        "image/webp": make_webp_vp8(3, 2),
        "image/bmp": make_bmp(3, 2),
        "image/tiff": make_tiff("II", 3, 2),
        "image/x-icon": make_ico(3, 2),
        "image/heic": make_heif(),
    }
    for mime, data in files.items():
        expected = image_size(data, mime)
        assert expected == (3, 2) or (mime == "image/heic" and expected == (640, 480))
        for cut in range(len(data)):
            # Following the requests from any cut point reaches the right answer quickly.
            have = cut
            for _ in range(5):
                try:
                    assert image_size(data[:have], mime) == expected
                    break
                except NeedMoreBytes as exc:
                    assert have < exc.required <= MAX_HEADER_BYTES
                    have = exc.required
            else:
                raise AssertionError(f"{mime} cut at {cut} never resolved")


def jpeg_with_segments(*segments: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segments) + b"\xff\xd9"


@pytest.mark.parametrize(
    ("data", "mime", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", bytes(13)), "image/png", "IHDR"),
        (make_png(0, 5, pixels=False), "image/png", "empty size"),
        (make_jpeg(1, 1), "image/png", "not a PNG"),
        (b"\xff\xd8\xff\xe0\x00\x00", "image/jpeg", "length 0"),
        (b"\xff\xd8\xff\xe0\x00\x01", "image/jpeg", "length 1"),
        (b"\xff\xd8\x00\x00", "image/jpeg", "expected a marker"),
        (jpeg_with_segments(jpeg_segment(0xDA, bytes(10))), "image/jpeg", "before any SOF"),
        (b"\xff\xd8\xff\xd9", "image/jpeg", "before any SOF"),
        (jpeg_with_segments(jpeg_segment(0xC0, bytes(3))), "image/jpeg", "SOF segment"),
        (riff(b"WEBP", riff_chunk(b"JUNK", bytes(20))), "image/webp", "unknown first chunk"),
        (riff(b"WEBP", riff_chunk(b"VP8L", bytes(20))), "image/webp", "VP8L"),
        (b"BM" + bytes(12) + struct.pack("<I", 4) + bytes(12), "image/bmp", "DIB"),
        (b"II*\x00" + struct.pack("<I", 4) + bytes(8), "image/tiff", "IFD0 offset"),
        (b"MM\x00*" + struct.pack(">IH", 8, 0), "image/tiff", "no entries"),
        (b"II*\x00" + struct.pack("<I", 0x7FFFFFFF), "image/tiff", "beyond"),
        (b"\x00\x00\x01\x00\x00\x00\x10\x10", "image/x-icon", "no images"),
    ],
)
def test_corrupt_headers_raise_value_error(data: bytes, mime: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_size(data, mime)


def test_tiff_without_size_tags_is_corrupt() -> None:
    entry = struct.pack("<HHIHH", 259, 3, 1, 1, 0)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    with pytest.raises(ValueError, match="lacks ImageWidth"):
        image_size(tiff, "image/tiff")


def test_jpeg_whose_sof_lies_past_the_limit_is_refused() -> None:
    filler = jpeg_segment(0xE1, bytes(65533))
    jpeg = jpeg_with_segments(*([filler] * 17), jpeg_segment(0xC0, b"\x08\x00\x01\x00\x01\x01"))
    assert len(jpeg) > MAX_HEADER_BYTES
    with pytest.raises(ValueError, match="beyond the first"):
        read_size_incrementally(jpeg, "image/jpeg")


def heif_with_meta(meta_payload: bytes) -> bytes:
    ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")
    return ftyp + full_box(b"meta", 0, 0, meta_payload)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (box(b"ftyp", b"heic" + bytes(4)) + struct.pack(">I", 4) + b"meta", "has size 4"),
        (box(b"ftyp", b"heic" + bytes(4)) + struct.pack(">I", 0) + b"mdat", "no meta box"),
        (box(b"moov", bytes(8)), "does not start with an ftyp"),
        (
            box(b"ftyp", b"heic" + bytes(4)) + struct.pack(">I", 0x7FFFFFF0) + b"mdat",
            "beyond the first",
        ),
        (heif_with_meta(struct.pack(">I", 500) + b"iprp"), "has size 500"),
        (heif_with_meta(struct.pack(">I", 7) + b"pitm" + bytes(4)), "has size 7"),
        (heif_with_meta(full_box(b"pitm", 0, 0, b"")), "pitm box too short"),
        (heif_with_meta(box(b"iprp", box(b"ipco", full_box(b"ispe", 0, 0, b"")))), "ispe"),
        (
            heif_with_meta(box(b"iprp", full_box(b"ipma", 0, 0, struct.pack(">I", 0xFFFFFFFF)))),
            "ipma entries run past",
        ),
        (
            heif_with_meta(
                box(b"iprp", full_box(b"ipma", 0, 0, struct.pack(">IHB", 1, 1, 200) + b"\x01"))
            ),
            "associations run past",
        ),
        (heif_with_meta(box(b"iprp", box(b"ipco", box(b"hvcC", b"")))), "no ispe"),
        (heif_with_meta(box(b"iprp", box(b"ipco", ispe(0, 10)))), "empty size"),
    ],
)
def test_corrupt_heif_raises_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_size(data, "image/heic")


def test_heif_zero_size_child_box_does_not_loop() -> None:
    # Inside a container, size 0 means "to the end of the parent": one box, then done.
    data = heif_with_meta(box(b"iprp", box(b"ipco", struct.pack(">I", 0) + b"free" + bytes(8))))
    with pytest.raises(ValueError, match="no ispe"):
        image_size(data, "image/heic")


SIZE_MIMES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/x-icon",
    "image/heic",
    "image/avif",
)


def assert_only_documented_outcomes(data: bytes, mime: str) -> None:
    try:
        size = image_size(data, mime)
    except NeedMoreBytes as exc:
        assert len(data) < exc.required <= MAX_HEADER_BYTES
    except ValueError as exc:
        assert str(exc)
    else:
        assert size is not None
        assert size[0] > 0 and size[1] > 0


def test_image_size_on_random_bytes_raises_only_documented_errors() -> None:
    rng = random.Random(7)
    prefixes = [b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"\xff\xd8", b"GIF89a",
                b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"BM",
                b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00",
                b"\x00\x00\x00\x10ftypheic\x00\x00\x00\x00"]  # fmt: skip
    for _ in range(2000):
        data = rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 200))
        sniff(data)
        for mime in SIZE_MIMES:
            assert_only_documented_outcomes(data, mime)


def test_image_size_on_mutated_real_files_raises_only_documented_errors() -> None:
    rng = random.Random(99)
    originals = {
        "image/png": make_png(3, 2),
        "image/jpeg": make_jpeg(3, 2, exif_bytes=50),
        "image/webp": make_webp_vp8x(3, 2),
        "image/bmp": make_bmp(3, 2),
        "image/tiff": make_tiff("MM", 3, 2),
        "image/heic": make_heif(),
        "image/avif": make_heif(b"avif", b"mif1avif", codec=b"av01", wide_ipma=True),
    }
    for _ in range(1500):
        mime, original = rng.choice(list(originals.items()))
        data = bytearray(original)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        mutated = bytes(data[: rng.randrange(len(data) + 1)])
        assert isinstance(sniff(mutated), Sniffed)
        assert_only_documented_outcomes(mutated, mime)
