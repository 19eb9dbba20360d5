"""The doctor's ffmpeg check, against this machine's ffmpeg and ffprobe (Debian's 5.1)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from rindle import AudioWeb, Profile, Web
from rindle.ops.doctor import Check, run_doctor
from tests.conftest import ImageProfile, MakeMedia

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Clips(Web):
    name = "clips"
    storage = "local"
    with_480p = True


class Podcasts(AudioWeb):
    name = "podcasts"
    storage = "local"
    with_mp3 = True


class RawVideo(Profile):
    """Takes video but builds nothing from it: ffprobe still analyses each upload."""

    name = "raw_video"
    storage = "local"
    allow_mime = ["video/mp4"]


async def _ffmpeg_check(media: object) -> Check | None:
    report = await run_doctor(media)  # type: ignore[arg-type]
    return next((c for c in report.checks if c.id == "doctor.ffmpeg"), None)


@SQLITE
async def test_this_machines_ffmpeg_builds_the_presets(make_media: MakeMedia) -> None:
    check = await _ffmpeg_check(make_media(profiles=[Clips, Podcasts]))
    assert check is not None and check.status == "ok", check
    assert check.component == "video and audio" and check.fix is None
    # Whatever ffmpeg this machine has: the versions are read from the tools themselves.
    assert re.search(r"ffprobe \d+\.\d", check.summary) and re.search(r"ffmpeg \d+\.\d",
                                                                       check.summary)
    assert "with aac, libmp3lame, libx264, mjpeg" in check.summary
    assert "6 video/audio variants, 2 profiles analysed by ffprobe" in check.summary


@SQLITE
async def test_without_video_or_audio_the_check_is_skipped(make_media: MakeMedia) -> None:
    report = await run_doctor(make_media(profiles=[ImageProfile]))
    assert "doctor.ffmpeg" not in [c.id for c in report.checks]


@SQLITE
async def test_no_ffmpeg_on_path_is_an_error(make_media: MakeMedia, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    media = make_media(profiles=[Clips, ImageProfile])
    report = await run_doctor(media)
    check = next(c for c in report.checks if c.id == "doctor.ffmpeg")
    assert check.status == "error" and not report.ok
    assert "ffprobe is not on PATH" in check.summary
    assert "3 video/audio variants (clips.web_720p, clips.poster, clips.web_480p) need " \
           "ffmpeg" in check.summary
    assert check.fix is not None and "apt install ffmpeg" in check.fix


@SQLITE
async def test_a_video_profile_without_variants_still_needs_ffprobe(
        make_media: MakeMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = await _ffmpeg_check(make_media(profiles=[RawVideo]))
    assert ok is not None and ok.status == "ok"
    assert "0 video/audio variants, 1 profile analysed by ffprobe" in ok.summary
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = await _ffmpeg_check(make_media(profiles=[RawVideo]))
    assert missing is not None and missing.status == "error"
    assert "raw_video take video or audio, but ffprobe is not on PATH" in missing.summary
    assert "need ffmpeg" not in missing.summary  # nothing is built, only analysed


@SQLITE
async def test_an_ffmpeg_without_libx264_is_an_error(make_media: MakeMedia, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The real ffmpeg behind a wrapper that hides one encoder from -encoders, as an ffmpeg
    # built without GPL parts (no libx264) would list them.
    real_ffmpeg, real_ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    assert real_ffmpeg and real_ffprobe
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffprobe").symlink_to(real_ffprobe)
    wrapper = bin_dir / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\n"{real_ffmpeg}" "$@" | grep -v " libx264 "\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    check = await _ffmpeg_check(make_media(profiles=[Clips, Podcasts]))
    assert check is not None and check.status == "error"
    assert check.summary == ("this ffmpeg has no libx264 encoder, which clips.web_720p, "
                             "clips.web_480p need")
    assert check.fix is not None and "built with libx264" in check.fix
