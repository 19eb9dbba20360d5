"""The public telemetry contract: named events with fixed measurements and metadata.

An event is a name (``rindle.upload.complete.stop``) with two fixed sets of keys, listed in
``EVENTS`` and in docs/guides/telemetry.md:

* **measurements**, the numbers: durations in seconds (floats), byte counts, counts;
* **metadata**, what the numbers are about: ids, the profile, a strategy, an outcome.

A handler attached with ``attach`` is called as ``handler(name, measurements, metadata)``
with both dicts holding every key of the event (``None`` when unknown). The keys are fixed
so a dashboard or an alert written today keeps working: ``emit`` refuses a key the contract
does not list, and tests pin the contract and the guide's table.

Operations that take time are *spans*: ``<prefix>.start`` when they begin (measurement
``system_time``), then ``<prefix>.stop`` (``duration`` and what the operation measured) or
``<prefix>.exception`` (``duration``, metadata ``error``: an error code, never a message).
The three share their metadata keys; what is learnt on the way arrives with the stop.

Nothing secret is ever a value: no URL (signed or not), token, session URI, key or signed
query string. Delivery events say which *kind* of URL was signed, and provider calls name
their path template (``/video/v1/assets/{id}``), not the path.

``rindle.telemetry.otel`` turns the events into OpenTelemetry spans and metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ..logs import get_logger

log = get_logger("rindle.telemetry")

Handler = Callable[[str, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Event:
    """One event of the contract: its measurement keys, its metadata keys, when it fires."""

    measurements: tuple[str, ...]
    metadata: tuple[str, ...]
    doc: str
    keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        both = set(self.measurements) & set(self.metadata)
        if both:
            raise ValueError(f"keys {sorted(both)} are both measurement and metadata")
        object.__setattr__(self, "keys", frozenset(self.measurements + self.metadata))


def _span(prefix: str, metadata: tuple[str, ...], doc: str, *,
          measurements: tuple[str, ...] = ()) -> dict[str, Event]:
    """The three events of one timed operation (see the module docstring)."""
    return {
        f"{prefix}.start": Event(("system_time",), metadata, f"begins: {doc}"),
        f"{prefix}.stop": Event(("duration", *measurements), metadata, f"ends: {doc}"),
        f"{prefix}.exception": Event(("duration",), (*metadata, "error"),
                                     f"fails (error: its code): {doc}"),
    }


_UPLOAD = ("asset_id", "profile", "session_id", "strategy")
_CHANGE = ("from_state", "to_state", "reason")

EVENTS: dict[str, Event] = {
    # --- uploads: strategy is presigned_put, presigned_post, multipart, tus, resumable (GCS),
    # server (upload()) or direct_upload (to a streaming provider).
    **_span("rindle.upload.initiate", _UPLOAD,
            "an upload session is created and made ready for its bytes; bytes: the declared "
            "size", measurements=("bytes",)),
    "rindle.upload.sign": Event(
        ("duration", "ttl", "parts"), _UPLOAD,
        "where the bytes go was signed (a presigned PUT or POST, multipart part URLs, a GCS "
        "session URI, a provider's upload URL); ttl: seconds it is valid; parts: URLs signed"),
    "rindle.upload.receive": Event(
        ("duration", "bytes", "offset"), (*_UPLOAD, "outcome"),
        "Rindle's own routes took bytes of an upload (a tus PATCH, a Local PUT); offset: "
        "bytes held after it; outcome: ok, interrupted or an error code"),
    "rindle.upload.status": Event(
        ("duration", "offset", "bytes"), (*_UPLOAD, "state"),
        "a resumable upload was asked how far it got (tus HEAD, GCS status); offset: bytes "
        "held; bytes: the declared size"),
    **_span("rindle.upload.complete", _UPLOAD,
            "the bytes are checked where they landed and the upload becomes an asset; bytes: "
            "the verified size", measurements=("bytes",)),
    "rindle.upload.abort": Event(
        ("duration",), _UPLOAD, "an unfinished upload was aborted by its client"),
    "rindle.session.state_change": Event(
        (), ("asset_id", "profile", "session_id", *_CHANGE), "an upload session changed state"),
    # --- promotion and processing
    **_span("rindle.promotion", ("asset_id", "profile", "kind", "outcome"),
            "promotion: the original moves to its permanent key and is judged by its content; "
            "outcome: available, quarantined or skipped (nothing left to do)",
            measurements=("bytes",)),
    "rindle.quarantine": Event(
        (), ("asset_id", "profile", "reason", "from_state"),
        "an asset was quarantined; reason: why (e.g. mime_not_allowed, checksum_mismatch)"),
    "rindle.asset.state_change": Event(
        (), ("asset_id", "profile", *_CHANGE), "an asset changed state"),
    **_span("rindle.job", ("asset_id", "job", "attempt", "queue", "traceparent", "outcome"),
            "one attempt at an outbox job (job: its kind; queue: inline or the rq queue; "
            "traceparent: the W3C trace context it was queued in); outcome: done, or retry "
            "or failed on an exception"),
    **_span("rindle.variant.process", ("asset_id", "profile", "kind", "outcome"),
            "one processor builds variants of an asset (kind: image, video, audio); outcome: "
            "ready, partial or cancelled; variants: how many it was given, failed: how many "
            "failed; bytes: what it stored", measurements=("variants", "failed", "bytes")),
    "rindle.processing.progress": Event(
        ("percent", "eta"), ("asset_id", "profile", "kind"),
        "a processor reported progress (throttled like the live event: a few a second); "
        "eta: seconds left, estimated"),
    "rindle.variant.state_change": Event(
        (), ("asset_id", "profile", "variant", *_CHANGE), "a variant changed state"),
    "rindle.purge": Event(
        ("duration", "objects"), ("asset_id", "profile", "reason", "outcome"),
        "an asset's objects and rows were purged (outcome ok), or it was attached again "
        "(skipped); objects: storage keys removed"),
    # --- delivery
    "rindle.delivery.signed": Event(
        ("duration", "ttl"), ("asset_id", "profile", "url_kind", "variant", "mode"),
        "a delivery URL was made (never the URL): url_kind original, variant or streaming; "
        "variant: its name, or the playback kind when streaming; mode: signed or public; "
        "ttl: seconds a signed one is valid"),
    "rindle.streaming.request": Event(
        ("duration",), ("provider", "method", "path", "status", "attempt", "outcome"),
        "one call to a streaming provider's API; path: its template (/video/v1/assets/{id}); "
        "status: the HTTP status (none on a timeout); outcome: ok, retry or error"),
    "rindle.streaming.push": Event(
        ("duration",), ("asset_id", "profile", "provider", "source", "outcome"),
        "a streaming push handed the provider a source; outcome: ok, error (retried) or "
        "rejected"),
    "rindle.streaming.webhook": Event(
        ("duration", "bytes"), ("provider", "event_type", "outcome"),
        "a provider webhook arrived; outcome: applied, duplicate, stale, ignored, or the "
        "refusal's error code"),
    "rindle.provider_asset.state_change": Event(
        (), ("asset_id", "profile", "provider", *_CHANGE),
        "a streaming provider's asset changed state"),
    # --- live events
    "rindle.live.subscribe": Event(
        ("subscribers",), ("asset_id", "transport", "format", "outcome"),
        "a client subscribed to an asset's live events (transport sse or ws; outcome ok, "
        "or the refusal's error code); subscribers: open on this endpoint now"),
    "rindle.live.unsubscribe": Event(
        ("duration", "events", "subscribers"), ("asset_id", "transport"),
        "a subscription ended; duration: how long it was open; events: how many it sent"),
    "rindle.live.resync": Event(
        ("duration",), ("asset_id", "transport"),
        "a subscriber missed events (slow, or Redis reconnected) and got a fresh snapshot; "
        "duration: reading it"),
    # --- operations (rindle.ops and the CLI)
    "rindle.cleanup": Event(
        ("sessions_expired", "duration"), ("dry_run", "outcome"),
        "abandoned upload sessions were expired"),
    "rindle.reconcile": Event(
        ("assets_checked", "variants_checked", "missing_originals", "missing_variants",
         "orphans", "orphans_deleted", "duration"), ("profile", "dry_run", "outcome"),
        "rows and stored objects were compared"),
    "rindle.repair": Event(
        ("count",), ("asset_id", "profile", "action", "outcome"),
        "a repair ran (action: what it did; count: how many rows it touched)"),
    "rindle.doctor": Event(
        ("errors", "warnings", "duration"), ("outcome",), "the doctor checked the setup"),
    "rindle.runtime_status": Event(
        ("findings", "duration"), ("profile", "healthy"), "the runtime status was read"),
    "rindle.erasure": Event(
        ("owners", "slots", "assets_purged", "duration"), ("preview", "outcome"),
        "owners' media were erased (or previewed)"),
    "rindle.backfill": Event(
        ("assets", "changed", "duration"), ("profile", "outcome"),
        "asset metadata was backfilled"),
}

_handlers: list[tuple[str, Handler]] = []
_trace_sources: list[Callable[[], str | None]] = []


def attach(prefix: str, handler: Handler) -> Callable[[], None]:
    """Call ``handler(name, measurements, metadata)`` for every event whose name starts
    with ``prefix``.

    Returns a function that detaches the handler. Handlers run synchronously in the emitting
    task and must be quick; an exception in one is logged and never breaks Rindle.
    """
    entry = (prefix, handler)
    _handlers.append(entry)

    def detach() -> None:
        if entry in _handlers:
            _handlers.remove(entry)

    return detach


def emit(name: str, **fields: Any) -> None:
    """Send one event. The fields are split into measurements and metadata by the contract;
    a key it does not list is refused, so the contract can't drift one call site at a time."""
    event = EVENTS.get(name)
    if event is None:
        raise ValueError(f"unknown telemetry event {name!r}")
    unknown = fields.keys() - event.keys
    if unknown:
        raise ValueError(f"telemetry event {name!r} has no keys {sorted(unknown)}")
    for prefix, handler in list(_handlers):
        if name.startswith(prefix):
            try:
                # Each handler gets dicts of its own: one that edits them can't change what
                # the next one sees.
                handler(name, {k: fields.get(k) for k in event.measurements},
                        {k: fields.get(k) for k in event.metadata})
            except Exception:
                log.exception("telemetry handler failed for %s", name)


