"""Promotion and variant processing: what happens to an asset after its bytes are verified."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import telemetry
from ..delivery.streaming.ingest import schedule_push
from ..errors import InvalidTransition, RindleError
from ..live.events import PROCESSING_PROGRESS, LiveEvent
from ..logs import get_logger
from ..model.records import Asset, AssetVariant
from ..model.repo import now
from ..types import Stores
from ..upload import keys, sniff
from ..upload.checksums import Checksum
from ..upload.filenames import extension_of
from .processor import BatchProcessor, Output, Processor
from .scanner import ScanVerdict
from .workspace import JobContext, StoredSource, Workspace, stream_file

if TYPE_CHECKING:
    from ..live.hub import Live
    from ..profile import Profile, Variant
    from ..storage.base import ObjectInfo, Storage
    from .analyzer import Analyzer


class Processing(Stores, Protocol):
    """What promotion and variant jobs use: the catalog and rows, the analyzers and the
    processors by variant kind."""

    @property
    def analyzers(self) -> Sequence[Analyzer]: ...

    @property
    def live(self) -> Live: ...

    @property
    def scratch_dir(self) -> str | None:
        """Where each job's scratch directory goes (``None``: the system's temporary one)."""
        ...

    def processor_for(self, kind: str) -> Processor | None: ...

log = get_logger("rindle.pipeline")

#: How many of a job's outputs are written to storage at once.
_STORE_CONCURRENCY = 4
#: Who ran a processing run: this host and process (with `rindle worker --fork`, the work
#: horse rq forks for the job).
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

QUARANTINE_REASONS = (
    "mime_not_allowed",
    "extension_not_allowed",
    "extension_mime_mismatch",
    "max_bytes_exceeded",
    "max_pixels_exceeded",
    "empty_file",
    "invalid_upload",
    "scanner_rejected",
    "checksum_mismatch",
    "invalid_media",
    "content_type_mismatch",
    "max_duration_exceeded",
)


@dataclass(frozen=True)
class Inspection:
    """What promotion learned from the stored bytes; ``reason`` set means quarantine."""

    reason: str | None = None
    detail: str | None = None
    content_type: str | None = None
    kind: str | None = None
    byte_size: int | None = None
    width: int | None = None
    height: int | None = None
    metadata: dict[str, object] | None = None
    duration_ms: int | None = None  # video and audio, from ffprobe


async def inspect(media: Processing, profile: type[Profile], asset: Asset) -> Inspection:
    """Judge the stored object by its content: size, magic bytes, name, header dimensions."""
    storage = media.storage_for(profile)
    info = await storage.head(asset.storage_key)
    if info is None:
        return Inspection("invalid_upload", "the object is missing from storage")
    size = info.size
    if asset.byte_size is not None and size != asset.byte_size:
        return Inspection("invalid_upload", f"{size} bytes were promoted but {asset.byte_size} "
                          "were verified", byte_size=size)
    if size == 0:
        return Inspection("empty_file", "the file is empty", byte_size=0)
    if size > profile.max_bytes:
        return Inspection("max_bytes_exceeded",
                          f"{size} bytes is over the limit of {profile.max_bytes}", byte_size=size)
    head = await storage.read_range(asset.storage_key, 0, sniff.SNIFF_BYTES)
    found = sniff.sniff(head)
    seen = Inspection(content_type=found.mime, kind=found.kind, byte_size=size)
    if found.mime not in profile.allow_mime:
        return replace(seen, reason="mime_not_allowed", detail=f"the content is {found.mime}")
    ext = extension_of(asset.filename or "")
    # A name without an extension is judged by its content alone.
    if ext:
        if ext not in (profile.allow_extensions or ()):
            return replace(seen, reason="extension_not_allowed", detail=f".{ext} is not allowed")
        if ext not in found.extensions:
            return replace(seen, reason="extension_mime_mismatch",
                           detail=f"the name says .{ext} but the content is {found.mime}")
    if found.kind in ("video", "audio"):
        return await _inspect_media(media, profile, asset, seen, found, head)
    width = height = None
    if found.kind == "image":
        try:
            dims = await _image_size(storage, asset.storage_key, head, found.mime, size)
        except ValueError as exc:
            return replace(seen, reason="invalid_upload", detail=f"unreadable image header: {exc}")
        if dims is not None:
            width, height = dims
            if width <= 0 or height <= 0:
                return replace(seen, reason="invalid_upload", detail="the image has no pixels")
            if profile.max_pixels is not None and width * height > profile.max_pixels:
                return replace(seen, reason="max_pixels_exceeded", width=width, height=height,
                               detail=f"{width}x{height} is over the limit of "
                                      f"{profile.max_pixels} pixels")
    result = replace(seen, width=width, height=height)
    return await _analyze(media, profile, asset, result, head)


async def _inspect_media(media: Processing, profile: type[Profile], asset: Asset,
                         seen: Inspection, found: sniff.Sniffed, head: bytes) -> Inspection:
    """ffprobe's checks of a video or audio original (rindle/processing/av_check.py); its
    facts (no tags) go into the metadata, before the analyzers add theirs."""
    from .av_check import check_media

    typed = replace(asset, kind=found.kind, content_type=found.mime)
    workspace = Workspace(media.scratch_dir)
    source = StoredSource(media.storage_named(asset.storage), typed, workspace.path, head=head)
    try:
        verdict = await check_media(await source.path(), profile, found,
                                    asset.declared_content_type)
    finally:
        await workspace.close()
    facts = verdict.facts
    result = replace(seen, kind=verdict.kind, width=facts.width if facts else None,
                     height=facts.height if facts else None,
                     metadata=facts.to_metadata() if facts else None,
                     duration_ms=round(facts.duration * 1000) if facts and facts.duration
                     else None)
    if verdict.reason is not None:
        return replace(result, reason=verdict.reason, detail=verdict.detail)
    analyzed = await _analyze(media, profile, asset, result, head)
    return replace(analyzed, metadata={**(result.metadata or {}), **(analyzed.metadata or {})})


async def _analyze(media: Processing, profile: type[Profile], asset: Asset,
                   result: Inspection, head: bytes) -> Inspection:
    typed = replace(asset, kind=result.kind or asset.kind, content_type=result.content_type,
                    width=result.width, height=result.height)
    metadata: dict[str, object] = {}
    width, height = result.width, result.height
    workspace = Workspace(media.scratch_dir)
    source = StoredSource(media.storage_named(asset.storage), typed, workspace.path, head=head)
    try:
        for analyzer in media.analyzers:
            try:
                found = await analyzer.analyze(typed, source)
            except Exception:
                log.exception("analyzer %r failed on asset %s", analyzer, asset.id)
                continue
            if not found:
                continue
            found = dict(found)
            width = found.pop("width", width)
            height = found.pop("height", height)
            metadata.update(found)
    finally:
        await workspace.close()
    return replace(result, width=width, height=height, metadata=metadata)


async def _image_size(storage: object, key: str, head: bytes, mime: str,
                      size: int) -> tuple[int, int] | None:
    # Read only as much of the header as the format needs (ranged reads), never the pixels.
    data = head
    while True:
        try:
            return sniff.image_size(data, mime)
        except sniff.NeedMoreBytes as more:
            want = min(more.required, sniff.MAX_HEADER_BYTES, size)
            if want <= len(data):
                raise ValueError("the header ends before the image dimensions") from None
            data += await storage.read_range(key, len(data), want - len(data))  # type: ignore[attr-defined]


async def _scan(media: Processing, profile: type[Profile], asset: Asset) -> ScanVerdict:
    scanner = profile.scanner
    if scanner is None:
        return ScanVerdict.ok()
    storage = media.storage_for(profile)

    def read() -> AsyncIterator[bytes]:
        return storage.stream(asset.storage_key)

    verdict = await scanner.scan(asset, read)
    if not isinstance(verdict, ScanVerdict):
        raise TypeError(f"{type(scanner).__name__}.scan must return a ScanVerdict")
    return verdict


async def promote(media: Processing, asset_id: str) -> None:
    """validating -> analyzing -> promoting -> available (or quarantined), then plan variants.

    Leaving ``validating``, the verified bytes move from the upload's staging key to the
    asset's permanent key (``secure_original``), so everything after it — sniffing, the
    scanner, analyzers, variants, delivery — reads an object no upload credential names.

    Idempotent: each step starts from the state the asset is in, so a rerun after a crash
    resumes where the last run stopped and a finished asset is left alone.
    """
    repo = media.repo
    asset = await repo.get_asset(asset_id)
    if asset is None:
        log.info("promote: asset %s is gone (purged); nothing to do", asset_id)
        return
    profile = media.profile(asset.profile)
    with telemetry.span("rindle.promotion", asset_id=asset_id, profile=profile.name,
                        kind=asset.kind) as span:
        before = asset.state
        asset = await _promote(media, profile, asset)
        # An asset found further on (a job run again) was promoted before: skipped.
        outcome = ("quarantined" if asset.state == "quarantined" else "available"
                   if before in ("validating", "analyzing", "promoting", "available")
                   else "skipped")
        span.set(outcome=outcome, kind=asset.kind, bytes=asset.byte_size)
        if asset.state == "quarantined":
            return
        if asset.state == "available":
            # Promoted by an older version, which planned the variants in a commit of its
            # own, and stopped in between (or a profile without variants: nothing to plan).
            await schedule_variants(media, profile, asset)
    await _push_when_ready(media, profile, asset_id)


async def _promote(media: Processing, profile: type[Profile], asset: Asset) -> Asset:
    """The steps of ``promote`` from the state the asset is in; the asset as it ends up."""
    repo = media.repo
    asset_id = asset.id
    if asset.state == "validating":
        fields, problem = await secure_original(media, asset)
        async with media.transaction():
            asset = await repo.transition_asset(asset_id, "validating", "analyzing", **fields)
            if problem is not None:
                asset = await repo.transition_asset(asset_id, "analyzing", "quarantined",
                                                    quarantine_reason="checksum_mismatch",
                                                    error_reason=problem)
        if problem is not None:
            log.info("asset %s quarantined: checksum_mismatch (%s)", asset_id, problem)
            return asset
    if asset.state == "analyzing":
        started = time.perf_counter()
        result = await inspect(media, profile, asset)
        if result.reason is None:
            verdict = await _scan(media, profile, asset)
            if not verdict.clean:
                result = Inspection(verdict.reason or "scanner_rejected", "the scanner refused it",
                                    content_type=result.content_type, kind=result.kind,
                                    byte_size=result.byte_size)
        metadata = {**asset.metadata, **(result.metadata or {})}
        metadata["inspection_seconds"] = round(time.perf_counter() - started, 4)
        fields = dict(content_type=result.content_type, kind=result.kind or asset.kind,
                      byte_size=result.byte_size, width=result.width, height=result.height,
                      duration_ms=result.duration_ms, metadata=metadata)
        if result.reason is not None:
            asset = await repo.transition_asset(asset_id, "analyzing", "quarantined",
                                                quarantine_reason=result.reason,
                                                error_reason=result.detail, **fields)
            log.info("asset %s quarantined: %s (%s)", asset_id, result.reason, result.detail)
            return asset
        asset = await repo.transition_asset(asset_id, "analyzing", "promoting", **fields)
    if asset.state == "promoting":
        # One commit with the variant plan: nobody reads "available, no variant rows" for a
        # profile that has variants, and a page rendered then would take it for settled.
        async with media.transaction():
            asset = await repo.transition_asset(asset_id, "promoting", "available")
            await schedule_variants(media, profile, asset)
            asset = await repo.require_asset(asset_id)
    return asset


async def _push_when_ready(media: Processing, profile: type[Profile], asset_id: str) -> None:
    """Queue the streaming push of a profile that streams, once its source is ready."""
    if profile.delivery.streaming is None:
        return
    async with media.transaction():
        asset = await media.repo.get_asset(asset_id)
        if asset is not None:
            await schedule_push(media, profile, asset)


async def secure_original(media: Processing, asset: Asset) -> tuple[dict[str, Any], str | None]:
    """Move the verified upload to the asset's permanent key: the row fields to record,
    and why the bytes are not those whose checksum the client declared (if so).

    The move keeps its first result on a rerun (a crash between copy and clean-up loses
    nothing), and records what landed: its checksum (SHA-256 on Local, S3's checksum or
    ETag). An asset stored before staging keys existed has its original under the key its
    upload URL names; it moves to a key derived from the session, and the row follows.
    """
    session = await media.repo.completed_session(asset.id)
    storage = media.storage_named(asset.storage)
    if session is None:
        # Nothing was uploaded through a session (rows made by hand): keep it in place.
        info = await storage.head(asset.storage_key)
        return ({"checksum": info.checksum or _etag_checksum(info.etag)} if info else {}), None
    dest = asset.storage_key
    if session.upload_key == dest:
        dest = keys.promoted_key(asset.storage_key, session.id)
    info = await storage.move(session.upload_key, dest)
    fields: dict[str, Any] = {"checksum": info.checksum or _etag_checksum(info.etag)}
    if dest != asset.storage_key:
        fields["storage_key"] = dest
    log.info("asset %s: upload moved to its permanent key (%d bytes, %s)", asset.id,
             info.size, fields["checksum"])
    return fields, _checksum_problem(session.declared_checksum, info)


def _checksum_problem(declared: str | None, info: ObjectInfo) -> str | None:
    if not declared:
        return None
    # Only the checksum the store computed of these very bytes counts (a Local ETag is no
    # digest); an MD5 it can't tell is enforced where the bytes arrive (S3, Rindle's route).
    checksum = Checksum.parse(declared)
    if checksum.matches(info.checksum) is False:
        return f"the stored bytes are not those of the declared {checksum.algorithm} checksum"
    return None


def _etag_checksum(etag: str | None) -> str | None:
    return f"etag:{etag.strip(chr(34))}" if etag else None


async def schedule_variants(media: Processing, profile: type[Profile], asset: Asset) -> None:
    """Plan a row per profile variant, queue them as one job, and move the asset to processing."""
    if not profile.variants:
        return
    repo = media.repo
    async with media.transaction():
        planned = await repo.plan_variants(
            asset.id, [(name, v.digest, v.kind) for name, v in profile.variants.items()]
        )
        names = []
        for row in planned:
            if row.state == "planned":
                await repo.transition_variant(asset.id, row.name, "planned", "queued")
                names.append(row.name)
        if names:
            # One job per asset: the processor decodes the original once for all of them.
            await media.outbox.add("process_variants", {"asset_id": asset.id, "variants": names})
        current = await repo.require_asset(asset.id)
        if current.state == "available":
            await repo.transition_asset(asset.id, "available", "processing")


async def _claim(media: Processing, row: AssetVariant) -> AssetVariant | None:
    """Move a queued variant to processing; a processing one (an earlier attempt or a dead
    worker left it) is taken over. Anything else is not this job's to build."""
    repo = media.repo
    try:
        if row.state == "queued":
            return await repo.transition_variant(row.asset_id, row.name, "queued", "processing",
                                                 attempts=row.attempts + 1)
        if row.state == "processing":
            await repo.abandon_runs(row.asset_id, row.name)
            await repo.update_variant(row.asset_id, row.name, attempts=row.attempts + 1)
            return replace(row, attempts=row.attempts + 1)
    except InvalidTransition:
        return None  # cancelled or taken by another job in between
    return None


