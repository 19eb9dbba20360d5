"""The Mux simulator itself: the provider's tests trust it, so its Mux-like behaviour is proven
here with plain httpx and an independent webhook receiver (a second uvicorn server), never
with Rindle's client.

Signatures are checked with this module's own HMAC, not the simulator's helper, so a signing
bug cannot pass by agreeing with itself.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.conftest import LiveServer, free_port
from tests.support.mux_sim import MuxSimulator, run_mux_simulator

TOKEN_ID = "test-token-id"
TOKEN_SECRET = "test-token-secret-do-not-log"
WEBHOOK_SECRET = "test-webhook-signing-secret"
KID = "test-signing-key"
CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # not a video: never decoded
ORIGIN = "https://app.example.test"


@dataclass
class Hook:
    """One webhook POST as the receiver got it: raw body, so the signature can be checked."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        kind: str = self.json["type"]
        return kind


class Receiver:
    """The app's side of the wire: takes webhooks (optionally failing the first few, to
    exercise retries) and serves input files for URL ingest."""

    def __init__(self) -> None:
        self.url = ""
        self.sim: MuxSimulator | None = None  # the simulator posting here (see the fixture)
        self.hooks: list[Hook] = []
        self.fail_hooks = 0
        self.files: dict[str, bytes] = {"clip.mp4": CLIP, "empty.mp4": b""}
        self.file_requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[
            Route("/hooks", self._hook, methods=["POST"]),
            Route("/files/{name}", self._file),
            Route("/redirect", lambda request: RedirectResponse("/files/clip.mp4", 302)),
        ])

    async def _hook(self, request: Request) -> Response:
        self.hooks.append(Hook(dict(request.headers), await request.body()))
        if self.fail_hooks > 0:
            self.fail_hooks -= 1
            return Response("try later", status_code=500)
        return JSONResponse({"ok": True})

    async def _file(self, request: Request) -> Response:
        self.file_requests.append(dict(request.headers))
        data = self.files.get(request.path_params["name"])
        if data is None:
            return Response("no such file", status_code=404)
        return Response(data, media_type="video/mp4")

    def types(self) -> list[str]:
        return [hook.type for hook in self.hooks]


def signature_ok(hook: Hook, secret: str = WEBHOOK_SECRET, tolerance: float = 300) -> bool:
    """Mux's documented check: HMAC-SHA256 of ``f"{t}.{raw body}"``, and a fresh ``t``."""
    parts = dict(part.split("=", 1) for part in hook.headers["mux-signature"].split(","))
    stamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + hook.body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - stamp) <= tolerance


@functools.cache
def signing_key() -> tuple[bytes, bytes]:
    """A fresh RSA key standing in for a Mux signing key: (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def playback_token(sub: str, aud: str, *, ttl: int = 300, kid: str = KID) -> str:
    return jwt.encode({"sub": sub, "aud": aud, "exp": int(time.time()) + ttl},
                      signing_key()[0], algorithm="RS256", headers={"kid": kid})


def make_simulator(receiver: Receiver) -> MuxSimulator:
    simulator = MuxSimulator(TOKEN_ID, TOKEN_SECRET, webhook_url=f"{receiver.url}/hooks",
                             webhook_secret=WEBHOOK_SECRET, processing_delay=0.05,
                             public_keys={KID: signing_key()[1]})
    simulator.webhook_retry_delay = 0.05
    return simulator


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver and the simulator, each under its own LiveServer. Both servers are told
    to stop at once: uvicorn's shutdown takes ~0.2 s, and paying it twice per test would
    double this module's runtime."""
    rec = Receiver()
    rec_server = LiveServer(rec.app, access_log=False)
    async with rec_server:
        rec.url = rec_server.url
        rec.sim = make_simulator(rec)
        sim_server = LiveServer(rec.sim.app, access_log=False)
        async with sim_server:
            rec.sim.base_url = sim_server.url
            yield rec
            rec_server.server.should_exit = sim_server.server.should_exit = True


@pytest.fixture
def sim(receiver: Receiver) -> MuxSimulator:
    assert receiver.sim is not None
    return receiver.sim


@pytest.fixture
async def api(sim: MuxSimulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.base_url is not None
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(TOKEN_ID, TOKEN_SECRET),
                                 timeout=5) as client:
        yield client


