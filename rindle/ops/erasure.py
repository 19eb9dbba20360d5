"""Owner erasure: remove everything an owner (a user, a team) had attached, on request.

When someone asks to be forgotten, every slot of theirs is detached and every asset that
no other owner still uses is purged: its original and variants are deleted from storage,
then its rows, and the purge log records the keys and the reason ``owner_erased`` as the
evidence an auditor asks for. An asset also attached to another owner is only detached from
this one; erasing one person never breaks another's page.

Purges go through the outbox in the same commit as the detaches, so a crash half-way loses
nothing and storage deletes are retried until they succeed. Previews change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import telemetry
from ..attachments import Owner, owner_key
from ..errors import RindleError, ValidationError

if TYPE_CHECKING:
    from ..types import Rows

__all__ = ["MAX_OWNERS", "BatchErasure", "BatchOwnerFailed", "ErasurePlan", "batch_of",
           "batch_owner_erasure", "erase_owner", "parse_owner", "parse_owners_file",
           "plan_owner_erasure"]

REASON = "owner_erased"


@dataclass
class ErasurePlan:
    """What erasing one owner does (a preview) or did (after ``erase_owner``)."""

    owner_type: str
    owner_id: str
    slots: list[dict[str, str]] = field(default_factory=list)  # {"slot", "asset_id"}
    assets_purged: list[str] = field(default_factory=list)  # used by this owner only
    assets_kept: list[dict[str, Any]] = field(default_factory=list)  # still used elsewhere
    stored_objects: int = 0  # originals and variants the purges delete
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"owner_type": self.owner_type, "owner_id": self.owner_id,
                "slots": self.slots, "assets_purged": self.assets_purged,
                "assets_kept": self.assets_kept, "stored_objects": self.stored_objects,
                "done": self.done}


def parse_owner(text: str) -> tuple[str, str]:
    """``"User:42"`` -> ``("User", "42")``: the form owners take in files and on the CLI."""
    owner_type, sep, owner_id = text.strip().partition(":")
    if not sep or not owner_type or not owner_id:
        raise ValidationError(f"not an owner: {text.strip()!r}; write type:id, e.g. User:42",
                              code="invalid_owner")
    return owner_type, owner_id


def parse_owners_file(text: str) -> list[tuple[str, str]]:
    """The owners of an owners file: JSON (a list of ``"type:id"`` strings or of
    ``{"type": ..., "id": ...}`` objects, or ``{"owners": [...]}`` of either), else one
    ``type:id`` per line (blank lines and ``#`` comments skipped)."""
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        import json

        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"the owners file is not valid JSON: {exc}",
                                  code="invalid_batch") from None
        items = data.get("owners") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValidationError('the owners file must be a JSON list, or {"owners": [...]}',
                                  code="invalid_batch")
        owners = []
        for item in items:
            if isinstance(item, str):
                owners.append(parse_owner(item))
            elif isinstance(item, dict) and item.get("type") not in (None, "") \
                    and item.get("id") not in (None, ""):
                owners.append((str(item["type"]), str(item["id"])))
            else:
                raise ValidationError(f"not an owner: {item!r}; write \"type:id\" or "
                                      '{"type": ..., "id": ...}', code="invalid_owner")
        return owners
    return [parse_owner(line) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


async def plan_owner_erasure(media: Rows, owner: Owner) -> ErasurePlan:
    """What ``erase_owner`` would do, without changing anything."""
    owner_type, owner_id = owner_key(owner)
    repo = media.repo
    plan = ErasurePlan(owner_type, owner_id)
    links = await repo.attachments_for_owner(owner_type, owner_id)
    seen: set[str] = set()
    for link in links:
        plan.slots.append({"slot": link.slot, "asset_id": link.asset_id})
        if link.asset_id in seen:
            continue
        seen.add(link.asset_id)
        others = [a for a in await repo.attachments_for_asset(link.asset_id)
                  if (a.owner_type, a.owner_id) != (owner_type, owner_id)]
        if others:
            plan.assets_kept.append({"asset_id": link.asset_id, "other_owners": len(
                {(a.owner_type, a.owner_id) for a in others})})
            continue
        plan.assets_purged.append(link.asset_id)
        asset = await repo.get_asset(link.asset_id)
        if asset is not None:
            variants = await repo.list_variants(asset.id)
            plan.stored_objects += 1 + sum(1 for v in variants if v.storage_key)
    return plan


async def erase_owner(media: Rows, owner: Owner) -> ErasurePlan:
    """Detach every slot of ``owner`` and purge the assets nobody else uses.

    One transaction: the attachments go and the purges are queued together. Returns the plan
    as carried out (``done=True``); with the in-process queue, ``await media.drain()``
    waits for the purges, and ``media.purges(asset_id=...)`` shows what was deleted.
    """
    owner_type, owner_id = owner_key(owner)
    repo = media.repo
    async with media.transaction():
        # Planned inside the transaction, so an attach racing the erasure either lands
        # before (and is erased) or after (and is a new, separate link).
        plan = await plan_owner_erasure(media, (owner_type, owner_id))
        for link in plan.slots:
            await repo.delete_attachment(owner_type, owner_id, link["slot"])
        # Kept assets get a purge too: if their other owner is erased or detached at the
        # same moment, each side may see the other's link and keep the asset, and nobody
        # would purge it. The purge job looks again and leaves a still-attached asset alone.
        kept = [k["asset_id"] for k in plan.assets_kept]
        for asset_id in plan.assets_purged + kept:
            await media.outbox.add("purge_asset", {"asset_id": asset_id, "reason": REASON})
    plan.done = True
    return plan


#: The most owners one batch call takes unless told otherwise: a batch is a request to
#: act now, and an accidental "every user" must be refused before anything is touched.
MAX_OWNERS = 1000


@dataclass
class BatchErasure:
    """Many owners' plans, in the order they were handled (previewed or erased)."""

    plans: list[ErasurePlan] = field(default_factory=list)
    preview: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"preview": self.preview, "owners": len(self.plans),
                "slots": sum(len(p.slots) for p in self.plans),
                "assets_purged": sum(len(p.assets_purged) for p in self.plans),
                "assets_kept": sum(len(p.assets_kept) for p in self.plans),
                "stored_objects": sum(p.stored_objects for p in self.plans),
                "plans": [p.to_dict() for p in self.plans]}