async def process_variants(media: Processing, asset_id: str, names: list[str]) -> None:
    """Build the named variants of one asset: queued -> processing -> ready | failed.

    Idempotent: ready, cancelled and purged variants are skipped. Variants sharing a
    processor are built together when it offers ``process_many`` (one decode for all).
    Bookkeeping happens in two transactions (claim, record) around the work, so a variant
    set costs a handful of round trips to the database, not dozens. Raises the first
    retryable error after recording the others, so the job is retried.
    """
    repo = media.repo
    asset = await repo.get_asset(asset_id)
    if asset is None:
        return
    if asset.state not in ("processing", "ready", "degraded"):
        log.info("variants of asset %s not built: it is %s", asset_id, asset.state)
        return
    profile = media.profile(asset.profile)
    wanted = set(names)
    groups: dict[int, tuple[Any, list[tuple[str, Variant, AssetVariant]]]] = {}
    runs: dict[str, str] = {}
    async with media.transaction():
        for current in await repo.list_variants(asset_id):
            if current.name not in wanted:
                continue
            row = await _claim(media, current)
            if row is None:
                continue
            spec = profile.variants.get(row.name)
            processor = media.processor_for(spec.kind) if spec else None
            if spec is None or processor is None:
                reason = ("the profile no longer has this variant" if spec is None
                          else f"no processor is installed for {spec.kind!r} variants")
                await repo.transition_variant(asset_id, row.name, "processing", "failed",
                                              error_reason=reason)
                continue
            groups.setdefault(id(processor), (processor, []))[1].append((row.name, spec, row))
            run = await repo.start_run(asset_id=asset_id, variant_name=row.name,
                                       job="process_variants", worker=WORKER_ID,
                                       attempt=row.attempts)
            runs[row.name] = run.id

    async def checkpoint(name: str) -> bool:
        current = await repo.get_variant(asset_id, name)
        return current is not None and current.state == "processing"

    retry: BaseException | None = None
    superseded: list[str] = []
    for processor, members in groups.values():
        kinds = sorted({spec.kind for _, spec, _ in members})
        with telemetry.span("rindle.variant.process", asset_id=asset_id,
                            profile=profile.name, kind=",".join(kinds)) as span:
            failures: list[BaseException] = []
            built = stored = 0
            started = time.perf_counter()
            results = await _run_processor(media, processor, profile, asset, members,
                                           checkpoint)
            elapsed = round(time.perf_counter() - started, 4)
            async with media.transaction():
                for name, _spec, row in members:
                    outcome = results.get(name)
                    run_id = runs[name]
                    if isinstance(outcome, RindleError) \
                            and outcome.code == "processing_cancelled":
                        outcome = None  # a processor stopped its work: cancelled
                    if outcome is None:  # cancelled at the checkpoint
                        await repo.finish_run(run_id, state="cancelled")
                        continue
                    if isinstance(outcome, BaseException):
                        reason = (outcome.message if isinstance(outcome, RindleError)
                                  else f"{type(outcome).__name__}: {outcome}")
                        await repo.finish_run(run_id, state="failed", error_reason=reason,
                                              timings={"total": elapsed})
                        if isinstance(outcome, RindleError) and not outcome.retryable:
                            await _fail(media, asset_id, name, reason)
                        elif retry is None:
                            retry = outcome
                        continue
                    await repo.finish_run(run_id, state="succeeded",
                                          timings={"total": elapsed, "variants": len(members)})
                    try:
                        await repo.transition_variant(asset_id, name, "processing", "ready",
                                                      error_reason=None, generated_at=now(),
                                                      **outcome)
                    except InvalidTransition:
                        # Cancelled after the checkpoint: the object must not outlive its row.
                        superseded.append(outcome["storage_key"])
                        continue
                    built += 1
                    stored += int(outcome.get("byte_size") or 0)
                    if row.storage_key and row.storage_key != outcome["storage_key"]:
                        # The rebuilt file replaced one made from an older recipe.
                        superseded.append(row.storage_key)
                await settle_asset(media, asset_id)
                await _push_when_ready(media, profile, asset_id)
            span.set(variants=len(members), failed=len(failures), bytes=stored,
                     outcome="ready" if built == len(members) else
                     "partial" if built else "cancelled")
            if failures and not built:
                span.fail(failures[0])
    storage = media.storage_for(profile)
    for key in superseded:
        await storage.delete(key)
    if not groups:
        await settle_asset(media, asset_id)
        await _push_when_ready(media, profile, asset_id)
    if retry is not None:
        raise retry


