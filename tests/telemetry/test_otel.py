"""The OpenTelemetry bridge with the SDK's in-memory exporters: the span tree of one upload
to ready on the inline queue and across a real rq worker process, the metrics, and how
one-event spans and failures look."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rindle import AllowAll, Rindle, telemetry
from rindle.telemetry import otel
from tests.conftest import LiveServer, MakeMedia
from tests.support.flow import Flow, Photos, app_for, upload_to_ready
from tests.support.images import png
from tests.support.otel import read_spans, span_record


class Exported:
    """A tracer and a meter provider whose spans and metrics a test can read."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[dict[str, Any]]:
        return [span_record(s) for s in self.spans.get_finished_spans()]

    async def metrics(self) -> dict[str, list[Any]]:
        """Every data point by metric name, collected from another thread, as a periodic
        reader would (the gauges then wait for the runtime's loop)."""
        data = await asyncio.to_thread(self.reader.get_metrics_data)
        points: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points.setdefault(metric.name, []).extend(metric.data.data_points)
        return points


@pytest.fixture
def exported() -> Iterator[Exported]:
    yield Exported()


def instrument(media: Any, exported: Exported) -> Any:
    return otel.instrument(media, tracer_provider=exported.tracer_provider,
                           meter_provider=exported.meter_provider)


def one(spans: list[dict[str, Any]], name: str, **attributes: Any) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name and all(
        s["attributes"].get(f"rindle.{k}") == v for k, v in attributes.items())]
    assert len(found) == 1, (name, attributes, [s["name"] for s in spans])
    return found[0]


def assert_child(child: dict[str, Any], parent: dict[str, Any]) -> None:
    assert child["trace_id"] == parent["trace_id"], (child["name"], parent["name"])
    assert child["parent_id"] == parent["span_id"], (child["name"], parent["name"])


async def test_one_upload_to_ready_is_one_trace_on_the_inline_queue(
        make_media: MakeMedia, exported: Exported) -> None:
    media = make_media(profiles=[Photos], authorizer=AllowAll())
    uninstrument = instrument(media, exported)
    try:
        flow = Flow()
        async with LiveServer(app_for(media)) as srv, \
                httpx.AsyncClient(base_url=srv.url) as client:
            await upload_to_ready(media, client, flow)
            await media.url("photos", flow.asset_id)
            points = await exported.metrics()
            entries = await media.repo.list_outbox()
    finally:
        uninstrument()
    spans = [s for s in exported.finished()
             if s["attributes"].get("rindle.asset_id") in (flow.asset_id, None)]
    initiate = one(spans, "rindle.upload.initiate")
    complete = one(spans, "rindle.upload.complete")
    assert initiate["attributes"]["rindle.strategy"] == "presigned_put"
    assert complete["attributes"]["rindle.session_id"] == flow.session_id
    assert complete["attributes"]["rindle.bytes"] > 0
    promote_job = one(spans, "rindle.job", job="promote_asset")
    promotion = one(spans, "rindle.promotion")
    variants_job = one(spans, "rindle.job", job="process_variants")
    process = one(spans, "rindle.variant.process")
    # The request that completed the upload is the root of everything after it.
    assert complete["parent_id"] is None
    assert_child(promote_job, complete)
    assert_child(promotion, promote_job)
    assert_child(variants_job, promotion)
    assert_child(process, variants_job)
    assert promote_job["kind"] == "CONSUMER"
    assert process["attributes"]["rindle.variants"] == 2
    assert process["attributes"]["rindle.outcome"] == "ready"
    assert all(s["status"] != "ERROR" for s in spans)
    signed = [s for s in spans if s["name"] == "rindle.delivery.signed"]
    assert signed and all(s["attributes"]["rindle.url_kind"] == "original" for s in signed)
    # State changes are events of the span they happened in.
    [promotion_span] = [s for s in exported.spans.get_finished_spans()
                        if s.name == "rindle.promotion"
                        and (s.attributes or {}).get("rindle.asset_id") == flow.asset_id]
    assert "rindle.asset.state_change" in {e.name for e in promotion_span.events}

    # The outbox kept the trace context each job continued.
    jobs = {e.kind: e.payload.get("traceparent") for e in entries if e.payload.get(
        "asset_id") == flow.asset_id}
    assert jobs["promote_asset"].split("-")[1:3] == [complete["trace_id"], complete["span_id"]]
    assert jobs["process_variants"].split("-")[2] == promotion["span_id"]

    completed = points["rindle.upload.complete"]
    assert sum(p.value for p in completed) == 1
    assert all("rindle.asset_id" not in p.attributes and "rindle.session_id" not in p.attributes
               for p in completed)
    assert sum(p.count for p in points["rindle.upload.complete.duration"]) == 1
    assert sum(p.count for p in points["rindle.variant.process.bytes"]) == 1
    jobs_done = {p.attributes["rindle.job"]: p.value for p in points["rindle.job"]}
    assert jobs_done["promote_asset"] == 1 and jobs_done["process_variants"] == 1
    assets = {p.attributes["rindle.state"]: p.value for p in points["rindle.assets"]}
    assert assets["ready"] == 1
    depth = {p.attributes["rindle.state"]: p.value for p in points["rindle.outbox.depth"]}
    # The staging purge waits for the upload URL to expire; the jobs before it are done.
    assert depth == {"pending": 1, "dispatched": 0}
    assert telemetry.traceparent() is None  # uninstrumented


