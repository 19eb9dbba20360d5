"""Every operator call reports itself through the telemetry contract (no secrets in it)."""

from __future__ import annotations

from typing import Any

from rindle import telemetry
from tests.conftest import SECRET, ImageProfile, MakeMedia
from tests.support.images import png
from tests.support.ops_app import OpsPhotos


async def test_the_operator_calls_emit_their_events(make_media: MakeMedia) -> None:
    seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    detach = telemetry.attach("rindle.", lambda n, m, d: seen.append((n, m, d)))
    media = make_media(profiles=[ImageProfile, OpsPhotos])
    try:
        async with media.connected():
            result = await media.upload(OpsPhotos, png(30, 20), filename="a.png")
            await media.drain()
            aid = result.asset.id
            await media.attach(aid, ("User", "1"), "avatar")
            await media.runtime_status()
            await media.expire_uploads(dry_run=True)
            await media.reconcile_storage()
            await media.requeue_variants(aid, force=True)
            await media.drain()
            await media.regenerate_variants(profile=OpsPhotos, dry_run=True)
            await media.backfill_metadata(profile=OpsPhotos)
            await media.preview_batch_owner_erasure([("User", "1")])
        await media.doctor()
    finally:
        detach()
    by_name = {n: (m, d) for n, m, d in seen}
    status_m, status_d = by_name["rindle.runtime_status"]
    assert status_d["healthy"] is True and status_m["duration"] >= 0
    assert by_name["rindle.cleanup"][1] == {"dry_run": True, "outcome": "ok"}
    reconcile_m, reconcile_d = by_name["rindle.reconcile"]
    assert (reconcile_m["assets_checked"], reconcile_m["missing_originals"]) == (1, 0)
    assert reconcile_d["dry_run"] is True
    repairs = [(d["action"], m["count"], d["outcome"]) for n, m, d in seen
               if n == "rindle.repair"]
    assert ("requeue", 1, "ok") in repairs and ("regenerate", 0, "preview") in repairs
    assert ("reprobe", 1, "ok") in repairs  # the backfill reprobes each asset
    assert by_name["rindle.backfill"][0]["assets"] == 1
    erasure_m, erasure_d = by_name["rindle.erasure"]
    assert (erasure_m["owners"], erasure_m["slots"], erasure_d["preview"]) == (1, 1, True)
    doctor_m, doctor_d = by_name["rindle.doctor"]
    assert doctor_m["errors"] == 0 and doctor_d["outcome"] == "ok"
    assert SECRET not in repr(seen)
