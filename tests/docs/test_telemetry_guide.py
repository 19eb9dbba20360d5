"""docs/guides/telemetry.md lists exactly the events of ``rindle.telemetry.EVENTS``, each with
its measurement and metadata keys: a change to the contract fails here until the guide says
it too."""

from __future__ import annotations

import re
from pathlib import Path

from rindle.telemetry import EVENTS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "telemetry.md"
ROW = re.compile(r"^\| `(rindle\.[a-z_.]+)` \| ([^|]+) \| ([^|]+) \| [^|]+ \|$", re.M)


def _keys(cell: str) -> tuple[str, ...]:
    cell = cell.strip()
    return () if cell == "—" else tuple(k.strip() for k in cell.split(","))


def _events_section() -> str:
    text = GUIDE.read_text()
    start = text.index("## The events")
    return text[start:text.index("\n## ", start + 1)]


def test_the_guide_table_is_the_contract() -> None:
    rows = ROW.findall(_events_section())
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "an event is listed twice"
    documented = {name: (_keys(measurements), _keys(metadata))
                  for name, measurements, metadata in rows}
    assert documented == {name: (e.measurements, e.metadata) for name, e in EVENTS.items()}


def test_the_guide_names_every_otel_span_family() -> None:
    text = GUIDE.read_text()
    families = {name[:-len(".start")] for name in EVENTS if name.endswith(".start")}
    for family in families:
        assert f"| `{family}` |" in text, f"the OTel span table lacks {family}"
    for gauge in ("rindle.outbox.depth", "rindle.assets"):
        assert f"`{gauge}`" in text
