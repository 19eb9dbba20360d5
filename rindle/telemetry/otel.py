"""The OpenTelemetry bridge: Rindle's telemetry events as spans and metrics (``rindle[otel]``).

::

    from rindle.telemetry import otel

    uninstrument = otel.instrument(media)   # the global providers, or pass your own

What it makes of the contract (docs/guides/telemetry.md lists every name):

* every span family (``<prefix>.start`` / ``.stop`` / ``.exception``) is a span named
  ``<prefix>``, current while it runs, so what happens inside nests under it; an exception
  sets the status to error with the error code (``error.type``);
* every other event with a ``duration`` is a span ending when it arrives and beginning
  ``duration`` seconds earlier (a signed delivery URL, one call to the streaming provider);
* the rest (state changes, quarantine, progress) are span events of the current span;
* a job's span is the child of the span that queued it: the outbox stores its W3C
  ``traceparent`` (``rindle.telemetry.traceparent``), so the trace goes on in an rq worker
  of another process or machine;
* metrics: a counter per event (per finished operation for a family), a ``.duration``
  histogram (seconds) and a ``.bytes`` histogram where the event measures them, and two
  observable gauges read from the database: ``rindle.outbox.depth`` (entries pending and
  dispatched) and ``rindle.assets`` (assets by state).

Attributes are the metadata, prefixed ``rindle.`` (``rindle.profile``); metric attributes
leave out the per-item ids (``asset_id``, ``session_id``, ``traceparent``), which would make
a series per asset. Instrument once per process: the events are the process's, not one
runtime's.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.metadata
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Protocol

from ..logs import get_logger
from . import EVENTS, _trace_sources, attach

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the install
    raise RuntimeError("the OpenTelemetry bridge needs the 'otel' extra: pip install "
                       "'rindle[otel]'") from exc

if TYPE_CHECKING:
    from ..model.repo import Repo

log = get_logger("rindle.telemetry.otel")

#: Metadata naming one item: fine on a span, a series per asset on a metric.
PER_ITEM = frozenset({"asset_id", "session_id", "traceparent"})
_KINDS = {"rindle.job": SpanKind.CONSUMER, "rindle.streaming.request": SpanKind.CLIENT,
          "rindle.streaming.webhook": SpanKind.SERVER}
#: Outcomes of a one-event span that make its status an error.
_FAILED = frozenset({"error", "rejected", "retry"})
#: Seconds: from a signed URL (milliseconds) to a transcode (minutes).
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0)
_BYTES = tuple(float(1024 * 4 ** n) for n in range(12))  # 1 KiB .. 4 GiB
_FAMILY_ENDS = (".start", ".stop", ".exception")
#: The outbox states that are work still to do: what ``rindle.outbox.depth`` counts.
_WAITING = ("pending", "dispatched")


#: An open span: its family, the span, and the token that makes it current no more.
_Open = tuple[str, "trace.Span", "contextvars.Token[Context]"]


class Instrumented(Protocol):
    """What the bridge reads of the runtime: the repository, for the two gauges."""

    @property
    def repo(self) -> Repo: ...


def _families() -> set[str]:
    return {name[:-len(".start")] for name in EVENTS if name.endswith(".start")}


def _value(value: Any) -> str | bool | int | float:
    return value if isinstance(value, (str, bool, int, float)) else str(value)


def _attributes(metadata: Mapping[str, Any], *, per_item: bool) -> dict[str, Any]:
    # A job's traceparent is its span's parent already; as an attribute it says nothing.
    return {f"rindle.{k}": _value(v) for k, v in metadata.items()
            if v is not None and k != "traceparent" and (per_item or k not in PER_ITEM)}


class _Sampler:
    """The gauges' counts, read from the database on the runtime's own event loop.

    Metric readers call the gauges from their own thread (a periodic exporter) or from
    wherever a test collects; the database connections belong to the runtime's loop. So a
    read from another thread is handed to that loop and waited for (briefly); a read from
    inside the loop itself, which must not block it, answers with the last counts and
    refreshes them in the background. One read serves both gauges for ``max_age`` seconds.
    """

    def __init__(self, media: Instrumented, *, max_age: float = 1.0,
                 timeout: float = 2.0) -> None:
        self.media = media
        self.max_age = max_age
        self.timeout = timeout
        self.counts: dict[str, dict[str, int]] = {}
        self._read_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None

    def read(self) -> dict[str, dict[str, int]]:
        if time.monotonic() - self._read_at < self.max_age:
            return self.counts
        # Rindle keeps the loop it is connected in (None when it is not connected).
        loop: asyncio.AbstractEventLoop | None = getattr(self.media, "_loop", None)
        if loop is None or loop.is_closed() or not loop.is_running():
            return self.counts
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            if self._refreshing is None or self._refreshing.done():
                # A context of its own: not inside the transaction of whoever collected.
                self._refreshing = loop.create_task(self._refresh(),
                                                    context=contextvars.Context())
            return self.counts
        future = asyncio.run_coroutine_threadsafe(self._refresh(), loop)
        try:
            future.result(self.timeout)
        except FutureTimeout:
            future.cancel()
            log.warning("the gauges' database read took over %ss; reporting the last counts",
                        self.timeout)
        except Exception:
            log.exception("the gauges' database read failed; reporting the last counts")
        return self.counts

    async def _refresh(self) -> None:
        repo = self.media.repo
        self.counts = {"outbox": await repo.count_by_state("outbox"),
                       "asset": await repo.count_by_state("asset")}
        self._read_at = time.monotonic()


class _Bridge:
    """The handler attached to every ``rindle.`` event (see the module docstring)."""

    def __init__(self, tracer_provider: Any, meter_provider: Any,
                 media: Instrumented) -> None:
        try:
            version: str | None = importlib.metadata.version("rindle")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree
            version = None
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer("rindle", version)
        meter = meter_provider.get_meter("rindle", version)
        self.propagator = TraceContextTextMapPropagator()
        self.families = _families()
        self.active = True
        self.pid = os.getpid()
        # The spans this context opened and has not ended, innermost last. A task started
        # inside one gets a copy of the tuple, never the parent's list to pop from.
        self._open: contextvars.ContextVar[tuple[_Open, ...]] = contextvars.ContextVar(
            f"rindle_otel_{id(self)}", default=())
        self.counters: dict[str, Any] = {}
        self.durations: dict[str, Any] = {}
        self.sizes: dict[str, Any] = {}
        for name, event in EVENTS.items():
            if name.endswith(_FAMILY_ENDS) and name.rsplit(".", 1)[0] in self.families:
                if not name.endswith(".stop"):
                    continue
                name = name[:-len(".stop")]
            self.counters[name] = meter.create_counter(name, unit="1", description=event.doc)
            if "duration" in event.measurements:
                self.durations[name] = meter.create_histogram(
                    f"{name}.duration", unit="s", description=f"duration: {event.doc}",
                    explicit_bucket_boundaries_advisory=_SECONDS)
            if "bytes" in event.measurements:
                self.sizes[name] = meter.create_histogram(
                    f"{name}.bytes", unit="By", description=f"bytes: {event.doc}",
                    explicit_bucket_boundaries_advisory=_BYTES)
        self.sampler = _Sampler(media)
        meter.create_observable_gauge(
            "rindle.outbox.depth", callbacks=[self._outbox], unit="{entry}",
            description="outbox entries still to run: pending (not yet handed to the "
                        "queue) and dispatched (handed over, not finished)")
        meter.create_observable_gauge(
            "rindle.assets", callbacks=[self._assets], unit="{asset}",
            description="assets by state")

    # --- the handler -------------------------------------------------------------------

    def __call__(self, name: str, measurements: dict[str, Any],
                 metadata: dict[str, Any]) -> None:
        if not self.active:
            return
        prefix, _, end = name.rpartition(".")
        if prefix in self.families and f".{end}" in _FAMILY_ENDS:
            if end == "start":
                self._start(prefix, metadata)
            else:
                self._end(prefix, end == "exception", measurements, metadata)
                self._record(prefix, measurements, metadata,
                             error=metadata.get("error") if end == "exception" else None)
            return
        duration = measurements.get("duration")
        if isinstance(duration, (int, float)):
            self._one_off(name, float(duration), measurements, metadata)
        else:
            current = trace.get_current_span()
            if current.is_recording():
                current.add_event(name, {**_attributes(metadata, per_item=True),
                                         **_attributes(measurements, per_item=True)})
        self._record(name, measurements, metadata)

    def _start(self, prefix: str, metadata: dict[str, Any]) -> None:
        parent = None
        if metadata.get("traceparent"):
            # A job: continue the trace of whoever queued it, wherever that was.
            parent = self.propagator.extract({"traceparent": metadata["traceparent"]})
        span = self.tracer.start_span(prefix, context=parent,
                                      kind=_KINDS.get(prefix, SpanKind.INTERNAL),
                                      attributes=_attributes(metadata, per_item=True))
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._open.set((*self._open.get(), (prefix, span, token)))

    def _end(self, prefix: str, failed: bool, measurements: dict[str, Any],
             metadata: dict[str, Any]) -> None:
        stack = self._open.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == prefix:
                break
        else:
            return  # started before the bridge was instrumented
        _, span, token = stack[i]
        self._open.set(stack[:i] + stack[i + 1:])
        span.set_attributes(_attributes(metadata, per_item=True))
        span.set_attributes(_attributes(measurements, per_item=True))
        if failed:
            error = str(metadata.get("error") or "error")
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
        otel_context.detach(token)
        if prefix == "rindle.job" and os.getpid() != self.pid:
            self._flush()

    def _one_off(self, name: str, duration: float, measurements: dict[str, Any],
                 metadata: dict[str, Any]) -> None:
        end = time.time_ns()
        span = self.tracer.start_span(
            name, kind=_KINDS.get(name, SpanKind.INTERNAL), start_time=end - int(duration * 1e9),
            attributes={**_attributes(metadata, per_item=True),
                        **_attributes(measurements, per_item=True)})
        if metadata.get("outcome") in _FAILED:
            span.set_status(Status(StatusCode.ERROR, str(metadata["outcome"])))
        span.end(end_time=end)

    def _record(self, name: str, measurements: dict[str, Any], metadata: dict[str, Any], *,
                error: str | None = None) -> None:
        attributes = _attributes(metadata, per_item=False)
        attributes.pop("rindle.error", None)
        if error is not None:
            attributes["error.type"] = error
        counter = self.counters.get(name)
        if counter is not None:
            counter.add(1, attributes)
        duration = measurements.get("duration")
        if name in self.durations and isinstance(duration, (int, float)):
            self.durations[name].record(duration, attributes)
        size = measurements.get("bytes")
        if name in self.sizes and isinstance(size, (int, float)):
            self.sizes[name].record(size, attributes)

    def _flush(self) -> None:
        """A forked rq work horse leaves with ``os._exit`` once its job is done, which no
        exporter's exit hook survives: what the job recorded is sent now."""
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                try:
                    flush()
                except Exception:
                    log.exception("flushing telemetry at the end of a forked job failed")

    # --- trace context and gauges --------------------------------------------------------

    def traceparent(self) -> str | None:
        if not self.active or not trace.get_current_span().get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier)
        return carrier.get("traceparent")

    def _outbox(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe("outbox")

    def _assets(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe("asset")

    def _observe(self, entity: str) -> list[Observation]:
        if not self.active:
            return []
        counts = self.sampler.read().get(entity, {})
        if entity == "outbox":
            # Done and failed entries are kept for good: history, not queue depth.
            counts = {state: counts.get(state, 0) for state in _WAITING}
        return [Observation(n, {"rindle.state": state}) for state, n in sorted(counts.items())]


def instrument(media: Instrumented, *, tracer_provider: Any = None,
               meter_provider: Any = None) -> Callable[[], None]:
    """Turn Rindle's telemetry into OpenTelemetry spans and metrics (see the module
    docstring); returns the function that undoes it.

    ``tracer_provider`` / ``meter_provider``: where spans and metrics go (the global ones,
    as the OpenTelemetry SDK or ``opentelemetry-instrument`` set them up, by default).
    ``media`` is read for the gauges (outbox depth, assets by state).
    """
    bridge = _Bridge(tracer_provider or trace.get_tracer_provider(),
                     meter_provider or metrics.get_meter_provider(), media)
    detach = attach("rindle.", bridge)
    _trace_sources.append(bridge.traceparent)

    def uninstrument() -> None:
        # An instrument can't be removed from a meter: the gauges report nothing instead.
        bridge.active = False
        detach()
        if bridge.traceparent in _trace_sources:
            _trace_sources.remove(bridge.traceparent)

    return uninstrument


__all__ = ["PER_ITEM", "Instrumented", "instrument"]
