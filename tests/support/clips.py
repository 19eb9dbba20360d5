"""Small real audio/video files made with ffmpeg's lavfi sources, once per test session.

``clips(tmp_path_factory)`` returns the session's ``Clips``; each clip is made the first
time a test asks for it. The video clips carry tags a processor must never copy: a title,
a GPS position and a device name. ``children_named`` and ``state`` read the process table,
to show that no ffmpeg outlives its job.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None,
                                  reason="ffmpeg/ffprobe are not installed")

#: Tags written into the clips that carry them; none may reach metadata or an output.
PRIVATE_TAGS = {"title": "Secret holiday", "location": "+51.5007-000.1246/",
                "com.apple.quicktime.make": "RindleCam", "artist": "Jane Doe"}
RED_STRIPE = 40  # the width of the red band on the left of the rotation clip's frames


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG or "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                   check=True, timeout=60)


def has_encoder(name: str) -> bool:
    out = subprocess.run([FFMPEG or "ffmpeg", "-hide_banner", "-encoders"], check=True,
                         capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def _tags() -> list[str]:
    args = ["-movflags", "+use_metadata_tags"]
    for key, value in PRIVATE_TAGS.items():
        args += ["-metadata", f"{key}={value}"]
    return args


def _testsrc(size: str, seconds: float, rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def _sine(seconds: float, frequency: int = 440) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000:"
                                 f"duration={seconds}"]


_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "96k"]


class Clips:
    """The clips of one session, under ``root``, made on first use (each a ``Path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _make(self, name: str, build: Callable[[Path], None]) -> Path:
        path = self.root / name
        if not path.exists():
            build(path)
        return path

    @functools.cached_property
    def video_audio(self) -> Path:
        """320x240, 25 fps, 2 s, AAC sine; tagged with PRIVATE_TAGS."""
        return self._make("video_audio.mp4", lambda p: ffmpeg(
            *_testsrc("320x240", 2), *_sine(2), *_X264, *_AAC, *_tags(), "-shortest", str(p)))

    @functools.cached_property
    def video_only(self) -> Path:
        """320x240, 25 fps, 2 s, no audio."""
        return self._make("video_only.mp4", lambda p: ffmpeg(
            *_testsrc("320x240", 2), *_X264, str(p)))

    @functools.cached_property
    def audio_m4a(self) -> Path:
        return self._make("audio.m4a", lambda p: ffmpeg(*_sine(2), *_AAC, *_tags(), str(p)))

    @functools.cached_property
    def audio_wav(self) -> Path:
        """A quiet sine (about -27 LUFS), 3 s: the one normalized in the tests."""
        return self._make("audio.wav", lambda p: ffmpeg(
            *_sine(3, 997), "-af", "volume=0.35", "-c:a", "pcm_s16le", str(p)))

    @functools.cached_property
    def audio_mp3(self) -> Path:
        return self._make("audio.mp3", lambda p: ffmpeg(
            *_sine(2), "-c:a", "libmp3lame", "-b:a", "96k", "-metadata", "artist=Jane Doe",
            str(p)))

    @functools.cached_property
    def rotated(self) -> Path:
        """Stored 320x240 (a red band on the left, blue elsewhere), with a display matrix
        that turns it by 90 degrees: shown as 240x320. ffmpeg 5.1 writes ``rotate=90`` as
        a counter-clockwise matrix, so it is shown with the red band at the bottom."""
        def build(path: Path) -> None:
            plain = self.root / "rotated-plain.mp4"
            ffmpeg("-f", "lavfi", "-i", "color=c=blue:size=320x240:rate=25:duration=2,"
                   f"drawbox=x=0:y=0:w={RED_STRIPE}:h=240:color=red:t=fill",
                   *_sine(2), *_X264, *_AAC, "-shortest", str(plain))
            ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
        return self._make("rotated.mp4", build)

    @functools.cached_property
    def vfr(self) -> Path:
        """Frames dropped irregularly from a 30 fps source: variable frame rate, 2 s."""
        return self._make("vfr.mp4", lambda p: ffmpeg(
            *_testsrc("320x240", 2, 30), "-vf", r"select=not(mod(n\,3))+lt(n\,15)",
            "-fps_mode", "vfr", *_X264, str(p)))

    @functools.cached_property
    def hevc_mov(self) -> Path:
        """HEVC in a QuickTime .mov (skips the test where libx265 is missing)."""
        if not has_encoder("libx265"):
            pytest.skip("this ffmpeg has no libx265")
        return self._make("hevc.mov", lambda p: ffmpeg(
            *_testsrc("320x240", 1), *_sine(1), "-c:v", "libx265", "-preset", "ultrafast",
            "-x265-params", "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
            *_AAC, "-shortest", str(p)))

    @functools.cached_property
    def mkv_named_mp4(self) -> Path:
        """A Matroska file whose name says .mp4."""
        return self._make("matroska.mp4", lambda p: ffmpeg(
            *_testsrc("320x240", 1), *_sine(1), *_X264, *_AAC, "-shortest", "-f", "matroska",
            str(p)))

    @functools.cached_property
    def big(self) -> Path:
        """1920x1080, 25 fps, 5 s, with audio: long enough to cancel or time out."""
        return self._make("big.mp4", lambda p: ffmpeg(
            *_testsrc("1920x1080", 5), *_sine(5), *_X264, *_AAC, "-shortest", str(p)))

    @functools.cached_property
    def corrupt(self) -> Path:
        """The first 4 KiB of an MP4 whose index (moov) is at the end: unreadable."""
        def build(path: Path) -> None:
            whole = self.root / "whole.mp4"
            ffmpeg(*_testsrc("320x240", 2), *_X264, str(whole))
            path.write_bytes(whole.read_bytes()[:4096])
        return self._make("corrupt.mp4", build)

    @functools.cached_property
    def not_media(self) -> Path:
        return self._make("page.mp4", lambda p: p.write_bytes(
            b"<!DOCTYPE html><html><body>not a video</body></html>\n" * 20))

    @functools.cached_property
    def playlist(self) -> Path:
        """An HLS playlist posing as an MP4, naming a local file as its segment."""
        return self._make("playlist.mp4", lambda p: p.write_text(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nfile:///etc/passwd\n"
            "#EXT-X-ENDLIST\n"))


def children_named(parent: int, name: str) -> list[int]:
    """The pids of ``parent``'s children called ``name`` (zombies included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == parent and comm == name:
            found.append(int(entry.name))
    return found


def state(pid: int) -> str | None:
    """The process's state letter (``Z``: a zombie), ``None`` once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


_SESSION: dict[str, Clips] = {}


def clips(factory: pytest.TempPathFactory) -> Clips:
    """The session's clips (one directory, shared by every test module)."""
    if "clips" not in _SESSION:
        _SESSION["clips"] = Clips(factory.mktemp("clips"))
    return _SESSION["clips"]
