"""Mux Video as a streaming provider: its REST API over httpx, webhooks, signed playback.

Only what Rindle uses of the API: assets (create from a URL, get, delete), direct uploads
(create, get, cancel) and an authenticated list for health checks. Webhooks are verified
with the ``Mux-Signature`` header (HMAC-SHA256 of ``timestamp.body``); playback tokens are
RS256 JWTs signed with a Mux signing key. The endpoints are configurable so tests can point
them at a local simulator; the defaults are Mux's own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ... import telemetry
from ..._backoff import backoff
from ..._json import loads_object
from ...errors import ConfigurationError, ValidationError
from ...logs import get_logger
from .base import (
    PLAYBACK_KINDS,
    PlaybackId,
    ProviderEvent,
    RemoteAsset,
    RemoteUpload,
    StreamingError,
    WebhookRejected,
)

log = get_logger("rindle.streaming.mux")

API_URL = "https://api.mux.com"
STREAM_URL = "https://stream.mux.com"
IMAGE_URL = "https://image.mux.com"

# Mux's asset statuses in Rindle's provider-asset vocabulary.
_ASSET_STATES = {"preparing": "processing", "ready": "ready", "errored": "errored"}
# What each webhook event says about the provider asset (events not here change nothing).
_EVENT_STATES = {
    "video.asset.created": "processing",
    "video.asset.ready": "ready",
    "video.asset.errored": "errored",
    "video.asset.deleted": "deleted",
    "video.upload.asset_created": "processing",
    "video.upload.cancelled": "deleted",
    "video.upload.errored": "errored",
}
_AUDIENCES = {"video": "v", "thumbnail": "t", "storyboard": "s"}


def _load_private_key(value: str | bytes) -> Any:
    """A signing key as Mux hands it out (base64 of a PEM) or as a PEM."""
    from cryptography.hazmat.primitives import serialization

    raw = value.encode() if isinstance(value, str) else value
    if b"-----BEGIN" not in raw:
        try:
            raw = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            raise ConfigurationError("the Mux signing key is neither a PEM nor base64 of one",
                                     code="streaming_key_invalid") from None
    try:
        return serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError("the Mux signing key is not a readable private key",
                                 code="streaming_key_invalid") from None


class Mux:
    """The Mux provider. Give credentials, or build it with ``Mux.from_env()``.

    ``webhook_secrets``: every secret a webhook may be signed with (the newest first;
    keep the old one listed while rotating). ``signing_key_id`` / ``signing_private_key``:
    a Mux signing key for signed playback (the private key as Mux gives it, base64, or as
    a PEM). ``webhook_tolerance``: how old (seconds) a webhook's signed timestamp may be.
    ``retries``: how often a failed call (5xx, 429, a timeout) is tried again, with
    backoff, before ``StreamingError`` is raised.
    """

    name = "mux"

    def __init__(self, token_id: str, token_secret: str, *,
                 webhook_secrets: Sequence[str] = (),
                 signing_key_id: str | None = None,
                 signing_private_key: str | bytes | None = None,
                 api_url: str = API_URL, stream_url: str = STREAM_URL,
                 image_url: str = IMAGE_URL, timeout: float = 10.0,
                 webhook_tolerance: int = 300, retries: int = 3,
                 retry_base: float = 0.25) -> None:
        if not token_id or not token_secret:
            raise ConfigurationError("Mux needs an access token id and secret (MUX_TOKEN_ID, "
                                     "MUX_TOKEN_SECRET)", code="streaming_not_configured")
        self._auth = (token_id, token_secret)
        self._webhook_secrets = tuple(s for s in webhook_secrets if s)
        self.signing_key_id = signing_key_id
        self._signing_key_text = signing_private_key
        self._signing_key: Any = None
        self.api_url = api_url.rstrip("/")
        self.stream_url = stream_url.rstrip("/")
        self.image_url = image_url.rstrip("/")
        self.timeout = timeout
        self.webhook_tolerance = webhook_tolerance
        self.retries = retries
        self.retry_base = retry_base
        self._client: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Mux:
        """From ``MUX_TOKEN_ID``, ``MUX_TOKEN_SECRET``, ``MUX_WEBHOOK_SECRETS`` (comma
        separated), ``MUX_SIGNING_KEY_ID``, ``MUX_SIGNING_PRIVATE_KEY`` and, to point
        elsewhere, ``MUX_API_URL``, ``MUX_STREAM_URL``, ``MUX_IMAGE_URL``."""
        env = os.environ if environ is None else environ
        secrets = [s.strip() for s in env.get("MUX_WEBHOOK_SECRETS", "").split(",")]
        for key, opt in (("MUX_API_URL", "api_url"), ("MUX_STREAM_URL", "stream_url"),
                         ("MUX_IMAGE_URL", "image_url")):
            if env.get(key):
                options.setdefault(opt, env[key])
        return cls(env.get("MUX_TOKEN_ID", ""), env.get("MUX_TOKEN_SECRET", ""),
                   webhook_secrets=[s for s in secrets if s],
                   signing_key_id=env.get("MUX_SIGNING_KEY_ID") or None,
                   signing_private_key=env.get("MUX_SIGNING_PRIVATE_KEY") or None, **options)

    def __repr__(self) -> str:
        return f"Mux(api_url={self.api_url!r})"

    # --- HTTP ------------------------------------------------------------------------------

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(base_url=self.api_url, auth=self._auth,
                                             timeout=self.timeout,
                                             headers={"User-Agent": "rindle-python"})
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, method: str, template: str, *, ref: str | None = None,
                    json_body: Any = None, params: Mapping[str, Any] | None = None,
                    missing_ok: bool = False) -> dict[str, Any] | None:
        """One API call, tried again on 5xx, 429 and timeouts. ``None`` for a 404 when
        ``missing_ok``; the ``data`` of the answer otherwise (``{}`` for 204).

        ``template`` is the path with ``{id}`` standing for ``ref``: telemetry names the
        template, so one series per endpoint, and no provider id, reaches a dashboard.
        """
        import httpx

        path = template.format(id=quote(ref, safe="")) if ref is not None else template
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            status: int | None = None
            try:
                response = await self._http().request(method, path, json=json_body,
                                                      params=params)
            except httpx.TransportError as exc:  # timeouts, refused connections
                problem: StreamingError = StreamingError(
                    f"Mux did not answer {method} {path}: {type(exc).__name__}",
                    code="provider_unavailable", retryable=True)
                retry_after = None
            else:
                status = response.status_code
                if status < 300 or (status == 404 and missing_ok):
                    self._measured(method, template, status, attempt, "ok", started)
                    if status == 404:
                        return None
                    if status == 204 or not response.content:
                        return {}
                    data = response.json().get("data")
                    return data if isinstance(data, dict) else {"items": data}
                problem = StreamingError(
                    f"Mux answered {status} to {method} {path}: {_error_text(response)}",
                    code="provider_unavailable" if status >= 500 or status == 429
                    else "provider_rejected",
                    retryable=status >= 500 or status == 429, status=status)
                retry_after = response.headers.get("retry-after")
            final = not problem.retryable or attempt > self.retries
            self._measured(method, template, status, attempt, "error" if final else "retry",
                           started)
            if final:
                raise problem
            delay = backoff(attempt, self.retry_base, 8.0)
            if retry_after and retry_after.isdigit():
                delay = max(delay, min(float(retry_after), 30.0))
            log.info("Mux %s %s failed (%s); retry %d/%d in %.2fs", method, path,
                     problem.code, attempt, self.retries, delay)
            await asyncio.sleep(delay)

    def _measured(self, method: str, template: str, status: int | None, attempt: int,
                  outcome: str, started: float) -> None:
        telemetry.emit("rindle.streaming.request", provider=self.name, method=method,
                       path=template, status=status, attempt=attempt, outcome=outcome,
                       duration=time.perf_counter() - started)

    # --- assets ----------------------------------------------------------------------------

    async def create_asset(self, source_url: str, *, passthrough: str,
                           playback_policy: str) -> RemoteAsset:
        data = await self._call("POST", "/video/v1/assets", json_body={
            "inputs": [{"url": source_url}],
            "playback_policies": [playback_policy],
            "passthrough": passthrough,
        })
        assert data is not None
        return _asset(data)

    async def get_asset(self, asset_id: str) -> RemoteAsset | None:
        data = await self._call("GET", "/video/v1/assets/{id}", ref=asset_id,
                                missing_ok=True)
        return None if data is None else _asset(data)

    async def delete_asset(self, asset_id: str) -> None:
        await self._call("DELETE", "/video/v1/assets/{id}", ref=asset_id,
                         missing_ok=True)

    # --- direct uploads --------------------------------------------------------------------

    async def create_direct_upload(self, *, passthrough: str, playback_policy: str,
                                   cors_origin: str, timeout: int) -> RemoteUpload:
        data = await self._call("POST", "/video/v1/uploads", json_body={
            "cors_origin": cors_origin,
            "timeout": timeout,
            "new_asset_settings": {"playback_policies": [playback_policy],
                                   "passthrough": passthrough},
        })
        assert data is not None
        return _upload(data)

    async def get_upload(self, upload_id: str) -> RemoteUpload | None:
        data = await self._call("GET", "/video/v1/uploads/{id}", ref=upload_id,
                                missing_ok=True)
        return None if data is None else _upload(data)

    async def cancel_direct_upload(self, upload_id: str) -> None:
        try:
            await self._call("PUT", "/video/v1/uploads/{id}/cancel", ref=upload_id,
                             missing_ok=True)
        except StreamingError as exc:
            # Mux refuses to cancel an upload that is no longer waiting: it is over anyway.
            if exc.provider_status != 400:
                raise

    # --- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self._webhook_secrets:
            raise WebhookRejected("no Mux webhook secret is configured (MUX_WEBHOOK_SECRETS)",
                                  code="webhook_not_configured")
        header = headers.get("mux-signature") or headers.get("Mux-Signature") or ""
        timestamp, signatures = _parse_signature(header)
        if abs(time.time() - timestamp) > self.webhook_tolerance:
            raise WebhookRejected("the webhook's signed timestamp is outside the tolerance",
                                  code="webhook_timestamp_stale")
        signed = str(timestamp).encode() + b"." + body
        for secret in self._webhook_secrets:
            expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
            if any(hmac.compare_digest(expected, s) for s in signatures):
                break
        else:
            raise WebhookRejected("the webhook's signature matches no configured secret")
        # Signed, but parsed with limits all the same: a secret that leaked must not buy a
        # RecursionError (a 500 with a traceback per request).
        try:
            payload = loads_object(body)
        except ValidationError:
            raise WebhookRejected("the webhook body is not a JSON object",
                                  code="invalid_json") from None
        if not isinstance(payload.get("type"), str) or not isinstance(payload.get("id"), str):
            raise WebhookRejected("the webhook has no event type or id", code="invalid_json")
        return _event(payload)

    # --- playback --------------------------------------------------------------------------

    def playback_url(self, playback_id: str, *, kind: str = "video", signed: bool = True,
                     expires_in: int = 3600) -> str:
        if kind not in PLAYBACK_KINDS:
            raise ValueError(f"kind must be one of {PLAYBACK_KINDS}, not {kind!r}")
        pid = quote(playback_id, safe="")
        if kind == "video":
            url = f"{self.stream_url}/{pid}.m3u8"
        elif kind == "thumbnail":
            url = f"{self.image_url}/{pid}/thumbnail.jpg"
        else:
            url = f"{self.image_url}/{pid}/storyboard.vtt"
        if not signed:
            return url
        return f"{url}?token={self.playback_token(playback_id, kind=kind, expires_in=expires_in)}"

    def playback_token(self, playback_id: str, *, kind: str = "video",
                       expires_in: int = 3600) -> str:
        """The RS256 JWT Mux checks on signed playback (``kid`` names the signing key)."""
        import jwt

        if not self.signing_key_id or not self._signing_key_text:
            raise ConfigurationError("signed playback needs a Mux signing key "
                                     "(MUX_SIGNING_KEY_ID, MUX_SIGNING_PRIVATE_KEY)",
                                     code="streaming_not_configured")
        if self._signing_key is None:
            self._signing_key = _load_private_key(self._signing_key_text)
        claims = {"sub": playback_id, "aud": _AUDIENCES[kind],
                  "exp": int(time.time()) + int(expires_in)}
        return jwt.encode(claims, self._signing_key, algorithm="RS256",
                          headers={"kid": self.signing_key_id})

    # --- health ----------------------------------------------------------------------------

    async def check(self) -> list[str]:
        problems = []
        try:
            await self._call("GET", "/video/v1/assets", params={"limit": 1})
        except StreamingError as exc:
            problems.append("credentials: the token was refused" if exc.provider_status in
                            (401, 403) else f"API: {exc.message}")
        if not self._webhook_secrets:
            problems.append("webhooks: no secret is set (MUX_WEBHOOK_SECRETS); every webhook "
                            "would be refused")
        if not self.signing_key_id or not self._signing_key_text:
            problems.append("signed playback: no signing key (MUX_SIGNING_KEY_ID, "
                            "MUX_SIGNING_PRIVATE_KEY)")
        else:
            try:
                _load_private_key(self._signing_key_text)
            except ConfigurationError as exc:
                problems.append(f"signed playback: {exc.message}")
        return problems


def _error_text(response: Any) -> str:
    try:
        err = response.json().get("error") or {}
        messages = err.get("messages") or []
        return f"{err.get('type', 'error')}: {'; '.join(str(m) for m in messages)}"[:300]
    except (ValueError, AttributeError):
        return response.reason_phrase or "no detail"


def _parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("the Mux-Signature header is missing or malformed",
                              code="webhook_signature_malformed")
    return timestamp, signatures


def _asset(data: Mapping[str, Any]) -> RemoteAsset:
    errors = data.get("errors") or {}
    messages = errors.get("messages") if isinstance(errors, dict) else None
    return RemoteAsset(
        id=str(data.get("id", "")),
        state=_ASSET_STATES.get(str(data.get("status")), "processing"),
        playback_ids=tuple(PlaybackId(str(p["id"]), str(p.get("policy", "signed")))
                           for p in data.get("playback_ids") or () if p.get("id")),
        duration=float(data["duration"]) if data.get("duration") is not None else None,
        error="; ".join(str(m) for m in messages)[:1000] if messages else (
            str(errors.get("type")) if isinstance(errors, dict) and errors.get("type")
            else None),
        upload_id=data.get("upload_id"),
        passthrough=data.get("passthrough"),
        raw=dict(data),
    )


def _upload(data: Mapping[str, Any]) -> RemoteUpload:
    return RemoteUpload(id=str(data.get("id", "")), state=str(data.get("status", "waiting")),
                        url=data.get("url"), asset_id=data.get("asset_id"))


def _event(payload: Mapping[str, Any]) -> ProviderEvent:
    kind = str(payload["type"])
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    assert isinstance(data, dict)
    obj = payload.get("object") if isinstance(payload.get("object"), dict) else {}
    assert isinstance(obj, dict)
    occurred = None
    created = payload.get("created_at")
    if isinstance(created, str):
        try:
            occurred = datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            occurred = None
    if kind.startswith("video.upload."):
        settings = data.get("new_asset_settings") or {}
        return ProviderEvent(id=str(payload["id"]), type=kind, state=_EVENT_STATES.get(kind),
                             asset_id=data.get("asset_id"),
                             upload_id=str(data.get("id") or obj.get("id") or "") or None,
                             passthrough=settings.get("passthrough")
                             if isinstance(settings, dict) else None,
                             occurred_at=occurred)
    asset = _asset(data) if kind.startswith("video.asset.") and data else None
    return ProviderEvent(id=str(payload["id"]), type=kind, state=_EVENT_STATES.get(kind),
                         asset_id=(asset.id if asset and asset.id else obj.get("id")),
                         upload_id=asset.upload_id if asset else None,
                         passthrough=asset.passthrough if asset else None, asset=asset,
                         occurred_at=occurred)


__all__ = ["Mux"]
