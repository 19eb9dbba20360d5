"""Live event names, channel names and payload shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..model.records import Change

STATE_CHANGE = "state_change"
VARIANT_READY = "variant_ready"
VARIANT_FAILED = "variant_failed"
PROCESSING_PROGRESS = "processing_progress"
#: The streaming provider has the asset ready to play, or gave up on it.
STREAM_READY = "stream_ready"
STREAM_FAILED = "stream_failed"
NAMES = (STATE_CHANGE, VARIANT_READY, VARIANT_FAILED, PROCESSING_PROGRESS, STREAM_READY,
         STREAM_FAILED)


def channel(kind: str, ident: str) -> str:
    """The broadcaster channel of one subject, e.g. ``rindle:asset:<id>``."""
    if kind != "asset":
        raise ValueError(f"unknown live subject {kind!r}: only 'asset' channels exist")
    return f"rindle:{kind}:{ident}"


@dataclass(frozen=True)
class LiveEvent:
    """One event as subscribers see it: a name and a JSON-able payload."""

    name: str
    data: dict[str, Any]

    def encode(self) -> str:
        return json.dumps({"event": self.name, "data": self.data}, separators=(",", ":"))

    @classmethod
    def decode(cls, message: str) -> LiveEvent:
        body = json.loads(message)
        return cls(name=body["event"], data=body["data"])


def from_change(change: Change) -> list[LiveEvent]:
    """The live events a committed state change produces."""
    data: dict[str, Any] = {
        "entity": change.entity,
        "id": change.entity_id,
        "asset_id": change.asset_id,
        "from": change.from_state,
        "to": change.to_state,
        "at": change.at.isoformat(),
    }
    if change.name:
        data["variant"] = change.name
    if change.reason:
        data["reason"] = change.reason
    events = [LiveEvent(STATE_CHANGE, data)]
    if change.entity == "variant" and change.to_state == "ready":
        events.append(LiveEvent(VARIANT_READY, {"asset_id": change.asset_id,
                                                "variant": change.name}))
    elif change.entity == "provider_asset" and change.to_state in ("ready", "errored"):
        events.append(LiveEvent(STREAM_READY if change.to_state == "ready" else STREAM_FAILED,
                                {"asset_id": change.asset_id, "reason": change.reason}))
    elif change.entity == "variant" and change.to_state == "failed":
        events.append(LiveEvent(VARIANT_FAILED, {"asset_id": change.asset_id,
                                                 "variant": change.name,
                                                 "reason": change.reason}))
    return events
