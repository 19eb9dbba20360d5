"""OpenTelemetry for the tests: spans kept in memory, or written as JSON lines to a file.

A worker process started by a test can't hand its spans back in memory: with
``RINDLE_TEST_OTEL_SPANS=<path>`` in its environment, tests/support/rq_app.py instruments
its runtime to append each finished span to that file (one ``O_APPEND`` write per span, so a
forked work horse may write beside its parent), and the test reads them from there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from rindle.telemetry import otel


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """The parts of a span the tests compare, the same for both kinds of exporter."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "pid": os.getpid(),
    }


class JsonLinesExporter(SpanExporter):
    """Appends each span to a file as one JSON line."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            line = (json.dumps(span_record(span), default=str) + "\n").encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def read_spans(path: str | Path) -> list[dict[str, Any]]:
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def instrument_to_file(media: Any, path: str | Path) -> Callable[[], None]:
    """Instrument ``media`` with a tracer provider of its own that writes to ``path``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
    return otel.instrument(media, tracer_provider=provider)
