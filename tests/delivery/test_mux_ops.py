"""Streaming around the edges: live events, the presets, and the doctor's Mux check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rindle import ConfigurationError, Delivery, MuxDirectUploadWeb, MuxWeb, Streaming
from tests.support.clips import clips, needs_ffmpeg
from tests.support.mux_app import TOKEN_SECRET, WEBHOOK_SECRET, QuickStream, streaming_app


@needs_ffmpeg
async def test_each_provider_change_reaches_the_assets_live_channel(
        sqlite_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    async with streaming_app(sqlite_url, tmp_path) as app:
        app.sim.processing_delay = 1.0
        with clips(tmp_path_factory).video_only.open("rb") as f:
            result = await app.media.upload(QuickStream, f, filename="a.mp4")
        seen: list[tuple[str, dict[str, Any]]] = []

        async def listen() -> None:
            async for event in app.media.live.subscribe("asset", result.asset.id):
                seen.append((event.name, event.data))
                if event.name == "stream_ready":
                    return

        await asyncio.wait_for(listen(), 30)
    changes = [d["to"] for name, d in seen
               if name == "state_change" and d["entity"] == "provider_asset"]
    assert changes[-1] == "ready"
    assert seen[-1] == ("stream_ready", {"asset_id": result.asset.id, "reason": None})


def test_the_mux_presets_lock_their_ingest_and_keep_the_rest_of_delivery() -> None:
    class Lesson(MuxWeb):
        name = "preset_lesson"
        storage = "media"
        delivery = Delivery(signed_url_ttl_seconds=120,
                            streaming=Streaming(ingest="direct_upload", playback_policy="public"))

    streaming = Lesson.delivery.streaming
    assert streaming is not None
    assert (streaming.ingest, streaming.playback_policy, streaming.source_variant) == (
        "server_push", "public", "web_720p")
    assert Lesson.delivery.signed_url_ttl_seconds == 120
    assert set(Lesson.variants) == {"web_720p", "poster"}

    class Clip(MuxDirectUploadWeb):
        name = "preset_clip"
        storage = "media"

    assert Clip.delivery.streaming is not None
    assert Clip.delivery.streaming.ingest == "direct_upload" and not Clip.variants

    with pytest.raises(ConfigurationError) as bad:
        class Broken(MuxWeb):
            name = "preset_broken"
            storage = "media"
            variants: dict[str, Any] = {}  # noqa: RUF012

    assert "source_variant" in bad.value.message


async def test_doctor_checks_credentials_secrets_and_key_without_printing_them(
        sqlite_url: str, tmp_path: Path) -> None:
    async with streaming_app(sqlite_url, tmp_path, profiles=[QuickStream]) as app:
        report = await app.media.doctor()
        [check] = [c for c in report.checks if c.id == "doctor.streaming"]
        assert check.status == "ok", check.summary
    async with streaming_app(sqlite_url, tmp_path, profiles=[QuickStream],
                             mux_options={"webhook_secrets": [],
                                          "signing_private_key": "not a key"}) as app:
        app.media.streaming_provider("mux")._auth = ("sim-token-id", "wrong")  # type: ignore[attr-defined]
        report = await app.media.doctor()
        [check] = [c for c in report.checks if c.id == "doctor.streaming"]
        text = str(report.to_dict())
    assert check.status == "error"
    for problem in ("token was refused", "no secret is set",
                    "signed playback: the Mux signing key"):
        assert problem in check.summary, check.summary
    assert TOKEN_SECRET not in text and WEBHOOK_SECRET not in text and "wrong" not in text


def test_a_profile_may_bring_its_own_provider(tmp_path: Path) -> None:
    from rindle import LocalStorage, Mux, Rindle
    from tests.conftest import SECRET

    own = Mux("profile-token-id", "profile-token-secret")

    class Own(MuxWeb):
        name = "own_mux"
        storage = "local"
        delivery = Delivery(streaming=Streaming(provider=own))

    class Other(MuxWeb):
        name = "other_mux"
        storage = "local"
        delivery = Delivery(streaming=Streaming(provider=Mux("b", "c")))

    def runtime(*profiles: type) -> Rindle:
        return Rindle(database_url=f"sqlite:///{tmp_path / 'own.db'}",
                      storages={"local": LocalStorage(root=tmp_path / "files")},
                      profiles=list(profiles), secret_keys=[SECRET])

    assert runtime(Own).streaming_provider("mux") is own
    assert Own.delivery.streaming is not None and Own.delivery.streaming.provider_name == "mux"
    with pytest.raises(ConfigurationError) as clash:
        runtime(Own, Other)
    assert clash.value.code == "invalid_profile"
    with pytest.raises(ConfigurationError) as unknown:
        class Elsewhere(MuxWeb):
            name = "elsewhere"
            storage = "local"
            delivery = Delivery(streaming=Streaming(provider="vimeo"))

        runtime(Elsewhere)
    assert unknown.value.code == "streaming_not_configured"
