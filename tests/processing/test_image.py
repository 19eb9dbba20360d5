"""ImageProcessor against the real libvips: every test image is made here with pyvips."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

try:
    import pyvips
except (ImportError, OSError) as exc:  # OSError: pyvips is installed but libvips is not
    pytest.skip(f"pyvips/libvips unavailable: {exc}", allow_module_level=True)

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from rindle.errors import RindleError
from rindle.model.records import Asset
from rindle.processing import pipeline
from rindle.processing.image import ImageProcessor, capabilities

CAPS = capabilities()
MIMES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/tiff"]
RED, BLUE, GREEN = [230, 20, 20], [20, 20, 230], [20, 230, 20]

# --- image makers ----------------------------------------------------------------------------


def solid(width: int, height: int, rgb: list[int]) -> Any:
    return (pyvips.Image.black(width, height, bands=3) + rgb).cast("uchar").copy(
        interpretation="srgb")


def gradient(width: int, height: int) -> Any:
    x = pyvips.Image.xyz(width, height)
    r = (x[0] * (255 / max(1, width - 1))).cast("uchar")
    g = (x[1] * (255 / max(1, height - 1))).cast("uchar")
    return r.bandjoin([g, (r + g) / 2]).cast("uchar").copy(interpretation="srgb")


def halves(width: int, height: int, first: list[int], second: list[int],
           vertical: bool = True) -> Any:
    """Two colours side by side (vertical=True: left|right) or stacked (top/bottom)."""
    if vertical:
        return solid(width // 2, height, first).join(solid(width - width // 2, height, second),
                                                     "horizontal")
    return solid(width, height // 2, first).join(solid(width, height - height // 2, second),
                                                 "vertical")


def exif_jpeg(orientation: int = 6) -> bytes:
    """300x200 as stored: the left 50 columns red, the rest blue; orientation + GPS + Make."""
    image = solid(50, 200, RED).join(solid(250, 200, BLUE), "horizontal").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Make", "RindleCam")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd3-GPSLatitudeRef", "N")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd3-GPSLatitude", "51/1 30/1 0/1")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd3-GPSLongitudeRef", "W")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd3-GPSLongitude", "0/1 7/1 0/1")
    return bytes(image.jpegsave_buffer(Q=95))


def rgba_png(width: int = 120, height: int = 80) -> bytes:
    rgb = gradient(width, height)
    alpha = (pyvips.Image.xyz(width, height)[0] > width // 2).ifthenelse(255, 0).cast("uchar")
    return bytes(rgb.bandjoin(alpha).copy(interpretation="srgb").pngsave_buffer())


def animated_gif() -> bytes:
    """Three 40x30 frames: red, green, blue."""
    frames = [solid(40, 30, c) for c in (RED, GREEN, BLUE)]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", 30)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100, 100, 100])
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return bytes(strip.gifsave_buffer())


def load(data: bytes) -> Any:
    return pyvips.Image.new_from_buffer(data, "")


def near(pixel: list[float], rgb: list[int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], rgb, strict=True))


def assert_no_metadata(image: Any) -> None:
    fields = image.get_fields()
    leaked = [f for f in fields if f.startswith(("exif-", "xmp-", "iptc-"))
              or f in ("orientation", "icc-profile-data")]
    assert not leaked, leaked


# --- a real runtime ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def runtime(tmp_path: Path, variants: dict[str, Variant], *,
                  max_pixels: int | None = 50_000_000, job_max_attempts: int = 5,
                  processor: ImageProcessor | None = None) -> AsyncIterator[Rindle]:
    attrs: dict[str, Any] = {"name": "photos", "storage": "local", "allow_mime": MIMES,
                             "variants": variants, "max_pixels": max_pixels}
    photos = type("Photos", (Profile,), attrs)
    media = Rindle(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                   storages={"local": LocalStorage(root=tmp_path / "files")},
                   profiles=[photos], secret_keys=["x" * 32], authorizer=AllowAll(),
                   job_max_attempts=job_max_attempts, scratch_dir=str(tmp_path / "tmp"),
                   processors={"image": processor or ImageProcessor()})
    await media.migrate()
    async with media.connected():
        yield media


async def upload_and_build(media: Rindle, data: bytes, filename: str,
                           content_type: str) -> tuple[Asset, dict[str, Any]]:
    result = await media.upload("photos", data, filename=filename, content_type=content_type)
    await media.drain()
    asset = await media.asset(result.asset.id)
    rows = {v.name: v for v in await media.repo.list_variants(asset.id)}
    return asset, rows


async def read_object(media: Rindle, key: str) -> bytes:
    storage = media.storage_for("photos")
    return b"".join([chunk async for chunk in storage.stream(key)])


async def ready_image(media: Rindle, row: Any) -> Any:
    assert row.state == "ready", (row.name, row.state, row.error_reason)
    data = await read_object(media, row.storage_key)
    assert len(data) == row.byte_size
    image = load(data)
    assert (image.width, image.height) == (row.width, row.height)
    return image


async def stored_asset(media: Rindle, data: bytes, ext: str = "jpg") -> Asset:
    """An asset row whose original is already in storage, bypassing promotion."""
    storage = media.storage_for("photos")
    key = f"photos/direct/{len(data)}.{ext}"

    async def once() -> AsyncIterator[bytes]:
        yield data

    await storage.write(key, once())
    return await media.repo.insert_asset(profile="photos", storage="local", storage_key=key,
                                         state="available", byte_size=len(data))


async def build(media: Rindle, asset: Asset, variant: Variant,
                processor: ImageProcessor | None = None) -> dict[str, Any]:
    """One variant built and stored the way a job does it, outside the queue."""
    built = await pipeline.build_variants(media, asset, {"v": variant},
                                          processor=processor or ImageProcessor())
    if isinstance(built["v"], BaseException):
        raise built["v"]
    return dict(built["v"])


def workdirs(tmp_path: Path) -> list[Path]:
    tmp = tmp_path / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


# --- tests ------------------------------------------------------------------------------------


async def test_exif_orientation_rotates_upright_and_metadata_is_stripped(tmp_path: Path) -> None:
    original = exif_jpeg(orientation=6)
    src = load(original)
    assert src.get("orientation") == 6 and "exif-ifd3-GPSLatitude" in src.get_fields()
    async with runtime(tmp_path, {"big": Variant(width=1000, height=1000),
                                  "small": Variant(width=100, format="png")}) as media:
        asset, rows = await upload_and_build(media, original, "p.jpg", "image/jpeg")
        assert asset.state == "ready"
        big = await ready_image(media, rows["big"])
        small = await ready_image(media, rows["small"])
    # 300x200 stored with orientation 6 is a 200x300 portrait; fit never enlarges it.
    assert (big.width, big.height) == (200, 300)
    assert (small.width, small.height) == (100, 150)
    # Rotated 90 degrees clockwise, the stored left (red) edge is now the top.
    assert near(big.getpoint(100, 10), RED)
    assert near(big.getpoint(100, 290), BLUE)
    assert near(small.getpoint(50, 5), RED)
    for image in (big, small):
        assert_no_metadata(image)
        assert not any("GPS" in f or "Make" in f for f in image.get_fields())
    assert rows["big"].content_type == "image/jpeg"
    assert rows["small"].content_type == "image/png"
    assert rows["big"].storage_key == (
        f"photos/{asset.id}/variants/big-{Variant(width=1000, height=1000).digest[:12]}.jpg")


async def test_fit_fill_and_crop_dimensions(tmp_path: Path) -> None:
    variants = {
        "fit-box": Variant(width=120, height=120),
        "fit-width": Variant(width=150),
        "fit-height": Variant(height=100),
        "fit-no-upscale": Variant(width=2000, height=2000),
        "fill": Variant(width=100, height=50, mode="fill"),
        "fill-tall": Variant(width=50, height=100, mode="fill", gravity="attention"),
        "fill-up": Variant(width=900, height=900, mode="fill"),
        "fill-entropy": Variant(width=64, height=64, mode="fill", gravity="entropy"),
        "crop": Variant(width=80, height=80, mode="crop"),
        "crop-nw": Variant(width=80, height=60, mode="crop", gravity="north-west"),
        "crop-up": Variant(width=700, height=100, mode="crop", gravity="south"),
    }
    data = bytes(gradient(600, 400).jpegsave_buffer(Q=95))
    async with runtime(tmp_path, variants) as media:
        asset, rows = await upload_and_build(media, data, "g.jpg", "image/jpeg")
        assert asset.state == "ready"
        got = {name: await ready_image(media, row) for name, row in rows.items()}
    dims = {name: (im.width, im.height) for name, im in got.items()}
    assert dims == {
        "fit-box": (120, 80), "fit-width": (150, 100), "fit-height": (150, 100),
        "fit-no-upscale": (600, 400), "fill": (100, 50), "fill-tall": (50, 100),
        "fill-up": (900, 900), "fill-entropy": (64, 64), "crop": (80, 80),
        "crop-nw": (80, 60), "crop-up": (700, 100),
    }
    # crop cuts at the original's scale: the north-west window is the gradient's dark corner,
    # the same pixels as the original's top-left 80x60.
    crop_nw = got["crop-nw"]
    original = gradient(600, 400)
    assert near(crop_nw.getpoint(79, 59), original.getpoint(79, 59), tol=12)
    assert near(got["crop"].getpoint(40, 40), original.getpoint(300, 200), tol=12)


@pytest.mark.parametrize(("gravity", "mode", "expect"), [
    ("west", "fill", RED), ("east", "fill", BLUE),
    ("north-west", "fill", RED), ("south-east", "crop", BLUE), ("west", "crop", RED),
])
async def test_compass_gravity_keeps_the_named_side(tmp_path: Path, gravity: str, mode: str,
                                                    expect: list[int]) -> None:
    # 400x100, left half red, right half blue: a 100x100 box sees only one half.
    data = bytes(halves(400, 100, RED, BLUE).pngsave_buffer())
    async with runtime(tmp_path, {"v": Variant(width=100, height=100, mode=mode,
                                               gravity=gravity, format="png")}) as media:
        _, rows = await upload_and_build(media, data, "h.png", "image/png")
        image = await ready_image(media, rows["v"])
    assert (image.width, image.height) == (100, 100)
    assert near(image.getpoint(50, 50), expect, tol=5)
    assert near(image.getpoint(0, 0), expect, tol=5) and near(image.getpoint(99, 99), expect,
                                                               tol=5)


async def test_crop_on_large_originals(tmp_path: Path) -> None:
    # Native-scale crops of big originals: smartcrop needs random access while the load is
    # sequential (this failed with "out of order read" before the copy to memory).
    plain = bytes(gradient(3000, 2000).jpegsave_buffer(Q=95))
    # 3000x2000 stored with orientation 6 is a 2000x3000 portrait.
    image = gradient(3000, 2000).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    rotated = bytes(image.jpegsave_buffer(Q=95))
    variants = {"se": Variant(width=400, height=300, mode="crop", gravity="south-east"),
                "att": Variant(width=400, height=300, mode="crop", gravity="attention"),
                "ent": Variant(width=300, height=400, mode="crop", gravity="entropy")}
    async with runtime(tmp_path, variants) as media:
        _, plain_rows = await upload_and_build(media, plain, "plain.jpg", "image/jpeg")
        _, rotated_rows = await upload_and_build(media, rotated, "rot.jpg", "image/jpeg")
        built = {f"{which}-{name}": await ready_image(media, row)
                 for which, rows in (("plain", plain_rows), ("rotated", rotated_rows))
                 for name, row in rows.items()}
    assert {k: (v.width, v.height) for k, v in built.items()} == {
        "plain-se": (400, 300), "plain-att": (400, 300), "plain-ent": (300, 400),
        "rotated-se": (400, 300), "rotated-att": (400, 300), "rotated-ent": (300, 400)}
    upright = load(rotated).autorot()
    assert (upright.width, upright.height) == (2000, 3000)
    expected = upright.crop(2000 - 400, 3000 - 300, 400, 300)
    se = built["rotated-se"]
    assert near(se.getpoint(0, 0), expected.getpoint(0, 0), tol=12)
    assert near(se.getpoint(399, 299), expected.getpoint(399, 299), tol=12)


async def test_north_and_south_pick_top_and_bottom(tmp_path: Path) -> None:
    data = bytes(halves(100, 400, GREEN, BLUE, vertical=False).pngsave_buffer())
    variants = {"n": Variant(width=100, height=100, mode="fill", gravity="north"),
                "s": Variant(width=100, height=100, mode="fill", gravity="south")}
    async with runtime(tmp_path, variants) as media:
        _, rows = await upload_and_build(media, data, "v.png", "image/png")
        north = await ready_image(media, rows["n"])
        south = await ready_image(media, rows["s"])
    assert near(north.getpoint(50, 50), GREEN, tol=5)
    assert near(south.getpoint(50, 50), BLUE, tol=5)


async def test_webp_and_avif_outputs_decode(tmp_path: Path) -> None:
    variants = {"webp": Variant(width=160, format="webp", quality=70)}
    if CAPS["avif_encode"]:
        variants["avif"] = Variant(width=160, format="avif", quality=50)
    data = exif_jpeg(orientation=1)
    async with runtime(tmp_path, variants) as media:
        _, rows = await upload_and_build(media, data, "p.jpg", "image/jpeg")
        webp = await ready_image(media, rows["webp"])
        assert rows["webp"].content_type == "image/webp"
        assert rows["webp"].storage_key.endswith(".webp")
        assert webp.get("vips-loader").startswith("webpload")
        assert (webp.width, webp.height) == (160, 107)
        assert_no_metadata(webp)
        if not CAPS["avif_encode"]:
            pytest.skip("this libvips has no heifsave with an AV1 encoder; webp checked only")
        avif = await ready_image(media, rows["avif"])
        raw = await read_object(media, rows["avif"].storage_key)
    assert raw[4:12] == b"ftypavif"
    assert rows["avif"].content_type == "image/avif"
    assert rows["avif"].storage_key.endswith(".avif")
    assert avif.get("vips-loader").startswith("heifload")
    assert (avif.width, avif.height) == (160, 107)
    assert near(avif.getpoint(100, 50), BLUE)
    assert_no_metadata(avif)


async def test_png_with_alpha_stays_png_with_four_bands(tmp_path: Path) -> None:
    variants = {"auto": Variant(width=60), "jpeg": Variant(width=60, format="jpeg"),
                "webp": Variant(width=60, format="webp")}
    async with runtime(tmp_path, variants) as media:
        _, rows = await upload_and_build(media, rgba_png(), "a.png", "image/png")
        auto = await ready_image(media, rows["auto"])
        flat = await ready_image(media, rows["jpeg"])
        webp = await ready_image(media, rows["webp"])
    # WebP keeps the alpha band too (its metadata chunks are removed, ALPH is kept).
    assert webp.bands == 4 and webp.getpoint(5, 20)[3] == 0
    assert_no_metadata(webp)
    assert rows["auto"].content_type == "image/png"
    assert auto.get("vips-loader").startswith("pngload")
    assert auto.bands == 4 and auto.hasalpha()
    assert auto.getpoint(5, 20)[3] == 0 and auto.getpoint(55, 20)[3] == 255
    # JPEG has no alpha: the transparent part is flattened onto white.
    assert rows["jpeg"].content_type == "image/jpeg" and flat.bands == 3
    assert near(flat.getpoint(5, 20), [255, 255, 255], tol=10)


async def test_embedded_icc_profile_is_converted_to_srgb_and_dropped(tmp_path: Path) -> None:
    # A CMYK JPEG carrying its ICC profile: the variant is 3-band sRGB with no profile.
    cmyk = solid(64, 48, RED).icc_export(output_profile="cmyk")
    data = bytes(cmyk.jpegsave_buffer(Q=95))
    assert load(data).interpretation == "cmyk" and "icc-profile-data" in load(data).get_fields()
    async with runtime(tmp_path, {"v": Variant(width=32)}) as media:
        _, rows = await upload_and_build(media, data, "cmyk.jpg", "image/jpeg")
        image = await ready_image(media, rows["v"])
    assert image.interpretation == "srgb" and image.bands == 3
    assert near(image.getpoint(16, 12), RED, tol=60)
    assert_no_metadata(image)


async def test_animated_gif_gives_its_first_frame_only(tmp_path: Path) -> None:
    data = animated_gif()
    assert load(data).get("n-pages") == 3
    variants = {"auto": Variant(width=20), "webp": Variant(width=20, format="webp")}
    async with runtime(tmp_path, variants) as media:
        _, rows = await upload_and_build(media, data, "a.gif", "image/gif")
        auto = await ready_image(media, rows["auto"])
        webp_bytes = await read_object(media, rows["webp"].storage_key)
    # An opaque GIF becomes a JPEG; one frame (the first, red) at the frame's aspect ratio.
    assert rows["auto"].content_type == "image/jpeg"
    assert (auto.width, auto.height) == (20, 15)
    assert auto.get_n_pages() == 1
    assert near(auto.getpoint(10, 7), RED)
    webp_all = pyvips.Image.new_from_buffer(webp_bytes, "", n=-1)
    assert webp_all.get_n_pages() == 1 and (webp_all.width, webp_all.height) == (20, 15)
    assert "delay" not in webp_all.get_fields() and "loop" not in webp_all.get_fields()


async def test_transparent_gif_becomes_png(tmp_path: Path) -> None:
    rgba = pyvips.Image.black(40, 30, bands=3).bandjoin(
        (pyvips.Image.xyz(40, 30)[0] > 20).ifthenelse(255, 0)).cast("uchar")
    data = bytes(rgba.copy(interpretation="srgb").gifsave_buffer())
    async with runtime(tmp_path, {"auto": Variant(width=20)}) as media:
        _, rows = await upload_and_build(media, data, "t.gif", "image/gif")
        image = await ready_image(media, rows["auto"])
    assert rows["auto"].content_type == "image/png" and image.bands == 4


async def test_heic_original_decodes_into_a_jpeg_variant(tmp_path: Path) -> None:
    if not CAPS["heic_decode"]:
        pytest.skip("this libvips cannot decode HEIC (heifload missing or libheif has no "
                    "HEVC decoder); install Debian's libvips42 (libheif1 with libde265)")
    if not CAPS["hevc_encode"]:
        pytest.skip("HEIC decodes here but libvips cannot encode HEVC to make a test file")
    data = bytes(halves(320, 240, RED, BLUE).heifsave_buffer(compression="hevc", Q=80))
    assert data[4:12] == b"ftypheic"
    async with runtime(tmp_path, {"thumb": Variant(width=160)}) as media:
        asset, rows = await upload_and_build(media, data, "IMG_0001.HEIC", "image/heic")
        assert asset.content_type == "image/heic"
        image = await ready_image(media, rows["thumb"])
    assert rows["thumb"].content_type == "image/jpeg"
    assert rows["thumb"].storage_key.endswith(".jpg")
    assert (image.width, image.height) == (160, 120)
    assert near(image.getpoint(20, 60), RED) and near(image.getpoint(140, 60), BLUE)
    assert_no_metadata(image)


async def test_truncated_jpeg_fails_with_image_decode_failed(tmp_path: Path) -> None:
    whole = bytes(gradient(400, 300).jpegsave_buffer(Q=95))
    cut = whole[: len(whole) // 2]
    async with runtime(tmp_path, {"v": Variant(width=100)}, job_max_attempts=1) as media:
        asset = await stored_asset(media, cut)
        with pytest.raises(RindleError) as info:
            await build(media, asset, Variant(width=100))
        assert info.value.code == "image_decode_failed"
        assert "Premature end" in info.value.message
        assert str(tmp_path) not in info.value.message
        assert workdirs(tmp_path) == []
        # Through the pipeline: promotion passes (the header is intact), the variant fails.
        promoted, rows = await upload_and_build(media, cut, "cut.jpg", "image/jpeg")
        assert rows["v"].state == "failed"
        assert "could not be decoded" in (rows["v"].error_reason or "")
        assert promoted.state == "degraded"
    assert workdirs(tmp_path) == []


async def test_garbage_is_image_decode_failed(tmp_path: Path) -> None:
    async with runtime(tmp_path, {"v": Variant(width=100)}) as media:
        asset = await stored_asset(media, b"\xff\xd8\xff\xe0 not really a jpeg" * 3)
        with pytest.raises(RindleError) as info:
            await build(media, asset, Variant(width=100))
    assert info.value.code == "image_decode_failed"


async def test_max_pixels_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    # A 1000x1000 JPEG cut to its first 2 KiB: the header is intact but any decode would fail
    # with image_decode_failed, so max_pixels_exceeded proves the pixels were never decoded.
    whole = bytes(gradient(1000, 1000).jpegsave_buffer(Q=95))
    header_only = whole[:2048]
    assert (load(header_only).width, load(header_only).height) == (1000, 1000)
    async with runtime(tmp_path, {"v": Variant(width=100)}, max_pixels=999_999) as media:
        asset = await stored_asset(media, header_only)
        with pytest.raises(RindleError) as info:
            await build(media, asset, Variant(width=100))
        assert info.value.code == "max_pixels_exceeded"
        assert info.value.details["width"] == 1000
        assert workdirs(tmp_path) == []
    # One pixel more allowed and the same file is decoded, and fails as truncated.
    (tmp_path / "b").mkdir()
    async with runtime(tmp_path / "b", {"v": Variant(width=100)}, max_pixels=1_000_000) as media:
        asset = await stored_asset(media, header_only)
        with pytest.raises(RindleError) as info:
            await build(media, asset, Variant(width=100))
        assert info.value.code == "image_decode_failed"


async def test_inputs_outside_the_allowlist_are_refused(tmp_path: Path) -> None:
    data = bytes(solid(20, 20, RED).pngsave_buffer())
    async with runtime(tmp_path, {"v": Variant(width=10)}) as media:
        asset = await stored_asset(media, data, ext="png")
        processor = ImageProcessor(allowed_inputs={"jpeg"})
        with pytest.raises(RindleError) as info:
            await build(media, asset, Variant(width=10), processor)
    assert info.value.code == "image_format_unsupported"
    assert workdirs(tmp_path) == []


async def test_direct_process_returns_the_row_fields_and_cleans_up(tmp_path: Path) -> None:
    data = bytes(gradient(64, 48).tiffsave_buffer())
    variant = Variant(width=32, height=32, mode="fill")
    async with runtime(tmp_path, {"v": variant}) as media:
        asset = await stored_asset(media, data, ext="tiff")
        built = await build(media, asset, variant)
        info = await media.storage_for("photos").head(built["storage_key"])
    assert built == {"storage_key": f"photos/{asset.id}/variants/v-{variant.digest[:12]}.jpg",
                     "content_type": "image/jpeg", "byte_size": info.size if info else -1,
                     "width": 32, "height": 32}
    assert workdirs(tmp_path) == []


async def test_libvips_runs_off_the_event_loop(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # How long the loop stalls while an image is built is measured by
    # bench/image_loop_stall.py. Here: no libvips operation of the upload, its checks and
    # its variant starts on the loop's thread, and while the decode is under way the loop
    # serves another task (the decode waits for that task to prove it).
    data = bytes(gradient(1200, 800).jpegsave_buffer(Q=90))
    variant = Variant(width=600, format="webp")
    loop_thread = threading.get_ident()
    ops: list[tuple[str, int]] = []
    decoding, loop_ran = threading.Event(), threading.Event()
    call = pyvips.Operation.call  # every pyvips operation starts here

    def traced(name: str, *args: Any, **kwargs: Any) -> Any:
        ops.append((name, threading.get_ident()))
        if name == "thumbnail" and threading.get_ident() != loop_thread:
            decoding.set()
            assert loop_ran.wait(10), "the event loop did not run while libvips decoded"
        return call(name, *args, **kwargs)

    async def meanwhile() -> None:
        while not decoding.is_set():
            await asyncio.sleep(0.005)
        loop_ran.set()

    async with runtime(tmp_path, {"v": variant}) as media:
        monkeypatch.setattr(pyvips.Operation, "call", staticmethod(traced))
        other = asyncio.create_task(meanwhile())
        try:
            _, rows = await upload_and_build(media, data, "a.jpg", "image/jpeg")
        finally:
            monkeypatch.undo()
            decoding.set()
            await other
    assert rows["v"].state == "ready" and (rows["v"].width, rows["v"].height) == (600, 400)
    names = {name for name, _ in ops}
    assert {"thumbnail", "webpsave"} <= names, names
    assert [name for name, thread in ops if thread == loop_thread] == []
    assert loop_ran.is_set()


def test_capabilities_reports_the_library() -> None:
    caps = capabilities()
    assert caps["available"] is True
    assert caps["libvips_version"].count(".") == 2
    for fmt in ("jpeg", "png", "webp", "gif"):
        assert caps["loaders"][fmt] is True
    assert {"jpeg", "png", "webp"} <= set(caps["outputs"])
    assert caps["metadata_option"] in ("strip", "keep")
    assert isinstance(caps["heic_decode"], bool) and isinstance(caps["avif_encode"], bool)
    assert ".jpg" in caps["suffixes"]
    caps["loaders"] = {}
    assert capabilities()["loaders"], "callers get a copy"
