"""The content checks of a video or audio original, from what ffprobe reads in its header.

Promotion runs them after sniffing (magic bytes, name, allowlist): the file must be media
ffprobe can read, in the container its magic bytes name, of the kind its uploader claimed,
within the profile's pixel and duration limits. Nothing is decoded: a 16384x16384 header is
refused before any frame is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RindleError
from ..upload import sniff
from .av_probe import MediaFacts, probe

if TYPE_CHECKING:
    from ..profile import Profile

#: ffprobe's format names for each sniffed container (its ``format_name`` lists aliases).
_CONTAINERS: dict[str, frozenset[str]] = {
    "video/mp4": frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}),
    "video/quicktime": frozenset({"mov", "mp4"}),
    "audio/mp4": frozenset({"mov", "mp4", "m4a"}),
    "video/webm": frozenset({"matroska", "webm"}),
    "video/x-matroska": frozenset({"matroska", "webm"}),
    "video/ogg": frozenset({"ogg"}),
    "audio/ogg": frozenset({"ogg"}),
    "audio/mpeg": frozenset({"mp3"}),
    "audio/wav": frozenset({"wav"}),
    "audio/flac": frozenset({"flac"}),
}
#: How long ffprobe may take over one header.
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class MediaVerdict:
    """What the checks found: ``reason`` set means quarantine (with ``detail``)."""

    facts: MediaFacts | None
    kind: str
    reason: str | None = None
    detail: str | None = None


async def check_media(path: Path, profile: type[Profile], sniffed: sniff.Sniffed,
                      declared: str | None) -> MediaVerdict:
    """Probe ``path`` and judge it against ``profile``; ``declared`` is the claimed type.

    A file ffprobe can't read is ``invalid_media``; a missing ffprobe raises (a setup
    problem, retried, never a verdict on the file).
    """
    try:
        facts = await probe(path, timeout=PROBE_TIMEOUT)
    except RindleError as exc:
        if exc.code != "invalid_media":
            raise
        return MediaVerdict(None, sniffed.kind, "invalid_media", exc.message)
    # An MP4 or WebM with no picture is audio, whatever its container is called.
    kind = "video" if facts.has_video else "audio"
    expected = _CONTAINERS.get(sniffed.mime)
    found = set((facts.container or "").split(","))
    if expected is not None and not expected & found:
        return MediaVerdict(facts, kind, "invalid_media",
                            f"the magic bytes say {sniffed.mime} but ffprobe reads a "
                            f"{facts.container or 'unknown'} container")
    # A claim of another kind of media is a lie about the file (a generic type such as
    # application/octet-stream claims nothing).
    claimed = sniff.kind_for(declared) if declared else None
    if claimed in ("image", "video", "audio") and claimed != kind:
        held = "audio only" if kind == "audio" else "video"
        return MediaVerdict(facts, kind, "content_type_mismatch",
                            f"it was uploaded as {declared} but holds {held}")
    if facts.width and facts.height and profile.max_pixels is not None \
            and facts.width * facts.height > profile.max_pixels:
        return MediaVerdict(facts, kind, "max_pixels_exceeded",
                            f"{facts.width}x{facts.height} is over the limit of "
                            f"{profile.max_pixels} pixels; nothing was decoded")
    limit = profile.max_duration_seconds
    if limit is not None and facts.duration is not None and facts.duration > limit:
        return MediaVerdict(facts, kind, "max_duration_exceeded",
                            f"{facts.duration:.1f} s is over the limit of {limit:g} s")
    return MediaVerdict(facts, kind)


__all__ = ["MediaVerdict", "PROBE_TIMEOUT", "check_media"]
