"""VideoProcessor and AudioProcessor against the real ffmpeg, outputs checked with ffprobe."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rindle import LocalStorage, Variant
from rindle.errors import RindleError
from rindle.model.records import Asset
from rindle.processing import av
from rindle.processing.av import AudioProcessor, VideoProcessor
from rindle.processing.builtins import builtin_processor
from rindle.processing.processor import BatchProcessor, Output, Processor
from rindle.processing.workspace import JobContext, StoredSource
from tests.support.clips import (
    FFMPEG,
    FFPROBE,
    PRIVATE_TAGS,
    RED_STRIPE,
    Clips,
    children_named,
    clips,
    needs_ffmpeg,
)

pytestmark = needs_ffmpeg


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return clips(tmp_path_factory)


# --- helpers ---------------------------------------------------------------------------------


class Job:
    """A JobContext over a scratch directory, recording what is published."""

    def __init__(self, scratch: Path, *, max_pixels: int | None = 50_000_000) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self.percents: list[float] = []
        self.cancel = False
        self.cancel_once_moving = False  # cancel at the first progress report under 100
        self.context = JobContext(scratch, max_pixels=max_pixels, cancelled=self._cancelled,
                                  publish=self._publish)

    async def _cancelled(self) -> bool:
        return self.cancel

    async def _publish(self, percent: float) -> None:
        self.percents.append(percent)
        if self.cancel_once_moving and 0 < percent < 100:
            self.cancel = True


def source_of(path: Path, tmp_path: Path) -> StoredSource:
    """The clip as an asset's original on Local storage (read in place)."""
    asset = Asset(id="a1", profile="clips", state="available", storage="local",
                  storage_key=path.name, kind="video")

    async def scratch() -> Path:
        return tmp_path

    return StoredSource(LocalStorage(root=path.parent), asset, scratch)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run([FFPROBE or "ffprobe", "-v", "error", "-print_format", "json",
                          "-show_format", "-show_streams", str(path)], check=True,
                         capture_output=True, text=True).stdout
    report: dict[str, Any] = json.loads(out)
    return report


def stream(report: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in report["streams"] if s["codec_type"] == kind), None)


def top_level_boxes(path: Path) -> list[str]:
    boxes, data, at = [], path.read_bytes(), 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        at += size
    return boxes