def error_code(error: BaseException) -> str:
    """What an ``.exception`` event says of an error: a Rindle error's stable code, else
    the exception's class name (never its message, which may quote anything)."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


class Span:
    """One timed operation, from ``span()``: a ``with`` block emitting its three events.

    ``set`` records what the stop event reports (ids learnt on the way, bytes) as it becomes
    known; ``fail`` makes the block end as ``.exception`` although nothing was raised (a
    job that used its last attempt, a processor whose every variant failed).
    """

    __slots__ = ("prefix", "_fields", "_stop", "_exception", "_started", "_error")

    def __init__(self, prefix: str, fields: dict[str, Any]) -> None:
        start = EVENTS.get(f"{prefix}.start")
        if start is None:
            raise ValueError(f"unknown telemetry span {prefix!r}")
        unknown = fields.keys() - start.keys
        if unknown:
            raise ValueError(f"telemetry span {prefix!r} has no start keys {sorted(unknown)}")
        self.prefix = prefix
        self._fields = fields
        self._stop = EVENTS[f"{prefix}.stop"].keys
        self._exception = EVENTS[f"{prefix}.exception"].keys
        self._started = 0.0
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"Span({self.prefix!r})"

    def set(self, **fields: Any) -> None:
        unknown = fields.keys() - self._stop
        if unknown:
            raise ValueError(f"telemetry span {self.prefix!r} has no keys {sorted(unknown)}")
        self._fields.update(fields)

    def fail(self, error: BaseException | str) -> None:
        self._error = error if isinstance(error, str) else error_code(error)

    def __enter__(self) -> Span:
        self._started = time.perf_counter()
        emit(f"{self.prefix}.start", system_time=time.time(), **self._fields)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        duration = time.perf_counter() - self._started
        if error is None and self._error is None:
            emit(f"{self.prefix}.stop", duration=duration, **self._fields)
            return
        if self._error is not None:
            code = self._error
        else:
            assert error is not None
            code = error_code(error)
        kept = {k: v for k, v in self._fields.items() if k in self._exception}
        emit(f"{self.prefix}.exception", duration=duration, error=code, **kept)


def span(prefix: str, **metadata: Any) -> Span:
    """``with telemetry.span("rindle.promotion", asset_id=...) as s:`` — the start event
    now, the stop or exception event when the block ends (an exception still propagates)."""
    return Span(prefix, metadata)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the span active here, when a tracing bridge
    (``rindle.telemetry.otel``) is instrumented; ``None`` otherwise.

    The outbox stores it with each job it writes, so the job's span continues the trace of
    the request that queued it, in whichever process the job runs.
    """
    for source in list(_trace_sources):
        try:
            found = source()
        except Exception:
            log.exception("a trace context source failed")
            continue
        if found:
            return found
    return None


__all__ = ["EVENTS", "Event", "Handler", "Span", "attach", "emit", "error_code", "span",
           "traceparent"]