async def _run_processor(media: Processing, processor: Processor, profile: type[Profile],
                         asset: Asset, members: Sequence[tuple[str, Variant, AssetVariant | None]],
                         checkpoint: Callable[[str], Awaitable[bool]]) -> dict[str, Any]:
    """Run one processor on its variants of the asset and store what it built.

    Returns each variant's row fields, or the exception that stopped it; a variant left out
    was cancelled. The scratch directory goes whatever happens.
    """
    storage = media.storage_named(asset.storage)
    names = [name for name, _, _ in members]
    workspace = Workspace(media.scratch_dir)

    async def cancelled() -> bool:
        return not any([await checkpoint(name) for name in names])

    started = time.monotonic()
    kind = ",".join(sorted({spec.kind for _, spec, _ in members}))

    async def publish(percent: float) -> None:
        # The ETA assumes the rest goes as fast as what is done (a transcode's does).
        elapsed = time.monotonic() - started
        eta = elapsed * (100 - percent) / percent if 0 < percent < 100 else (
            0.0 if percent >= 100 else None)
        telemetry.emit("rindle.processing.progress", asset_id=asset.id, profile=profile.name,
                       kind=kind, percent=percent, eta=eta)
        await media.live.publish("asset", asset.id, LiveEvent(PROCESSING_PROGRESS, {
            "asset_id": asset.id, "variants": names, "percent": round(percent, 1),
            "eta_seconds": None if eta is None else round(eta, 1)}))

    try:
        context = JobContext(await workspace.path(), max_pixels=profile.max_pixels,
                             cancelled=cancelled, publish=publish)
        source = StoredSource(storage, asset, workspace.path)
        outputs = await _outputs(processor, source, members, context, checkpoint)
        # The outputs are stored side by side: each store is mostly waiting (an fsync, a
        # network round trip), and one after the other they cost as much as a small image's
        # whole build.
        gate = asyncio.Semaphore(_STORE_CONCURRENCY)
        skipped = object()

        async def store(name: str, spec: Variant) -> Any:
            out = outputs.get(name)
            if out is None or (not isinstance(out, BaseException)
                               and not await checkpoint(name)):
                return skipped  # cancelled: nothing is stored
            if isinstance(out, BaseException):
                return out
            try:
                async with gate:
                    return await _store(storage, asset, name, spec, out, context.scratch)
            except Exception as exc:
                return exc

        stored = await asyncio.gather(*(store(name, spec) for name, spec, _ in members))
        results: dict[str, Any] = {name: value for (name, _, _), value in zip(
            members, stored, strict=True) if value is not skipped}
        if context.metadata:
            await media.repo.merge_asset_metadata(asset.id, context.metadata)
    finally:
        await workspace.close()
    return results


