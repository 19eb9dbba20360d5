"""A runtime for rq worker processes started by the tests, configured by environment."""

from __future__ import annotations

import os
from typing import Any

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant, Web
from rindle.processing.processor import Output
from rindle.processing.queue import RQQueue


class CopyProcessor:
    """Copies the original as the 'variant'; the file's name says which process built it."""

    async def process(self, source: Any, variant: Variant, context: Any) -> Output:
        out = context.scratch / f"copy-{os.getpid()}.bin"
        out.write_bytes((await source.path()).read_bytes())
        return Output(path=out, content_type=source.asset.content_type)


class SleepyProcessor(CopyProcessor):
    """Sleeps before copying, so a test can kill the worker in the middle of a job."""

    async def process(self, source: Any, variant: Variant, context: Any) -> Output:
        import asyncio

        await asyncio.sleep(float(os.environ.get("RINDLE_TEST_SLEEP", "0")))
        return await super().process(source, variant, context)


class SlowProfile(Profile):
    name = "slow"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"copy": Variant(width=10, kind="sleepy")}


class RQProfile(Profile):
    name = "image"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"copy": Variant(width=10, kind="copy")}


class LessonProfile(Web):
    """Real ffmpeg transcodes (the Web preset) in the worker process."""

    name = "lesson"
    storage = "local"


def build() -> Rindle:
    return Rindle(
        database_url=os.environ["RINDLE_TEST_DATABASE_URL"],
        storages={"local": LocalStorage(root=os.environ["RINDLE_TEST_FILES"])},
        profiles=[RQProfile, SlowProfile, LessonProfile],
        secret_keys=["test-secret-key-0123456789abcdef"],
        queue=RQQueue(os.environ["RINDLE_TEST_REDIS_URL"],
                      name=os.environ["RINDLE_TEST_RQ_QUEUE"],
                      app_path="tests.support.rq_app:media", retry_intervals=(1, 1, 1, 1),
                      job_timeout=int(os.environ.get("RINDLE_TEST_JOB_TIMEOUT", "600"))),
        broadcast_url=os.environ["RINDLE_TEST_REDIS_URL"],
        authorizer=AllowAll(),
        processors={"copy": CopyProcessor(), "sleepy": SleepyProcessor()},
        job_stale_after=float(os.environ.get("RINDLE_TEST_STALE_AFTER", "900")),
        scratch_dir=os.environ.get("RINDLE_TEST_SCRATCH") or None,
        app_path="tests.support.rq_app:media",
    )


media = build() if "RINDLE_TEST_DATABASE_URL" in os.environ else None
if media is not None and os.environ.get("RINDLE_TEST_OTEL_SPANS"):
    # The worker's spans go to a file the test reads (tests/telemetry/test_otel.py).
    from tests.support.otel import instrument_to_file

    instrument_to_file(media, os.environ["RINDLE_TEST_OTEL_SPANS"])
