"""Sealed tokens: AES-GCM, bound to their purpose, rotating keys, and the tokens an older
Rindle sealed with Fernet still open until they expire."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from rindle.delivery.signing import Signer
from rindle.errors import InvalidToken, TokenExpired

KEY, OLD = "k" * 32, "o" * 32


def test_a_sealed_token_opens_only_for_its_purpose_and_hides_its_payload() -> None:
    signer = Signer([KEY])
    token = signer.seal("local.get", {"k": "photos/secret-name.png"}, expires_in=60)
    assert "secret" not in token and "=" not in token
    assert signer.unseal("local.get", token)["k"] == "photos/secret-name.png"
    with pytest.raises(InvalidToken):
        signer.unseal("local.put", token)


def test_a_tampered_or_truncated_token_is_invalid() -> None:
    signer = Signer([KEY])
    token = signer.seal("local.get", {"k": "a"}, expires_in=60)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[20] ^= 1
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (flipped, token[:-4], token[:10], "", "not base64 !!"):
        with pytest.raises(InvalidToken):
            signer.unseal("local.get", bad)


def test_keys_rotate_and_expiry_holds() -> None:
    old = Signer([OLD]).seal("local.get", {"k": "a"}, expires_in=60)
    rotated = Signer([KEY, OLD])
    assert rotated.unseal("local.get", old)["k"] == "a"  # the old key still opens
    with pytest.raises(InvalidToken):
        Signer([KEY]).unseal("local.get", old)  # once it is removed, no more
    expired = rotated.seal("local.get", {"k": "a"}, expires_in=-1)
    with pytest.raises(TokenExpired):
        rotated.unseal("local.get", expired)


def test_a_token_sealed_by_an_older_rindle_still_opens() -> None:
    # What Signer.seal made before AES-GCM: Fernet under an HMAC-derived key per purpose.
    import hashlib
    import hmac

    from cryptography.fernet import Fernet

    key = base64.urlsafe_b64encode(hmac.digest(KEY.encode(), b"rindle.seal.local.get",
                                               hashlib.sha256))
    body = json.dumps({"k": "legacy.png", "exp": int(time.time()) + 60}).encode()
    legacy = Fernet(key).encrypt(body).decode()
    assert Signer([KEY]).unseal("local.get", legacy)["k"] == "legacy.png"


def test_nonces_never_repeat_not_even_across_a_fork() -> None:
    signer = Signer([KEY])

    def nonce(token: str) -> bytes:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[1:13]

    seen = {nonce(signer.seal("p", {}, expires_in=60)) for _ in range(20_000)}
    assert len(seen) == 20_000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: an rq work horse, say
        os.close(read)
        os.write(write, nonce(signer.seal("p", {}, expires_in=60)))
        os._exit(0)
    os.close(write)
    child = os.read(read, 12)
    os.waitpid(pid, 0)
    parent = nonce(signer.seal("p", {}, expires_in=60))
    assert child not in seen and child != parent
