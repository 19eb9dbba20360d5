"""The demo's streaming provider: Mux itself when ``MUX_TOKEN_ID`` is set (with the other
``MUX_*`` variables of ``Mux.from_env``), else the local Mux simulator of the test suite,
mounted in the demo at ``/_mux`` so ``make demo`` streams with no account and no network.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from rindle import Mux


def _simulator_key(var: Path) -> tuple[str, bytes]:
    """A playback signing key kept in the demo's var/ (base64 private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = var / "mux_signing_key.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    pem = path.read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(pem).decode(), public


def streaming(var: Path, public_url: str) -> tuple[Mux, Any]:
    """The Mux provider, and the simulator to mount at ``/_mux`` (``None`` for real Mux)."""
    if os.environ.get("MUX_TOKEN_ID"):
        return Mux.from_env(), None
    from tests.support.mux_sim import MuxSimulator

    secret_path = var / "mux_webhook_secret"
    if not secret_path.exists():
        secret_path.write_text(secrets.token_urlsafe(24))
        secret_path.chmod(0o600)
    webhook_secret = secret_path.read_text().strip()
    private, public = _simulator_key(var)
    token = ("demo-token-id", secrets.token_urlsafe(16))
    sim = MuxSimulator(*token, webhook_secret=webhook_secret, processing_delay=2.0,
                       public_keys={"demo-key": public},
                       webhook_url=f"{public_url}/rindle/webhooks/mux")
    base = f"{public_url}/_mux"
    sim.base_url = base
    mux = Mux(*token, webhook_secrets=[webhook_secret], signing_key_id="demo-key",
              signing_private_key=private, api_url=base, stream_url=f"{base}/stream",
              image_url=f"{base}/image")
    return mux, sim
