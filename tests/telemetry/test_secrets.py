"""No telemetry value is a secret, through a whole life: a presigned upload, its completion,
promotion, two variants, delivery URLs, an SSE subscription and a tus upload, on Local
storage with AllowAll. Every event of every stage is captured and every value checked.

It also checks the flow reached every stage's event at its real call site.
"""

from __future__ import annotations

from typing import Any

import httpx

from rindle import AllowAll, telemetry
from tests.conftest import SECRET, LiveServer, MakeMedia
from tests.support.flow import Photos, app_for, whole_life

#: What no value may contain: a URL, a query string (a storage's signature travels in one),
#: a path of Rindle's token routes, a token parameter.
SHAPES = ("://", "?", "token=", "Signature", "X-Amz-", "/rindle/", "/local/", "/files/",
          "/tus/")


def _values(event: tuple[str, dict[str, Any], dict[str, Any]]) -> list[str]:
    _, measurements, metadata = event
    return [str(v) for v in (*measurements.values(), *metadata.values()) if v is not None]


async def test_no_event_of_a_whole_life_carries_a_secret(make_media: MakeMedia) -> None:
    media = make_media(profiles=[Photos], authorizer=AllowAll())
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    detach = telemetry.attach("rindle.", lambda n, m, d: events.append((n, m, d)))
    try:
        async with LiveServer(app_for(media)) as srv, \
                httpx.AsyncClient(base_url=srv.url) as client:
            flow = await whole_life(media, client)
    finally:
        detach()
    secrets = {s for s in flow.secrets | {SECRET} if len(s) >= 16}
    assert len(secrets) >= 8  # the upload URL, delivery URLs, the subscribe and tus tokens
    for event in events:
        text = repr(event)
        assert not [s for s in secrets if s in text], event
        for value in _values(event):
            assert not any(shape in value for shape in SHAPES), (event, value)

    names = {name for name, _, _ in events}
    for stage in (
            "rindle.upload.initiate.stop", "rindle.upload.sign", "rindle.upload.receive",
            "rindle.upload.status", "rindle.upload.complete.stop",
            "rindle.session.state_change", "rindle.job.start", "rindle.job.stop",
            "rindle.promotion.start", "rindle.promotion.stop", "rindle.asset.state_change",
            "rindle.variant.process.start", "rindle.variant.process.stop",
            "rindle.variant.state_change", "rindle.delivery.signed",
            "rindle.live.subscribe", "rindle.live.unsubscribe"):
        assert stage in names, stage

    def of(name: str, **where: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(m, d) for n, m, d in events if n == name
                and all(d.get(k) == v for k, v in where.items())]

    [(initiated, meta)] = of("rindle.upload.initiate.stop", asset_id=flow.asset_id)
    assert meta["strategy"] == "presigned_put" and initiated["bytes"] > 0
    [(signed, _)] = of("rindle.upload.sign", session_id=flow.session_id)
    assert signed["ttl"] > 0 and signed["parts"] == 1
    [(received, _)] = of("rindle.upload.receive", session_id=flow.session_id)
    assert received["bytes"] == initiated["bytes"]
    [(completed, _)] = of("rindle.upload.complete.stop", session_id=flow.session_id)
    assert completed["bytes"] == initiated["bytes"] and completed["duration"] > 0
    [(_, promoted)] = of("rindle.promotion.stop", asset_id=flow.asset_id)
    assert (promoted["outcome"], promoted["kind"]) == ("available", "image")
    [(built, processed)] = of("rindle.variant.process.stop", asset_id=flow.asset_id)
    assert (built["variants"], built["failed"], processed["outcome"]) == (2, 0, "ready")
    assert built["bytes"] > 0 and processed["kind"] == "image"
    jobs = {d["job"] for _, d in of("rindle.job.stop", asset_id=flow.asset_id)}
    assert {"promote_asset", "process_variants"} <= jobs
    kinds = {(d["url_kind"], d["variant"], d["mode"])
             for _, d in of("rindle.delivery.signed", asset_id=flow.asset_id)}
    assert {("original", None, "signed"), ("variant", "thumb", "signed"),
            ("variant", "small", "signed")} <= kinds
    [(subscribers, subscribed)] = of("rindle.live.subscribe", asset_id=flow.asset_id)
    assert (subscribed["transport"], subscribed["outcome"]) == ("sse", "ok")
    assert subscribers["subscribers"] == 1
    [(left, _)] = of("rindle.live.unsubscribe", asset_id=flow.asset_id)
    assert left["events"] >= 2 and left["duration"] > 0
    tus = of("rindle.upload.complete.stop", asset_id=flow.tus_asset_id, strategy="tus")
    assert len(tus) == 1
    [(status, _)] = of("rindle.upload.status", strategy="tus")
    assert status["offset"] == 0
