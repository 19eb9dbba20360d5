"""A local Mux Video API for tests: an ASGI app (Starlette) with Mux's shapes and faults on tap.

Tests of the Mux provider need Mux's behaviour without Mux: Basic-authenticated REST calls,
assets that go ``preparing`` → ``ready`` (or ``errored``) some time after they are made,
direct uploads to a signed URL (whole or in UpChunk/GCS-style ``Content-Range`` chunks, with
CORS), signed webhooks that are retried, duplicated and reordered the way a real delivery
system may, and signed playback checked with the playback key's public half. ``MuxSimulator``
does all of that in the test's own event loop; ``run_mux_simulator`` serves it under
``tests.conftest.LiveServer`` so the provider talks real HTTP to it.

Shapes follow https://docs.mux.com/api-reference. It is deliberately stricter than Mux where
strictness catches provider bugs: unknown body fields (deprecated ones included, such as
``playback_policy``) are refused with ``invalid_parameters``, and no video is ever decoded:
any non-empty bytes are a "valid" video, an empty file errors the asset.

Test controls are plain attributes and methods, called from test code in the same loop:
``fail_next``/``stall_next`` (faults on the next matching requests), ``duplicate_webhooks``,
``hold_webhooks``/``release_webhooks`` (reordering), ``send_webhook`` (forged, stale or
mis-signed deliveries), ``set_asset_status`` and the logs ``requests``, ``fetches``,
``deliveries``, ``uploads_received``. ``settle`` and ``wait_for`` let a test wait for the
background work (ingest, processing, webhook delivery) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import inspect
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]
Handler = Callable[[Request, bytes], Awaitable[Response]]

# The type Mux's error bodies carry for each status; the simulator's own choice past the
# documented few, so a provider keys on the status code first.
ERROR_TYPES = {
    400: "invalid_parameters", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
    429: "too_many_requests", 500: "internal_server_error", 502: "bad_gateway",
    503: "service_unavailable", 504: "gateway_timeout",
}

PLAYBACK_POLICIES = ("public", "signed")
VIDEO_QUALITIES = ("basic", "plus", "premium")
RESOLUTION_TIERS = ("1080p", "1440p", "2160p")
ASSET_SETTINGS = {"playback_policies", "passthrough", "video_quality", "max_resolution_tier",
                  "normalize_audio", "test"}
UPLOAD_FIELDS = {"cors_origin", "new_asset_settings", "timeout", "test"}
UPLOAD_TIMEOUT = (60, 604800)
_CONTENT_RANGE = re.compile(r"^bytes (?:(?P<first>\d+)-(?P<last>\d+)|\*)/(?P<total>\d+|\*)$")
_ID_ALPHABET = string.ascii_letters + string.digits

# The audience (``aud``) a playback token must carry for each kind of resource.
AUDIENCE_VIDEO, AUDIENCE_THUMBNAIL, AUDIENCE_STORYBOARD = "v", "t", "s"
PLAYLIST = (b"#EXTM3U\n#EXT-X-VERSION:3\n"
            b"#EXT-X-STREAM-INF:BANDWIDTH=2516370,RESOLUTION=1920x1080\n"
            b"rendition.m3u8\n")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
STORYBOARD = b"WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nstoryboard.jpg#xywh=0,0,256,144\n"


def _new_id(length: int = 32) -> str:
    """A random id of Mux's look (letters and digits, so it is safe in any URL part)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sign_webhook(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Mux-Signature`` header value for ``body``: ``t=<ts>,v1=<hex HMAC-SHA256>`` over
    ``f"{t}.{body}"`` keyed with the webhook signing secret, exactly as Mux documents it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class MuxError(Exception):
    """An error answer in Mux's shape: ``{"error": {"type": ..., "messages": [...]}}``."""

    def __init__(self, status: int, message: str, error_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = error_type or ERROR_TYPES.get(status, "error")
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.type, self.headers)


def error_response(status: int, message: str, error_type: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"type": error_type or ERROR_TYPES.get(status, "error"),
                      "messages": [message]}}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(message: str) -> MuxError:
    return MuxError(400, message, "invalid_parameters")


@dataclass
class RecordedRequest:
    """One request the simulator answered. Headers are kept without ``Authorization``: the
    log says whether the credentials were right (``auth_ok``), never what they were."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: Any
    body_size: int
    auth_ok: bool | None  # None: the route takes no Basic auth (upload target, playback)


@dataclass
class Fetch:
    """The simulator's GET of an asset's input URL, as Mux's ingest would make it."""

    url: str
    status_code: int | None = None
    size: int = 0
    sha256: str | None = None
    request: httpx.Request | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code == 200


