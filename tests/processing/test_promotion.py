"""Promotion judges content, quarantines with stable reasons, then plans and runs variants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rindle import Profile, Rindle, ScanVerdict, Variant
from rindle.model.records import Asset
from rindle.processing.processor import Output
from tests.conftest import MakeMedia
from tests.support.images import HTML, jpeg, png, png_claiming


async def _upload(media: Rindle, data: bytes, filename: str, profile: str = "image") -> Asset:
    result = await media.upload(profile, data, filename=filename)
    await media.drain()
    return await media.asset(result.asset.id)


async def test_a_clean_png_becomes_available(media: Rindle) -> None:
    asset = await _upload(media, png(120, 80), "ok.png")
    assert asset.state == "available"
    assert (asset.content_type, asset.width, asset.height) == ("image/png", 120, 80)
    assert asset.kind == "image"


async def test_a_jpeg_header_gives_dimensions(media: Rindle) -> None:
    asset = await _upload(media, jpeg(640, 480), "x.jpeg")
    assert (asset.state, asset.width, asset.height) == ("available", 640, 480)


async def test_a_name_without_extension_is_judged_by_content(media: Rindle) -> None:
    asset = await _upload(media, png(8, 8), "noextension")
    assert asset.state == "available"


@pytest.mark.parametrize("data,filename,reason", [
    (png(20, 20), "photo.jpg", "extension_mime_mismatch"),
    (HTML, "cat.png", "mime_not_allowed"),
    (png_claiming(30000, 30000), "bomb.png", "max_pixels_exceeded"),
    (png(20, 20), "photo.gif.exe", "extension_not_allowed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "cut.png", "invalid_upload"),
])
async def test_quarantine_reasons(media: Rindle, data: bytes, filename: str,
                                  reason: str) -> None:
    if reason == "extension_not_allowed":
        # The broker refuses a disallowed extension up front; promotion checks it again
        # for assets that reach storage another way.
        from rindle.upload.broker import storage_key

        aid = "11111111-2222-3333-4444-555555555555"
        key = storage_key(media.profile("image"), aid, "x.png", "image/png")
        storage = media.storages["local"]

        async def body() -> AsyncIterator[bytes]:
            yield data

        await storage.write(key, body())
        await media.repo.insert_asset(id=aid, profile="image", storage="local", storage_key=key,
                                      filename=filename, state="validating")
        from rindle.processing import pipeline

        await pipeline.promote(media, aid)
        asset = await media.asset(aid)
    else:
        asset = await _upload(media, data, filename)
    assert asset.state == "quarantined"
    assert asset.quarantine_reason == reason
    assert asset.error_reason


class _Refuser:
    def __init__(self) -> None:
        self.seen = 0

    async def scan(self, asset: Asset, read: Callable[[], AsyncIterator[bytes]]) -> ScanVerdict:
        async for chunk in read():
            self.seen += len(chunk)
        return ScanVerdict.quarantine("eicar_test_signature")


async def test_scanner_can_quarantine(make_media: MakeMedia) -> None:
    scanner = _Refuser()

    class Scanned(Profile):
        name = "scanned"
        storage = "local"
        allow_mime = ["image/png"]

    Scanned.scanner = scanner  # type: ignore[misc]
    media = make_media(profiles=[Scanned])
    data = png(10, 10)
    async with media.connected():
        asset = await _upload(media, data, "a.png", "scanned")
    assert asset.state == "quarantined"
    assert asset.quarantine_reason == "eicar_test_signature"
    assert scanner.seen == len(data)


class CopyProcessor:
    """A custom processor: the 'variant' is the original's bytes, copied into scratch."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []

    async def process(self, source: Any, variant: Variant, context: Any) -> Output:
        self.calls.append(variant.width)
        out = context.scratch / "copy.bin"
        out.write_bytes((await source.path()).read_bytes())
        return Output(path=out, content_type=source.asset.content_type)


async def test_variants_are_planned_queued_and_built(make_media: MakeMedia) -> None:
    class Copies(Profile):
        name = "copies"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"a": Variant(width=10, kind="copy"), "b": Variant(width=20, kind="copy")}

    proc = CopyProcessor()
    media = make_media(profiles=[Copies], processors={"copy": proc})
    async with media.connected():
        asset = await _upload(media, png(30, 30), "c.png", "copies")
        rows = await media.repo.list_variants(asset.id)
        assert asset.state == "ready"
        assert sorted(proc.calls) == [10, 20]  # type: ignore[type-var]
        assert [(r.name, r.state) for r in rows] == [("a", "ready"), ("b", "ready")]
        assert rows[0].storage_key == (f"copies/{asset.id}/variants/"
                                       f"a-{Copies.variants['a'].digest[:12]}.bin")
        assert rows[0].content_type == "image/png" and rows[0].byte_size
        assert rows[0].recipe_digest == Copies.variants["a"].digest
        runs = await media.repo.runs_for_asset(asset.id)
        assert sorted((r.variant_name, r.state) for r in runs) == [("a", "succeeded"),
                                                                   ("b", "succeeded")]
        url = await media.variant_url("copies", asset, "a")
        assert "/rindle/files/" in url
        # Idempotent: promoting again changes nothing and builds nothing.
        from rindle.processing import pipeline

        await pipeline.promote(media, asset.id)
        await pipeline.process_variants(media, asset.id, ["a"])
        await media.drain()
        assert sorted(proc.calls) == [10, 20]  # type: ignore[type-var]


async def test_without_a_processor_variants_fail_with_a_reason(make_media: MakeMedia) -> None:
    class Odd(Profile):
        name = "odd"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"x": Variant(width=10, kind="hologram")}

    media = make_media(profiles=[Odd])
    async with media.connected():
        asset = await _upload(media, png(10, 10), "o.png", "odd")
        [row] = await media.repo.list_variants(asset.id)
    assert row.state == "failed"
    assert "no processor" in (row.error_reason or "")


async def test_a_16_pixel_file_claiming_50000_squared_is_quarantined(media: Rindle) -> None:
    data = png_claiming(50000, 50000)
    assert len(data) < 100
    asset = await _upload(media, data, "bomb.png")
    assert (asset.state, asset.quarantine_reason) == ("quarantined", "max_pixels_exceeded")
    assert (asset.width, asset.height) == (50000, 50000)


class Tagger:
    """A custom analyzer: adds a fact every asset of kind image gets."""

    async def analyze(self, asset: Asset, source: Any) -> dict[str, Any] | None:
        return {"first_byte": source.head[0], "profile_seen": asset.profile,
                "path_exists": (await source.path()).is_file()}


async def test_a_custom_analyzer_adds_metadata(make_media: MakeMedia) -> None:
    media = make_media(analyzers=[Tagger()])
    async with media.connected():
        asset = await _upload(media, png(10, 10), "t.png")
    assert asset.metadata["first_byte"] == 0x89
    assert asset.metadata["profile_seen"] == "image"
    assert asset.metadata["path_exists"] is True
