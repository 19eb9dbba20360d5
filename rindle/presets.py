"""Stock profiles for web video and audio: subclass one and give it a name and a storage.

Example::

    class LessonProfile(Web):
        name = "lesson"
        storage = "media"
        max_bytes = 2 * 1024**3
        with_480p = True          # adds "web_480p" beside "web_720p" and "poster"

    class EpisodeProfile(AudioWeb):
        name = "episode"
        storage = "media"

    class CourseVideo(MuxWeb):        # the same renditions, streamed through Mux as well
        name = "course_video"
        storage = "media"

The opt-in flags add a stock rendition to the preset's variants. Anything else a Profile
takes (``max_bytes``, ``max_duration_seconds``, ``delivery``...) is set the usual way, and a
subclass that writes its own ``variants`` dict keeps it as written (the flags still add to
it), e.g. ``variants = {**Web.variants, "teaser": Variant(kind="video", format="web_480p")}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from .profile import Delivery, Profile, Streaming, Variant

__all__ = ["AudioWeb", "MuxDirectUploadWeb", "MuxWeb", "Web"]

_WEB_720P = Variant(kind="video", format="web_720p")
_WEB_480P = Variant(kind="video", format="web_480p")
_POSTER = Variant(kind="video", format="poster")
_SCRUB_STRIP = Variant(kind="video", format="scrub_strip")
_M4A = Variant(kind="audio", format="m4a_128k")
_MP3 = Variant(kind="audio", format="mp3_128k")
_WAVEFORM = Variant(kind="audio", format="waveform")


def _apply_flags(cls: type[Profile], flags: dict[str, tuple[str, Variant]]) -> None:
    """Give ``cls`` its own variants dict: its (or its parent's) variants, plus one stock
    rendition per flag that is on; a flag turned off again drops the stock rendition."""
    variants = dict(cls.variants)
    for flag, (name, recipe) in flags.items():
        if getattr(cls, flag):
            variants.setdefault(name, recipe)
        elif variants.get(name) == recipe:
            del variants[name]
    cls.variants = variants


class Web(Profile):
    """Web video: H.264/AAC MP4 at 720p and a JPEG poster frame.

    Accepts MP4, QuickTime (.mov, what phones record) and WebM, judged by their bytes.
    Opt-ins: ``with_480p`` (a smaller MP4 for slow connections, ``web_480p``) and
    ``with_scrub_strip`` (a strip of thumbnails for seeking previews, ``scrub_strip``).
    The limits default to 500 MiB and no duration limit; set ``max_bytes`` and
    ``max_duration_seconds`` for your use.
    """

    name = "web"
    allow_mime = ("video/mp4", "video/quicktime", "video/webm")
    allow_extensions = ("mp4", "m4v", "mov", "webm")
    max_bytes = 500 * 1024 * 1024
    variants: ClassVar[dict[str, Variant]] = {"web_720p": _WEB_720P, "poster": _POSTER}
    with_480p: ClassVar[bool] = False
    with_scrub_strip: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _apply_flags(cls, {"with_480p": ("web_480p", _WEB_480P),
                           "with_scrub_strip": ("scrub_strip", _SCRUB_STRIP)})
        super().__init_subclass__(**kwargs)


class AudioWeb(Profile):
    """Web audio: AAC in M4A at 128 kbit/s and a waveform (JSON peaks for players).

    Accepts MP3, M4A and WAV, judged by their bytes. Opt-ins: ``with_mp3`` (an MP3 at
    128 kbit/s, ``mp3_128k``, for old players) and ``normalize`` (loudness-normalize the
    encoded renditions to EBU R128). The limit defaults to 200 MiB and no duration limit.
    """

    name = "audio_web"
    allow_mime = ("audio/mpeg", "audio/mp4", "audio/wav")
    allow_extensions = ("mp3", "m4a", "wav")
    max_bytes = 200 * 1024 * 1024
    max_pixels = None
    variants: ClassVar[dict[str, Variant]] = {"m4a_128k": _M4A, "waveform": _WAVEFORM}
    with_mp3: ClassVar[bool] = False
    normalize: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _apply_flags(cls, {"with_mp3": ("mp3_128k", _MP3)})
        if cls.normalize:
            cls.variants = {
                name: (Variant(kind="audio", format=v.format,
                               options={**v.options, "normalize": True})
                       if v in (_M4A, _MP3) else v)
                for name, v in cls.variants.items()}
        super().__init_subclass__(**kwargs)


def _lock_streaming(cls: type[Profile], streaming: Streaming) -> None:
    """Give ``cls`` the preset's streaming, keeping the rest of its own Delivery; a subclass
    that set its own ``Streaming`` keeps what it set of it except the ingest mode."""
    own = cls.delivery.streaming
    locked = streaming if own is None else dataclasses.replace(own, ingest=streaming.ingest)
    cls.delivery = dataclasses.replace(cls.delivery, streaming=locked)


class MuxWeb(Web):
    """``Web`` plus streaming through Mux: the 720p rendition is pushed to Mux once ready.

    The progressive MP4 renditions and the poster stay, as the fallback for players
    without HLS and for when Mux is down; ``streaming_url`` (and the ``video`` macro)
    give the signed HLS URL once Mux has the asset ready. Set ``delivery =
    Delivery(streaming=Streaming(playback_policy="public"))`` for public playback, or
    ``source_variant=None`` to send Mux the original instead of the 720p rendition.
    Credentials come from ``Rindle(streaming={"mux": Mux(...)})`` or the environment.
    """

    name = "mux_web"
    delivery: ClassVar[Delivery] = Delivery(streaming=Streaming(ingest="server_push"))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _lock_streaming(cls, Streaming(ingest="server_push"))
        super().__init_subclass__(**kwargs)


class MuxDirectUploadWeb(Profile):
    """Browser uploads straight to Mux; Rindle keeps the rows, webhooks and playback.

    The file never reaches Rindle's storage, so there are no progressive renditions: the
    ``video`` macro plays the HLS stream with a Mux thumbnail as its poster. Mux judges
    the file (it must be a video it can read); ``max_duration_seconds`` is checked when Mux
    reports the duration, and a longer video is quarantined and deleted at Mux.
    """

    name = "mux_direct_upload_web"
    allow_mime = ("video/mp4", "video/quicktime", "video/webm")
    allow_extensions = ("mp4", "m4v", "mov", "webm")
    max_bytes = 2 * 1024 * 1024 * 1024
    max_pixels = None
    delivery: ClassVar[Delivery] = Delivery(streaming=Streaming(ingest="direct_upload",
                                                                source_variant=None))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _lock_streaming(cls, Streaming(ingest="direct_upload", source_variant=None))
        super().__init_subclass__(**kwargs)
