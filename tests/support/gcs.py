"""A GCS for tests: gcp-storage-emulator in a subprocess, and an independent HTTP client.

Import both fixtures into a test module (``from tests.support.gcs import gcs_emulator_fixture,
gcs_fixture``); ``gcs`` gives each test its own bucket. Plain JSON API calls (httpx, sync)
check what landed, independently of Rindle's aiohttp client.

Like moto for S3, the emulator verifies no V4 signature, expiry or signed header, and no
precondition: tests assert what Rindle signs (and check the signatures themselves with the
test key's public half) rather than trusting the emulator to refuse. URLs are signed with a
generated RSA key standing in for a service account's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import free_port

TEST_EMAIL = "rindle-test@rindle-test.iam.gserviceaccount.com"


@functools.cache
def service_account_key() -> dict[str, str]:
    """A service-account key of the JSON file's shape, with a freshly generated RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "rindle-test",
            "private_key_id": "0123456789abcdef", "private_key": pem,
            "client_email": TEST_EMAIL, "client_id": "1",
            # Never reached: the emulator takes no token.
            "token_uri": "http://127.0.0.1:9/token"}


@dataclass
class GCSEmulator:
    """A running gcp-storage-emulator: where it listens and where it keeps its files."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


@dataclass
class GCSBucket:
    """One test's bucket on the emulator, with an independent HTTP client."""

    endpoint_url: str
    name: str
    client: httpx.Client
    data_dir: Path

    def storage(self, **options: Any) -> Any:
        """A ``GCSStorage`` on this bucket: anonymous, signing with the test key."""
        from rindle.storage.gcs import GCSStorage

        options.setdefault("anonymous", True)
        options.setdefault("credentials", service_account_key())
        options.setdefault("endpoint_url", self.endpoint_url)
        return GCSStorage(bucket=self.name, **options)

    def _object(self, key: str) -> str:
        return f"/storage/v1/b/{self.name}/o/{quote(key, safe='')}"

    def keys(self) -> list[str]:
        r = self.client.get(f"/storage/v1/b/{self.name}/o")
        r.raise_for_status()
        return sorted(item["name"] for item in r.json().get("items", []))

    def get(self, key: str) -> bytes:
        r = self.client.get(self._object(key), params={"alt": "media"})
        r.raise_for_status()
        return r.content

    def meta(self, key: str) -> dict[str, Any] | None:
        r = self.client.get(self._object(key))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        r = self.client.post(f"/upload/storage/v1/b/{self.name}/o", content=data,
                             params={"uploadType": "media", "name": key},
                             headers={"Content-Type": content_type})
        r.raise_for_status()

    def partial_uploads(self) -> list[int]:
        """How many bytes each unfinished resumable session of this bucket holds, read from
        the emulator's own files (its index, and one file per session): the store's view of
        a write still in progress. Call it while no request is in flight."""
        root = self.data_dir / ".cloudstorage"
        index = json.loads((root / ".meta").read_text())
        sizes = []
        for file_id, obj in index.get("resumable", {}).items():
            if obj.get("bucket") == self.name:
                part = root / "_resumable" / hashlib.sha256(file_id.encode()).hexdigest()
                sizes.append(part.stat().st_size if part.exists() else 0)
        return sorted(sizes)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: IO[bytes],
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"gcp-storage-emulator exited with {process.returncode}: "
                               f"{err[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("gcp-storage-emulator did not answer within 30 s")


class _Shared:
    """The one emulator of this test process, shared by every module that imports the
    fixture (each gets its own session-scoped copy of it); the last user stops it."""

    server: GCSEmulator | None = None
    users = 0
    log: IO[bytes] | None = None


def _start() -> GCSEmulator:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="rindle-gcs-"))
    # A file, not a pipe: a full pipe would stall the server.
    log = _Shared.log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "--data-dir", str(data_dir), "start",
         "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = GCSEmulator(endpoint_url=f"http://127.0.0.1:{port}", process=process,
                         data_dir=data_dir)
    try:
        _wait_until_up(server.endpoint_url, process, log)
    except BaseException:
        _stop(server)
        raise
    return server


def _stop(server: GCSEmulator) -> None:
    process = server.process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if _Shared.log is not None:
        _Shared.log.close()
        _Shared.log = None
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session", name="gcs_emulator")
def gcs_emulator_fixture() -> Iterator[GCSEmulator]:
    """gcp-storage-emulator as a subprocess for the whole session, on a free port."""
    if _Shared.server is None:
        _Shared.server = _start()
    _Shared.users += 1
    try:
        yield _Shared.server
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            server, _Shared.server = _Shared.server, None
            _stop(server)


@pytest.fixture(name="gcs")
def gcs_fixture(gcs_emulator: GCSEmulator) -> Iterator[GCSBucket]:
    """A fresh, empty bucket for one test; emptied and removed afterwards."""
    name = f"rindle-test-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=gcs_emulator.endpoint_url, timeout=30) as client:
        client.post("/storage/v1/b", json={"name": name}).raise_for_status()
        bucket = GCSBucket(endpoint_url=gcs_emulator.endpoint_url, name=name, client=client,
                           data_dir=gcs_emulator.data_dir)
        yield bucket
        for key in bucket.keys():
            client.delete(bucket._object(key))
        # Refused (409) while a session the emulator could not cancel is open: harmless, the
        # emulator's files go when it stops.
        client.delete(f"/storage/v1/b/{name}")