class BatchOwnerFailed(RindleError):
    """An owner of a batch failed: the batch stopped there.

    ``partial`` is the report of the owners handled before it (erased, in an erasure: each
    owner is its own transaction, so they stay erased); ``owner`` is the one that failed
    and ``cause`` its error. Fix the cause and run the same batch again: owners already
    erased have nothing left, so the rerun picks up where this one stopped.
    """

    code = "batch_owner_failed"
    default_status = 500

    def __init__(self, owner: tuple[str, str], cause: BaseException,
                 partial: BatchErasure) -> None:
        reason = (f"[{cause.code}] {cause.message}" if isinstance(cause, RindleError)
                  else f"{type(cause).__name__}: {cause}")
        super().__init__(f"owner {owner[0]}:{owner[1]} failed after {len(partial.plans)} "
                         f"owner(s) were {'previewed' if partial.preview else 'erased'}: "
                         f"{reason}", owner=f"{owner[0]}:{owner[1]}",
                         completed=len(partial.plans))
        self.owner = owner
        self.cause = cause
        self.partial = partial


def batch_of(owners: Iterable[Owner], *, max_owners: int = MAX_OWNERS) -> list[tuple[str, str]]:
    """The owners of a batch as ``(type, id)``, each once, in first-seen order; an empty
    batch or one over ``max_owners`` is refused (``invalid_batch``) before any work."""
    seen: dict[tuple[str, str], None] = {}
    for owner in owners:
        seen.setdefault(owner_key(owner), None)
    if not seen:
        raise ValidationError("the batch names no owner", code="invalid_batch")
    if len(seen) > max_owners:
        raise ValidationError(f"the batch names {len(seen)} owners, over max_owners="
                              f"{max_owners}; split it or raise the limit",
                              code="invalid_batch", max_owners=max_owners)
    return list(seen)


async def batch_owner_erasure(media: Rows, owners: Iterable[Owner], *, preview: bool,
                              max_owners: int = MAX_OWNERS,
                              progress: Callable[[int], None] | None = None) -> BatchErasure:
    """Preview or erase many owners: deduplicated, checked against ``max_owners`` before
    any work, then one transaction per owner, in order. The first owner that fails stops
    the batch with ``BatchOwnerFailed`` carrying the partial report; a rerun is idempotent."""
    batch = batch_of(owners, max_owners=max_owners)
    result = BatchErasure(preview=preview)
    started = time.perf_counter()
    outcome = "failed"
    try:
        for owner in batch:
            try:
                plan = (await plan_owner_erasure(media, owner) if preview
                        else await erase_owner(media, owner))
            except Exception as exc:
                raise BatchOwnerFailed(owner, exc, result) from exc
            result.plans.append(plan)
            if progress is not None:
                progress(1)
        outcome = "ok"
    finally:
        done = result.to_dict()
        telemetry.emit("rindle.erasure", preview=preview, outcome=outcome,
                       owners=done["owners"], slots=done["slots"],
                       assets_purged=done["assets_purged"],
                       duration=time.perf_counter() - started)
    return result
