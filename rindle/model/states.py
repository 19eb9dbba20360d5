"""The state machines as data: which state may follow which, per entity."""

from __future__ import annotations

from collections.abc import Mapping

ASSET: Mapping[str, frozenset[str]] = {
    # staged -> transcoding extends DESIGN.md: a direct upload to a streaming provider (Mux)
    # sends the bytes past Rindle's storage, so the provider, not promotion, judges and
    # transcodes them; the asset waits in transcoding until the provider says ready.
    "staged": frozenset({"validating", "transcoding"}),
    "validating": frozenset({"analyzing"}),
    "analyzing": frozenset({"promoting", "quarantined"}),
    "promoting": frozenset({"available"}),
    "available": frozenset({"processing", "transcoding", "quarantined"}),
    # processing -> degraded and degraded -> ready extend DESIGN.md: an asset whose variant
    # failed for good is degraded without a detour through ready, and one whose failed
    # variants were repaired (requeue_variants) is ready again.
    "processing": frozenset({"ready", "degraded", "quarantined"}),
    "transcoding": frozenset({"ready", "degraded", "quarantined"}),
    "ready": frozenset({"degraded", "deleted"}),
    "degraded": frozenset({"ready", "quarantined", "deleted"}),
    "quarantined": frozenset({"deleted"}),
    "deleted": frozenset(),
}

VARIANT: Mapping[str, frozenset[str]] = {
    "planned": frozenset({"queued", "cancelled"}),
    "queued": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"ready", "failed", "cancelled"}),
    "ready": frozenset({"stale", "missing", "purged"}),
    "stale": frozenset({"queued", "purged"}),
    "missing": frozenset({"queued", "purged"}),
    "failed": frozenset({"queued", "purged"}),
    "cancelled": frozenset({"queued"}),
    "purged": frozenset(),
}

SESSION: Mapping[str, frozenset[str]] = {
    "initialized": frozenset({"signed", "aborted", "expired", "failed"}),
    "signed": frozenset(
        {"resuming", "uploading", "uploaded", "verifying", "aborted", "expired", "failed"}
    ),
    "resuming": frozenset({"uploading", "aborted", "expired", "failed"}),
    "uploading": frozenset({"uploaded", "verifying", "aborted", "expired", "failed"}),
    "uploaded": frozenset({"verifying"}),
    "verifying": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "aborted": frozenset(),
    "expired": frozenset(),
    "failed": frozenset(),
}

# Forward only, and any step forward: a provider's webhooks arrive late, twice or out of
# order (``ready`` before ``asset_created``), and a state is never moved back by one.
PROVIDER_ASSET: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"uploading", "processing", "ready", "errored", "deleted"}),
    "uploading": frozenset({"processing", "ready", "errored", "deleted"}),
    "processing": frozenset({"ready", "errored", "deleted"}),
    "ready": frozenset({"errored", "deleted"}),
    "errored": frozenset({"deleted"}),
    "deleted": frozenset(),
}

MACHINES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "asset": ASSET,
    "variant": VARIANT,
    "session": SESSION,
    "provider_asset": PROVIDER_ASSET,
}

#: Provider-asset states in the order they follow; ``errored`` and ``deleted`` end it.
PROVIDER_ASSET_ORDER = ("pending", "uploading", "processing", "ready")

TERMINAL_SESSION_STATES = frozenset({"completed", "aborted", "expired", "failed"})


def allowed(entity: str, from_state: str, to_state: str) -> bool:
    """Whether ``entity`` may move from ``from_state`` to ``to_state``."""
    return to_state in MACHINES[entity].get(from_state, frozenset())


def sources(entity: str, to_state: str) -> frozenset[str]:
    """Every state from which ``entity`` may move to ``to_state``."""
    return frozenset(s for s, nxt in MACHINES[entity].items() if to_state in nxt)
