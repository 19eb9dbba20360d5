"""A real S3 for tests: moto's server in a subprocess, and an independent boto3 client.

Import both fixtures into a test module (``from tests.support.s3 import moto_server_fixture,
s3_fixture``); ``s3`` gives each test its own bucket. boto3 checks what landed, independently
of Rindle's aiobotocore client. moto enforces no presigned signature or expiry, so tests
assert what Rindle signs rather than trusting moto to refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pytest

from tests.conftest import free_port

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never read a developer's real AWS configuration.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dataclass
class MotoServer:
    """A running moto server: where it listens and a boto3 client for it."""

    endpoint_url: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@dataclass
class S3Bucket:
    """One test's bucket on the moto server, with an independent boto3 client."""

    endpoint_url: str
    name: str
    client: Any

    def storage(self, **options: Any) -> Any:
        """An ``S3Storage`` on this bucket (path-style addressing, as moto needs)."""
        from rindle.storage.s3 import S3Storage

        options.setdefault("addressing_style", "path")
        return S3Storage(bucket=self.name, endpoint_url=self.endpoint_url, **options)

    def keys(self) -> list[str]:
        r = self.client.list_objects_v2(Bucket=self.name)
        return sorted(o["Key"] for o in r.get("Contents", []))

    def get(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data, ContentType=content_type)

    def allow_browser_uploads(self) -> None:
        """The CORS a browser needs to PUT parts here and read their ETags."""
        self.client.put_bucket_cors(Bucket=self.name, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": ["*"], "AllowedMethods": ["PUT", "GET", "HEAD"],
            "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"]}]})

    def pending_uploads(self) -> list[dict[str, Any]]:
        r = self.client.list_multipart_uploads(Bucket=self.name)
        return list(r.get("Uploads", []))


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: IO[bytes],
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"moto server exited with {process.returncode}: {err[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not answer within 30 s")


class _Shared:
    """The one server of this test process. Each module that imports the fixture gets its own
    session-scoped copy of it, so the copies share the server and the last one stops it."""

    server: MotoServer | None = None
    users = 0
    saved: dict[str, str | None] = {}
    log: IO[bytes] | None = None


def _start() -> MotoServer:
    _Shared.saved = {name: os.environ.get(name) for name in (*FAKE_ENV, *_UNSET)}
    os.environ.update(FAKE_ENV)
    for name in _UNSET:
        os.environ.pop(name, None)
    port = free_port()
    # A file, not a pipe: moto logs every request, and a full pipe would stall the server.
    log = _Shared.log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    server = MotoServer(endpoint_url=url, process=process)
    try:
        _wait_until_up(url, process, log)
    except BaseException:
        _stop(server)
        raise
    return server


def _stop(server: MotoServer) -> None:
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
    for name, value in _Shared.saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[MotoServer]:
    """moto's S3 server as a subprocess for the whole session, with fake credentials in the
    environment (restored afterwards)."""
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


@pytest.fixture(name="s3")
def s3_fixture(moto_server: MotoServer) -> Iterator[S3Bucket]:
    """A fresh, empty bucket for one test; emptied and removed afterwards."""
    client = moto_server.client()
    name = f"rindle-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield S3Bucket(endpoint_url=moto_server.endpoint_url, name=name, client=client)
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    for obj in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)
