"""Promotion of video and audio: ffprobe reads the header (never a frame), the facts land in
the asset without any tag, and a file that lies or overreaches is quarantined with a stable
reason. Real ffmpeg-made clips (tests/support/clips.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rindle import Profile, Rindle
from rindle.model.records import Asset
from tests.conftest import MakeMedia
from tests.support.clips import PRIVATE_TAGS, Clips, clips, ffmpeg

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg")

VIDEO = ["video/mp4", "video/quicktime", "video/webm", "video/x-matroska"]
AUDIO = ["audio/mp4", "audio/mpeg", "audio/wav", "audio/ogg", "audio/flac"]


class Clip(Profile):
    name = "clip"
    storage = "local"
    allow_mime = VIDEO + AUDIO
    max_bytes = 64 * 1024 * 1024


class ShortClip(Clip):
    name = "short"
    max_duration_seconds = 3


class SmallClip(Clip):
    name = "small"
    max_pixels = 1_000_000


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return clips(tmp_path_factory)


@pytest.fixture
def av_media(make_media: MakeMedia) -> Rindle:
    return make_media(profiles=[Clip, ShortClip, SmallClip])


async def _promoted(media: Rindle, path: Path, *, profile: str = "clip",
                    filename: str | None = None, content_type: str | None = None) -> Asset:
    async with media.connected():
        result = await media.upload(profile, path.read_bytes(), filename=filename or path.name,
                                    content_type=content_type)
        await media.drain()
        return await media.asset(result.asset.id)


async def test_a_video_with_sound_is_promoted_with_its_facts_and_no_tags(
        av_media: Rindle, made: Clips) -> None:
    asset = await _promoted(av_media, made.video_audio)
    assert asset.state in ("available", "ready"), asset.quarantine_reason
    assert (asset.kind, asset.content_type) == ("video", "video/mp4")
    meta = asset.metadata
    assert meta["has_video"] is True and meta["has_audio"] is True
    assert meta["video_codec"] == "h264" and meta["audio_codec"] == "aac"
    assert meta["duration"] == pytest.approx(2.0, abs=0.2)
    assert asset.duration_ms == round(meta["duration"] * 1000)  # on the row, for the macros
    assert (asset.width, asset.height) == (meta["width"], meta["height"])
    text = json.dumps(meta)
    for value in PRIVATE_TAGS.values():
        assert str(value) not in text


async def test_audio_files_are_audio(av_media: Rindle, made: Clips) -> None:
    for path, mime in ((made.audio_m4a, "audio/mp4"), (made.audio_mp3, "audio/mpeg"),
                       (made.audio_wav, "audio/wav")):
        asset = await _promoted(av_media, path)
        assert asset.state in ("available", "ready"), (path.name, asset.quarantine_reason)
        assert (asset.kind, asset.content_type) == ("audio", mime), path.name
        assert asset.metadata["has_video"] is False and asset.width is None


async def test_a_turned_phone_clip_has_its_displayed_size(av_media: Rindle,
                                                          made: Clips) -> None:
    asset = await _promoted(av_media, made.rotated)
    assert (asset.width, asset.height) == (240, 320)
    assert asset.metadata["rotation"] in (90, 270)


@pytest.mark.parametrize("case,reason", [
    ("mkv_named_mp4", "extension_mime_mismatch"),
    ("corrupt", "invalid_media"),
    ("playlist", "mime_not_allowed"),
])
async def test_files_that_lie_are_quarantined(av_media: Rindle, made: Clips, case: str,
                                              reason: str) -> None:
    asset = await _promoted(av_media, getattr(made, case))
    assert (asset.state, asset.quarantine_reason) == ("quarantined", reason), asset.error_reason


async def test_a_claim_of_video_holding_audio_only_is_quarantined(av_media: Rindle,
                                                                  tmp_path: Path) -> None:
    # Sound alone in an ordinary MP4 (brand isom): its name and magic bytes say video/mp4,
    # as does the claim, but there is no picture.
    path = tmp_path / "lesson.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac",
           "-f", "mp4", str(path))
    asset = await _promoted(av_media, path, content_type="video/mp4")
    assert asset.content_type == "video/mp4"
    assert (asset.state, asset.quarantine_reason) == ("quarantined", "content_type_mismatch")
    unclaimed = await _promoted(av_media, path, content_type="audio/mp4")
    assert (unclaimed.state, unclaimed.kind) in (("available", "audio"), ("ready", "audio"))


async def test_profile_limits_are_read_from_the_header(av_media: Rindle, made: Clips) -> None:
    long = await _promoted(av_media, made.big, profile="short")  # 5 s > 3 s
    assert (long.state, long.quarantine_reason) == ("quarantined", "max_duration_exceeded")
    assert "5.0 s" in (long.error_reason or "")
    wide = await _promoted(av_media, made.big, profile="small")  # 1920x1080 > 1 MP
    assert (wide.state, wide.quarantine_reason) == ("quarantined", "max_pixels_exceeded")
    fine = await _promoted(av_media, made.video_audio, profile="short")
    assert fine.state in ("available", "ready")


async def test_a_header_claiming_a_huge_picture_is_refused_before_any_decode(
        av_media: Rindle, tmp_path: Path) -> None:
    """A 64x64 clip whose H.264 header claims 8192x8192 (67 MP, over the default 50 MP):
    quarantined from ffprobe's reading of the header; no variant is ever built. (ffmpeg's
    own decoder refuses 16384x16384 outright, as an invalid picture size.)"""
    from tests.support.h264_bomb import claim_size

    small = tmp_path / "small.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=5:duration=0.4",
           "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(small))
    bomb = claim_size(small, tmp_path / "bomb.mp4", 8192, 8192)
    asset = await _promoted(av_media, bomb)
    assert (asset.state, asset.quarantine_reason) == ("quarantined", "max_pixels_exceeded")
    assert "8192x8192" in (asset.error_reason or "")
