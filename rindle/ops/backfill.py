"""Metadata backfill: run the analyzers again over assets that are already stored.

When an analyzer is added or improved, the assets promoted before it lack what it finds.
``media.backfill_metadata(profile=...)`` (and ``rindle backfill-metadata``) reads every
stored original of a profile again through the same inspection promotion uses and records
the type, size, dimensions and analyzer facts, never the state: a file that would now be
refused is only flagged (``metadata["reprobe_problem"]``) for the operator to decide.

It walks the assets in id order and records, after each asset, the id it reached (a row of
``rindle_meta``), so an interrupted run (a deploy, a Ctrl-C) continues where it stopped
the next time it is started; a finished run removes the marker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import telemetry
from ..errors import RindleError
from ..logs import get_logger
from ..processing.repair import reprobe

if TYPE_CHECKING:
    from ..processing.pipeline import Processing
    from ..profile import Profile

__all__ = ["BackfillReport", "backfill_metadata"]

log = get_logger("rindle.ops")

#: Asset states whose original is stored and verified (what delivery serves).
STORED = ("available", "processing", "transcoding", "ready", "degraded")


@dataclass
class BackfillReport:
    """One run of the backfill: how many assets it read, which changed, which failed."""

    profile: str
    assets: int = 0
    changed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # {"asset_id", "code", "message"}
    resumed_after: str | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "assets": self.assets, "changed": self.changed,
                "failed": self.failed, "resumed_after": self.resumed_after, "done": self.done}


def _marker(profile: str) -> str:
    return f"backfill_metadata:{profile}"


def _facts(asset: Any) -> tuple[Any, ...]:
    return (asset.content_type, asset.kind, asset.byte_size, asset.width, asset.height,
            {k: v for k, v in asset.metadata.items() if k != "inspection_seconds"})


async def backfill_metadata(media: Processing, *, profile: type[Profile] | str,
                            batch: int = 100, restart: bool = False,
                            progress: Callable[[int], None] | None = None) -> BackfillReport:
    """Re-run the analyzers over every stored asset of ``profile``; see the module.

    ``restart``: begin at the first asset even if an earlier run stopped half-way. An
    asset that cannot be read is reported in ``failed`` and the walk goes on.
    """
    prof = media.profile(profile)
    repo = media.repo
    marker = _marker(prof.name)
    after = None if restart else await repo.get_marker(marker)
    report = BackfillReport(profile=prof.name, resumed_after=after)
    started = time.perf_counter()
    outcome = "interrupted"
    try:
        while page := await repo.assets_page(states=STORED, profile=prof.name, after=after,
                                             limit=batch):
            for asset in page:
                try:
                    updated = await reprobe(media, asset.id)
                except RindleError as exc:
                    report.failed.append({"asset_id": asset.id, "code": exc.code,
                                          "message": exc.message})
                else:
                    report.changed += _facts(updated) != _facts(asset)
                report.assets += 1
                after = asset.id
                # Where the next run starts if this one is stopped now.
                await repo.set_marker(marker, after)
                if progress is not None:
                    progress(1)
        await repo.clear_marker(marker)
        report.done = True
        outcome = "ok" if not report.failed else "partial"
    finally:
        telemetry.emit("rindle.backfill", profile=prof.name, outcome=outcome,
                       assets=report.assets, changed=report.changed,
                       duration=time.perf_counter() - started)
        log.info("metadata backfill of %s: %d asset(s) read, %d changed, %d failed (%s)",
                 prof.name, report.assets, report.changed, len(report.failed), outcome)
    return report