def first_frame_rgb(path: Path) -> tuple[int, int, bytes]:
    info = stream(ffprobe(path), "video")
    assert info is not None
    width, height = info["width"], info["height"]
    data = subprocess.run([FFMPEG or "ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                          capture_output=True).stdout
    return width, height, data


def pixel(frame: tuple[int, int, bytes], x: int, y: int) -> tuple[int, ...]:
    width, _, data = frame
    at = (y * width + x) * 3
    return tuple(data[at:at + 3])


def is_red(rgb: Sequence[int]) -> bool:
    return rgb[0] > 180 and rgb[1] < 80 and rgb[2] < 80


def assert_no_tags(report: dict[str, Any]) -> None:
    text = json.dumps(report)
    for value in (*PRIVATE_TAGS.values(), "Lavf", "rotation"):
        assert value not in text, value


def assert_web_mp4(out: Output, source_duration: float, *, audio: bool) -> dict[str, Any]:
    assert out.content_type == "video/mp4" and out.path.suffix == ".mp4"
    report = ffprobe(out.path)
    video = stream(report, "video")
    assert video is not None
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert (video["width"], video["height"]) == (out.width, out.height)
    assert video["width"] % 2 == 0 and video["height"] % 2 == 0
    assert abs(float(report["format"]["duration"]) - source_duration) <= 0.1
    assert out.duration_ms is not None and abs(out.duration_ms / 1000 - source_duration) <= 0.1
    boxes = top_level_boxes(out.path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart
    sound = stream(report, "audio")
    if audio:
        assert sound is not None and sound["codec_name"] == "aac"
        assert 96_000 <= int(sound["bit_rate"]) <= 160_000
    else:
        assert sound is None
    assert_no_tags(report)
    return report


def loudness(path: Path) -> float:
    err = subprocess.run([FFMPEG or "ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
                          "-af", "ebur128", "-f", "null", "-"], check=True,
                         capture_output=True, text=True).stderr
    summary = err[err.rindex("Summary:"):]
    match = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert match, summary
    return float(match.group(1))


class CountingRuns:
    """Counts the ffmpeg runs of the processors (each still runs the real ffmpeg)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.argvs: list[list[str]] = []
        real = av.run_ffmpeg

        async def counted(args: Sequence[str], **kwargs: Any) -> list[str]:
            self.argvs.append(list(args))
            return await real(args, **kwargs)

        monkeypatch.setattr(av, "run_ffmpeg", counted)


# --- video -----------------------------------------------------------------------------------


async def test_all_renditions_come_from_one_ffmpeg(media: Clips, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runs = CountingRuns(monkeypatch)
    job = Job(tmp_path / "scratch")
    results = await VideoProcessor().process_many(
        source_of(media.big, tmp_path), {
            "hd": Variant(kind="video", format="web_720p"),
            "sd": Variant(kind="video", format="web_480p"),
            "poster": Variant(kind="video", format="poster"),
        }, job.context)
    hd, sd, poster = results["hd"], results["sd"], results["poster"]
    assert isinstance(hd, Output) and isinstance(sd, Output) and isinstance(poster, Output)
    assert (hd.width, hd.height) == (1280, 720)
    assert sd.height == 480 and sd.width in (852, 854)
    for out in (hd, sd):
        assert_web_mp4(out, 5.0, audio=True)
        assert out.path.parent == job.context.scratch
    encodes = [argv for argv in runs.argvs if "libx264" in argv]
    assert len(encodes) == 1 and encodes[0].count("libx264") == 2  # one decode, split in two
    assert poster.content_type == "image/jpeg" and (poster.width, poster.height) == (1280, 720)
    assert job.percents == sorted(job.percents) and job.percents[-1] == 100.0
    assert len(job.percents) >= 3
    assert job.context.metadata["duration"] == pytest.approx(5.0, abs=0.1)
    assert job.context.metadata["width"] == 1920


async def test_a_single_variant_is_built_alone_and_never_enlarged(media: Clips,
                                                                  tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(source_of(media.video_audio, tmp_path),
                                         Variant(kind="video", format="web_720p"), job.context)
    assert (out.width, out.height) == (320, 240)
    assert_web_mp4(out, 2.0, audio=True)


async def test_rotated_video_comes_out_upright(media: Clips, tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    source = source_of(media.rotated, tmp_path)
    out = await VideoProcessor().process(source, Variant(kind="video", format="web_480p"),
                                         job.context)
    assert (out.width, out.height) == (240, 320)  # shown portrait, stored portrait
    report = assert_web_mp4(out, 2.0, audio=True)
    assert "side_data_list" not in json.dumps(stream(report, "video"))  # no display matrix
    # The red band (the left edge as stored) is where the recorded rotation puts it.
    rotation = job.context.metadata["rotation"]
    frame = first_frame_rgb(out.path)
    band_y = 320 - RED_STRIPE // 2 if rotation == 270 else RED_STRIPE // 2
    other_y = RED_STRIPE // 2 if rotation == 270 else 320 - RED_STRIPE // 2
    assert is_red(pixel(frame, 120, band_y)) and not is_red(pixel(frame, 120, other_y))


async def test_video_without_sound_gets_no_audio_track(media: Clips, tmp_path: Path) -> None:
    out = await VideoProcessor().process(source_of(media.video_only, tmp_path),
                                         Variant(kind="video", format="web_480p"),
                                         Job(tmp_path / "scratch").context)
    assert_web_mp4(out, 2.0, audio=False)


@pytest.mark.parametrize(("clip", "duration", "audio"), [
    ("vfr", 1.934, False), ("hevc_mov", 1.0, True), ("mkv_named_mp4", 1.0, True)])
async def test_other_sources(media: Clips, tmp_path: Path, clip: str, duration: float,
                             audio: bool) -> None:
    out = await VideoProcessor().process(source_of(getattr(media, clip), tmp_path),
                                         Variant(kind="video", format="web_480p"),
                                         Job(tmp_path / "scratch").context)
    assert_web_mp4(out, duration, audio=audio)


async def test_the_poster_is_a_decodable_jpeg(media: Clips, tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(
        source_of(media.video_audio, tmp_path),
        Variant(kind="video", format="poster", width=160, height=160), job.context)
    assert out.content_type == "image/jpeg" and out.path.suffix == ".jpg"
    assert out.path.read_bytes()[:2] == b"\xff\xd8"
    assert (out.width, out.height) == (160, 120)
    frame = first_frame_rgb(out.path)  # ffmpeg decodes it whole
    assert len(frame[2]) == 160 * 120 * 3
    assert [p.name for p in job.context.scratch.iterdir()] == [out.path.name]


async def test_max_pixels_refuses_before_any_decode(media: Clips, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    runs = CountingRuns(monkeypatch)
    with pytest.raises(RindleError) as info:
        await VideoProcessor().process_many(
            source_of(media.big, tmp_path), {"hd": Variant(kind="video", format="web_720p")},
            Job(tmp_path / "scratch", max_pixels=1_000_000).context)
    assert info.value.code == "max_pixels_exceeded" and runs.argvs == []


@pytest.mark.parametrize("clip", ["corrupt", "not_media", "audio_m4a"])
async def test_no_readable_video_is_invalid_media(media: Clips, tmp_path: Path,
                                                  clip: str) -> None:
    with pytest.raises(RindleError) as info:
        await VideoProcessor().process(source_of(getattr(media, clip), tmp_path),
                                       Variant(kind="video", format="web_480p"),
                                       Job(tmp_path / "scratch").context)
    assert info.value.code == "invalid_media" and not info.value.retryable


async def test_an_unknown_recipe_fails_that_variant_only(media: Clips, tmp_path: Path) -> None:
    results = await VideoProcessor().process_many(
        source_of(media.video_only, tmp_path), {
            "odd": Variant(kind="video", format="web_4k"),
            "poster": Variant(kind="video", format="poster")},
        Job(tmp_path / "scratch").context)
    odd = results["odd"]
    assert isinstance(odd, RindleError) and odd.code == "invalid_variant"
    assert isinstance(results["poster"], Output)


async def test_cancelling_stops_ffmpeg_and_leaves_the_variants_out(media: Clips,
                                                                   tmp_path: Path) -> None:
    # The cancel is set from inside the progress report, while ffmpeg runs: a cancel from
    # the test's own loop could come after a fast machine's ffmpeg had already finished.
    job = Job(tmp_path / "scratch")
    job.cancel_once_moving = True
    results = await VideoProcessor(preset="medium").process_many(
        source_of(media.big, tmp_path), {"hd": Variant(kind="video", format="web_720p"),
                                         "sd": Variant(kind="video", format="web_480p")},
        job.context)
    assert results == {}  # left out: cancelled
    assert job.cancel and max(job.percents) < 100  # 100 is only reported on a clean finish
    assert children_named(os.getpid(), "ffmpeg") == []
    assert job.context.scratch.is_dir()  # the pipeline removes it


async def test_a_timeout_fails_the_renditions(media: Clips, tmp_path: Path) -> None:
    results = await VideoProcessor(timeout=0.5, preset="medium").process_many(
        source_of(media.big, tmp_path), {"hd": Variant(kind="video", format="web_720p")},
        Job(tmp_path / "scratch").context)
    error = results["hd"]
    assert isinstance(error, RindleError) and error.code == "processing_timeout"
    assert children_named(os.getpid(), "ffmpeg") == []


# --- audio -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("clip", "recipe", "codec", "content_type"), [
    ("audio_m4a", "m4a_128k", "aac", "audio/mp4"), ("audio_m4a", "mp3_128k", "mp3", "audio/mpeg"),
    ("audio_wav", "m4a_128k", "aac", "audio/mp4"), ("audio_mp3", "m4a_128k", "aac", "audio/mp4")])
async def test_audio_recipes(media: Clips, tmp_path: Path, clip: str, recipe: str, codec: str,
                             content_type: str) -> None:
    job = Job(tmp_path / "scratch")
    out = await AudioProcessor().process(source_of(getattr(media, clip), tmp_path),
                                         Variant(kind="audio", format=recipe), job.context)
    expected = 3000 if clip == "audio_wav" else 2000
    assert out.content_type == content_type and out.width is None
    assert out.duration_ms is not None and abs(out.duration_ms - expected) <= 100
    report = ffprobe(out.path)
    sound = stream(report, "audio")
    assert sound is not None and sound["codec_name"] == codec
    assert 110_000 <= int(report["format"]["bit_rate"]) <= 150_000
    assert stream(report, "video") is None
    assert_no_tags(report)
    assert job.percents[-1] == 100.0


async def test_audio_from_a_video(media: Clips, tmp_path: Path) -> None:
    out = await AudioProcessor().process(source_of(media.video_audio, tmp_path),
                                         Variant(kind="audio", format="mp3_128k"),
                                         Job(tmp_path / "scratch").context)
    assert stream(ffprobe(out.path), "video") is None


async def test_normalize_reaches_minus_16_lufs(media: Clips, tmp_path: Path) -> None:
    before = loudness(media.audio_wav)
    assert before < -20  # quiet to begin with
    job = Job(tmp_path / "scratch")
    out = await AudioProcessor().process(
        source_of(media.audio_wav, tmp_path),
        Variant(kind="audio", format="m4a_128k", options={"normalize": True}), job.context)
    assert abs(loudness(out.path) - (-16.0)) <= 1.0
    assert int(stream(ffprobe(out.path), "audio")["sample_rate"]) == 48000  # type: ignore[index]
    assert job.percents == sorted(job.percents) and job.percents[-1] == 100.0
    assert any(50 <= p < 100 for p in job.percents) or len(job.percents) >= 2


async def test_audio_needs_a_sound_track(media: Clips, tmp_path: Path) -> None:
    with pytest.raises(RindleError) as info:
        await AudioProcessor().process(source_of(media.video_only, tmp_path),
                                       Variant(kind="audio", format="m4a_128k"),
                                       Job(tmp_path / "scratch").context)
    assert info.value.code == "invalid_media"


async def test_an_unknown_audio_recipe(media: Clips, tmp_path: Path) -> None:
    with pytest.raises(RindleError) as info:
        await AudioProcessor().process(source_of(media.audio_m4a, tmp_path),
                                       Variant(kind="audio", format="flac"),
                                       Job(tmp_path / "scratch").context)
    assert info.value.code == "invalid_variant"


def test_builtins_register_video_and_audio() -> None:
    video, audio = builtin_processor("video"), builtin_processor("audio")
    assert isinstance(video, VideoProcessor) and isinstance(video, BatchProcessor)
    assert isinstance(audio, AudioProcessor) and isinstance(audio, Processor)


async def test_a_waveform_has_its_peaks_over_the_whole_sound(media: Clips,
                                                             tmp_path: Path) -> None:
    """``waveform``: JSON with 1000 (min, max) pairs in -1..1; a sine at the test clips'
    level peaks well above silence in every pair, symmetric around zero."""
    import json

    from rindle.processing.av import WAVEFORM_PEAKS

    job = Job(tmp_path / "scratch")
    out = await AudioProcessor().process(source_of(media.audio_m4a, tmp_path),
                                         Variant(kind="audio", format="waveform"), job.context)
    assert out.content_type == "application/json" and out.path.suffix == ".json"
    assert out.duration_ms is not None and abs(out.duration_ms - 2000) <= 100
    data = json.loads(out.path.read_text())
    peaks = data["peaks"]
    assert len(peaks) == WAVEFORM_PEAKS and data["sample_rate"] == 8000
    assert all(-1 <= low <= high <= 1 for low, high in peaks)
    loud = [high - low for low, high in peaks[10:-10]]  # away from the encoder's edges
    assert min(loud) > 0.05
    assert abs(sum(low for low, _ in peaks) + sum(high for _, high in peaks)) < 0.1 * len(peaks)
    assert not list(job.context.scratch.glob("*.raw"))  # the decoded samples are gone
    assert job.percents[-1] == 100.0


# --- scrub strips ----------------------------------------------------------------------------


def frame_rgb(path: Path) -> tuple[int, int, bytes]:
    """A picture decoded whole by ffmpeg (its size from ffprobe): it must be readable."""
    frame = first_frame_rgb(path)
    assert len(frame[2]) == frame[0] * frame[1] * 3
    return frame


def tile_rgb(frame: tuple[int, int, bytes], index: int, columns: int, width: int = 160,
             height: int = 90) -> list[tuple[int, ...]]:
    """Tile ``index``'s pixels, row by row."""
    left, top = index % columns * width, index // columns * height
    return [pixel(frame, left + x, top + y) for y in range(height) for x in range(width)]


def difference(a: Sequence[tuple[int, ...]], b: Sequence[tuple[int, ...]]) -> float:
    """The mean absolute difference of two tiles' channels."""
    total = sum(abs(p - q) for x, y in zip(a, b, strict=True)
                for p, q in zip(x, y, strict=True))
    return total / (3 * len(a))


def is_black(rgb: Sequence[int]) -> bool:
    return max(rgb) < 40


def is_blue(rgb: Sequence[int]) -> bool:
    return rgb[2] > 180 and rgb[0] < 80 and rgb[1] < 80


def assert_strip(out: Output, job: Job, duration: float, *, tiles: int = 20, columns: int = 10,
                 width: int = 160, height: int = 90) -> list[float]:
    """A decodable JPEG sprite of the right size, and its timestamps in the metadata."""
    rows = -(-tiles // columns)
    assert out.content_type == "image/jpeg" and out.path.suffix == ".jpg"
    assert out.path.read_bytes()[:2] == b"\xff\xd8"
    assert (out.width, out.height) == (columns * width, rows * height)
    assert out.duration_ms is None
    info = stream(ffprobe(out.path), "video")
    assert info is not None and info["codec_name"] == "mjpeg"
    assert (info["width"], info["height"]) == (out.width, out.height)
    frame_rgb(out.path)
    meta = job.context.metadata["scrub_strip"]
    assert {k: meta[k] for k in ("tiles", "columns", "tile_width", "tile_height")} == {
        "tiles": tiles, "columns": columns, "tile_width": width, "tile_height": height}
    stamps: list[float] = meta["timestamps"]
    assert len(stamps) == tiles
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    assert 0 <= stamps[0] and stamps[-1] <= duration
    step = duration / tiles  # evenly spaced, each in the middle of its share
    assert all(abs(t - (k + 0.5) * step) <= 0.001 for k, t in enumerate(stamps))
    return stamps


async def test_a_scrub_strip_is_one_sprite_of_evenly_spaced_frames(
        media: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = CountingRuns(monkeypatch)
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(source_of(media.video_audio, tmp_path),
                                         Variant(kind="video", format="scrub_strip"),
                                         job.context)
    assert_strip(out, job, 2.0)
    assert len(runs.argvs) == 1 and "libx264" not in runs.argvs[0]
    frame = frame_rgb(out.path)
    first, last = tile_rgb(frame, 0, 10), tile_rgb(frame, 19, 10)
    assert difference(first, last) > 1  # testsrc2 moves: frames from across the clip
    assert job.context.metadata["duration"] == pytest.approx(2.0, abs=0.1)  # facts too
    assert [p.name for p in job.context.scratch.iterdir()] == [out.path.name]
    assert job.percents == sorted(job.percents) and job.percents[-1] == 100.0


@pytest.mark.parametrize(("options", "tiles", "columns", "width", "height"), [
    ({"tiles": 25}, 25, 10, 160, 90),                              # a last row half full
    ({"tiles": 4, "tile_width": 120, "tile_height": 68}, 4, 4, 120, 68),  # one short row
    ({"tiles": 12, "columns": 5}, 12, 5, 160, 90),
])
async def test_scrub_strip_options_set_the_grid(media: Clips, tmp_path: Path,
                                                options: dict[str, int], tiles: int,
                                                columns: int, width: int, height: int) -> None:
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(
        source_of(media.video_only, tmp_path),
        Variant(kind="video", format="scrub_strip", options=options), job.context)
    assert_strip(out, job, 2.0, tiles=tiles, columns=columns, width=width, height=height)
    frame = frame_rgb(out.path)
    slots = columns * -(-tiles // columns)
    for index in range(tiles, slots):  # the grid's unused slots are black
        assert all(is_black(p) for p in tile_rgb(frame, index, columns, width, height)[::97])
    # 320x240 fitted into the tile: as tall as it, centred with black at the sides.
    inner = round(height * 4 / 3)
    side = (width - inner) // 2
    if side > 4:
        assert is_black(pixel(frame, side // 2, height // 2))
        assert not is_black(pixel(frame, width // 2, height // 2))


async def test_scrub_strip_of_a_rotated_video_has_upright_tiles(media: Clips,
                                                                tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(
        source_of(media.rotated, tmp_path),
        Variant(kind="video", format="scrub_strip", options={"tiles": 10}), job.context)
    assert_strip(out, job, 2.0, tiles=10)
    frame = frame_rgb(out.path)
    # Shown 240x320: fitted into 160x90 it is 68x90, centred, black at the sides (stored
    # 320x240 would fill 120 of the 160 columns and show the red band at the left).
    band = round(RED_STRIPE * 90 / 320)  # the band's height in the tile
    rotation = job.context.metadata["rotation"]
    band_y = 90 - band // 2 - 1 if rotation == 270 else band // 2
    other_y = band // 2 if rotation == 270 else 90 - band // 2 - 1
    for index in (0, 9):
        left = index * 160
        assert is_black(pixel(frame, left + 30, 45)) and is_black(pixel(frame, left + 130, 45))
        assert is_blue(pixel(frame, left + 80, 45))
        assert is_red(pixel(frame, left + 80, band_y))
        assert is_blue(pixel(frame, left + 80, other_y))


@pytest.mark.parametrize(("seconds", "frames"), [(0.4, 10), (0.04, 1)])
async def test_scrub_strip_of_a_clip_with_fewer_frames_than_tiles(
        tmp_path: Path, seconds: float, frames: int) -> None:
    clip = tmp_path / "short.mp4"
    subprocess.run([FFMPEG or "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x240:rate=25:duration={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)], check=True)
    assert int(stream(ffprobe(clip), "video")["nb_frames"]) == frames  # type: ignore[index]
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(source_of(clip, tmp_path),
                                         Variant(kind="video", format="scrub_strip"),
                                         job.context)
    assert_strip(out, job, seconds)
    frame = frame_rgb(out.path)
    tiles = [tile_rgb(frame, index, 10) for index in range(20)]
    assert not any(all(is_black(p) for p in tile[::97]) for tile in tiles)  # all 20 filled
    assert difference(tiles[0], tiles[1]) < 3  # 20 tiles of 10 frames: each frame twice
    if frames > 1:
        assert difference(tiles[0], tiles[19]) > 1  # ... from the first to the last
    else:
        assert difference(tiles[0], tiles[19]) < 3  # one frame: the same in every tile


async def test_scrub_strip_rides_on_the_renditions_decode(
        media: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = CountingRuns(monkeypatch)
    job = Job(tmp_path / "scratch")
    results = await VideoProcessor().process_many(
        source_of(media.big, tmp_path), {
            "hd": Variant(kind="video", format="web_720p"),
            "poster": Variant(kind="video", format="poster"),
            "strip": Variant(kind="video", format="scrub_strip"),
        }, job.context)
    hd, poster, strip = results["hd"], results["poster"], results["strip"]
    assert isinstance(hd, Output) and isinstance(poster, Output) and isinstance(strip, Output)
    assert (hd.width, hd.height) == (1280, 720)
    assert_web_mp4(hd, 5.0, audio=True)
    assert poster.content_type == "image/jpeg" and (poster.width, poster.height) == (1280, 720)
    assert_strip(strip, job, 5.0)
    assert strip.path.parent == job.context.scratch
    # One decode for the rendition and the strip (no null output: the MP4 drives progress),
    # then the poster's short run.
    assert len(runs.argvs) == 2
    decode = runs.argvs[0]
    assert decode.count("libx264") == 1 and decode.count("mjpeg") == 1
    assert "null" not in decode[decode.index("-filter_complex") + 2:]
    assert job.percents == sorted(job.percents) and job.percents[-1] == 100.0
    assert job.context.metadata["width"] == 1920


async def test_scrub_strip_runs_through_run_ffmpeg_with_progress_and_timeout(
        media: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alone, the strip's run gets the job's monitor, the duration and the processor's
    timeout; its null output of the picked frames moves the progress as the decode goes
    (a JPEG alone reports no time until its frame is written)."""
    seen: list[dict[str, Any]] = []
    raw: list[float] = []
    real = av.run_ffmpeg

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def cancelled(self) -> bool:
            result: bool = await self.inner.cancelled()
            return result

        async def progress(self, percent: float) -> None:
            raw.append(percent)
            await self.inner.progress(percent)

    async def recorded(args: Sequence[str], **kwargs: Any) -> list[str]:
        seen.append(kwargs)
        return await real(args, **{**kwargs, "context": Recording(kwargs["context"])})

    monkeypatch.setattr(av, "run_ffmpeg", recorded)
    job = Job(tmp_path / "scratch")
    await VideoProcessor(timeout=123.0).process(source_of(media.big, tmp_path),
                                                Variant(kind="video", format="scrub_strip"),
                                                job.context)
    assert len(seen) == 1
    assert seen[0]["timeout"] == 123.0 and seen[0]["duration"] == pytest.approx(5.0, abs=0.1)
    assert seen[0]["context"] is not None
    assert raw[-1] == 100.0 and max(p for p in raw if p < 100) > 50
    assert job.percents[-1] == 100.0


async def test_cancelling_a_decode_with_a_scrub_strip_leaves_it_out(media: Clips,
                                                                    tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    job.cancel_once_moving = True
    results = await VideoProcessor(preset="medium").process_many(
        source_of(media.big, tmp_path), {"hd": Variant(kind="video", format="web_720p"),
                                         "strip": Variant(kind="video", format="scrub_strip")},
        job.context)
    assert results == {}
    assert "scrub_strip" not in job.context.metadata
    assert children_named(os.getpid(), "ffmpeg") == []


async def test_a_timeout_fails_the_scrub_strip_with_the_renditions(media: Clips,
                                                                   tmp_path: Path) -> None:
    job = Job(tmp_path / "scratch")
    results = await VideoProcessor(timeout=0.5, preset="medium").process_many(
        source_of(media.big, tmp_path), {"hd": Variant(kind="video", format="web_720p"),
                                         "strip": Variant(kind="video", format="scrub_strip")},
        job.context)
    for name in ("hd", "strip"):
        error = results[name]
        assert isinstance(error, RindleError) and error.code == "processing_timeout"
    assert "scrub_strip" not in job.context.metadata
    assert children_named(os.getpid(), "ffmpeg") == []


@pytest.mark.parametrize("options", [
    {"tiles": 0}, {"tiles": "20"}, {"tiles": True}, {"tile_width": 161}, {"tile_height": 8},
    {"tiles": 1000, "columns": 1}, {"tiles": 1000, "tile_width": 1920, "tile_height": 1080,
                                   "columns": 30}])
async def test_bad_scrub_strip_options_fail_that_variant_only(media: Clips, tmp_path: Path,
                                                              options: dict[str, Any]) -> None:
    results = await VideoProcessor().process_many(
        source_of(media.video_only, tmp_path), {
            "strip": Variant(kind="video", format="scrub_strip", options=options),
            "poster": Variant(kind="video", format="poster")},
        Job(tmp_path / "scratch").context)
    error = results["strip"]
    assert isinstance(error, RindleError) and error.code == "invalid_variant"
    assert not error.retryable
    assert isinstance(results["poster"], Output)


def test_scrub_strip_is_a_video_recipe() -> None:
    assert "scrub_strip" in av.VIDEO_RECIPES


@pytest.mark.parametrize("x264,colour", [("", "blue"), ("scenecut=0:keyint=1000", "red")])
async def test_the_poster_is_the_cut_when_a_keyframe_marks_it(tmp_path: Path, x264: str,
                                                              colour: str) -> None:
    """Red for 2 s, then blue: the encoder puts a keyframe at the cut and the poster is the
    blue frame after it; encoded with no keyframe there, the poster is the first (red) one.
    Either way the keyframes-only decode finds it."""
    import pyvips

    from tests.support.clips import ffmpeg

    clip = tmp_path / "cut.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=320x240:rate=25:duration=2",
           "-f", "lavfi", "-i", "color=c=blue:size=320x240:rate=25:duration=2",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
           "-c:v", "libx264", "-pix_fmt", "yuv420p",
           *(["-x264-params", x264] if x264 else []), str(clip))
    job = Job(tmp_path / "scratch")
    out = await VideoProcessor().process(source_of(clip, tmp_path),
                                         Variant(kind="video", format="poster"), job.context)
    image = pyvips.Image.new_from_file(str(out.path))
    r, b = image.extract_band(0).avg(), image.extract_band(2).avg()
    assert (r > b) == (colour == "red"), (r, b)
    assert (out.width, out.height) == (320, 240)  # a tiny JPEG is read back too
