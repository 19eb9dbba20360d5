"""The built-in audio and video processors: ffmpeg builds web renditions, posters and audio.

A variant names its recipe in ``format``: ``Variant(kind="video", format="web_720p")``.

Video (``VideoProcessor``, kind ``"video"``):

- ``web_720p`` / ``web_480p``: H.264 (libx264, CRF 23, ``veryfast``, capped at 2500k/5000k
  buffer for 720p and 1200k/2400k for 480p) in yuv420p, fitted inside 1280x720 / 854x480
  with the aspect ratio kept, never enlarged, even dimensions; AAC 128k stereo when the
  original has sound; MP4 with the index first (``+faststart``), ``video/mp4``.
- ``poster``: a JPEG of the first scene change (``select='gt(scene,0.4)'`` over the
  keyframes) within the first ``options["seconds"]`` (default 10), else of the first
  keyframe, else of the first frame; inside ``width`` x
  ``height`` when the variant gives them (default 1280x720), never enlarged.
- ``scrub_strip``: one JPEG sprite of ``options["tiles"]`` (default 20) frames for seek
  previews, each fitted into a ``tile_width`` x ``tile_height`` tile (default 160x90, even
  sides) with its aspect ratio kept and centred on black, laid out left to right, top to
  bottom in ``columns`` columns (default 10; fewer tiles: one row). Tile ``k`` shows the
  last frame at or before ``(k + 0.5) * duration / tiles`` (the middle of its share of
  the duration), so a clip with fewer frames than tiles repeats frames. The geometry and
  those times go to ``context.add_metadata({"scrub_strip": {"tiles", "columns",
  "tile_width", "tile_height", "timestamps"}})`` (seconds, rounded to the millisecond).

Audio (``AudioProcessor``, kind ``"audio"``): ``waveform`` (JSON peaks for players, see
``AudioProcessor._waveform``), ``m4a_128k`` (AAC 128k, ``audio/mp4``) and
``mp3_128k`` (LAME 128k CBR, ``audio/mpeg``) of the first audio stream, in stereo (a WAV
without a channel mask has no layout ffmpeg's filters could keep). With
``options={"normalize": True}`` the loudness is set to EBU R128's -16 LUFS integrated,
-1.5 dBTP, LRA 11 in two passes: one that measures, one that applies the measured gain
linearly (``loudnorm`` falls back to its dynamic mode when a linear gain would clip).

Every original is probed first (``av_probe.probe``); ``max_pixels`` is checked on its
displayed size before a frame is decoded. ffmpeg turns rotated video upright itself, and
the outputs carry no display matrix, no tags, no chapters and no encoder string. All the
web renditions and scrub strips of one asset come from one ffmpeg process: the original is
decoded once and ``split`` feeds one scaler and encoder per rendition (and one frame picker
and tiler per strip). Outputs are written to
``context.scratch``; the pipeline stores them and removes the directory.
"""

from __future__ import annotations

import array
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ..errors import RindleError
from .av_probe import MediaFacts, probe, probe_with
from .ffmpeg import DEMUXERS, Monitor, input_args, run_ffmpeg
from .processor import Context, Output, Source

if TYPE_CHECKING:
    from ..profile import Variant

__all__ = ["AUDIO_RECIPES", "VIDEO_RECIPES", "AudioProcessor", "VideoProcessor"]


@dataclass(frozen=True)
class _Rendition:
    width: int  # the box the picture is fitted in
    height: int
    maxrate: str
    bufsize: str


_WEB: dict[str, _Rendition] = {
    "web_720p": _Rendition(1280, 720, "2500k", "5000k"),
    "web_480p": _Rendition(854, 480, "1200k", "2400k"),
}
#: The video recipes (``Variant.format`` of kind ``"video"``).
VIDEO_RECIPES: tuple[str, ...] = (*_WEB, "poster", "scrub_strip")
_AUDIO: dict[str, tuple[list[str], str, str]] = {  # recipe -> (codec args, extension, type)
    "m4a_128k": (["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart",
                  "-f", "mp4"], "m4a", "audio/mp4"),
    # CBR needs no Xing/LAME frame (it only names the encoder then), and no ID3 tag at all.
    "mp3_128k": (["-c:a", "libmp3lame", "-b:a", "128k", "-ac", "2", "-write_xing", "0",
                  "-id3v2_version", "0", "-f", "mp3"], "mp3", "audio/mpeg"),
}
#: The audio recipes (``Variant.format`` of kind ``"audio"``).
AUDIO_RECIPES: tuple[str, ...] = (*_AUDIO, "waveform")
#: A waveform's peak pairs, and the mono sample rate they are read from (plenty for peaks).
WAVEFORM_PEAKS = 1000
_WAVEFORM_RATE = 8000

