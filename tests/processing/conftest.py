"""Fixtures shared by the tests that run real ``rindle worker`` processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL


@pytest.fixture
def rq_env(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of tests/support/rq_app.py: this test's database and files, and an rq
    queue of its own; set in this process too, and restored after."""
    env = {
        "RINDLE_TEST_DATABASE_URL": postgres_url,
        "RINDLE_TEST_FILES": str(tmp_path / "files"),
        "RINDLE_TEST_REDIS_URL": REDIS_URL,
        "RINDLE_TEST_RQ_QUEUE": f"rindle-test-{uuid.uuid4().hex[:8]}",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
