"""The state machines match DESIGN.md exactly (with the extensions states.py explains)."""

from __future__ import annotations

import itertools

import pytest

from rindle.model import states

EXPECTED = {
    "asset": """staged>validating staged>transcoding validating>analyzing analyzing>promoting
        analyzing>quarantined
        promoting>available available>processing available>transcoding available>quarantined
        processing>ready processing>degraded processing>quarantined transcoding>ready
        transcoding>degraded transcoding>quarantined ready>degraded ready>deleted
        degraded>ready degraded>quarantined degraded>deleted quarantined>deleted""",
    "variant": """planned>queued planned>cancelled queued>processing queued>cancelled
        processing>ready processing>failed processing>cancelled ready>stale ready>missing
        ready>purged stale>queued missing>queued failed>queued cancelled>queued stale>purged
        missing>purged failed>purged""",
    "session": """initialized>signed initialized>aborted initialized>expired initialized>failed
        signed>resuming signed>uploading signed>uploaded signed>verifying signed>aborted
        signed>expired signed>failed resuming>uploading resuming>aborted resuming>expired
        resuming>failed uploading>uploaded uploading>verifying uploading>aborted
        uploading>expired uploading>failed uploaded>verifying verifying>completed
        verifying>failed""",
    "provider_asset": """pending>uploading uploading>processing processing>ready
        pending>processing pending>ready uploading>ready
        pending>errored uploading>errored processing>errored ready>errored pending>deleted
        uploading>deleted processing>deleted ready>deleted errored>deleted""",
}


@pytest.mark.parametrize("entity", sorted(EXPECTED))
def test_every_pair_is_allowed_exactly_when_designed(entity: str) -> None:
    allowed = {tuple(p.split(">")) for p in EXPECTED[entity].split()}
    machine = states.MACHINES[entity]
    for a, b in itertools.product(machine, machine):
        assert states.allowed(entity, a, b) == ((a, b) in allowed), (entity, a, b)


def test_terminal_session_states_have_no_exit() -> None:
    for s in states.TERMINAL_SESSION_STATES:
        assert states.SESSION[s] == frozenset()


def test_sources() -> None:
    assert states.sources("asset", "deleted") == {"ready", "degraded", "quarantined"}