_LOUDNORM = "loudnorm=I=-16:TP=-1.5:LRA=11"
_SAMPLE_RATE = "48000"  # loudnorm works (and outputs) at 192 kHz: back to a usual rate
_NO_METADATA = ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]
_POSTER_BOX = (1280, 720)
_POSTER_SECONDS = 10.0
_JPEG_MAX_SIDE = 65500  # a JPEG's sides are 16-bit
_STRIP_MAX_PIXELS = 40_000_000  # a sprite ffmpeg holds whole in memory while it tiles


@dataclass(frozen=True)
class _Strip:
    """A scrub strip's geometry: ``tiles`` tiles in ``columns`` columns."""

    tiles: int
    columns: int
    tile_width: int
    tile_height: int

    @property
    def rows(self) -> int:
        return -(-self.tiles // self.columns)

    @property
    def size(self) -> tuple[int, int]:
        return self.columns * self.tile_width, self.rows * self.tile_height

    def timestamps(self, duration: float) -> list[float]:
        """The time each tile stands for: the middle of its share of the duration."""
        return [round((k + 0.5) * duration / self.tiles, 3) for k in range(self.tiles)]

    def metadata(self, duration: float) -> dict[str, Any]:
        return {"tiles": self.tiles, "columns": self.columns, "tile_width": self.tile_width,
                "tile_height": self.tile_height, "timestamps": self.timestamps(duration)}

    def _blank(self) -> str:
        """The filters that black out the last row's unused slots (``tile`` leaves the
        part of its canvas that ``nb_frames`` does not reach as it was allocated)."""
        used = self.tiles % self.columns
        if not used:
            return ""
        return (f"drawbox=x={used * self.tile_width}:y={(self.rows - 1) * self.tile_height}:"
                f"w={(self.columns - used) * self.tile_width}:h={self.tile_height}:"
                "color=black:t=fill,")

    def chain(self, source: str, duration: float, out: str, tick: str | None) -> str:
        """The filters from ``source`` to the sprite at ``out`` (and, with ``tick``, the
        picked frames to a progress output).

        Timestamps are shifted back by half a tile's share so that ``fps`` (its grid
        starting at 0, input times rounded up) gives tile ``k`` the last frame at or before
        ``(k + 0.5) * duration / tiles``, duplicating frames when the clip has fewer than
        tiles; ``tpad`` clones the last frame should the end of the stream leave the grid
        short, and the tiler emits its sprite once ``tiles`` frames are in.
        """
        half = duration / (2 * self.tiles)
        pick = (f"{source}setpts=PTS-STARTPTS-{half:.6f}/TB,"
                f"fps=fps={self.tiles}/{duration:.6f}:start_time=0:round=up")
        width, height = self.tile_width, self.tile_height
        # yuv420p from the scaler on: drawbox writes limited-range black whatever the
        # format, and the turn to full-range JPEG comes last.
        tiles = (f"scale=w={width}:h={height}:force_original_aspect_ratio=decrease,"
                 f"format=yuv420p,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
                 f"tpad=stop_mode=clone:stop={self.tiles},"
                 f"tile=layout={self.columns}x{self.rows}:nb_frames={self.tiles},"
                 f"{self._blank()}format=yuvj420p{out}")
        if tick is None:
            return f"{pick},{tiles}"
        return f"{pick},split=2[pick{out[1:-1]}]{tick};[pick{out[1:-1]}]{tiles}"


def _option(variant: Variant, key: str, default: int, low: int, high: int) -> int:
    value = variant.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RindleError(f"scrub_strip's {key!r} must be a whole number from {low} to "
                          f"{high}, not {value!r}", code="invalid_variant",
                          recipe="scrub_strip", option=key)
    return value


def _strip_of(variant: Variant) -> _Strip:
    """A ``scrub_strip`` variant's geometry, its options checked."""
    tiles = _option(variant, "tiles", 20, 1, 1000)
    columns = min(tiles, _option(variant, "columns", 10, 1, 1000))
    sides = {key: _option(variant, key, default, 16, 1920)
             for key, default in (("tile_width", 160), ("tile_height", 90))}
    for key, side in sides.items():
        if side % 2:  # yuv420p halves the chroma: pad would round an odd side down
            raise RindleError(f"scrub_strip's {key!r} must be even, not {side}",
                              code="invalid_variant", recipe="scrub_strip", option=key)
    strip = _Strip(tiles, columns, sides["tile_width"], sides["tile_height"])
    if max(strip.size) > _JPEG_MAX_SIDE:
        raise RindleError(f"a {strip.size[0]}x{strip.size[1]} scrub strip is larger than "
                          f"a JPEG can be ({_JPEG_MAX_SIDE} pixels a side); use fewer or "
                          "smaller tiles, or other columns", code="invalid_variant",
                          recipe="scrub_strip")
    if strip.size[0] * strip.size[1] > _STRIP_MAX_PIXELS:
        raise RindleError(f"a {strip.size[0]}x{strip.size[1]} scrub strip is over "
                          f"{_STRIP_MAX_PIXELS} pixels; use fewer or smaller tiles",
                          code="invalid_variant", recipe="scrub_strip")
    return strip


def _fit(width: int, height: int) -> str:
    """Inside width x height, aspect kept, never enlarged, even sides."""
    return (f"scale=w='min({width},iw)':h='min({height},ih)':"
            "force_original_aspect_ratio=decrease:force_divisible_by=2")


def _unknown(recipe: str | None, kind: str, known: Sequence[str]) -> RindleError:
    return RindleError(f"{kind} variants have no recipe {recipe!r}; use one of "
                       f"{', '.join(known)}", code="invalid_variant", recipe=str(recipe))


class _Span:
    """The progress of one step, reported as its share of the whole job."""

    def __init__(self, context: Context, start: float, end: float) -> None:
        self._context, self._start, self._end = context, start, end

    async def cancelled(self) -> bool:
        return await self._context.cancelled()

    async def progress(self, percent: float) -> None:
        await self._context.progress(self._start + (self._end - self._start) * percent / 100)


async def _facts(source: Source, *, video: bool) -> tuple[Path, MediaFacts]:
    """The original as a local file and its facts: those promotion recorded when they are
    there (ffprobe already read this very file), else a fresh probe."""
    src = await source.path()
    facts = MediaFacts.from_metadata(source.asset.metadata or {}) or await probe(src)
    if video and not facts.has_video:
        raise RindleError("the file has no video stream", code="invalid_media",
                          reason="no video")
    if not video and not facts.has_audio:
        raise RindleError("the file has no audio stream", code="invalid_media",
                          reason="no audio")
    return src, facts


async def _described(path: Path, content_type: str) -> Output:
    """An output with the size and duration ffprobe finds in it."""
    facts = await probe_with(path, timeout=30.0, demuxers=(*DEMUXERS, "image2", "jpeg_pipe"))
    duration = None if facts.duration is None else round(facts.duration * 1000)
    return Output(path=path, content_type=content_type, width=facts.width,
                  height=facts.height, duration_ms=duration)


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, RindleError) and exc.code == "processing_cancelled"


