"""What ffprobe says about an audio or video file, reduced to a few facts without its tags.

``probe(path)`` runs ``ffprobe -v error -print_format json -show_format -show_streams`` (the
display matrix is in each stream's ``side_data_list``) on the file, with the input
restrictions of ``ffmpeg.input_args``, and returns ``MediaFacts``. The file's tags (titles,
GPS positions, device names, encoder strings) are read by ffprobe but never kept, logged or
put into a message.

``width`` and ``height`` are as displayed: a stream whose display matrix (or legacy
``rotate`` tag) turns it by 90 or 270 degrees has them swapped. ``rotation`` is the
clockwise turn that shows the stored frames upright, as the legacy ``rotate`` tag counts it
(a phone's portrait video: 90). ffmpeg applies it itself when it decodes (autorotate).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import RindleError
from .ffmpeg import DEMUXERS, binary, clean, input_args, reap, spawn

__all__ = ["MediaFacts", "probe"]


@dataclass(frozen=True)
class MediaFacts:
    """The facts of one audio/video file (see the module docstring)."""

    duration: float | None  # seconds
    has_video: bool
    has_audio: bool
    width: int | None  # as displayed
    height: int | None
    rotation: int  # 0, 90, 180 or 270, clockwise
    frame_rate: float | None
    video_codec: str | None
    audio_codec: str | None
    bit_rate: int | None
    container: str | None  # ffprobe's format_name

    def to_metadata(self) -> dict[str, Any]:
        """The facts as a JSON-safe dict (no tags at all), for ``asset.metadata``."""
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> MediaFacts | None:
        """The facts promotion recorded in ``asset.metadata`` (``to_metadata``), or ``None``
        when they are not all there (an asset promoted before video support)."""
        names = [f.name for f in fields(cls)]
        if not all(name in metadata for name in names):
            return None
        return cls(**{name: metadata[name] for name in names})


async def probe(path: str | os.PathLike[str], *, timeout: float = 30.0) -> MediaFacts:
    """Analyse ``path`` with ffprobe.

    Raises ``invalid_media`` when ffprobe can't read the file, finds no audio or video
    stream, or runs longer than ``timeout`` seconds (it is killed); ``ffmpeg_missing`` when
    ffprobe is not installed.
    """
    return await probe_with(path, timeout=timeout, demuxers=DEMUXERS)


async def probe_with(path: str | os.PathLike[str], *, timeout: float,
                     demuxers: Sequence[str]) -> MediaFacts:
    """``probe`` with another list of demuxers (the processors read their own JPEG
    outputs back with ``image2``, which an original may not use)."""
    argv = [binary("ffprobe"), "-hide_banner", "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", *input_args(path, demuxers=demuxers)]
    proc = await spawn(argv)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise RindleError(f"ffprobe took longer than {timeout:g} s to read the file; it is "
                          "not a media file ffmpeg can read in reasonable time",
                          code="invalid_media", reason="probe timeout") from None
    finally:
        await reap(proc)
    if proc.returncode != 0:
        detail = clean(err.decode("utf-8", "replace").splitlines()[-5:], argv)
        raise RindleError(f"ffprobe could not read the file as audio or video: "
                          f"{detail or 'no message'}", code="invalid_media",
                          reason=detail[:500])
    try:
        report = json.loads(out)
    except ValueError:
        raise RindleError("ffprobe's report could not be read", code="invalid_media") from None
    facts = _facts(report if isinstance(report, dict) else {})
    if not facts.has_video and not facts.has_audio:
        raise RindleError("the file has no audio or video stream", code="invalid_media",
                          reason="no streams")
    return facts


def _facts(report: dict[str, Any]) -> MediaFacts:
    fmt = report.get("format") or {}
    streams = [s for s in report.get("streams") or [] if isinstance(s, dict)]
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width = height = None
    rotation = 0
    frame_rate = None
    if video is not None:
        width, height = _positive(video.get("width")), _positive(video.get("height"))
        rotation = _rotation(video)
        if rotation in (90, 270):
            width, height = height, width
        frame_rate = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    duration = _seconds(fmt.get("duration"))
    if duration is None:
        durations = [d for s in (video, audio) if s for d in [_seconds(s.get("duration"))] if d]
        duration = max(durations, default=None)
    container = fmt.get("format_name")
    return MediaFacts(
        duration=duration, has_video=video is not None, has_audio=audio is not None,
        width=width, height=height, rotation=rotation, frame_rate=frame_rate,
        video_codec=_name(video), audio_codec=_name(audio),
        bit_rate=_positive(fmt.get("bit_rate")),
        container=container if isinstance(container, str) else None)


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees, a multiple of 90. ffprobe reports a display matrix's rotation
    counter-clockwise (-90 for a phone's portrait video); a legacy tag counts clockwise."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            try:
                return int(round(-float(side["rotation"]) / 90) * 90 % 360)
            except (TypeError, ValueError, OverflowError):
                return 0
    tag = (stream.get("tags") or {}).get("rotate")
    try:
        return int(round(float(tag) / 90) * 90 % 360) if tag is not None else 0
    except (TypeError, ValueError, OverflowError):
        return 0


def _name(stream: dict[str, Any] | None) -> str | None:
    name = (stream or {}).get("codec_name")
    return name if isinstance(name, str) else None


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _seconds(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _rate(value: Any) -> float | None:
    """A rational like ``"30000/1001"`` as a float; ``None`` for ``"0/0"``."""
    if not isinstance(value, str):
        return None
    num, _, den = value.partition("/")
    try:
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return round(rate, 3) if math.isfinite(rate) and rate > 0 else None
