"""A runtime for the operator commands' tests, configured by environment."""

from __future__ import annotations

import os
from typing import Any

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from tests.conftest import SECRET, ImageProfile


class OpsPhotos(Profile):
    """A profile with one image variant, for the repair commands."""

    name = "ops_photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=16, format="png")}


def _storage() -> Any:
    """Local disk, or with ``RINDLE_TEST_S3_BUCKET`` the test's S3 bucket (under the
    ``media`` prefix) by the same name, so the commands run against either."""
    bucket = os.environ.get("RINDLE_TEST_S3_BUCKET")
    if bucket:
        from rindle.storage.s3 import S3Storage

        return S3Storage(bucket=bucket, endpoint_url=os.environ["RINDLE_TEST_S3_ENDPOINT"],
                         addressing_style="path", key_prefix="media")
    return LocalStorage(root=os.environ.get("RINDLE_TEST_FILES", "unset"))


media = Rindle(
    database_url=os.environ.get("RINDLE_TEST_DATABASE_URL", "sqlite:///unset.db"),
    storages={"local": _storage()},
    profiles=[ImageProfile, OpsPhotos],
    secret_keys=[SECRET],
    authorizer=AllowAll(),
)
