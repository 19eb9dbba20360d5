"""A runtime for rq worker processes started by the tests, configured by environment."""

from __future__ import annotations

import os
from typing import Any

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from rindle.model.records import Asset
from rindle.processing.queue import RQQueue


class CopyProcessor:
    """Copies the original as the 'variant' and records which process built it."""

    async def process(self, media: Rindle, profile: type[Profile], asset: Asset, name: str,
                      variant: Variant) -> dict[str, Any]:
        storage = media.storage_for(profile)
        key = f"{asset.profile}/{asset.id}/variants/{name}-{os.getpid()}.bin"
        info = await storage.write(key, storage.stream(asset.storage_key))
        return {"storage_key": key, "content_type": asset.content_type, "byte_size": info.size}


class SleepyProcessor(CopyProcessor):
    """Sleeps before copying, so a test can kill the worker in the middle of a job."""

    async def process(self, media: Rindle, profile: type[Profile], asset: Asset, name: str,
                      variant: Variant) -> dict[str, Any]:
        import asyncio

        await asyncio.sleep(float(os.environ.get("RINDLE_TEST_SLEEP", "0")))
        return await super().process(media, profile, asset, name, variant)


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


def build() -> Rindle:
    return Rindle(
        database_url=os.environ["RINDLE_TEST_DATABASE_URL"],
        storages={"local": LocalStorage(root=os.environ["RINDLE_TEST_FILES"])},
        profiles=[RQProfile, SlowProfile],
        secret_keys=["test-secret-key-0123456789abcdef"],
        queue=RQQueue(os.environ["RINDLE_TEST_REDIS_URL"],
                      name=os.environ["RINDLE_TEST_RQ_QUEUE"],
                      app_path="tests.support.rq_app:media", retry_intervals=(1, 1, 1, 1)),
        broadcast_url=os.environ["RINDLE_TEST_REDIS_URL"],
        authorizer=AllowAll(),
        processors={"copy": CopyProcessor(), "sleepy": SleepyProcessor()},
        job_stale_after=float(os.environ.get("RINDLE_TEST_STALE_AFTER", "900")),
        app_path="tests.support.rq_app:media",
    )


media = build() if "RINDLE_TEST_DATABASE_URL" in os.environ else None
