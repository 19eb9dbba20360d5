"""Migrations bring an empty database to head, through the API and the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

from rindle import LocalStorage, Rindle
from rindle.model import migrate
from tests.conftest import PG_ADMIN_URL, SECRET, ImageProfile, _pg_admin, _pg_url


def test_cli_migrates_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    out = subprocess.run([sys.executable, "-m", "rindle.cli", "migrate", "--database-url", url],
                         capture_output=True, text=True, check=True)
    assert "migrated empty -> " in out.stderr
    assert migrate.current_revision(url) == migrate.head_revision()
    again = subprocess.run([sys.executable, "-m", "rindle.cli", "migrate", "--database-url",
                            url], capture_output=True, text=True, check=True)
    assert "up to date" in again.stderr


def test_api_migrates_postgres_and_downgrades(tmp_path: Path) -> None:
    name = f"rindle_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    try:
        media = Rindle(database_url=url, storages={"local": LocalStorage(root=tmp_path)},
                       profiles=[ImageProfile], secret_keys=[SECRET])
        assert migrate.current_revision(url) is None
        asyncio.run(media.migrate())
        assert migrate.current_revision(url) == migrate.head_revision()
        migrate.downgrade(url, "base")
        assert migrate.current_revision(url) is None
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert PG_ADMIN_URL
