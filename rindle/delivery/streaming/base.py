"""The streaming-provider contract: what Rindle asks of Mux, and of any provider after it.

A provider speaks its own API and hands back these small records; the flows around it
(``ingest``, ``events``, ``playback``) own the rows, the outbox and the live events, so a
second provider implements the protocol and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ...errors import RindleError

#: What a playback URL is for: the HLS stream, a poster-like thumbnail, a seek storyboard.
PLAYBACK_KINDS = ("video", "thumbnail", "storyboard")


class StreamingError(RindleError):
    """The streaming provider failed or refused; ``retryable`` when trying again may help."""

    code = "provider_error"
    default_status = 502

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False,
                 status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.provider_status = status


class WebhookRejected(RindleError):
    """A webhook that is not the provider's: a bad or missing signature, or a stale one."""

    code = "webhook_signature_invalid"
    default_status = 401


@dataclass(frozen=True)
class PlaybackId:
    """A public handle to play an asset; ``policy`` is ``signed`` or ``public``."""

    id: str
    policy: str


@dataclass(frozen=True)
class RemoteAsset:
    """The provider's view of one asset.

    ``state`` is in Rindle's provider-asset vocabulary (``processing``, ``ready``,
    ``errored``); ``upload_id`` names the direct upload it came from, ``passthrough`` the
    value Rindle gave it (its provider-asset row id).
    """

    id: str
    state: str
    playback_ids: tuple[PlaybackId, ...] = ()
    duration: float | None = None
    error: str | None = None
    upload_id: str | None = None
    passthrough: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RemoteUpload:
    """A direct (browser) upload at the provider; ``url`` is a bearer credential.

    ``state``: ``waiting`` (no file yet), ``asset_created``, ``cancelled``, ``errored`` or
    ``timed_out``; ``asset_id`` once the provider made an asset of the file.
    """

    id: str
    state: str
    url: str | None = field(default=None, repr=False)
    asset_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook, normalized.

    ``state`` is the provider-asset state the event reports (``None``: none, e.g. an
    event Rindle does not act on). ``asset`` is the provider asset the event carries, when
    it carries one; ``upload_id`` and ``passthrough`` tie it to Rindle's row.
    """

    id: str
    type: str
    state: str | None
    asset_id: str | None = None
    upload_id: str | None = None
    passthrough: str | None = None
    asset: RemoteAsset | None = None
    occurred_at: datetime | None = None


@runtime_checkable
class StreamingProvider(Protocol):
    """A streaming service Rindle pushes to, uploads through, and signs playback for.

    Every call that reaches the provider raises ``StreamingError`` on failure (retryable
    for 5xx, 429 and timeouts); ``delete_asset`` and ``cancel_direct_upload`` treat
    "already gone" as done. ``verify_webhook`` raises ``WebhookRejected``.
    """

    name: str

    async def create_asset(self, source_url: str, *, passthrough: str,
                           playback_policy: str) -> RemoteAsset:
        """Have the provider fetch ``source_url`` and make a streamable asset of it."""
        ...

    async def create_direct_upload(self, *, passthrough: str, playback_policy: str,
                                   cors_origin: str, timeout: int) -> RemoteUpload:
        """A one-time URL the browser PUTs the file to (``RemoteUpload.url``)."""
        ...

    async def get_upload(self, upload_id: str) -> RemoteUpload | None:
        """The direct upload's state; ``None`` when the provider has no such upload."""
        ...

    async def cancel_direct_upload(self, upload_id: str) -> None:
        """Stop a direct upload that has not produced an asset yet."""
        ...

    async def get_asset(self, asset_id: str) -> RemoteAsset | None:
        """The asset's state; ``None`` when the provider has no such asset."""
        ...

    async def delete_asset(self, asset_id: str) -> None:
        """Delete the provider's asset (and what it stores and serves)."""
        ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Check the webhook's signature and freshness, and normalize it."""
        ...

    def playback_url(self, playback_id: str, *, kind: str = "video", signed: bool = True,
                     expires_in: int = 3600) -> str:
        """An HLS (``video``), thumbnail or storyboard URL, with a token when ``signed``."""
        ...

    async def check(self) -> list[str]:
        """An authenticated read plus a look at the local settings: the problems found
        (empty when all is well), each without a secret in it."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


__all__ = ["PLAYBACK_KINDS", "PlaybackId", "ProviderEvent", "RemoteAsset", "RemoteUpload",
           "StreamingError", "StreamingProvider", "WebhookRejected"]
