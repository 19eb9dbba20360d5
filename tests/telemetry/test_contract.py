"""The telemetry contract, frozen: every event name with its measurement and metadata keys.

``CONTRACT`` is a literal copy of ``rindle.telemetry.EVENTS``. Adding, renaming or dropping
an event or a key breaks dashboards and alerts that adopters wrote against it, so such a
change must be a deliberate edit of this file (and of docs/guides/telemetry.md, which
tests/docs/test_telemetry_guide.py holds to the same contract).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rindle import telemetry
from rindle.errors import UploadIncomplete

_UPLOAD = ("asset_id", "profile", "session_id", "strategy")

CONTRACT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rindle.upload.initiate.start": (("system_time",), _UPLOAD),
    "rindle.upload.initiate.stop": (("duration", "bytes"), _UPLOAD),
    "rindle.upload.initiate.exception": (("duration",), (*_UPLOAD, "error")),
    "rindle.upload.sign": (("duration", "ttl", "parts"), _UPLOAD),
    "rindle.upload.receive": (("duration", "bytes", "offset"), (*_UPLOAD, "outcome")),
    "rindle.upload.status": (("duration", "offset", "bytes"), (*_UPLOAD, "state")),
    "rindle.upload.complete.start": (("system_time",), _UPLOAD),
    "rindle.upload.complete.stop": (("duration", "bytes"), _UPLOAD),
    "rindle.upload.complete.exception": (("duration",), (*_UPLOAD, "error")),
    "rindle.upload.abort": (("duration",), _UPLOAD),
    "rindle.session.state_change": (
        (), ("asset_id", "profile", "session_id", "from_state", "to_state", "reason")),
    "rindle.promotion.start": (("system_time",), ("asset_id", "profile", "kind", "outcome")),
    "rindle.promotion.stop": (("duration", "bytes"), ("asset_id", "profile", "kind", "outcome")),
    "rindle.promotion.exception": (
        ("duration",), ("asset_id", "profile", "kind", "outcome", "error")),
    "rindle.quarantine": ((), ("asset_id", "profile", "reason", "from_state")),
    "rindle.asset.state_change": (
        (), ("asset_id", "profile", "from_state", "to_state", "reason")),
    "rindle.job.start": (
        ("system_time",), ("asset_id", "job", "attempt", "queue", "traceparent", "outcome")),
    "rindle.job.stop": (
        ("duration",), ("asset_id", "job", "attempt", "queue", "traceparent", "outcome")),
    "rindle.job.exception": (
        ("duration",),
        ("asset_id", "job", "attempt", "queue", "traceparent", "outcome", "error")),
    "rindle.variant.process.start": (
        ("system_time",), ("asset_id", "profile", "kind", "outcome")),
    "rindle.variant.process.stop": (
        ("duration", "variants", "failed", "bytes"), ("asset_id", "profile", "kind", "outcome")),
    "rindle.variant.process.exception": (
        ("duration",), ("asset_id", "profile", "kind", "outcome", "error")),
    "rindle.processing.progress": (("percent", "eta"), ("asset_id", "profile", "kind")),
    "rindle.variant.state_change": (
        (), ("asset_id", "profile", "variant", "from_state", "to_state", "reason")),
    "rindle.purge": (("duration", "objects"), ("asset_id", "profile", "reason", "outcome")),
    "rindle.delivery.signed": (
        ("duration", "ttl"), ("asset_id", "profile", "url_kind", "variant", "mode")),
    "rindle.streaming.request": (
        ("duration",), ("provider", "method", "path", "status", "attempt", "outcome")),
    "rindle.streaming.push": (
        ("duration",), ("asset_id", "profile", "provider", "source", "outcome")),
    "rindle.streaming.webhook": (("duration", "bytes"), ("provider", "event_type", "outcome")),
    "rindle.provider_asset.state_change": (
        (), ("asset_id", "profile", "provider", "from_state", "to_state", "reason")),
    "rindle.live.subscribe": (("subscribers",), ("asset_id", "transport", "format", "outcome")),
    "rindle.live.unsubscribe": (("duration", "events", "subscribers"), ("asset_id", "transport")),
    "rindle.live.resync": (("duration",), ("asset_id", "transport")),
    "rindle.cleanup": (("sessions_expired", "duration"), ("dry_run", "outcome")),
    "rindle.reconcile": (
        ("assets_checked", "variants_checked", "missing_originals", "missing_variants",
         "orphans", "orphans_deleted", "duration"), ("profile", "dry_run", "outcome")),
    "rindle.repair": (("count",), ("asset_id", "profile", "action", "outcome")),
    "rindle.doctor": (("errors", "warnings", "duration"), ("outcome",)),
    "rindle.runtime_status": (("findings", "duration"), ("profile", "healthy")),
    "rindle.erasure": (("owners", "slots", "assets_purged", "duration"), ("preview", "outcome")),
    "rindle.backfill": (("assets", "changed", "duration"), ("profile", "outcome")),
}


def test_the_contract_is_exactly_this() -> None:
    assert {name: (e.measurements, e.metadata) for name, e in telemetry.EVENTS.items()} \
        == CONTRACT


def test_every_event_has_a_doc_and_keys_in_one_place_only() -> None:
    for name, event in telemetry.EVENTS.items():
        assert event.doc, name
        assert not set(event.measurements) & set(event.metadata), name
        assert name.startswith("rindle."), name


Captured = list[tuple[str, dict[str, Any], dict[str, Any]]]


@pytest.fixture
def captured() -> Any:
    got: Captured = []
    detach = telemetry.attach("rindle.", lambda n, m, d: got.append((n, m, d)))
    yield got
    detach()


def test_emit_splits_fields_and_fills_every_key(captured: Captured) -> None:
    telemetry.emit("rindle.purge", asset_id="a1", duration=0.5)
    assert captured == [("rindle.purge", {"duration": 0.5, "objects": None},
                         {"asset_id": "a1", "profile": None, "reason": None,
                          "outcome": None})]


def test_emit_refuses_unknown_events_and_keys() -> None:
    with pytest.raises(ValueError, match="unknown telemetry event"):
        telemetry.emit("rindle.nope")
    with pytest.raises(ValueError, match="url"):
        telemetry.emit("rindle.delivery.signed", url="https://example.com/x?sig=1")


def test_a_failing_handler_is_logged_and_the_others_still_run(
        captured: Captured, caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str, measurements: dict[str, Any], metadata: dict[str, Any]) -> None:
        metadata["asset_id"] = "changed"
        raise RuntimeError("boom")

    detach = telemetry.attach("rindle.purge", broken)
    try:
        telemetry.emit("rindle.purge", asset_id="a1")
        telemetry.emit("rindle.purge", asset_id="a2")
    finally:
        detach()
    # Each handler has its own dicts: the broken one's edit reached nobody.
    assert [m["asset_id"] for _, _, m in captured] == ["a1", "a2"]
    assert "telemetry handler failed" in caplog.text


def test_a_span_emits_start_then_stop_with_what_was_set(captured: Captured) -> None:
    with telemetry.span("rindle.promotion", asset_id="a1", profile="p") as span:
        span.set(outcome="available", bytes=10)
    (n1, m1, d1), (n2, m2, d2) = captured
    assert (n1, d1) == ("rindle.promotion.start", {"asset_id": "a1", "profile": "p",
                                                   "kind": None, "outcome": None})
    assert isinstance(m1["system_time"], float)
    assert n2 == "rindle.promotion.stop" and m2["bytes"] == 10 and m2["duration"] >= 0
    assert d2 == {"asset_id": "a1", "profile": "p", "kind": None, "outcome": "available"}


def test_a_span_that_raises_emits_the_error_code_and_propagates(captured: Captured) -> None:
    with pytest.raises(UploadIncomplete):
        with telemetry.span("rindle.upload.complete", session_id="s1") as span:
            span.set(profile="p", bytes=5)
            raise UploadIncomplete("https://secret.example/x?token=1", code="size_mismatch")
    name, measurements, metadata = captured[-1]
    assert name == "rindle.upload.complete.exception"
    assert set(measurements) == {"duration"}
    # The code, never the message (which may quote anything).
    assert metadata["error"] == "size_mismatch" and metadata["profile"] == "p"
    assert "secret" not in repr(captured)


def test_a_span_may_fail_without_raising_and_names_plain_exceptions(
        captured: Captured) -> None:
    with telemetry.span("rindle.variant.process", asset_id="a1") as span:
        span.fail(KeyError("x"))
    assert captured[-1][0] == "rindle.variant.process.exception"
    assert captured[-1][2]["error"] == "KeyError"
    assert telemetry.error_code(asyncio.CancelledError()) == "cancelled"


def test_a_span_refuses_keys_of_no_event() -> None:
    with pytest.raises(ValueError):
        telemetry.span("rindle.promotion", url="x")
    with pytest.raises(ValueError):
        telemetry.span("rindle.purge")  # one event, not a span
    with telemetry.span("rindle.promotion") as span, pytest.raises(ValueError):
        span.set(token="x")


def test_no_trace_context_without_a_bridge() -> None:
    assert telemetry.traceparent() is None