class VideoProcessor:
    """Builds ``kind="video"`` variants with ffmpeg (see the module docstring).

    A ``BatchProcessor``: every web rendition of an asset comes from one ffmpeg process.
    ``timeout`` bounds each ffmpeg run (seconds; ``None``: no limit); ``preset`` is
    libx264's speed/size trade-off.
    """

    def __init__(self, *, timeout: float | None = 3600.0, preset: str = "veryfast") -> None:
        self.timeout = timeout
        self.preset = preset

    def __repr__(self) -> str:
        return f"VideoProcessor(timeout={self.timeout!r}, preset={self.preset!r})"

    async def process(self, source: Source, variant: Variant, context: Context) -> Output:
        """Build one variant (a requeue): the same as a batch of one."""
        result = (await self.process_many(source, {"variant": variant}, context)).get("variant")
        if result is None:
            raise RindleError("processing was cancelled; ffmpeg was stopped",
                              code="processing_cancelled")
        if isinstance(result, BaseException):
            raise result
        return result

    async def process_many(self, source: Source, variants: Mapping[str, Variant],
                           context: Context) -> dict[str, Output | Exception]:
        """Every variant's ``Output`` or error; a variant cancelled meanwhile is left out.

        Raises (failing them all) when the original is not a readable video or is over
        ``context.max_pixels``. The original's facts go to ``context.add_metadata``, and
        a scrub strip's geometry and times under ``"scrub_strip"`` once it is built.
        """
        results: dict[str, Output | Exception] = {}
        web: list[tuple[str, _Rendition]] = []
        posters: list[tuple[str, Variant]] = []
        strips: list[tuple[str, _Strip]] = []
        for name, variant in variants.items():
            if variant.format in _WEB:
                web.append((name, _WEB[variant.format]))
            elif variant.format == "poster":
                posters.append((name, variant))
            elif variant.format == "scrub_strip":
                try:
                    strips.append((name, _strip_of(variant)))
                except RindleError as exc:
                    results[name] = exc
            else:
                results[name] = _unknown(variant.format, "video", VIDEO_RECIPES)
        if not web and not posters and not strips:
            return results
        src, facts = await _facts(source, video=True)
        limit = context.max_pixels
        if limit is not None and (facts.width or 0) * (facts.height or 0) > limit:
            raise RindleError(f"{facts.width}x{facts.height} is over the limit of {limit} "
                              "pixels; the video was not decoded", code="max_pixels_exceeded",
                              width=facts.width, height=facts.height)
        context.add_metadata(facts.to_metadata())
        if strips and not facts.duration:
            error = RindleError("ffprobe found no duration, so the scrub strip's frames "
                                "can't be spread over it", code="invalid_media",
                                reason="no duration")
            results.update({name: error for name, _ in strips})
            strips = []
        # Progress: the decode (renditions, strips) takes nearly all the time; a poster
        # reads a few seconds.
        decode = 20 * len(web) + 2 * len(strips)
        steps = len(posters) + decode
        done = 0.0
        if decode:
            span = _Span(context, 0, 100 * decode / steps)
            try:
                built = await self._renditions(src, facts, web, strips, context.scratch, span)
            except RindleError as exc:
                if _cancelled(exc):
                    return results
                built = {name: exc for name, _ in (*web, *strips)}
            results.update(built)
            duration = facts.duration or 0.0
            for name, strip in strips:
                if isinstance(built.get(name), Output):
                    context.add_metadata({"scrub_strip": strip.metadata(duration)})
            done = 100 * decode / steps
        for index, (name, variant) in enumerate(posters):
            span = _Span(context, done, done + 100 / steps)
            try:
                results[name] = await self._poster(src, facts, index, variant, context.scratch,
                                                   span)
            except RindleError as exc:
                if _cancelled(exc):
                    return results
                results[name] = exc
            done += 100 / steps
        return results

    async def _renditions(self, src: Path, facts: MediaFacts,
                          web: list[tuple[str, _Rendition]], strips: list[tuple[str, _Strip]],
                          scratch: Path, monitor: Monitor) -> dict[str, Output | Exception]:
        """All the web renditions and scrub strips from one decode: ``split``, then a scaler
        and an encoder (and an AAC encoder for the sound) per rendition, and a frame picker,
        a tiler and a JPEG encoder per strip.

        A strip rides on the renditions' decode rather than running after them: decoding
        is nearly all a strip costs (it keeps ``tiles`` frames of the whole stream), so a
        second run would decode a long original twice for a few kilobytes. The price is
        one fate for the run: a failure, a timeout or a cancel ends the strips with the
        renditions (as it already ends every rendition together). Alone, it is a
        run of its own, with the picked frames also sent to a null output: a JPEG reports
        no time until its one frame is written, the null output reports each pick's, so
        the progress moves as the decode does.
        """
        branches = len(web) + len(strips)
        labels = [f"[s{i}]" for i in range(branches)]
        chains = [f"[0:V:0]split={branches}{''.join(labels)}" if branches > 1
                  else "[0:V:0]null[s0]"]
        args = [*input_args(src)]
        outputs: list[tuple[str, Path, str]] = []
        per_output: list[str] = []
        for i, (name, rendition) in enumerate(web):
            chains.append(f"[s{i}]{_fit(rendition.width, rendition.height)},"
                          f"format=yuv420p[v{i}]")
            path = scratch / f"{i}-{rendition.height}p.mp4"
            outputs.append((name, path, "video/mp4"))
            per_output += ["-map", f"[v{i}]"]
            if facts.has_audio:
                per_output += ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
            per_output += ["-c:v", "libx264", "-preset", self.preset, "-crf", "23",
                           "-maxrate", rendition.maxrate, "-bufsize", rendition.bufsize,
                           "-profile:v", "high", "-fps_mode", "vfr", *_NO_METADATA,
                           "-movflags", "+faststart", "-f", "mp4", "-y", f"file:{path}"]
        for j, (name, strip) in enumerate(strips):
            i = len(web) + j
            tick = f"[t{j}]" if not web else None
            chains.append(strip.chain(f"[s{i}]", facts.duration or 0.0, f"[j{j}]", tick))
            path = scratch / f"{j}-scrub-strip.jpg"
            outputs.append((name, path, "image/jpeg"))
            per_output += ["-map", f"[j{j}]", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3",
                           *_NO_METADATA, "-update", "1", "-f", "image2", "-y", f"file:{path}"]
            if tick is not None:
                per_output += ["-map", tick, "-f", "null", "-"]
        args += ["-filter_complex", ";".join(chains), *per_output]
        await run_ffmpeg(args, cwd=scratch, context=monitor, duration=facts.duration,
                         timeout=self.timeout)
        built: dict[str, Output | Exception] = {}
        for name, path, content_type in outputs:
            if not path.exists() or path.stat().st_size == 0:
                built[name] = RindleError(f"ffmpeg wrote no {path.name}", code="ffmpeg_failed")
                continue
            out = await _described(path, content_type)
            if content_type == "image/jpeg":  # an image: no duration
                out = Output(path=out.path, content_type=content_type, width=out.width,
                             height=out.height)
            built[name] = out
        return built

    async def _poster(self, src: Path, facts: MediaFacts, index: int, variant: Variant,
                      scratch: Path, monitor: Monitor) -> Output:
        """A JPEG of the first scene change within the first seconds, else the first
        keyframe, else the first frame: both candidates are taken in one run, and the scene
        change wins when there is one.

        The run decodes keyframes only (``-skip_frame nokey``): encoders put one at every
        cut, so the scene changes are among them, and it costs a tenth of a full decode of
        those seconds (0.2 s instead of 1.2 s on 10 s of 1080p). Only a stream whose
        keyframes yield nothing is decoded again, in full.

        The poster is its own run, not two more branches of the renditions' decode: in one
        graph, an output still waiting for its scene change holds back every other one,
        and ffmpeg buffers their decoded frames meanwhile (seconds of 1080p in memory).
        """
        seconds = float(variant.options.get("seconds", _POSTER_SECONDS))
        width = variant.width or _POSTER_BOX[0]
        height = variant.height or _POSTER_BOX[1]
        fit = f"{_fit(width, height)},format=yuvj420p"
        scene, first = (scratch / f"{index}-poster-scene.jpg",
                        scratch / f"{index}-poster-first.jpg")
        jpeg = ["-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3", *_NO_METADATA, "-update", "1",
                "-f", "image2", "-y"]
        graph = ["-filter_complex",
                 f"[0:V:0]split=2[a][b];[a]select='gt(scene,0.4)',{fit}[p0];"
                 # trim: ffmpeg 5.1 would scale every frame of this branch after its output
                 # took the first one.
                 f"[b]trim=end_frame=1,{fit}[p1]",
                 "-map", "[p0]", *jpeg, f"file:{scene}", "-map", "[p1]", *jpeg, f"file:{first}"]
        span = min(seconds, facts.duration) if facts.duration else seconds
        await run_ffmpeg(["-skip_frame", "nokey", "-t", f"{seconds:g}", *input_args(src),
                          *graph], cwd=scratch, context=monitor, duration=span,
                         timeout=self.timeout)
        if not any(p.exists() and p.stat().st_size > 0 for p in (scene, first)):
            await run_ffmpeg(["-t", f"{seconds:g}", *input_args(src), *graph], cwd=scratch,
                             context=monitor, duration=span, timeout=self.timeout)
        chosen = scene if scene.exists() and scene.stat().st_size > 0 else first
        if not chosen.exists() or chosen.stat().st_size == 0:
            raise RindleError("ffmpeg decoded no frame for the poster", code="ffmpeg_failed")
        if chosen is scene:
            first.unlink(missing_ok=True)
        out = await _described(chosen, "image/jpeg")
        return Output(path=out.path, content_type=out.content_type, width=out.width,
                      height=out.height)


