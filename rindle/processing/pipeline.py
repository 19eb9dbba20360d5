"""Promotion and variant processing: what happens to an asset after its bytes are verified."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import InvalidTransition, RindleError
from ..model.records import Asset
from ..upload import sniff
from ..upload.filenames import extension_of
from .scanner import ScanVerdict

if TYPE_CHECKING:
    from ..app import Rindle
    from ..profile import Profile

log = logging.getLogger("rindle.pipeline")

QUARANTINE_REASONS = (
    "mime_not_allowed",
    "extension_not_allowed",
    "extension_mime_mismatch",
    "max_bytes_exceeded",
    "max_pixels_exceeded",
    "empty_file",
    "invalid_upload",
    "scanner_rejected",
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


async def inspect(media: Rindle, profile: type[Profile], asset: Asset) -> Inspection:
    """Judge the stored object by its content: size, magic bytes, name, header dimensions."""
    storage = media.storage_for(profile)
    info = await storage.head(asset.storage_key)
    if info is None:
        return Inspection("invalid_upload", "the object is missing from storage")
    size = info.size
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
    return replace(seen, width=width, height=height)


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


async def _scan(media: Rindle, profile: type[Profile], asset: Asset) -> ScanVerdict:
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


async def promote(media: Rindle, asset_id: str) -> None:
    """validating -> analyzing -> promoting -> available (or quarantined), then plan variants.

    Idempotent: each step starts from the state the asset is in, so a rerun after a crash
    resumes where the last run stopped and a finished asset is left alone.
    """
    repo = media.repo
    asset = await repo.get_asset(asset_id)
    if asset is None:
        log.info("promote: asset %s is gone (purged); nothing to do", asset_id)
        return
    profile = media.profile(asset.profile)
    if asset.state == "validating":
        asset = await repo.transition_asset(asset_id, "validating", "analyzing")
    if asset.state == "analyzing":
        started = time.perf_counter()
        result = await inspect(media, profile, asset)
        if result.reason is None:
            verdict = await _scan(media, profile, asset)
            if not verdict.clean:
                result = Inspection(verdict.reason or "scanner_rejected", "the scanner refused it",
                                    content_type=result.content_type, kind=result.kind,
                                    byte_size=result.byte_size)
        metadata = dict(asset.metadata)
        metadata["inspection_seconds"] = round(time.perf_counter() - started, 4)
        fields = dict(content_type=result.content_type, kind=result.kind or asset.kind,
                      byte_size=result.byte_size, width=result.width, height=result.height,
                      metadata=metadata)
        if result.reason is not None:
            await repo.transition_asset(asset_id, "analyzing", "quarantined",
                                        quarantine_reason=result.reason,
                                        error_reason=result.detail, **fields)
            log.info("asset %s quarantined: %s (%s)", asset_id, result.reason, result.detail)
            return
        asset = await repo.transition_asset(asset_id, "analyzing", "promoting", **fields)
    if asset.state == "promoting":
        asset = await repo.transition_asset(asset_id, "promoting", "available")
    if asset.state == "available":
        await schedule_variants(media, profile, asset)


async def schedule_variants(media: Rindle, profile: type[Profile], asset: Asset) -> None:
    """Plan a row per profile variant, queue them, and move the asset to processing."""
    if not profile.variants:
        return
    repo = media.repo
    async with repo.store.transaction():
        planned = await repo.plan_variants(
            asset.id, [(name, v.digest, v.kind) for name, v in profile.variants.items()]
        )
        for row in planned:
            if row.state == "planned":
                await repo.transition_variant(asset.id, row.name, "planned", "queued")
                await media.outbox.add("process_variant",
                                       {"asset_id": asset.id, "variant": row.name})
        current = await repo.require_asset(asset.id)
        if current.state == "available":
            await repo.transition_asset(asset.id, "available", "processing")


async def process_variant(media: Rindle, asset_id: str, name: str) -> None:
    """queued -> processing -> ready | failed for one variant; then settle the asset."""
    repo = media.repo
    asset = await repo.get_asset(asset_id)
    variant = await repo.get_variant(asset_id, name)
    if asset is None or variant is None:
        return
    if variant.state in ("ready", "cancelled", "purged"):
        return
    profile = media.profile(asset.profile)
    spec = profile.variants.get(name)
    processor = media.processor_for(spec.kind if spec else "image")
    if variant.state == "queued":
        variant = await repo.transition_variant(asset_id, name, "queued", "processing",
                                                attempts=variant.attempts + 1)
    if variant.state != "processing":
        return
    from .jobs import WORKER_ID

    run = await repo.start_run(asset_id=asset_id, variant_name=name, job="process_variant",
                               worker=WORKER_ID, attempt=variant.attempts)
    started = time.perf_counter()
    if spec is None or processor is None:
        reason = ("the profile no longer has this variant" if spec is None
                  else f"no processor is installed for {spec.kind!r} variants")
        await repo.finish_run(run.id, state="failed", error_reason=reason)
        await repo.transition_variant(asset_id, name, "processing", "failed", error_reason=reason)
        await settle_asset(media, asset_id)
        return
    try:
        built = await processor.process(media, profile, asset, name, spec)
    except RindleError as exc:
        await repo.finish_run(run.id, state="failed", error_reason=exc.message)
        raise
    except Exception as exc:
        await repo.finish_run(run.id, state="failed", error_reason=f"{type(exc).__name__}: {exc}")
        raise
    await repo.finish_run(run.id, state="succeeded",
                          timings={"total": round(time.perf_counter() - started, 4)})
    await repo.transition_variant(asset_id, name, "processing", "ready", **built)
    await settle_asset(media, asset_id)


async def fail_variant(media: Rindle, asset_id: str, name: str, reason: str) -> None:
    """Mark a variant failed for good (its job ran out of attempts)."""
    variant = await media.repo.get_variant(asset_id, name)
    if variant is None or variant.state not in ("queued", "processing"):
        return
    if variant.state == "queued":
        await media.repo.transition_variant(asset_id, name, "queued", "processing")
    try:
        await media.repo.transition_variant(asset_id, name, "processing", "failed",
                                            error_reason=reason[:2000])
    except InvalidTransition:
        return
    await settle_asset(media, asset_id)


async def settle_asset(media: Rindle, asset_id: str) -> None:
    """Move a processing asset to ready once every variant is ready."""
    asset = await media.repo.get_asset(asset_id)
    if asset is None or asset.state != "processing":
        return
    rows = await media.repo.list_variants(asset_id)
    if rows and all(v.state == "ready" for v in rows):
        try:
            await media.repo.transition_asset(asset_id, "processing", "ready")
        except InvalidTransition:
            pass  # another variant's job settled it first
