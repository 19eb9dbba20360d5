"""A runtime for the operator commands' tests, configured by environment."""

from __future__ import annotations

import os

from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from tests.conftest import SECRET, ImageProfile


class OpsPhotos(Profile):
    """A profile with one image variant, for the repair commands."""

    name = "ops_photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=16, format="png")}


media = Rindle(
    database_url=os.environ.get("RINDLE_TEST_DATABASE_URL", "sqlite:///unset.db"),
    storages={"local": LocalStorage(root=os.environ.get("RINDLE_TEST_FILES", "unset"))},
    profiles=[ImageProfile, OpsPhotos],
    secret_keys=[SECRET],
    authorizer=AllowAll(),
)