class AudioProcessor:
    """Builds ``kind="audio"`` variants with ffmpeg (see the module docstring).

    ``timeout`` bounds each ffmpeg run (seconds; ``None``: no limit).
    """

    def __init__(self, *, timeout: float | None = 3600.0) -> None:
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AudioProcessor(timeout={self.timeout!r})"

    async def process(self, source: Source, variant: Variant, context: Context) -> Output:
        """The first audio stream of the original, encoded by the recipe (and normalized
        when ``options["normalize"]`` is true)."""
        if variant.format not in AUDIO_RECIPES:
            raise _unknown(variant.format, "audio", AUDIO_RECIPES)
        src, facts = await _facts(source, video=False)
        context.add_metadata(facts.to_metadata())
        if variant.format == "waveform":
            return await self._waveform(src, facts, context)
        codec, ext, content_type = _AUDIO[variant.format]
        filters: list[str] = []
        monitor: Monitor = context
        if variant.options.get("normalize"):
            measured = await self._measure(src, facts, context.scratch, _Span(context, 0, 50))
            if measured is not None:
                filters = [measured, f"aresample={_SAMPLE_RATE}"]
            monitor = _Span(context, 50, 100)
        out = context.scratch / f"{variant.format}.{ext}"
        args = [*input_args(src), "-map", "0:a:0", "-vn", "-sn", "-dn"]
        if filters:
            args += ["-af", ",".join(filters)]
        args += [*codec, *_NO_METADATA, "-y", f"file:{out}"]
        await run_ffmpeg(args, cwd=context.scratch, context=monitor, duration=facts.duration,
                         timeout=self.timeout)
        return await _described(out, content_type)

    async def _waveform(self, src: Path, facts: MediaFacts, context: Context) -> Output:
        """``waveform``: JSON for players, ``{"peaks": [[min, max], ...]}`` with
        ``WAVEFORM_PEAKS`` pairs in -1..1 over the whole duration, from the first audio
        stream mixed to mono (``sample_rate`` and ``duration`` beside them)."""
        raw = context.scratch / "waveform.raw"
        await run_ffmpeg(
            [*input_args(src), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1",
             "-ar", str(_WAVEFORM_RATE), "-f", "s16le", "-c:a", "pcm_s16le", "-y",
             f"file:{raw}"], cwd=context.scratch, context=context, duration=facts.duration,
            timeout=self.timeout)
        peaks = await anyio.to_thread.run_sync(_peaks, raw, WAVEFORM_PEAKS)
        raw.unlink(missing_ok=True)
        out = context.scratch / "waveform.json"
        out.write_text(json.dumps({
            "version": 1, "sample_rate": _WAVEFORM_RATE, "duration": facts.duration,
            "peaks": peaks}, separators=(",", ":")))
        return Output(path=out, content_type="application/json",
                      duration_ms=round(facts.duration * 1000) if facts.duration else None)

    async def _measure(self, src: Path, facts: MediaFacts, scratch: Path,
                       monitor: Monitor) -> str | None:
        """The first loudnorm pass: the filter of the second, with the measured values
        (``None`` for silence, which no gain makes -16 LUFS)."""
        tail = await run_ffmpeg(
            [*input_args(src), "-map", "0:a:0", "-vn", "-af", f"{_LOUDNORM}:print_format=json",
             "-f", "null", "-"], cwd=scratch,
            context=monitor, duration=facts.duration, timeout=self.timeout, loglevel="info")
        found = _loudnorm_report(tail)
        keys = ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
        try:
            values = [float(found[key]) for key in keys]
        except (KeyError, TypeError, ValueError):
            raise RindleError("ffmpeg's loudnorm measurement could not be read",
                              code="ffmpeg_failed") from None
        if not all(math.isfinite(v) for v in values):
            return None
        i, tp, lra, thresh, offset = values
        return (f"{_LOUDNORM}:measured_I={i}:measured_TP={tp}:measured_LRA={lra}:"
                f"measured_thresh={thresh}:offset={offset}:linear=true:print_format=none")


def _peaks(raw: Path, count: int) -> list[list[float]]:
    """``count`` (min, max) pairs of 16-bit mono samples, each over an equal share of them
    (fewer when there are fewer samples)."""
    samples = array.array("h")
    samples.frombytes(raw.read_bytes()[: raw.stat().st_size // 2 * 2])
    if sys.byteorder != "little":
        samples.byteswap()  # s16le
    total = len(samples)
    if not total:
        return []
    buckets = min(count, total)
    pairs = []
    for i in range(buckets):
        chunk = samples[i * total // buckets:(i + 1) * total // buckets]
        pairs.append([round(min(chunk) / 32768, 4), round(max(chunk) / 32767, 4)])
    return pairs


def _loudnorm_report(lines: Sequence[str]) -> dict[str, Any]:
    """The JSON object loudnorm prints last on stderr."""
    text = "\n".join(lines)
    start, end = text.rfind("{"), text.rfind("}")
    if start < 0 or end < start:
        return {}
    try:
        report = json.loads(text[start:end + 1])
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}