async def create_asset(api: httpx.AsyncClient, url: str, **settings: Any) -> dict[str, Any]:
    body = {"inputs": [{"url": url}], "playback_policies": ["signed"], **settings}
    r = await api.post("/video/v1/assets", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def create_upload(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"cors_origin": ORIGIN, "new_asset_settings": {
        "playback_policies": ["signed"], "passthrough": "rindle:upload-1"}, **fields}
    r = await api.post("/video/v1/uploads", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_api_refuses_missing_and_wrong_credentials() -> None:
    unauthorized = {"error": {"type": "unauthorized", "messages": ["Unauthorized request"]}}
    async with run_mux_simulator(token_id=TOKEN_ID, token_secret=TOKEN_SECRET) as sim, \
            httpx.AsyncClient(base_url=str(sim.base_url)) as anonymous:
        assert sim.base_url is not None and sim.base_url.startswith("http://127.0.0.1:")
        r = await anonymous.get("/video/v1/assets")
        assert (r.status_code, r.json()) == (401, unauthorized)
        r = await anonymous.get("/video/v1/assets", auth=(TOKEN_ID, "wrong"))
        assert (r.status_code, r.json()) == (401, unauthorized)
        r = await anonymous.post("/video/v1/uploads", json={}, auth=("someone", TOKEN_SECRET))
        assert r.status_code == 401
        assert not sim.uploads

        r = await anonymous.get("/video/v1/assets", params={"limit": 1},
                                auth=(TOKEN_ID, TOKEN_SECRET))
        assert (r.status_code, r.json()) == (200, {"data": []})
        assert [q.auth_ok for q in sim.requests] == [False, False, False, True]
        # The log says whether credentials were right, never what they were.
        assert TOKEN_SECRET not in repr(sim.requests) and "wrong" not in repr(sim.requests)
        assert all("authorization" not in q.headers for q in sim.requests)


async def test_create_asset_validates_its_body() -> None:
    # In process (ASGI transport, no server): refusals start no background work to serve.
    sim = MuxSimulator(TOKEN_ID, TOKEN_SECRET)
    cases: list[tuple[Any, str]] = [
        ({"inputs": [{"url": "ftp://x/y"}], "playback_policies": ["signed"]}, "inputs[0].url"),
        ({"inputs": [{"url": "https://x/y"}], "playback_policy": ["signed"]},
         "playback_policy"),
        ({"inputs": [{"url": "https://x/y"}], "playback_policies": ["drm"]},
         "playback_policies"),
        ({"inputs": [{"url": "https://x/y"}], "passthrough": "p" * 256}, "passthrough"),
        ({"inputs": [{"url": "https://x/y"}], "video_quality": "best"}, "video_quality"),
        ({"inputs": []}, "inputs"),
        ([1, 2], "JSON object"),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://mux.test",
                                 auth=(TOKEN_ID, TOKEN_SECRET)) as api:
        for body, message in cases:
            r = await api.post("/video/v1/assets", json=body)
            assert r.status_code == 400, body
            error = r.json()["error"]
            assert error["type"] == "invalid_parameters" and message in error["messages"][0]
        r = await api.post("/video/v1/assets", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_parameters"
        r = await api.post("/video/v1/uploads",
                           json={"new_asset_settings": {"playback_policies": ["signed"],
                                                        "inputs": []}})
        assert r.status_code == 400 and "new_asset_settings" in r.text
        r = await api.post("/video/v1/uploads", json={"timeout": 5})
        assert r.status_code == 400 and "timeout" in r.text
        r = await api.get("/video/v1/assets", params={"limit": 0})
        assert r.status_code == 400
        r = await api.get("/video/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    assert not sim.assets and not sim.uploads and not sim.fetches


async def test_asset_from_url_is_fetched_then_ready_with_signed_webhooks(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    sim.next_duration = 12.5
    url = f"{receiver.url}/files/clip.mp4?sig=abc"
    asset = await create_asset(api, url, passthrough="rindle:42", video_quality="basic")
    assert asset["status"] == "preparing"
    assert asset["passthrough"] == "rindle:42" and asset["created_at"].isdigit()
    assert asset["mp4_support"] == "none" and asset["master_access"] == "none"
    [playback] = asset["playback_ids"]
    assert playback["policy"] == "signed" and playback["id"] != asset["id"]

    await sim.settle()
    r = await api.get(f"/video/v1/assets/{asset['id']}")
    ready = r.json()["data"]
    assert ready["status"] == "ready" and ready["duration"] == 12.5
    assert ready["aspect_ratio"] == "16:9" and ready["max_stored_resolution"] == "HD"
    assert {track["type"] for track in ready["tracks"]} == {"video", "audio"}

    # The input URL was really fetched, query string and all.
    [fetch] = sim.fetches
    assert fetch.url == url and fetch.status_code == 200 and fetch.size == len(CLIP)
    assert fetch.sha256 == hashlib.sha256(CLIP).hexdigest()
    assert fetch.request is not None and fetch.request.url.params["sig"] == "abc"
    assert len(receiver.file_requests) == 1

    assert receiver.types() == ["video.asset.created", "video.asset.ready"]
    created, done = receiver.hooks
    assert all(signature_ok(hook) for hook in receiver.hooks)
    assert not signature_ok(created, secret="another-secret")
    assert created.headers["content-type"] == "application/json"
    event = done.json
    assert event["object"] == {"type": "asset", "id": asset["id"]}
    assert event["data"]["status"] == "ready" and event["data"]["passthrough"] == "rindle:42"
    assert created.json["data"]["status"] == "preparing"  # the object as it was then
    assert event["environment"] == {"name": "Development", "id": "sim"}
    assert event["created_at"].endswith("Z") and event["id"] != created.json["id"]
    assert [d.status_code for d in sim.deliveries] == [200, 200]
    # The next asset is back to the default duration.
    second = await create_asset(api, url)
    await sim.settle()
    assert sim.assets[second["id"]]["duration"] == 3.0


async def test_a_source_that_cannot_be_fetched_errors_the_asset(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    # Source → the status the fetch saw (None: no connection).
    sources = {f"http://127.0.0.1:{free_port()}/clip.mp4": None,
               f"{receiver.url}/files/missing.mp4": 404,
               f"{receiver.url}/redirect": 302,  # not followed
               f"{receiver.url}/files/empty.mp4": 200}
    for url, status in sources.items():
        receiver.hooks.clear()
        asset = await create_asset(api, url)
        await sim.settle()
        errored = (await api.get(f"/video/v1/assets/{asset['id']}")).json()["data"]
        assert errored["status"] == "errored", url
        assert errored["errors"]["type"] == "invalid_input" and errored["errors"]["messages"]
        assert "duration" not in errored
        assert receiver.types() == ["video.asset.created", "video.asset.errored"]
        assert receiver.hooks[1].json["data"]["errors"] == errored["errors"]
        assert sim.fetches[-1].url == url and sim.fetches[-1].status_code == status
    # The redirect's target was never asked for: only the two existing-path GETs arrived.
    assert len(receiver.file_requests) == 2


async def test_direct_upload_in_one_put(sim: MuxSimulator, api: httpx.AsyncClient,
                                        receiver: Receiver) -> None:
    upload = await create_upload(api, timeout=900)
    assert upload["status"] == "waiting" and upload["timeout"] == 900
    assert upload["cors_origin"] == ORIGIN
    assert upload["url"].startswith(f"{sim.base_url}/upload/{upload['id']}?sig=")

    async with httpx.AsyncClient() as browser:  # no Basic auth: the sig is the credential
        r = await browser.put(upload["url"], content=CLIP,
                              headers={"Content-Type": "video/mp4", "Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    received = sim.uploads_received[upload["id"]]
    assert received.size == len(CLIP) and received.sha256 == hashlib.sha256(CLIP).hexdigest()

    await sim.settle()
    done = (await api.get(f"/video/v1/uploads/{upload['id']}")).json()["data"]
    assert done["status"] == "asset_created"
    asset = (await api.get(f"/video/v1/assets/{done['asset_id']}")).json()["data"]
    assert asset["status"] == "ready" and asset["upload_id"] == upload["id"]
    assert asset["passthrough"] == "rindle:upload-1"
    assert [p["policy"] for p in asset["playback_ids"]] == ["signed"]

    assert receiver.types() == ["video.upload.created", "video.upload.asset_created",
                                "video.asset.created", "video.asset.ready"]
    asset_created = receiver.hooks[1].json
    assert asset_created["object"] == {"type": "upload", "id": upload["id"]}
    assert asset_created["data"]["asset_id"] == asset["id"]
    assert all(signature_ok(hook) for hook in receiver.hooks)

    # A finished upload takes no more bytes.
    async with httpx.AsyncClient() as browser:
        r = await browser.put(upload["url"], content=CLIP)
    assert r.status_code == 400


async def test_direct_upload_in_content_range_chunks(sim: MuxSimulator,
                                                     api: httpx.AsyncClient) -> None:
    upload = await create_upload(api)
    total, half = len(CLIP), len(CLIP) // 2
    async with httpx.AsyncClient() as browser:
        r = await browser.put(upload["url"], content=CLIP[:half],
                              headers={"Content-Range": f"bytes 0-{half - 1}/{total}"})
        assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{half - 1}"
        assert sim.uploads[upload["id"]]["status"] == "waiting"
        # A chunk that does not match its range is refused and changes nothing.
        r = await browser.put(upload["url"], content=b"xx",
                              headers={"Content-Range": f"bytes {half}-{half + 9}/{total}"})
        assert r.status_code == 400
        r = await browser.put(upload["url"], content=CLIP[half:],
                              headers={"Content-Range": f"bytes {half}-{total - 1}/{total}"})
        assert r.status_code == 200
    received = sim.uploads_received[upload["id"]]
    assert (received.size, received.chunks) == (total, 2)
    assert received.sha256 == hashlib.sha256(CLIP).hexdigest()
    await sim.settle()
    asset_id = sim.uploads[upload["id"]]["asset_id"]
    assert sim.assets[asset_id]["status"] == "ready"


async def test_upload_target_refuses_a_wrong_sig_and_errors_an_empty_file(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    upload = await create_upload(api)
    target = f"{sim.base_url}/upload/{upload['id']}"
    async with httpx.AsyncClient() as browser:
        assert (await browser.put(f"{target}?sig=forged", content=CLIP)).status_code == 403
        assert (await browser.put(target, content=CLIP)).status_code == 403
        assert (await browser.put(f"{sim.base_url}/upload/nope?sig=x")).status_code == 404
        assert sim.uploads[upload["id"]]["status"] == "waiting"
        assert (await browser.put(upload["url"], content=b"")).status_code == 200
    await sim.settle()
    asset = sim.assets[sim.uploads[upload["id"]]["asset_id"]]
    assert asset["status"] == "errored" and asset["errors"]["type"] == "invalid_input"
    assert receiver.types()[-1] == "video.asset.errored"


async def test_cancel_sends_a_webhook_and_the_url_is_refused_afterwards(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    upload = await create_upload(api)
    r = await api.put(f"/video/v1/uploads/{upload['id']}/cancel")
    assert r.status_code == 200 and r.json()["data"]["status"] == "cancelled"
    r = await api.put(f"/video/v1/uploads/{upload['id']}/cancel")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_parameters"
    async with httpx.AsyncClient() as browser:
        r = await browser.put(upload["url"], content=CLIP)
    assert r.status_code == 400 and upload["id"] not in sim.uploads_received
    await sim.settle()
    assert receiver.types() == ["video.upload.created", "video.upload.cancelled"]
    assert receiver.hooks[1].json["data"]["status"] == "cancelled"
    assert (await api.get("/video/v1/uploads/nope")).status_code == 404

    # An upload past its timeout reads as timed out and takes no bytes.
    late = await create_upload(api)
    sim.expire_upload(late["id"])
    r = await api.get(f"/video/v1/uploads/{late['id']}")
    assert r.json()["data"]["status"] == "timed_out"
    async with httpx.AsyncClient() as browser:
        assert (await browser.put(late["url"], content=CLIP)).status_code == 400
    assert (await api.put(f"/video/v1/uploads/{late['id']}/cancel")).status_code == 400


async def test_cors_preflight_answers_with_the_uploads_origin(sim: MuxSimulator,
                                                              api: httpx.AsyncClient) -> None:
    upload = await create_upload(api)
    anywhere = await create_upload(api, cors_origin="*")
    async with httpx.AsyncClient() as browser:
        r = await browser.options(upload["url"], headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, content-range"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "PUT" in r.headers["access-control-allow-methods"]
        allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "content-range"} <= allowed
        r = await browser.options(anywhere["url"], headers={"Origin": "https://other.test"})
        assert r.headers["access-control-allow-origin"] == "*"
        # Error answers carry CORS too, so a browser can read why it was refused.
        r = await browser.put(upload["url"].split("?")[0], headers={"Origin": ORIGIN})
        assert r.status_code == 403 and r.headers["access-control-allow-origin"] == ORIGIN


async def test_fail_next_and_stall_next(sim: MuxSimulator, api: httpx.AsyncClient,
                                        receiver: Receiver) -> None:
    sim.fail_next("POST", "/video/v1/assets", status=503, times=2)
    body = {"inputs": [{"url": f"{receiver.url}/files/clip.mp4"}]}
    for _ in range(2):
        r = await api.post("/video/v1/assets", json=body)
        assert r.status_code == 503 and r.json()["error"]["messages"]
    assert not sim.assets
    assert (await api.post("/video/v1/assets", json=body)).status_code == 201
    # A rule matches its method only.
    sim.fail_next("DELETE", "/video/v1/assets")
    assert (await api.get("/video/v1/assets")).status_code == 200

    sim.stall_next("GET", "/video/v1/assets", seconds=3)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await api.get("/video/v1/assets", timeout=0.3)
    r = await api.get("/video/v1/assets")  # the stall was used up
    assert r.status_code == 200 and time.monotonic() - started < 2
    await sim.settle()


async def test_failed_deliveries_are_retried_with_the_same_event(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.fail_hooks = 2
    await create_upload(api)
    await sim.settle()
    assert [d.status_code for d in sim.deliveries] == [500, 500, 200]
    assert [d.attempt for d in sim.deliveries] == [1, 2, 3]
    assert len({hook.json["id"] for hook in receiver.hooks}) == 1

    # A receiver that never answers 2xx gets 1 + webhook_retries attempts, then no more.
    receiver.fail_hooks = 100
    await create_upload(api)
    await sim.settle()
    assert [d.attempt for d in sim.deliveries[3:]] == [1, 2, 3, 4]
    sim.webhook_url = f"http://127.0.0.1:{free_port()}/hooks"
    await create_upload(api)
    await sim.settle()
    assert [d.status_code for d in sim.deliveries[7:]] == [None] * 4


async def test_duplicate_webhooks_repeat_the_event_id(sim: MuxSimulator,
                                                      api: httpx.AsyncClient,
                                                      receiver: Receiver) -> None:
    sim.duplicate_webhooks = True
    upload = await create_upload(api)
    await api.put(f"/video/v1/uploads/{upload['id']}/cancel")
    await sim.settle()
    assert receiver.types() == ["video.upload.created"] * 2 + ["video.upload.cancelled"] * 2
    ids = [hook.json["id"] for hook in receiver.hooks]
    assert ids[0] == ids[1] != ids[2] == ids[3]


async def test_held_webhooks_are_released_reversed_or_in_a_given_order(
        sim: MuxSimulator, api: httpx.AsyncClient, receiver: Receiver) -> None:
    sim.hold_webhooks()
    asset = await create_asset(api, f"{receiver.url}/files/clip.mp4")
    await sim.settle()
    assert sim.assets[asset["id"]]["status"] == "ready" and not receiver.hooks
    assert [event.type for event in sim.held] == ["video.asset.created", "video.asset.ready"]
    await sim.release_webhooks(order="reverse")
    assert receiver.types() == ["video.asset.ready", "video.asset.created"]
    assert not sim.held and all(signature_ok(hook) for hook in receiver.hooks)

    sim.hold_webhooks()
    upload = await create_upload(api)
    await api.put(f"/video/v1/uploads/{upload['id']}/cancel")
    await sim.release_webhooks(order=["video.upload.cancelled", "video.upload.created"])
    assert receiver.types()[2:] == ["video.upload.cancelled", "video.upload.created"]


async def test_send_webhook_crafts_forged_and_stale_deliveries(
        sim: MuxSimulator, receiver: Receiver) -> None:
    obj = {"id": "asset-1", "status": "ready"}
    r = await sim.send_webhook("video.asset.ready", obj, event_id="evt-1")
    assert r.status_code == 200 and signature_ok(receiver.hooks[-1])
    assert receiver.hooks[-1].json["id"] == "evt-1"
    assert receiver.hooks[-1].json["object"] == {"type": "asset", "id": "asset-1"}

    await sim.send_webhook("video.asset.ready", obj, secret="not-the-secret")
    assert not signature_ok(receiver.hooks[-1])
    assert signature_ok(receiver.hooks[-1], secret="not-the-secret")

    await sim.send_webhook("video.asset.ready", obj, timestamp=int(time.time()) - 3600)
    assert not signature_ok(receiver.hooks[-1])  # right key, stale timestamp
    assert signature_ok(receiver.hooks[-1], tolerance=7200)

    await sim.send_webhook("video.asset.ready", obj, body_override=b'{"type":"forged"}')
    assert receiver.hooks[-1].body == b'{"type":"forged"}' and signature_ok(receiver.hooks[-1])

    await sim.send_webhook("video.asset.ready", obj, signature_override="t=1,v1=00")
    assert receiver.hooks[-1].headers["mux-signature"] == "t=1,v1=00"
    assert all(d.crafted for d in sim.deliveries) and len(sim.deliveries) == 5


async def test_delete_and_forced_status(sim: MuxSimulator, api: httpx.AsyncClient,
                                        receiver: Receiver) -> None:
    sim.processing_delay = 5  # the forced status must stop this processing
    asset = await create_asset(api, f"{receiver.url}/files/clip.mp4")
    await sim.wait_for(lambda: sim.fetches and sim.fetches[0].ok)
    sim.set_asset_status(asset["id"], "errored")
    await sim.settle(timeout=2)
    assert sim.assets[asset["id"]]["status"] == "errored"
    assert receiver.types() == ["video.asset.created", "video.asset.errored"]

    assert (await api.delete(f"/video/v1/assets/{asset['id']}")).status_code == 204
    r = await api.get(f"/video/v1/assets/{asset['id']}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    assert (await api.delete(f"/video/v1/assets/{asset['id']}")).status_code == 404
    await sim.settle()
    assert receiver.types()[-1] == "video.asset.deleted"
    assert receiver.hooks[-1].json["object"]["id"] == asset["id"]


async def test_signed_playback_checks_the_jwt(sim: MuxSimulator, api: httpx.AsyncClient,
                                              receiver: Receiver) -> None:
    signed = await create_asset(api, f"{receiver.url}/files/clip.mp4")
    public = await create_asset(api, f"{receiver.url}/files/clip.mp4",
                                playback_policies=["public"])
    pid = signed["playback_ids"][0]["id"]
    async with httpx.AsyncClient(base_url=api.base_url) as player:
        r = await player.get(f"/stream/{pid}.m3u8", params={"token": playback_token(pid, "v")})
        assert r.status_code == 412  # not ready yet
        await sim.settle()

        r = await player.get(f"/stream/{pid}.m3u8", params={"token": playback_token(pid, "v")})
        assert r.status_code == 200 and r.text.startswith("#EXTM3U")
        assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        r = await player.get(f"/image/{pid}/thumbnail.jpg",
                             params={"token": playback_token(pid, "t")})
        assert r.status_code == 200 and r.content.startswith(b"\xff\xd8\xff")
        r = await player.get(f"/image/{pid}/storyboard.vtt",
                             params={"token": playback_token(pid, "s")})
        assert r.status_code == 200 and r.text.startswith("WEBVTT")

        refused = {
            "audience": playback_token(pid, "t"),
            "expired": playback_token(pid, "v", ttl=-10),
            "kid": playback_token(pid, "v", kid="unknown-key"),
            "subject": playback_token("another-playback-id", "v"),
            "needs a token": "",
        }
        for reason, token in refused.items():
            r = await player.get(f"/stream/{pid}.m3u8", params={"token": token})
            assert r.status_code == 403, reason
            assert reason in r.json()["error"]["messages"][0].lower(), r.text
        # A known kid whose public key is not the half of the key that signed the token.
        sim.public_keys = {KID: _other_public_key()}
        r = await player.get(f"/stream/{pid}.m3u8", params={"token": playback_token(pid, "v")})
        assert r.status_code == 403

        public_pid = public["playback_ids"][0]["id"]
        assert (await player.get(f"/stream/{public_pid}.m3u8")).status_code == 200
        assert (await player.get("/stream/unknown.m3u8")).status_code == 404


def _other_public_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