@dataclass
class ReceivedUpload:
    """What a direct upload delivered: its bytes are not kept, their size and digest are."""

    size: int
    sha256: str
    chunks: int


@dataclass
class WebhookEvent:
    """One webhook event: its type, id and the JSON body every delivery of it carries."""

    type: str
    id: str
    body: JSON

    @property
    def data(self) -> JSON:
        data: JSON = self.body["data"]
        return data


@dataclass
class Delivery:
    """One delivery attempt of a webhook. ``status_code`` is None when the POST failed to
    connect or timed out (``error`` says how)."""

    event_type: str
    event_id: str
    status_code: int | None
    attempt: int
    error: str | None = None
    crafted: bool = False  # sent by ``send_webhook``, not by the simulator's own workings

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class _Rule:
    method: str
    prefix: str
    remaining: int
    status: int = 500
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.prefix)


@dataclass
class _Partial:
    """A chunked direct upload in progress."""

    data: bytearray = field(default_factory=bytearray)
    total: int | None = None
    chunks: int = 0


class MuxSimulator:
    """Mux Video's API, direct-upload target, playback and webhooks, in one ASGI app.

    ``base_url`` is where it is served (set it once the server is up; direct-upload URLs are
    built from it, or from the request's own base URL while it is None). ``webhook_url`` may
    be set or changed at any time; None sends no webhooks (held ones are still kept).
    """

    def __init__(self, token_id: str, token_secret: str, *, webhook_url: str | None = None,
                 webhook_secret: str = "mux-sim-webhook-secret",
                 processing_delay: float = 0.2,
                 public_keys: dict[str, bytes] | None = None) -> None:
        self.token_id = token_id
        self._token_secret = token_secret
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.processing_delay = processing_delay
        # Signing-key id (the JWT header's ``kid``) → PEM public key.
        self.public_keys: dict[str, bytes] = dict(public_keys or {})
        self.base_url: str | None = None

        self.webhook_retries = 3
        self.webhook_retry_delay = 0.2
        self.webhook_timeout = 5.0
        self.fetch_timeout = 10.0
        self.default_duration = 3.0
        # The duration the next asset to become ready gets (then back to default_duration).
        self.next_duration: float | None = None
        # Each webhook is delivered twice with the same event id (checked when it is sent).
        self.duplicate_webhooks = False

        self.assets: dict[str, JSON] = {}
        self.uploads: dict[str, JSON] = {}
        self.requests: list[RecordedRequest] = []
        self.fetches: list[Fetch] = []
        self.deliveries: list[Delivery] = []
        self.uploads_received: dict[str, ReceivedUpload] = {}
        self.held: list[WebhookEvent] = []
        self.events: list[WebhookEvent] = []  # every event emitted, held or not, in order
        # Exceptions a background task raised: a simulator bug, re-raised by settle().
        self.task_errors: list[BaseException] = []

        self._holding = False
        self._failures: list[_Rule] = []
        self._stalls: list[_Rule] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._processing: dict[str, asyncio.Task[None]] = {}
        self._outbox: list[WebhookEvent] = []
        self._drain: asyncio.Task[None] | None = None
        self._partials: dict[str, _Partial] = {}
        self._upload_sigs: dict[str, str] = {}
        self._upload_deadlines: dict[str, float] = {}
        self._playback: dict[str, tuple[str, str]] = {}  # playback id → (asset id, policy)

        self.app = Starlette(
            routes=self._routes(),
            exception_handlers={HTTPException: self._http_exception},
            lifespan=self._lifespan,
        )

    # ----------------------------------------------------------------------------- controls

    def fail_next(self, method: str, path_prefix: str, status: int = 500,
                  times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` (or ``"*"``) and the path
        prefix with ``status`` and an error body, after authentication (a request with bad
        credentials still gets its 401)."""
        self._failures.append(_Rule(method.upper(), path_prefix, times, status=status))

    def stall_next(self, method: str, path_prefix: str, seconds: float,
                   times: int = 1) -> None:
        """Sleep ``seconds`` before answering the next ``times`` matching requests, to make a
        client time out. The stall ends early when the client hangs up, so a stalled request
        never holds the server's shutdown for long."""
        self._stalls.append(_Rule(method.upper(), path_prefix, times, seconds=seconds))

    def hold_webhooks(self) -> None:
        """Queue webhooks in ``held`` instead of sending them, until ``release_webhooks``."""
        self._holding = True

    async def release_webhooks(self, order: str | Sequence[str] | None = None) -> None:
        """Stop holding and send what was held: in emission order (None), reversed
        (``"reverse"``), or sorted by a list of event types (stable; types it does not name go
        last). Returns once each was attempted once, in that order; retries run on."""
        self._holding = False
        events, self.held = self.held, []
        if order == "reverse":
            events.reverse()
        elif isinstance(order, str):
            raise ValueError(f"unknown order {order!r}: None, 'reverse' or a list of types")
        elif order is not None:
            rank = {kind: i for i, kind in enumerate(order)}
            events.sort(key=lambda e: rank.get(e.type, len(rank)))
        for event in events:
            await self._deliver(event)

    async def send_webhook(self, event_type: str, obj: JSON, *, secret: str | None = None,
                           timestamp: int | None = None,
                           body_override: bytes | str | None = None,
                           signature_override: str | None = None,
                           event_id: str | None = None) -> httpx.Response:
        """POST one crafted webhook to ``webhook_url`` now, once, and return the answer: a
        forged body, a stale timestamp or another secret's signature, for the receiver's
        refusal tests. Recorded in ``deliveries`` with ``crafted=True``."""
        if self.webhook_url is None:
            raise RuntimeError("webhook_url is not set")
        event = self._event(event_type, obj, event_id=event_id)
        if body_override is None:
            body = json.dumps(event.body, separators=(",", ":")).encode()
        else:
            body = body_override.encode() if isinstance(body_override, str) else body_override
        stamp = int(time.time()) if timestamp is None else timestamp
        signature = signature_override or sign_webhook(
            body, self.webhook_secret if secret is None else secret, stamp)
        async with httpx.AsyncClient(timeout=self.webhook_timeout) as client:
            try:
                response = await client.post(self.webhook_url, content=body, headers={
                    "Content-Type": "application/json", "Mux-Signature": signature})
            except httpx.HTTPError as exc:
                self.deliveries.append(Delivery(event.type, event.id, None, 1, repr(exc),
                                                crafted=True))
                raise
        self.deliveries.append(Delivery(event.type, event.id, response.status_code, 1,
                                        crafted=True))
        return response

    def set_asset_status(self, asset_id: str, status: str, *, notify: bool = True) -> JSON:
        """Force an asset's status (any pending processing of it stops) and, with ``notify``,
        send the matching webhook: ``video.asset.ready``, ``video.asset.errored``, or
        ``video.asset.updated`` for any other status. Returns the asset."""
        asset = self.assets.get(asset_id)
        if asset is None:
            raise KeyError(asset_id)
        task = self._processing.pop(asset_id, None)
        if task is not None:
            task.cancel()
        if status == "ready":
            self._make_ready(asset, notify=notify)
        elif status == "errored":
            self._make_errored(asset, "Forced by the test (set_asset_status)", notify=notify)
        else:
            asset["status"] = status
            if notify:
                self._emit("video.asset.updated", asset)
        return asset

    def set_upload_status(self, upload_id: str, status: str, *, notify: bool = True) -> JSON:
        """Force a direct upload's status; ``errored`` and ``cancelled`` send
        ``video.upload.errored``/``video.upload.cancelled`` with ``notify``."""
        upload = self.uploads[upload_id]
        upload["status"] = status
        if status == "errored":
            upload["error"] = {"type": "invalid_input", "message": "Forced by the test"}
        if notify and status in ("errored", "cancelled"):
            self._emit(f"video.upload.{status}", upload)
        return upload

    def expire_upload(self, upload_id: str) -> None:
        """Run a direct upload's timeout out now: a waiting upload reads as ``timed_out``
        from here on (Mux sends no webhook for that, nor does the simulator)."""
        self._upload_deadlines[upload_id] = time.monotonic() - 1

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until no background task (ingest, processing, webhook delivery or retry) is
        pending; held webhooks are not waited for. Re-raises a task's crash, if any."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        if self.task_errors:
            raise RuntimeError("a simulator background task failed") from self.task_errors[0]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0,
                       interval: float = 0.02) -> Any:
        """Poll ``predicate`` (sync, or returning an awaitable) until it is truthy and return
        its value; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Cancel every background task (the app's shutdown does it too)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def playback_url(self, playback_id: str, token: str | None = None) -> str:
        """Where the simulator serves a playback id's HLS playlist."""
        base = self.base_url or ""
        return f"{base}/stream/{playback_id}.m3u8" + (f"?token={token}" if token else "")

    # ------------------------------------------------------------------------------ routing

    def _routes(self) -> list[Route]:
        def route(path: str, handler: Handler, methods: list[str], *, auth: bool = True,
                  cors: bool = False) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._dispatch(request, handler, auth=auth, cors=cors)
            return Route(path, endpoint, methods=methods)

        return [
            route("/video/v1/assets", self._create_asset, ["POST"]),
            route("/video/v1/assets", self._list_assets, ["GET"]),
            route("/video/v1/assets/{asset_id}", self._get_asset, ["GET"]),
            route("/video/v1/assets/{asset_id}", self._delete_asset, ["DELETE"]),
            route("/video/v1/uploads", self._create_upload, ["POST"]),
            route("/video/v1/uploads", self._list_uploads, ["GET"]),
            route("/video/v1/uploads/{upload_id}", self._get_upload, ["GET"]),
            route("/video/v1/uploads/{upload_id}/cancel", self._cancel_upload, ["PUT"]),
            route("/upload/{upload_id}", self._upload_target, ["PUT", "OPTIONS"], auth=False,
                  cors=True),
            route("/stream/{playback_id}.m3u8", self._stream, ["GET"], auth=False),
            route("/image/{playback_id}/thumbnail.jpg", self._thumbnail, ["GET"], auth=False),
            route("/image/{playback_id}/storyboard.vtt", self._storyboard, ["GET"],
                  auth=False),
        ]

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404/405 (no such route or method) in Mux's error shape."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return error_response(status, str(getattr(exc, "detail", exc)))

    async def _dispatch(self, request: Request, handler: Handler, *, auth: bool,
                        cors: bool) -> Response:
        body = await request.body()
        path = request.url.path
        parsed: Any = None
        if body and path.startswith("/video/"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        auth_ok = self._authorized(request) if auth else None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(RecordedRequest(request.method, path, request.url.query, headers,
                                             parsed, len(body), auth_ok))
        stall = self._take(self._stalls, request.method, path)
        if stall is not None:
            await self._stall(request, stall.seconds)
        try:
            if auth and not auth_ok:
                raise MuxError(401, "Unauthorized request",
                               headers={"WWW-Authenticate": 'Basic realm="Mux"'})
            failure = self._take(self._failures, request.method, path)
            if failure is not None:
                raise MuxError(failure.status, f"Simulated failure ({failure.status})")
            response = await handler(request, body)
        except MuxError as exc:
            response = exc.response()
        if cors:
            upload = self.uploads.get(request.path_params.get("upload_id", ""))
            if upload is not None:
                response.headers.update(self._cors_headers(upload))
        return response

    @staticmethod
    def _take(rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.matches(method, path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
                return rule
        return None

    @staticmethod
    async def _stall(request: Request, seconds: float) -> None:
        # The body is read already, so the next ASGI message is the client's disconnect.
        try:
            async with asyncio.timeout(seconds):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            pass

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        token_id, sep, token_secret = decoded.partition(":")
        return bool(sep) and hmac.compare_digest(token_id, self.token_id) and \
            hmac.compare_digest(token_secret, self._token_secret)

    # ------------------------------------------------------------------------------- assets

    async def _create_asset(self, request: Request, body: bytes) -> Response:
        payload = _json_object(body)
        unknown = set(payload) - ASSET_SETTINGS - {"inputs"}
        if unknown:
            raise _invalid(f"unknown fields: {', '.join(sorted(unknown))}")
        url = _validate_inputs(payload.get("inputs"))
        settings = _validate_settings(payload)
        asset = self._new_asset(settings, ingest_type="on_demand_url")
        self._emit("video.asset.created", asset)
        self._processing[asset["id"]] = self._spawn(self._ingest_url(asset["id"], url))
        return JSONResponse({"data": asset}, status_code=201)

    async def _list_assets(self, request: Request, body: bytes) -> Response:
        limit = _int_param(request, "limit", 25, 1, 100)
        page = _int_param(request, "page", 1, 1, 10**6)
        assets = list(reversed(self.assets.values()))  # newest first, as Mux lists them
        upload_id = request.query_params.get("upload_id")
        if upload_id is not None:
            assets = [a for a in assets if a.get("upload_id") == upload_id]
        return JSONResponse({"data": assets[(page - 1) * limit:page * limit]})

    async def _get_asset(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"data": self._asset(request)})

    async def _delete_asset(self, request: Request, body: bytes) -> Response:
        asset = self._asset(request)
        del self.assets[asset["id"]]
        task = self._processing.pop(asset["id"], None)
        if task is not None:
            task.cancel()
        for playback in asset.get("playback_ids", []):
            self._playback.pop(playback["id"], None)
        self._emit("video.asset.deleted", asset)
        return Response(status_code=204)

    def _asset(self, request: Request) -> JSON:
        asset = self.assets.get(request.path_params["asset_id"])
        if asset is None:
            raise MuxError(404, "Asset not found")
        return asset

    def _new_asset(self, settings: JSON, *, ingest_type: str,
                   upload_id: str | None = None) -> JSON:
        asset: JSON = {"id": _new_id(), "status": "preparing"}
        policies = settings.get("playback_policies", [])
        if policies:  # Mux leaves the field out when an asset has no playback id
            asset["playback_ids"] = [{"id": _new_id(), "policy": p} for p in policies]
        if "passthrough" in settings:
            asset["passthrough"] = settings["passthrough"]
        asset.update(created_at=str(int(time.time())), mp4_support="none",
                     master_access="none", ingest_type=ingest_type)
        for key in ("video_quality", "max_resolution_tier", "normalize_audio", "test"):
            if key in settings:
                asset[key] = settings[key]
        if upload_id is not None:
            asset["upload_id"] = upload_id
        self.assets[asset["id"]] = asset
        for playback in asset.get("playback_ids", []):
            self._playback[playback["id"]] = (asset["id"], playback["policy"])
        return asset

    async def _ingest_url(self, asset_id: str, url: str) -> None:
        fetch = await self._fetch(url)
        asset = self.assets.get(asset_id)
        if asset is None or asset["status"] != "preparing":
            return
        if not fetch.ok:
            reason = fetch.error or f"the input URL answered HTTP {fetch.status_code}"
            self._make_errored(asset, f"Failed to download the input file: {reason}")
        elif fetch.size == 0:
            self._make_errored(asset, "The input file is empty")
        else:
            await asyncio.sleep(self.processing_delay)
            if self.assets.get(asset_id) is asset and asset["status"] == "preparing":
                self._make_ready(asset)
        self._processing.pop(asset_id, None)

    async def _fetch(self, url: str) -> Fetch:
        """GET the input as Mux's ingest would (redirects not followed), hashing as it
        streams so a large file is not held in memory."""
        fetch = Fetch(url)
        self.fetches.append(fetch)
        digest = hashlib.sha256()
        try:
            async with httpx.AsyncClient(follow_redirects=False, timeout=self.fetch_timeout,
                                         headers={"User-Agent": "Mux-Simulator/1"}) as client:
                async with client.stream("GET", url) as response:
                    fetch.request = response.request
                    fetch.status_code = response.status_code
                    async for chunk in response.aiter_bytes():
                        fetch.size += len(chunk)
                        digest.update(chunk)
        except httpx.HTTPError as exc:
            fetch.error = f"{type(exc).__name__}: {exc}"
            return fetch
        fetch.sha256 = digest.hexdigest()
        return fetch

    async def _process_upload(self, asset_id: str, size: int) -> None:
        asset = self.assets.get(asset_id)
        if asset is None:
            return
        if size == 0:
            self._make_errored(asset, "The uploaded file is empty")
        else:
            await asyncio.sleep(self.processing_delay)
            if self.assets.get(asset_id) is asset and asset["status"] == "preparing":
                self._make_ready(asset)
        self._processing.pop(asset_id, None)

    def _make_ready(self, asset: JSON, *, notify: bool = True) -> None:
        duration = self.default_duration if self.next_duration is None else self.next_duration
        self.next_duration = None
        asset.pop("errors", None)
        asset.update(
            status="ready", duration=duration, aspect_ratio="16:9",
            max_stored_resolution="HD", max_stored_frame_rate=30.0, resolution_tier="1080p",
            tracks=[
                {"type": "video", "id": _new_id(), "duration": duration, "max_width": 1920,
                 "max_height": 1080, "max_frame_rate": 30.0},
                {"type": "audio", "id": _new_id(), "duration": duration,
                 "max_channels": 2},
            ],
        )
        if notify:
            self._emit("video.asset.ready", asset)

    def _make_errored(self, asset: JSON, message: str, *, notify: bool = True) -> None:
        asset["status"] = "errored"
        asset["errors"] = {"type": "invalid_input", "messages": [message]}
        if notify:
            self._emit("video.asset.errored", asset)

    # ------------------------------------------------------------------------------ uploads

    async def _create_upload(self, request: Request, body: bytes) -> Response:
        payload = _json_object(body)
        unknown = set(payload) - UPLOAD_FIELDS
        if unknown:
            raise _invalid(f"unknown fields: {', '.join(sorted(unknown))}")
        cors_origin = payload.get("cors_origin")
        if cors_origin is not None and not (
                isinstance(cors_origin, str)
                and (cors_origin == "*" or urlsplit(cors_origin).scheme in ("http", "https"))):
            raise _invalid("cors_origin must be an origin URL or '*'")
        timeout = payload.get("timeout", 3600)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or \
                not UPLOAD_TIMEOUT[0] <= timeout <= UPLOAD_TIMEOUT[1]:
            raise _invalid(f"timeout must be an integer from {UPLOAD_TIMEOUT[0]} to "
                           f"{UPLOAD_TIMEOUT[1]}")
        test = payload.get("test")
        if test is not None and not isinstance(test, bool):
            raise _invalid("test must be a boolean")
        raw_settings = payload.get("new_asset_settings", {})
        if not isinstance(raw_settings, dict):
            raise _invalid("new_asset_settings must be an object")
        unknown = set(raw_settings) - ASSET_SETTINGS
        if unknown:
            raise _invalid(f"unknown fields in new_asset_settings: {', '.join(sorted(unknown))}")
        settings = _validate_settings(raw_settings, prefix="new_asset_settings.")

        upload_id = _new_id()
        sig = secrets.token_urlsafe(24)
        base = (self.base_url or str(request.base_url)).rstrip("/")
        upload: JSON = {"id": upload_id, "url": f"{base}/upload/{upload_id}?sig={sig}",
                        "status": "waiting", "timeout": timeout, "new_asset_settings": settings}
        if cors_origin is not None:
            upload["cors_origin"] = cors_origin
        if test:
            upload["test"] = True
        self.uploads[upload_id] = upload
        self._upload_sigs[upload_id] = sig
        self._upload_deadlines[upload_id] = time.monotonic() + timeout
        self._emit("video.upload.created", upload)
        return JSONResponse({"data": upload}, status_code=201)

    async def _list_uploads(self, request: Request, body: bytes) -> Response:
        limit = _int_param(request, "limit", 25, 1, 100)
        uploads = [self._refresh(u) for u in reversed(self.uploads.values())]
        return JSONResponse({"data": uploads[:limit]})

    async def _get_upload(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"data": self._refresh(self._upload(request))})

    async def _cancel_upload(self, request: Request, body: bytes) -> Response:
        upload = self._refresh(self._upload(request))
        if upload["status"] != "waiting":
            raise _invalid(f"Upload is {upload['status']}; only a waiting upload is cancelled")
        upload["status"] = "cancelled"
        self._partials.pop(upload["id"], None)
        self._emit("video.upload.cancelled", upload)
        return JSONResponse({"data": upload})

    def _upload(self, request: Request) -> JSON:
        upload = self.uploads.get(request.path_params["upload_id"])
        if upload is None:
            raise MuxError(404, "Upload not found")
        return upload

    def _refresh(self, upload: JSON) -> JSON:
        """A waiting upload past its timeout is timed out (checked whenever it is read)."""
        deadline = self._upload_deadlines.get(upload["id"])
        if upload["status"] == "waiting" and deadline is not None and \
                time.monotonic() > deadline:
            upload["status"] = "timed_out"
            self._partials.pop(upload["id"], None)
        return upload

    @staticmethod
    def _cors_headers(upload: JSON) -> dict[str, str]:
        origin = upload.get("cors_origin")
        if origin is None:
            return {}
        headers = {"Access-Control-Allow-Origin": origin,
                   "Access-Control-Expose-Headers": "Range"}
        if origin != "*":
            headers["Vary"] = "Origin"
        return headers

    async def _upload_target(self, request: Request, body: bytes) -> Response:
        """The signed URL a client PUTs the file to: the ``sig`` is the credential."""
        upload = self._upload(request)
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={
                "Access-Control-Allow-Methods": "PUT, OPTIONS",
                "Access-Control-Allow-Headers": "content-type, content-range",
                "Access-Control-Max-Age": "3600"})
        sig = request.query_params.get("sig", "")
        if not hmac.compare_digest(sig, self._upload_sigs[upload["id"]]):
            raise MuxError(403, "Invalid upload signature")
        self._refresh(upload)
        if upload["status"] != "waiting":
            raise _invalid(f"Upload is {upload['status']}; it takes no more bytes")

        content_range = request.headers.get("content-range")
        if content_range is None:
            return self._complete_upload(upload, bytes(body), chunks=1)
        match = _CONTENT_RANGE.match(content_range.strip())
        if match is None:
            raise _invalid(f"Malformed Content-Range: {content_range!r}")
        partial = self._partials.setdefault(upload["id"], _Partial())
        total = None if match["total"] == "*" else int(match["total"])
        if total is not None:
            if partial.total not in (None, total):
                raise _invalid(f"Content-Range total {total} differs from {partial.total}")
            partial.total = total
        if match["first"] is None:  # "bytes */total": a status query, or a 0-byte finish
            if body:
                raise _invalid("A 'bytes */total' request carries no body")
            if total is not None and len(partial.data) == total:
                return self._complete_upload(upload, bytes(partial.data), partial.chunks)
            return self._incomplete(partial)
        first, last = int(match["first"]), int(match["last"])
        if last < first or len(body) != last - first + 1:
            raise _invalid(f"Content-Range {content_range!r} does not match the "
                           f"{len(body)}-byte body")
        if total is not None and last >= total:
            raise _invalid(f"Content-Range {content_range!r} runs past the total")
        if first > len(partial.data):
            raise _invalid(f"Chunk starts at {first}, but only {len(partial.data)} bytes "
                           "are stored")
        # An overlapping chunk (a client's retry) adds only the bytes not stored yet.
        partial.data.extend(body[len(partial.data) - first:])
        partial.chunks += 1
        if partial.total is not None and len(partial.data) == partial.total:
            return self._complete_upload(upload, bytes(partial.data), partial.chunks)
        return self._incomplete(partial)

    @staticmethod
    def _incomplete(partial: _Partial) -> Response:
        headers = {"Range": f"bytes=0-{len(partial.data) - 1}"} if partial.data else {}
        return Response(status_code=308, headers=headers)

    def _complete_upload(self, upload: JSON, data: bytes, chunks: int) -> Response:
        self._partials.pop(upload["id"], None)
        self.uploads_received[upload["id"]] = ReceivedUpload(
            len(data), hashlib.sha256(data).hexdigest(), chunks)
        asset = self._new_asset(upload["new_asset_settings"],
                                ingest_type="on_demand_direct_upload", upload_id=upload["id"])
        upload["status"] = "asset_created"
        upload["asset_id"] = asset["id"]
        self._emit("video.upload.asset_created", upload)
        self._emit("video.asset.created", asset)
        self._processing[asset["id"]] = self._spawn(self._process_upload(asset["id"],
                                                                         len(data)))
        return Response(status_code=200)

    # ----------------------------------------------------------------------------- playback

    async def _stream(self, request: Request, body: bytes) -> Response:
        self._check_playback(request, AUDIENCE_VIDEO)
        return Response(PLAYLIST, media_type="application/vnd.apple.mpegurl")

    async def _thumbnail(self, request: Request, body: bytes) -> Response:
        self._check_playback(request, AUDIENCE_THUMBNAIL)
        return Response(JPEG, media_type="image/jpeg")

    async def _storyboard(self, request: Request, body: bytes) -> Response:
        self._check_playback(request, AUDIENCE_STORYBOARD)
        return Response(STORYBOARD, media_type="text/vtt")

    def _check_playback(self, request: Request, audience: str) -> None:
        """A signed playback id needs an RS256 JWT from a known signing key, for this
        playback id (``sub``) and this kind of resource (``aud``), not expired."""
        playback_id = request.path_params["playback_id"]
        found = self._playback.get(playback_id)
        if found is None:
            raise MuxError(404, "Playback ID not found")
        asset_id, policy = found
        if self.assets[asset_id]["status"] != "ready":
            raise MuxError(412, "The asset is not ready")
        if policy == "public":
            return
        reason = self._token_problem(request.query_params.get("token"), playback_id, audience)
        if reason is not None:
            raise MuxError(403, reason)

    def _token_problem(self, token: str | None, playback_id: str, audience: str) -> str | None:
        if not token:
            return "A signed playback ID needs a token"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            return f"Malformed token: {exc}"
        if header.get("alg") != "RS256":
            return f"Token algorithm must be RS256, not {header.get('alg')!r}"
        key = self.public_keys.get(str(header.get("kid")))
        if key is None:
            return f"Unknown signing key (kid {header.get('kid')!r})"
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=audience,
                                options={"require": ["exp", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            return "Token expired"
        except jwt.InvalidAudienceError:
            return f"Token audience must be {audience!r}"
        except jwt.InvalidTokenError as exc:
            return f"Invalid token: {exc}"
        if claims.get("sub") != playback_id:
            return "Token subject is not this playback ID"
        return None

    # ----------------------------------------------------------------------------- webhooks

    def _event(self, event_type: str, obj: JSON, *, event_id: str | None = None) -> WebhookEvent:
        event_id = event_id or str(uuid.uuid4())
        body: JSON = {
            "type": event_type, "id": event_id, "created_at": _now_iso(),
            "object": {"type": event_type.split(".")[1], "id": obj.get("id")},
            "environment": {"name": "Development", "id": "sim"},
            "data": copy.deepcopy(obj),  # the object as it is now, not as it will become
            "attempts": [], "accessor": None, "accessor_source": None, "request_id": None,
        }
        return WebhookEvent(event_type, event_id, body)

    def _emit(self, event_type: str, obj: JSON) -> None:
        event = self._event(event_type, obj)
        self.events.append(event)
        if self._holding:
            self.held.append(event)
            return
        if self.webhook_url is None:
            return
        # One sender sends first attempts in emission order, so with no faults a receiver
        # sees created before ready; retries run on their own.
        self._outbox.append(event)
        if self._drain is None or self._drain.done():
            self._drain = self._spawn(self._drain_outbox())

    async def _drain_outbox(self) -> None:
        while self._outbox:
            await self._deliver(self._outbox.pop(0))

    async def _deliver(self, event: WebhookEvent) -> None:
        """First attempt of each copy now; a failed one is retried in the background."""
        for _ in range(2 if self.duplicate_webhooks else 1):
            if not await self._attempt(event, 1):
                self._spawn(self._retry(event))

    async def _retry(self, event: WebhookEvent) -> None:
        for attempt in range(2, self.webhook_retries + 2):
            await asyncio.sleep(self.webhook_retry_delay)
            if await self._attempt(event, attempt):
                return

    async def _attempt(self, event: WebhookEvent, attempt: int) -> bool:
        url = self.webhook_url
        if url is None:
            return True  # nowhere to send it: nothing to retry
        body = json.dumps(event.body, separators=(",", ":")).encode()
        signature = sign_webhook(body, self.webhook_secret, int(time.time()))
        try:
            async with httpx.AsyncClient(timeout=self.webhook_timeout) as client:
                response = await client.post(url, content=body, headers={
                    "Content-Type": "application/json", "Mux-Signature": signature})
        except httpx.HTTPError as exc:
            delivery = Delivery(event.type, event.id, None, attempt,
                                f"{type(exc).__name__}: {exc}")
        else:
            delivery = Delivery(event.type, event.id, response.status_code, attempt)
        self.deliveries.append(delivery)
        return delivery.ok

    # ------------------------------------------------------------------------------- tasks

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.task_errors.append(task.exception())  # type: ignore[arg-type]


def _json_object(body: bytes) -> JSON:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _invalid("The request body must be a JSON object")
    return payload


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _validate_inputs(inputs: Any) -> str:
    """The video input's URL: one ``{"url": "http(s)://..."}`` (the simulator takes no
    overlay or text-track inputs)."""
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise _invalid("inputs must be a list of one object")
    unknown = set(inputs[0]) - {"url"}
    if unknown:
        raise _invalid(f"unknown fields in inputs[0]: {', '.join(sorted(unknown))}")
    url = inputs[0].get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or \
            not urlsplit(url).netloc:
        raise _invalid("inputs[0].url must be an http(s) URL")
    return url


def _validate_settings(payload: JSON, prefix: str = "") -> JSON:
    """The asset settings of a create-asset body or of an upload's ``new_asset_settings``,
    checked field by field; returns only the fields that were given."""
    settings: JSON = {}
    if "playback_policies" in payload:
        policies = payload["playback_policies"]
        if not isinstance(policies, list) or \
                any(p not in PLAYBACK_POLICIES for p in policies):
            raise _invalid(f"{prefix}playback_policies must be a list of "
                           f"{' or '.join(PLAYBACK_POLICIES)}")
        settings["playback_policies"] = list(policies)
    if "passthrough" in payload:
        passthrough = payload["passthrough"]
        if not isinstance(passthrough, str) or len(passthrough) > 255:
            raise _invalid(f"{prefix}passthrough must be a string of at most 255 characters")
        settings["passthrough"] = passthrough
    choices: dict[str, Sequence[str]] = {"video_quality": VIDEO_QUALITIES,
                                         "max_resolution_tier": RESOLUTION_TIERS}
    for key, allowed in choices.items():
        if key in payload:
            if payload[key] not in allowed:
                raise _invalid(f"{prefix}{key} must be one of {', '.join(allowed)}")
            settings[key] = payload[key]
    for key in ("normalize_audio", "test"):
        if key in payload:
            if not isinstance(payload[key], bool):
                raise _invalid(f"{prefix}{key} must be a boolean")
            settings[key] = payload[key]
    return settings


@asynccontextmanager
async def run_mux_simulator(**kw: Any) -> AsyncIterator[MuxSimulator]:
    """A ``MuxSimulator`` served by uvicorn on a loopback port, ``base_url`` set. Keyword
    arguments go to ``MuxSimulator``; the token id and secret default to test values."""
    from tests.conftest import LiveServer  # here: the demo mounts the simulator without pytest

    kw.setdefault("token_id", "sim-token-id")
    kw.setdefault("token_secret", "sim-token-secret")
    sim = MuxSimulator(**kw)
    async with LiveServer(sim.app, access_log=False) as server:
        sim.base_url = server.url
        try:
            yield sim
        finally:
            await sim.aclose()
