"""Streaming through a provider (Mux): the contract, the Mux provider, and the flows."""

from .base import (
    PlaybackId,
    ProviderEvent,
    RemoteAsset,
    RemoteUpload,
    StreamingError,
    StreamingProvider,
    WebhookRejected,
)
from .mux import Mux

__all__ = ["Mux", "PlaybackId", "ProviderEvent", "RemoteAsset", "RemoteUpload",
           "StreamingError", "StreamingProvider", "WebhookRejected"]