async def build_variants(media: Processing, asset: Asset, variants: Mapping[str, Variant], *,
                         processor: Processor | None = None) -> dict[str, Any]:
    """Build and store variants of an asset outside the job queue, as a job would (the
    same Source, Context, generated keys and clean-up), without touching variant rows.

    For trying a processor on real assets (scripts, tests). Returns each variant's row
    fields (``storage_key``, ``content_type``, ``byte_size``, dimensions) or the exception
    that stopped it. ``processor`` defaults to the one registered for the variants' kind.
    """
    profile = media.profile(asset.profile)
    if processor is None:
        kinds = {v.kind for v in variants.values()}
        found = media.processor_for(kinds.pop()) if len(kinds) == 1 else None
        if found is None:
            raise RindleError("name the processor: no single registered one builds these "
                              "variants", code="processor_missing")
        processor = found

    async def always(name: str) -> bool:
        return True

    members: list[tuple[str, Variant, AssetVariant | None]] = [
        (name, spec, None) for name, spec in variants.items()]
    return await _run_processor(media, processor, profile, asset, members, always)


async def _outputs(processor: Processor, source: StoredSource,
                   members: Sequence[tuple[str, Variant, AssetVariant | None]], context: JobContext,
                   checkpoint: Callable[[str], Awaitable[bool]]
                   ) -> dict[str, Output | BaseException]:
    if isinstance(processor, BatchProcessor):
        try:
            return dict(await processor.process_many(
                source, {name: spec for name, spec, _ in members}, context))
        except Exception as exc:  # the whole batch failed the same way (e.g. undecodable)
            return {name: exc for name, _, _ in members}
    outputs: dict[str, Output | BaseException] = {}
    for name, spec, _ in members:
        if not await checkpoint(name):
            continue
        try:
            outputs[name] = await processor.process(source, spec, context.part(name))
        except Exception as exc:
            outputs[name] = exc
    return outputs


