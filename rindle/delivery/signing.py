"""Signed (itsdangerous) or sealed (cryptography's Fernet), expiring tokens for Rindle's own
routes, with key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as _BadFernet
from itsdangerous import BadSignature, URLSafeSerializer

from ..errors import ConfigurationError, InvalidToken, TokenExpired

_MIN_KEY_LENGTH = 16


class Signer:
    """Signs with the first key and verifies with any, so keys rotate without downtime.

    Each token names its purpose through the itsdangerous salt, so a delivery token can never
    be replayed as an upload token. The expiry travels inside the signed payload, checked
    after the signature. ``repr`` never shows the keys.
    """

    def __init__(self, secret_keys: Sequence[str | bytes]) -> None:
        keys = [k.encode() if isinstance(k, str) else bytes(k) for k in secret_keys if k]
        if not keys:
            raise ConfigurationError(
                "secret_keys is empty: pass at least one random secret (e.g. `python -c "
                "'import secrets; print(secrets.token_urlsafe(32))'`)",
                code="secret_keys_missing",
            )
        for k in keys:
            if len(k) < _MIN_KEY_LENGTH:
                raise ConfigurationError(
                    f"every secret key must be at least {_MIN_KEY_LENGTH} characters long",
                    code="secret_key_too_short",
                )
        # itsdangerous signs with the *last* key of its list; Rindle's contract is "first signs".
        self._keys: list[bytes] = list(reversed(keys))
        self._serializers: dict[str, URLSafeSerializer] = {}
        self._sealers: dict[str, MultiFernet] = {}

    def __repr__(self) -> str:
        return f"Signer(<{len(self._keys)} keys>)"

    @property
    def key_lengths(self) -> list[int]:
        """Each key's length, in the order given (the signing key first); never the keys."""
        return [len(k) for k in reversed(self._keys)]

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        s = self._serializers.get(purpose)
        if s is None:
            s = URLSafeSerializer(self._keys, salt=f"rindle.{purpose}")
            self._serializers[purpose] = s
        return s

    def dumps(self, purpose: str, payload: dict[str, Any], *, expires_in: int) -> str:
        """A URL-safe token for ``purpose`` that stops verifying after ``expires_in`` seconds."""
        return str(self._serializer(purpose).dumps(_with_expiry(payload, expires_in)))

    def loads(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload of a genuine, unexpired token; raises InvalidToken or TokenExpired."""
        try:
            body = self._serializer(purpose).loads(token)
        except BadSignature:
            raise InvalidToken("the token is invalid or was tampered with") from None
        return _unexpired(body)

    def _sealer(self, purpose: str) -> MultiFernet:
        sealer = self._sealers.get(purpose)
        if sealer is None:
            # Fernet wants a 32-byte key; each secret gives one per purpose (HMAC as a KDF),
            # so a token sealed for one route never opens for another. MultiFernet seals
            # with the first and opens with any: the same rotation as signing.
            label = f"rindle.seal.{purpose}".encode()
            sealer = MultiFernet([
                Fernet(base64.urlsafe_b64encode(hmac.digest(key, label, hashlib.sha256)))
                for key in reversed(self._keys)])
            self._sealers[purpose] = sealer
        return sealer

    def seal(self, purpose: str, payload: dict[str, Any], *, expires_in: int) -> str:
        """Like ``dumps``, but the payload is encrypted too: the token is opaque to whoever
        holds it (a URL shows no storage key, file name or type)."""
        raw = json.dumps(_with_expiry(payload, expires_in), separators=(",", ":")).encode()
        return self._sealer(purpose).encrypt(raw).decode("ascii")

    def unseal(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload of a genuine, unexpired sealed token; raises InvalidToken or
        TokenExpired."""
        try:
            raw = self._sealer(purpose).decrypt(token.encode("ascii"))
            body = json.loads(raw)
        except (_BadFernet, UnicodeError, ValueError):
            raise InvalidToken("the token is invalid or was tampered with") from None
        return _unexpired(body)

    def expires_at(self, token_payload: dict[str, Any]) -> int:
        return int(token_payload["exp"])


def _with_expiry(payload: dict[str, Any], expires_in: int) -> dict[str, Any]:
    return {**payload, "exp": int(time.time()) + int(expires_in)}


def _unexpired(body: Any) -> dict[str, Any]:
    """A decoded payload, once it is a dict with an ``exp`` that has not passed."""
    if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
        raise InvalidToken("the token is invalid or was tampered with")
    if body["exp"] < time.time():
        raise TokenExpired("the token has expired; ask for a new URL")
    return body
