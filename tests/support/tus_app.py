"""A runtime and app serving tus for a second uvicorn process, configured by environment:
``RINDLE_TEST_DATABASE_URL``, and ``RINDLE_TEST_FILES`` (Local) or ``RINDLE_TEST_S3_BUCKET``
with ``RINDLE_TEST_S3_ENDPOINT`` (S3)."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AllowAll, LocalStorage, Profile, Rindle
from rindle.storage.base import Storage
from tests.conftest import SECRET

MiB = 1024 * 1024


class Workshops(Profile):
    """Large uploads over tus."""

    name = "workshops"
    storage = "media"
    allow_mime = ["image/png"]
    max_bytes = 64 * MiB


def _storage() -> Storage:
    bucket = os.environ.get("RINDLE_TEST_S3_BUCKET")
    if bucket:
        from rindle.storage.s3 import S3Storage

        return S3Storage(bucket=bucket, endpoint_url=os.environ["RINDLE_TEST_S3_ENDPOINT"],
                         addressing_style="path")
    return LocalStorage(root=os.environ.get("RINDLE_TEST_FILES", "unset"))


def build() -> Rindle:
    return Rindle(database_url=os.environ.get("RINDLE_TEST_DATABASE_URL", "sqlite:///unset.db"),
                  storages={"media": _storage()}, profiles=[Workshops], secret_keys=[SECRET],
                  authorizer=AllowAll())


media = build()
app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
