"""Signed delivery URLs reused while most of their life is left.

Signing is most of a page's cost (a sealed token per Local URL, an HMAC presign per S3 or
GCS URL), and a URL that changed on every render defeats the browser's cache: the same
image is fetched again on each visit. So a URL signed for ``ttl`` seconds is handed out
again, to anyone the Authorizer already allowed, while at least ``1 - reuse`` of its
``ttl`` remains (90 % by default: for 90 s of a 900 s URL). A URL is a bearer capability
for its object whoever receives it, so sharing it between viewers grants nothing more.

``media.html.picture_tags`` keeps the settled ``<picture>`` markup made from such URLs in a
cache of the same kind, keyed by everything the markup depends on (the rows, the Authorizer's
decision, the arguments, the host), so a URL on a page has at least 80 % of its life left.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

_MAX_ENTRIES = 20_000


def _now() -> float:
    return time.time()  # looked up at each call: the same clock as the tokens' expiry


class SignedUrlCache:
    """A value (a URL, or markup holding URLs) by its inputs, with the moment it expires;
    reused for the first ``reuse`` share of its life; bounded, the oldest dropped."""

    __slots__ = ("_entries", "_max", "_reuse", "_clock")

    def __init__(self, *, reuse: float = 0.1, max_entries: int = _MAX_ENTRIES,
                 clock: Callable[[], float] | None = None) -> None:
        if not 0 <= reuse < 1:
            raise ValueError("reuse is the share of a URL's life it is handed out for: [0, 1)")
        self._entries: dict[Hashable, tuple[str, float]] = {}
        self._max = max_entries
        self._reuse = reuse
        self._clock = clock or _now

    def get(self, key: Hashable, ttl: int) -> str | None:
        """The URL signed for ``key`` if ``ttl`` minus the reuse window is still left of it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        url, expires_at = entry
        if expires_at - self._clock() >= ttl * (1 - self._reuse):
            return url
        del self._entries[key]
        return None

    def put(self, key: Hashable, url: str, ttl: int) -> None:
        """Remember ``url``, signed just now for ``ttl`` seconds."""
        if self._reuse == 0:
            return
        entries = self._entries
        if key not in entries and len(entries) >= self._max:
            del entries[next(iter(entries))]  # the oldest: dicts keep insertion order
        entries[key] = (url, self._clock() + ttl)

    def __len__(self) -> int:
        return len(self._entries)


_per_runtime: weakref.WeakKeyDictionary[Any, dict[str, SignedUrlCache]] = (
    weakref.WeakKeyDictionary())


def cache_for(media: Any, name: str) -> SignedUrlCache:
    """The runtime's cache called ``name`` (``"urls"``, ``"pictures"``), made on first use:
    one set per ``Rindle``, gone with it."""
    caches = _per_runtime.get(media)
    if caches is None:
        caches = _per_runtime[media] = {}
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = SignedUrlCache()
    return cache
