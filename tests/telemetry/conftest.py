"""The rq worker fixture of tests/processing, for the bridge's test across a worker process."""

from __future__ import annotations

from tests.processing.conftest import rq_env as rq_env
