"""probe() against the real ffprobe, on clips made with ffmpeg's lavfi sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rindle.errors import ERROR_CODES, RindleError
from rindle.processing.av_probe import MediaFacts, probe
from tests.support.clips import PRIVATE_TAGS, Clips, clips, needs_ffmpeg

pytestmark = needs_ffmpeg


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return clips(tmp_path_factory)


async def test_video_with_audio(media: Clips) -> None:
    facts = await probe(media.video_audio)
    assert facts.has_video and facts.has_audio
    assert (facts.width, facts.height, facts.rotation) == (320, 240, 0)
    assert facts.video_codec == "h264" and facts.audio_codec == "aac"
    assert facts.frame_rate == 25.0
    assert facts.duration is not None and abs(facts.duration - 2.0) < 0.1
    assert facts.bit_rate is not None and facts.bit_rate > 0
    assert facts.container is not None and "mp4" in facts.container


async def test_metadata_is_json_and_has_no_tags(media: Clips) -> None:
    metadata = (await probe(media.video_audio)).to_metadata()
    assert set(metadata) == {"duration", "has_video", "has_audio", "width", "height",
                             "rotation", "frame_rate", "video_codec", "audio_codec",
                             "bit_rate", "container"}
    text = json.dumps(metadata)
    for value in (*PRIVATE_TAGS.values(), "Lavf", "Lavc", "libx264", "+51.5"):
        assert value not in text


@pytest.mark.parametrize("clip", ["audio_m4a", "audio_wav", "audio_mp3"])
async def test_audio_only(media: Clips, clip: str) -> None:
    facts = await probe(getattr(media, clip))
    assert facts.has_audio and not facts.has_video
    assert (facts.width, facts.height, facts.frame_rate, facts.video_codec) == (None,) * 4
    assert facts.audio_codec in ("aac", "pcm_s16le", "mp3")
    assert facts.duration is not None and abs(facts.duration - (3 if clip == "audio_wav"
                                                                else 2)) < 0.1


async def test_video_only(media: Clips) -> None:
    facts = await probe(media.video_only)
    assert facts.has_video and not facts.has_audio and facts.audio_codec is None


async def test_a_display_matrix_swaps_width_and_height(media: Clips) -> None:
    facts = await probe(media.rotated)
    # ffmpeg 5.1 turns `rotate=90` into a counter-clockwise matrix: 270 degrees clockwise.
    assert facts.rotation in (90, 270)
    assert (facts.width, facts.height) == (240, 320)


async def test_variable_frame_rate(media: Clips) -> None:
    facts = await probe(media.vfr)
    assert facts.has_video and facts.frame_rate is not None
    assert 0 < facts.frame_rate < 30  # frames were dropped: fewer than the source's 30


async def test_hevc_in_mov(media: Clips) -> None:
    facts = await probe(media.hevc_mov)
    assert facts.video_codec == "hevc" and facts.container is not None
    assert "mov" in facts.container and (facts.width, facts.height) == (320, 240)


async def test_the_container_is_read_from_the_content_not_the_name(media: Clips) -> None:
    facts = await probe(media.mkv_named_mp4)
    assert facts.container == "matroska,webm"


@pytest.mark.parametrize("clip", ["corrupt", "not_media", "playlist"])
async def test_unreadable_files_are_invalid_media(media: Clips, clip: str) -> None:
    path: Path = getattr(media, clip)
    with pytest.raises(RindleError) as info:
        await probe(path)
    assert info.value.code == "invalid_media" and not info.value.retryable
    assert ERROR_CODES["invalid_media"] == 422
    assert str(path.parent) not in info.value.message  # the file's name, never its path


async def test_a_file_that_is_not_there_is_invalid_media(tmp_path: Path) -> None:
    with pytest.raises(RindleError) as info:
        await probe(tmp_path / "missing.mp4")
    assert info.value.code == "invalid_media"


async def test_a_timeout_is_invalid_media(media: Clips) -> None:
    with pytest.raises(RindleError) as info:
        await probe(media.video_audio, timeout=0.001)
    assert info.value.code == "invalid_media" and "longer than" in info.value.message


async def test_ffprobe_missing(media: Clips, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RindleError) as info:
        await probe(media.video_audio)
    assert info.value.code == "ffmpeg_missing" and ERROR_CODES["ffmpeg_missing"] == 500


def test_facts_are_frozen() -> None:
    facts = MediaFacts(duration=None, has_video=False, has_audio=True, width=None, height=None,
                       rotation=0, frame_rate=None, video_codec=None, audio_codec="aac",
                       bit_rate=None, container="wav")
    with pytest.raises(AttributeError):
        facts.rotation = 90  # type: ignore[misc]