def test_one_event_spans_failures_and_span_events(exported: Exported) -> None:
    """Events with a duration end when they arrive and begin ``duration`` earlier; a family
    that fails has status error with its code; the rest become events of the current span."""

    class NoRuntime:
        repo: Any = None

    uninstrument = instrument(NoRuntime(), exported)
    try:
        with pytest.raises(KeyError):
            with telemetry.span("rindle.promotion", asset_id="a1", profile="p"):
                telemetry.emit("rindle.quarantine", asset_id="a1", reason="mime_not_allowed")
                telemetry.emit("rindle.streaming.request", provider="mux", method="POST",
                               path="/video/v1/assets", status=503, attempt=1,
                               outcome="retry", duration=0.25)
                raise KeyError("x")
    finally:
        uninstrument()
    spans = {s.name: s for s in exported.spans.get_finished_spans()}
    request = spans["rindle.streaming.request"]
    assert request.end_time is not None and request.start_time is not None
    assert abs((request.end_time - request.start_time) / 1e9 - 0.25) < 0.01
    assert request.kind.name == "CLIENT" and request.status.status_code.name == "ERROR"
    promotion = spans["rindle.promotion"]
    assert request.parent is not None
    assert request.parent.span_id == promotion.get_span_context().span_id
    assert promotion.status.status_code.name == "ERROR"
    assert promotion.status.description == "KeyError"
    assert (promotion.attributes or {})["error.type"] == "KeyError"
    [event] = promotion.events
    assert event.name == "rindle.quarantine"
    assert (event.attributes or {})["rindle.reason"] == "mime_not_allowed"
    # After uninstrument nothing more is recorded.
    telemetry.emit("rindle.purge", asset_id="a1", duration=0.1)
    assert "rindle.purge" not in {s.name for s in exported.spans.get_finished_spans()}


def _worker(env: dict[str, str], log: Path, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rindle.cli", "worker", "--app", "tests.support.rq_app:media",
         *options],
        env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2], start_new_session=True,
    )


@pytest.mark.parametrize("options", [(), ("--fork",)], ids=["in-process", "fork"])
async def test_a_job_in_an_rq_worker_continues_the_request_trace(
        rq_env: dict[str, str], tmp_path: Path, exported: Exported,
        options: tuple[str, ...]) -> None:
    from tests.support import rq_app

    worker_spans = tmp_path / "worker-spans.jsonl"
    worker = _worker({**rq_env, "RINDLE_TEST_OTEL_SPANS": str(worker_spans)},
                     tmp_path / "worker.log", *options)
    media: Rindle = rq_app.build()
    uninstrument = instrument(media, exported)
    data = png(20, 20)
    try:
        async with LiveServer(app_for(media)) as srv, \
                httpx.AsyncClient(base_url=srv.url) as client:
            created = (await client.post("/rindle/uploads", json={
                "profile": "image", "filename": "a.png", "content_type": "image/png",
                "byte_size": len(data)})).json()
            up = created["upload"]
            assert (await client.put(up["url"], content=data,
                                     headers=up["headers"])).status_code == 200
            done = await client.post(f"/rindle/uploads/{created['session_id']}/complete")
            assert done.status_code == 200
            async with asyncio.timeout(30):
                while not any(s["name"] == "rindle.variant.process"
                              for s in read_spans(worker_spans)):
                    await asyncio.sleep(0.1)
    finally:
        uninstrument()
        worker.terminate()
        worker.wait(10)
    mine = exported.finished()
    theirs = [s for s in read_spans(worker_spans)
              if s["attributes"].get("rindle.asset_id") == created["asset_id"]]
    complete = one(mine, "rindle.upload.complete")
    promote_job = one(theirs, "rindle.job", job="promote_asset")
    promotion = one(theirs, "rindle.promotion")
    variants_job = one(theirs, "rindle.job", job="process_variants")
    process = one(theirs, "rindle.variant.process")
    assert {s["pid"] for s in theirs}.isdisjoint({os.getpid()})
    assert promote_job["attributes"]["rindle.queue"] == rq_env["RINDLE_TEST_RQ_QUEUE"]
    assert_child(promote_job, complete)
    assert_child(promotion, promote_job)
    assert_child(variants_job, promotion)
    assert_child(process, variants_job)
