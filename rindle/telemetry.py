"""The public telemetry contract: named events with fixed metadata, for handlers and OpenTelemetry.

Events (``name`` -> metadata keys, all always present, ``None`` when unknown):

* ``rindle.asset.state_change``    asset_id, profile, from_state, to_state, reason
* ``rindle.variant.state_change``  asset_id, profile, variant, from_state, to_state, reason
* ``rindle.session.state_change``  asset_id, profile, session_id, from_state, to_state, reason
* ``rindle.upload.initiate``       asset_id, profile, session_id, strategy, outcome
* ``rindle.upload.complete``       asset_id, profile, session_id, outcome, duration
* ``rindle.job``                   asset_id, profile, job, outcome, attempt, duration
* ``rindle.purge``                 asset_id, profile, reason, outcome

``duration`` is in seconds (float); ``outcome`` is ``ok``, ``error`` or ``rejected``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .logs import get_logger

log = get_logger("rindle.telemetry")

Handler = Callable[[str, dict[str, Any]], None]

EVENTS: dict[str, tuple[str, ...]] = {
    "rindle.asset.state_change": ("asset_id", "profile", "from_state", "to_state", "reason"),
    "rindle.variant.state_change": ("asset_id", "profile", "variant", "from_state", "to_state",
                                    "reason"),
    "rindle.session.state_change": ("asset_id", "profile", "session_id", "from_state",
                                    "to_state", "reason"),
    "rindle.upload.initiate": ("asset_id", "profile", "session_id", "strategy", "outcome"),
    "rindle.upload.complete": ("asset_id", "profile", "session_id", "outcome", "duration"),
    "rindle.job": ("asset_id", "profile", "job", "outcome", "attempt", "duration"),
    "rindle.purge": ("asset_id", "profile", "reason", "outcome"),
    "rindle.provider_asset.state_change": ("asset_id", "profile", "provider", "from_state",
                                           "to_state", "reason"),
    "rindle.streaming.push": ("asset_id", "profile", "provider", "source", "outcome"),
    "rindle.streaming.webhook": ("provider", "event_type", "outcome"),
}

_handlers: list[tuple[str, Handler]] = []


def attach(prefix: str, handler: Handler) -> Callable[[], None]:
    """Call ``handler(name, metadata)`` for every event whose name starts with ``prefix``.

    Returns a function that detaches the handler. Handlers run synchronously in the emitting
    task and must be quick; an exception in one is logged and never breaks Rindle.
    """
    entry = (prefix, handler)
    _handlers.append(entry)

    def detach() -> None:
        if entry in _handlers:
            _handlers.remove(entry)

    return detach


def emit(name: str, **metadata: Any) -> None:
    """Send one event; keys outside the documented set are refused to keep the contract fixed."""
    keys = EVENTS.get(name)
    if keys is None:
        raise ValueError(f"unknown telemetry event {name!r}")
    unknown = set(metadata) - set(keys)
    if unknown:
        raise ValueError(f"telemetry event {name!r} has no keys {sorted(unknown)}")
    full = {k: metadata.get(k) for k in keys}
    for prefix, handler in list(_handlers):
        if name.startswith(prefix):
            try:
                handler(name, full)
            except Exception:
                log.exception("telemetry handler failed for %s", name)
