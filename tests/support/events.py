"""Telemetry events captured during a test, and a check that none of them holds a secret."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from rindle import telemetry

Captured = list[tuple[str, dict[str, Any], dict[str, Any]]]


@contextlib.contextmanager
def captured(prefix: str = "rindle.") -> Iterator[Captured]:
    """Every event emitted inside the block, as ``(name, measurements, metadata)``."""
    events: Captured = []
    detach = telemetry.attach(prefix, lambda n, m, d: events.append((n, m, d)))
    try:
        yield events
    finally:
        detach()


def named(events: Captured, name: str, **where: Any) -> list[tuple[dict[str, Any],
                                                                   dict[str, Any]]]:
    """The ``(measurements, metadata)`` of the events called ``name`` matching ``where``."""
    return [(m, d) for n, m, d in events
            if n == name and all(d.get(k) == v for k, v in where.items())]


def assert_no_secret(events: Captured, secrets: Iterable[str]) -> None:
    """No event holds any of ``secrets``, nor anything shaped like a URL or a signature."""
    secrets = [s for s in secrets if s]
    for event in events:
        text = repr(event)
        assert not [s for s in secrets if s in text], event
        for value in (*event[1].values(), *event[2].values()):
            if isinstance(value, str):
                assert "://" not in value and "?" not in value, (event, value)
                assert "X-Amz-" not in value and "Signature" not in value, (event, value)
