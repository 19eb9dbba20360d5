"""Attaching assets to owners' slots: one asset per (owner, slot), replaced assets purged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import InvalidTransition, NotFound, ValidationError
from .model.records import Attachment
from .processing.purge import PURGING

if TYPE_CHECKING:
    from .types import Rows

Owner = Any  # an object with an ``id``, or an explicit ``(type, id)`` tuple

_ATTACHABLE = frozenset({"validating", "analyzing", "promoting", "available", "processing",
                         "transcoding", "ready", "degraded"})


def owner_key(owner: Owner) -> tuple[str, str]:
    """``(owner_type, owner_id)`` from an object with ``id`` or an explicit pair.

    The type is ``__rindle_owner_type__`` when the class sets it, else the class name, so
    renaming a model class doesn't orphan its attachments if the attribute is set.
    """
    if isinstance(owner, tuple):
        if len(owner) != 2 or not all(isinstance(p, (str, int)) for p in owner):
            raise ValidationError("an explicit owner is a (type, id) pair of strings/ints",
                                  code="invalid_owner")
        return str(owner[0]), str(owner[1])
    ident = getattr(owner, "id", None)
    if ident is None:
        raise ValidationError(f"{type(owner).__name__} has no id; pass an object with an id or "
                              "a (type, id) pair", code="invalid_owner")
    kind = getattr(owner, "__rindle_owner_type__", None) or type(owner).__name__
    return str(kind), str(ident)


def _check_slot(slot: str) -> None:
    if not isinstance(slot, str) or not slot or len(slot) > 100:
        raise ValidationError("slot must be a non-empty string of at most 100 characters",
                              code="invalid_slot")


async def attach(media: Rows, asset_id: str, owner: Owner, slot: str) -> Attachment:
    """Point ``owner``'s ``slot`` at the asset. A replaced asset is purged after commit.

    Concurrent attaches to one slot serialize on the attachment row (``SELECT ... FOR
    UPDATE`` on PostgreSQL; SQLite has a single writer), so exactly one link remains and
    every asset it displaced is scheduled for purge.
    """
    _check_slot(slot)
    owner_type, owner_id = owner_key(owner)
    repo = media.repo
    for _ in range(20):
        async with media.transaction():
            asset = await repo.get_asset(asset_id, for_update=True)
            if asset is None:
                raise NotFound(f"asset {asset_id} does not exist")
            if asset.state not in _ATTACHABLE:
                raise InvalidTransition("asset", asset_id, asset.state, "attached")
            if PURGING in asset.metadata:  # its files may already be going
                raise InvalidTransition("asset", asset_id, asset.state, "attached",
                                        actual="purging")
            current = await repo.get_attachment(owner_type, owner_id, slot, for_update=True)
            if current is None:
                created = await repo.insert_attachment_if_absent(asset_id, owner_type, owner_id,
                                                                 slot)
                if created is None:
                    continue  # another attach filled the slot between our read and insert
                return Attachment(**{**created.__dict__, "asset": asset})
            if current.asset_id != asset_id:
                await repo.repoint_attachment(current.id, asset_id)
                await media.outbox.add("purge_asset", {"asset_id": current.asset_id,
                                                       "reason": "replaced"})
            return Attachment(**{**current.__dict__, "asset_id": asset_id, "asset": asset})
    raise InvalidTransition("attachment", f"{owner_type}:{owner_id}:{slot}", "contended",
                            "attached")


async def detach(media: Rows, owner: Owner, slot: str, *, purge: bool = True) -> bool:
    """Remove the link; the asset is purged after commit unless ``purge=False``.

    Idempotent: detaching an empty slot returns ``False`` and changes nothing.
    """
    _check_slot(slot)
    owner_type, owner_id = owner_key(owner)
    repo = media.repo
    async with media.transaction():
        removed = await repo.delete_attachment(owner_type, owner_id, slot)
        if removed is None:
            return False
        if purge:
            await media.outbox.add("purge_asset", {"asset_id": removed.asset_id,
                                                   "reason": "detached"})
    return True


async def attachment_for(media: Rows, owner: Owner, slot: str) -> Attachment | None:
    """The attachment in ``owner``'s ``slot`` with its asset loaded, or ``None``. Read-only."""
    _check_slot(slot)
    owner_type, owner_id = owner_key(owner)
    found = await media.repo.get_attachment(owner_type, owner_id, slot)
    if found is None:
        return None
    asset = await media.repo.get_asset(found.asset_id)
    return Attachment(**{**found.__dict__, "asset": asset})