async def _store(storage: Storage, asset: Asset, name: str, spec: Variant, out: Output,
                 scratch: Path) -> dict[str, Any]:
    """Store a processor's output under the variant's generated key; the row's fields."""
    path = Path(out.path) if isinstance(out, Output) else None
    if path is None or not path.resolve().is_relative_to(scratch.resolve()):
        raise RindleError(f"the processor of variant {name!r} must return an Output whose "
                          "file is inside its scratch directory", code="invalid_output")
    ext = path.suffix or _extension_for(out.content_type)
    key = f"{asset.profile}/{asset.id}/variants/{name}-{spec.digest[:12]}{ext}"
    info = await storage.write(key, stream_file(path), content_type=out.content_type)
    # Deleted at once, so a big rendition doesn't sit twice on disk while the others store.
    path.unlink(missing_ok=True)
    fields: dict[str, Any] = {"storage_key": key, "content_type": out.content_type,
                              "byte_size": info.size}
    for attr in ("width", "height", "duration_ms"):
        if getattr(out, attr) is not None:
            fields[attr] = getattr(out, attr)
    return fields


def _extension_for(content_type: str) -> str:
    known = sniff.extensions_for(content_type)
    return f".{known[0]}" if known else ""


async def _fail(media: Processing, asset_id: str, name: str, reason: str) -> None:
    try:
        await media.repo.transition_variant(asset_id, name, "processing", "failed",
                                            error_reason=reason[:2000])
    except InvalidTransition:
        pass


async def fail_variants(media: Processing, asset_id: str, names: list[str], reason: str) -> None:
    """Mark variants failed for good (their job ran out of attempts), then settle the asset."""
    for name in names:
        row = await media.repo.get_variant(asset_id, name)
        if row is None:
            continue
        if row.state == "queued":
            try:
                await media.repo.transition_variant(asset_id, name, "queued", "processing")
            except InvalidTransition:
                continue
        await _fail(media, asset_id, name, reason)
    await settle_asset(media, asset_id)


async def settle_asset(media: Processing, asset_id: str) -> None:
    """Once no variant is waiting or building: ready when none failed, degraded otherwise."""
    asset = await media.repo.get_asset(asset_id)
    if asset is None or asset.state not in ("processing", "ready", "degraded"):
        return
    rows = await media.repo.list_variants(asset_id)
    if any(v.state in ("planned", "queued", "processing") for v in rows):
        return
    target = "degraded" if any(v.state == "failed" for v in rows) else "ready"
    if asset.state == target:
        return
    try:
        await media.repo.transition_asset(asset_id, asset.state, target)
    except InvalidTransition:
        pass  # another job settled it first
