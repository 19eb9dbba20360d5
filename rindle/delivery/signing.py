"""Signed (itsdangerous) or sealed (AES-GCM, from cryptography), expiring tokens for Rindle's
own routes, with key rotation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as _BadFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from itsdangerous import BadSignature, URLSafeSerializer

from .._entropy import RandomPool
from ..errors import ConfigurationError, InvalidToken, TokenExpired

_MIN_KEY_LENGTH = 16
#: The first byte of a sealed token: its format. Fernet tokens (what Rindle sealed before)
#: start with 0x80 and are still opened, so URLs handed out before an upgrade keep working
#: until they expire.
_SEALED_V2 = 1
_NONCE = 12

_nonces = RandomPool()


def _nonce() -> bytes:
    """96 random bits for one AES-GCM seal (a page of pictures seals a URL per variant)."""
    return _nonces.take(_NONCE)


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
        self._sealers: dict[str, list[AESGCM]] = {}
        self._legacy: dict[str, MultiFernet] = {}

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

    def _keys_for(self, purpose: str, kind: bytes) -> list[bytes]:
        # Each secret gives one 32-byte key per purpose (HMAC as a KDF), so a token sealed
        # for one route never opens for another; the first secret's key seals.
        label = f"rindle.seal.{purpose}".encode() + kind
        return [hmac.digest(key, label, hashlib.sha256) for key in reversed(self._keys)]

    def _sealer(self, purpose: str) -> list[AESGCM]:
        sealers = self._sealers.get(purpose)
        if sealers is None:
            sealers = [AESGCM(k) for k in self._keys_for(purpose, b".gcm")]
            self._sealers[purpose] = sealers
        return sealers

    def _fernet(self, purpose: str) -> MultiFernet:
        legacy = self._legacy.get(purpose)
        if legacy is None:
            legacy = MultiFernet([Fernet(base64.urlsafe_b64encode(k))
                                  for k in self._keys_for(purpose, b"")])
            self._legacy[purpose] = legacy
        return legacy

    def seal(self, purpose: str, payload: dict[str, Any], *, expires_in: int) -> str:
        """Like ``dumps``, but the payload is encrypted too: the token is opaque to whoever
        holds it (a URL shows no storage key, file name or type).

        AES-GCM with a random nonce, the purpose as associated data. It replaced Fernet,
        which took five times as long per token (a system call for its IV, padding, CBC and
        HMAC): a page of 50 pictures seals 150 URLs.
        """
        raw = json.dumps(_with_expiry(payload, expires_in), separators=(",", ":")).encode()
        nonce = _nonce()
        sealed = self._sealer(purpose)[0].encrypt(nonce, raw, purpose.encode())
        token = base64.urlsafe_b64encode(bytes((_SEALED_V2,)) + nonce + sealed)
        return token.rstrip(b"=").decode("ascii")

    def unseal(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload of a genuine, unexpired sealed token; raises InvalidToken or
        TokenExpired."""
        try:
            if token.startswith("gAAAA"):  # sealed by an older Rindle (Fernet)
                raw = self._fernet(purpose).decrypt(token.encode("ascii"))
            else:
                raw = self._open(purpose, token)
            body = json.loads(raw)
        except (_BadFernet, UnicodeError, ValueError, binascii.Error):
            raise InvalidToken("the token is invalid or was tampered with") from None
        return _unexpired(body)

    def _open(self, purpose: str, token: str) -> bytes:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if len(data) < 1 + _NONCE + 16 or data[0] != _SEALED_V2:
            raise ValueError("not a sealed token")
        nonce, sealed = data[1:1 + _NONCE], data[1 + _NONCE:]
        for sealer in self._sealer(purpose):  # the newest key first: rotation
            try:
                return sealer.decrypt(nonce, sealed, purpose.encode())
            except InvalidTag:
                continue
        raise ValueError("no key opens the token")

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
