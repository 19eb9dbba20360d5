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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..attachments import Owner, owner_key
from ..errors import RindleError, ValidationError

if TYPE_CHECKING:
    from ..types import Rows

__all__ = ["BatchErasure", "ErasurePlan", "batch_owner_erasure", "erase_owner", "parse_owner",
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


@dataclass
class BatchErasure:
    """Many owners' plans, and the owners that could not be handled (with the error)."""

    plans: list[ErasurePlan] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)  # {"owner", "code", "message"}

    def to_dict(self) -> dict[str, Any]:
        return {"owners": len(self.plans) + len(self.failures),
                "slots": sum(len(p.slots) for p in self.plans),
                "assets_purged": sum(len(p.assets_purged) for p in self.plans),
                "assets_kept": sum(len(p.assets_kept) for p in self.plans),
                "stored_objects": sum(p.stored_objects for p in self.plans),
                "plans": [p.to_dict() for p in self.plans], "failures": self.failures}


async def batch_owner_erasure(media: Rows, owners: Iterable[Owner], *, preview: bool,
                              progress: Callable[[int], None] | None = None) -> BatchErasure:
    """Preview or erase many owners, one transaction each; one owner's failure is recorded
    and the rest go on (the earlier ones stay erased)."""
    result = BatchErasure()
    for owner in owners:
        try:
            plan = (await plan_owner_erasure(media, owner) if preview
                    else await erase_owner(media, owner))
        except Exception as exc:  # one owner's failure must not hide the others' outcome
            shown = ":".join(map(str, owner)) if isinstance(owner, tuple) else repr(owner)
            code = exc.code if isinstance(exc, RindleError) else "erasure_failed"
            message = exc.message if isinstance(exc, RindleError) else (
                f"{type(exc).__name__}: {exc}")
            result.failures.append({"owner": shown, "code": code, "message": message})
        else:
            result.plans.append(plan)
        if progress is not None:
            progress(1)
    return result
