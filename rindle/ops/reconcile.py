"""Storage reconciliation: make the rows and the objects agree again.

Rows and objects drift apart. A bucket lifecycle rule expires objects Rindle still points
at; someone deletes a folder by hand or restores an older backup; a job crashes after
writing its output but before recording it; a purge dies between its deletes. Nothing in
the normal flow notices: a missing file surfaces as a broken image, an orphan as a bill.

``reconcile_storage`` looks both ways:

* rows -> objects: the original of every asset that should have one stored is HEADed, and
  so is the file of every ``ready`` variant. A missing original is only reported: it
  cannot be rebuilt (restore it from a backup, or detach and purge the asset). A missing
  variant is reported and, unless it is a dry run, moved ``ready -> missing``; nothing is
  requeued here, the operator decides: ``media.requeue_variants(asset_id)`` (or
  ``rindle requeue --app ... --asset ID``) rebuilds it from the original, and
  ``rindle status`` lists the missing ones meanwhile.
* objects -> rows: every storage a profile uses is listed under the prefixes Rindle writes
  (``<profile>/``, uploads' ``_rindle_staging/<profile>/`` and the doctor's
  ``_rindle_doctor/``), and an object that no asset, variant, open upload session or
  not-yet-promoted upload names is an orphan once it is older than
  ``orphan_grace`` (a job writes its output moments before its row says so; an upload
  lands before it is completed). With ``delete_orphans`` they are deleted.

The default is a dry run: it reads, reports and changes nothing. Per-object failures are
collected in ``errors`` and never stop the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .. import telemetry
from ..delivery.urls import stored_here
from ..errors import InvalidTransition, NotFound, RindleError, ValidationError
from ..logs import get_logger
from ..storage.base import ObjectListing, Storage
from ..upload.keys import STAGING_PREFIX, asset_id_of
from . import PROBE_PREFIX

if TYPE_CHECKING:
    from ..model.records import Asset, AssetVariant
    from ..profile import Profile
    from ..types import Stores

log = get_logger("rindle.ops")

__all__ = ["ReconcileReport", "reconcile_storage"]

_T = TypeVar("_T")

#: Asset states in which the original is expected in storage (earlier ones may still be
#: uploading; ``deleted`` ones are on their way out).
STORED_STATES = ("available", "processing", "transcoding", "ready", "degraded", "quarantined")
#: HEAD requests in flight at once.
CONCURRENCY = 16
_MISSING_REASON = "the stored file is gone (found by storage reconciliation)"


@dataclass
class ReconcileReport:
    """What a reconciliation found and did. In a dry run nothing is changed: missing
    variants are listed but not marked, orphans listed but not deleted."""

    dry_run: bool
    assets_checked: int = 0
    variants_checked: int = 0
    #: ``{"asset_id", "profile", "storage_key", "state"}``: originals not in storage.
    missing_originals: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"asset_id", "variant", "storage_key"}``: ready variants whose file is gone.
    missing_variants: list[dict[str, Any]] = field(default_factory=list)
    variants_marked_missing: int = 0
    #: ``{"storage", "key", "size", "age_seconds"}``: objects no row names, past the grace.
    orphans: list[dict[str, Any]] = field(default_factory=list)
    orphans_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "assets_checked": self.assets_checked,
                "variants_checked": self.variants_checked,
                "missing_originals": list(self.missing_originals),
                "missing_variants": list(self.missing_variants),
                "variants_marked_missing": self.variants_marked_missing,
                "orphans": list(self.orphans), "orphans_deleted": self.orphans_deleted,
                "errors": list(self.errors)}


async def reconcile_storage(media: Stores, *, profile: type[Profile] | str | None = None,
                            dry_run: bool = True, delete_orphans: bool = False,
                            orphan_grace: float = 86400.0,
                            progress: Callable[[int], None] | None = None,
                            batch: int = 500) -> ReconcileReport:
    """Compare the rows with the stored objects, both ways (see the module docstring).

    ``profile`` narrows both directions to one profile (its assets; its storage under
    ``<profile>/``). Unless ``dry_run``, ready variants whose file is gone become
    ``missing`` (``media.requeue_variants(asset_id)`` rebuilds them); with
    ``delete_orphans`` too, orphans older than ``orphan_grace`` seconds are deleted, each
    checked again just before. Rows are read ``batch`` at a time, never the whole table;
    ``progress(n)`` is called as assets, variants and objects are checked. The runtime
    must be connected.
    """
    if batch < 1:
        raise ValidationError("batch must be at least 1", code="invalid_batch")
    name = None if profile is None else media.profile(profile).name
    run = _Run(media, ReconcileReport(dry_run=dry_run), progress)
    started = time.perf_counter()
    outcome = "error"
    try:
        await run.check_rows(name, batch)
        cutoff = datetime.now(UTC) - timedelta(seconds=max(0.0, orphan_grace))
        await run.find_orphans(name, cutoff, delete=delete_orphans and not dry_run,
                               batch=batch)
        outcome = "partial" if run.report.errors else "ok"
    finally:
        r = run.report
        telemetry.emit("rindle.reconcile", profile=name, dry_run=dry_run, outcome=outcome,
                       assets_checked=r.assets_checked, variants_checked=r.variants_checked,
                       missing_originals=len(r.missing_originals),
                       missing_variants=len(r.missing_variants), orphans=len(r.orphans),
                       orphans_deleted=r.orphans_deleted,
                       duration=time.perf_counter() - started)
    report = run.report
    log.info("storage reconciliation%s: %d missing original(s), %d missing variant(s) "
             "(%d marked), %d orphan(s) (%d deleted), %d error(s)",
             " (dry run)" if dry_run else "", len(report.missing_originals),
             len(report.missing_variants), report.variants_marked_missing,
             len(report.orphans), report.orphans_deleted, len(report.errors))
    return report


class _Run:
    """One reconciliation's state: the report, and storages found unconfigured."""

    def __init__(self, media: Stores, report: ReconcileReport,
                 progress: Callable[[int], None] | None) -> None:
        self.media = media
        self.repo = media.repo
        self.report = report
        self.progress = progress
        self._unknown_storages: set[str] = set()
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(1)

    def _storage(self, name: str) -> Storage | None:
        storage = self.media.storages.get(name)
        if storage is None and name not in self._unknown_storages:
            self._unknown_storages.add(name)
            self.report.errors.append(f"storage {name!r} is not configured: objects of "
                                      "assets stored there were not checked")
        return storage

    async def _bounded(self, work: Awaitable[_T]) -> _T | BaseException:
        async with self._slots:
            try:
                return await work
            except (RindleError, OSError) as exc:
                return exc
            finally:
                self._tick()

    # -- rows -> objects -----------------------------------------------------------------

    async def check_rows(self, profile: str | None, batch: int) -> None:
        after: str | None = None
        while True:
            assets = await self.repo.assets_page(states=STORED_STATES, profile=profile,
                                                 after=after, limit=batch)
            if not assets:
                return
            after = assets[-1].id
            await self._check_originals(assets)
            by_id = {a.id: a for a in assets}
            variants = [v for v in await self.repo.variants_in_state(list(by_id), "ready")
                        if v.storage_key]
            await self._check_variants(by_id, variants)

    async def _check_originals(self, assets: Sequence[Asset]) -> None:
        # A direct upload to a streaming provider has no original here: only the provider
        # holds its file (``rindle streaming sync`` checks that side).
        checks = [(a, s) for a in assets if stored_here(a)
                  and (s := self._storage(a.storage)) is not None]
        found = await asyncio.gather(*[
            self._bounded(s.head(a.storage_key)) for a, s in checks])
        self.report.assets_checked += len(checks)
        for (asset, _), info in zip(checks, found, strict=True):
            if isinstance(info, BaseException):
                self.report.errors.append(f"asset {asset.id}: the original could not be "
                                          f"checked: {_describe(info)}")
            elif info is None:
                self.report.missing_originals.append({
                    "asset_id": asset.id, "profile": asset.profile,
                    "storage_key": asset.storage_key, "state": asset.state})

    async def _check_variants(self, assets: dict[str, Asset],
                              variants: Sequence[AssetVariant]) -> None:
        checks = [(v, s) for v in variants
                  if (s := self._storage(assets[v.asset_id].storage)) is not None]
        found = await asyncio.gather(*[
            self._bounded(s.head(str(v.storage_key))) for v, s in checks])
        self.report.variants_checked += len(checks)
        for (variant, storage), info in zip(checks, found, strict=True):
            if isinstance(info, BaseException):
                self.report.errors.append(
                    f"variant {variant.asset_id}/{variant.name}: its file could not be "
                    f"checked: {_describe(info)}")
            elif info is None:
                self.report.missing_variants.append({
                    "asset_id": variant.asset_id, "variant": variant.name,
                    "storage_key": variant.storage_key})
                if not self.report.dry_run:
                    await self._mark_missing(variant, storage)

    async def _mark_missing(self, variant: AssetVariant, storage: Storage) -> None:
        try:
            # Looked at again: a rebuild may have finished since the HEAD.
            row = await self.repo.get_variant(variant.asset_id, variant.name)
            if row is None or row.state != "ready" or row.storage_key != variant.storage_key:
                return
            if await storage.head(str(variant.storage_key)) is not None:
                return
            await self.repo.transition_variant(variant.asset_id, variant.name, "ready",
                                               "missing", error_reason=_MISSING_REASON)
        except (InvalidTransition, NotFound):
            return  # changed or purged concurrently: that change wins
        except RindleError as exc:
            self.report.errors.append(f"variant {variant.asset_id}/{variant.name}: could "
                                      f"not be marked missing: {_describe(exc)}")
            return
        self.report.variants_marked_missing += 1

    # -- objects -> rows -----------------------------------------------------------------

    async def find_orphans(self, profile: str | None, cutoff: datetime, *, delete: bool,
                           batch: int) -> None:
        for storage_name, prefixes in _prefixes(self.media, profile).items():
            storage = self.media.storages[storage_name]
            for prefix in prefixes:
                pending: list[ObjectListing] = []
                try:
                    async for item in storage.list_keys(prefix):
                        self._tick()
                        pending.append(item)
                        if len(pending) >= batch:
                            await self._settle(storage_name, storage, pending, cutoff, delete)
                            pending = []
                    if pending:
                        await self._settle(storage_name, storage, pending, cutoff, delete)
                except (RindleError, OSError) as exc:
                    self.report.errors.append(f"storage {storage_name!r}: listing "
                                              f"{prefix!r} failed: {_describe(exc)}")

    async def _settle(self, storage_name: str, storage: Storage,
                      items: Sequence[ObjectListing], cutoff: datetime, delete: bool) -> None:
        old = [i for i in items if i.modified_at <= cutoff]
        owners = {i.key: _asset_id(i.key) for i in old}
        # A key Rindle did not shape (no asset id in it) was not written by Rindle: left alone.
        candidates = [i for i in old if owners[i.key] is not None]
        ids = sorted({o for o in owners.values() if o})
        referenced = await self.repo.referenced_keys(ids)
        orphans = [i for i in candidates if i.key not in referenced]
        now = datetime.now(UTC)
        for item in orphans:
            self.report.orphans.append({
                "storage": storage_name, "key": item.key, "size": item.size,
                "age_seconds": round((now - item.modified_at).total_seconds(), 1)})
        if delete and orphans:
            await self._delete(storage_name, storage, orphans, owners, cutoff)

    async def _delete(self, storage_name: str, storage: Storage,
                      orphans: Sequence[ObjectListing], owners: dict[str, str | None],
                      cutoff: datetime) -> None:
        # Checked again just before: a row written since the listing, or an object
        # rewritten since (a rebuild reuses its key), takes it off the list.
        referenced = await self.repo.referenced_keys(
            sorted({o for i in orphans if (o := owners[i.key])}))
        for item in orphans:
            if item.key in referenced:
                continue
            try:
                info = await storage.head(item.key)
                if info is None or (info.modified_at is not None
                                    and info.modified_at > cutoff):
                    continue
                if await storage.delete(item.key):
                    self.report.orphans_deleted += 1
            except (RindleError, OSError) as exc:
                self.report.errors.append(f"storage {storage_name!r}: orphan {item.key!r} "
                                          f"could not be deleted: {_describe(exc)}")


def _prefixes(media: Stores, profile: str | None) -> dict[str, list[str]]:
    """The key prefixes Rindle writes, per storage name: ``<profile>/`` for each profile
    on it, and the doctor's probes (when every profile is reconciled)."""
    found: dict[str, list[str]] = {}
    for prof in media.profiles.values():
        if profile is None or prof.name == profile:
            found.setdefault(prof.storage, []).extend(
                [f"{prof.name}/", f"{STAGING_PREFIX}{prof.name}/"])
    if profile is None:
        for prefixes in found.values():
            prefixes.append(PROBE_PREFIX)
    return found


def _asset_id(key: str) -> str | None:
    """The asset id in a key Rindle built (``<profile>/<asset_id>/<name>``, or an upload's
    staging key); a doctor probe belongs to no asset (``""``); anything else ``None``."""
    if key.startswith(PROBE_PREFIX):
        return ""
    return asset_id_of(key)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RindleError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
