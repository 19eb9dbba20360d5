"""A runtime for the operator commands' tests, configured by environment."""

from __future__ import annotations

import os

from rindle import AllowAll, LocalStorage, Rindle
from tests.conftest import SECRET, ImageProfile

media = Rindle(
    database_url=os.environ.get("RINDLE_TEST_DATABASE_URL", "sqlite:///unset.db"),
    storages={"local": LocalStorage(root=os.environ.get("RINDLE_TEST_FILES", "unset"))},
    profiles=[ImageProfile],
    secret_keys=[SECRET],
    authorizer=AllowAll(),
)
