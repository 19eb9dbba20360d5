"""docs/guides/telemetry.md lists exactly the events and keys of ``rindle.telemetry.EVENTS``."""

from __future__ import annotations

import re
from pathlib import Path

from rindle.telemetry import EVENTS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "telemetry.md"


def test_the_guide_table_is_the_contract() -> None:
    rows = re.findall(r"^\| `(rindle\.[a-z_.]+)` \| ([^|]+) \|", GUIDE.read_text(), re.M)
    documented = {name: tuple(k.strip() for k in re.sub(r"\([^)]*\)", "", keys).split(","))
                  for name, keys in rows}
    assert documented == EVENTS
