"""A Rindle app streaming through the Mux simulator, for tests: keys, provider, profiles.

``streaming_app(...)`` starts the simulator and the app under uvicorn (both in the test's
event loop) and wires the simulator's webhooks to the app's ``/rindle/webhooks/mux``. The
playback signing key is generated per test session; the simulator gets its public half.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import (
    AllowAll,
    Delivery,
    LocalStorage,
    Mux,
    MuxDirectUploadWeb,
    MuxWeb,
    Profile,
    Rindle,
    Streaming,
)
from tests.conftest import SECRET, LiveServer
from tests.support.mux_sim import MuxSimulator, run_mux_simulator

TOKEN_ID = "sim-token-id"
TOKEN_SECRET = "sim-token-secret-do-not-log"
WEBHOOK_SECRET = "sim-webhook-secret-do-not-log"
KEY_ID = "sim-signing-key"


@functools.cache
def signing_key() -> tuple[str, bytes]:
    """A Mux-style signing key: (base64 of the private PEM, the public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(private).decode(), public


class PushedLesson(MuxWeb):
    """The preset as an adopter uses it: web_720p + poster built by ffmpeg, 720p pushed."""

    name = "pushed_lesson"
    storage = "local"


class QuickStream(MuxWeb):
    """No renditions: the original itself is pushed once promoted (fast tests)."""

    name = "quick_stream"
    storage = "local"
    variants: dict[str, Any] = {}  # noqa: RUF012 (a Profile's class attribute)
    delivery = Delivery(streaming=Streaming(source_variant=None))


class PublicStream(MuxWeb):
    name = "public_stream"
    storage = "local"
    variants: dict[str, Any] = {}  # noqa: RUF012
    delivery = Delivery(streaming=Streaming(source_variant=None, playback_policy="public"))


class DirectLesson(MuxDirectUploadWeb):
    name = "direct_lesson"
    storage = "local"
    max_duration_seconds = 60


PROFILES: Sequence[type[Profile]] = (PushedLesson, QuickStream, PublicStream, DirectLesson)


def mux_for(sim: MuxSimulator, **options: Any) -> Mux:
    options.setdefault("retry_base", 0.01)
    options.setdefault("webhook_secrets", [WEBHOOK_SECRET])
    options.setdefault("signing_private_key", signing_key()[0])
    return Mux(TOKEN_ID, TOKEN_SECRET, signing_key_id=KEY_ID, api_url=sim.base_url,
               stream_url=f"{sim.base_url}/stream", image_url=f"{sim.base_url}/image",
               **options)


@dataclass
class StreamingApp:
    media: Rindle
    sim: MuxSimulator
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.asynccontextmanager
async def streaming_app(database_url: str, root: Path, *, mux_options: dict[str, Any] | None = None,
                        **options: Any) -> AsyncIterator[StreamingApp]:
    _, public = signing_key()
    async with run_mux_simulator(token_id=TOKEN_ID, token_secret=TOKEN_SECRET,
                                 webhook_secret=WEBHOOK_SECRET,
                                 public_keys={KEY_ID: public}) as sim:
        media = Rindle(database_url=database_url,
                       storages={"local": LocalStorage(root=root / "files")},
                       profiles=list(options.pop("profiles", PROFILES)), secret_keys=[SECRET],
                       authorizer=options.pop("authorizer", AllowAll()),
                       streaming={"mux": mux_for(sim, **(mux_options or {}))}, **options)
        app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
        async with LiveServer(app) as server:
            media.public_url = server.url
            sim.webhook_url = f"{server.url}/rindle/webhooks/mux"
            yield StreamingApp(media=media, sim=sim, server=server)
