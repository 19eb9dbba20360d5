"""The streaming test runtime for ``rindle streaming sync`` run as a command: the database,
the files and Mux (the simulator's address and token) come from the environment."""

from __future__ import annotations

import os

from rindle import AllowAll, LocalStorage, Mux, Rindle
from tests.conftest import SECRET
from tests.support.mux_app import PROFILES

media = Rindle(
    database_url=os.environ.get("RINDLE_TEST_DATABASE_URL", "sqlite:///unset.db"),
    storages={"local": LocalStorage(root=os.environ.get("RINDLE_TEST_FILES", "unset"))},
    profiles=list(PROFILES),
    secret_keys=[SECRET],
    authorizer=AllowAll(),
    streaming={"mux": Mux.from_env()},
)
