"""`import rindle` stays light: heavy optional libraries load only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_import_does_not_load_heavy_modules() -> None:
    code = ("import sys, rindle; heavy = [m for m in ('pyvips', 'aiobotocore', 'botocore', "
            "'rq', 'redis', 'asyncpg', 'alembic', 'sqlalchemy') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_public_names() -> None:
    import rindle

    for name in rindle.__all__:
        assert getattr(rindle, name).__doc__, f"{name} has no docstring"


def test_a_connected_runtime_runs_without_sqlalchemy(tmp_path: Path) -> None:
    # SQLAlchemy (about 26 MiB per process) is for migrations only: a worker that connects
    # and runs queries never imports it.
    from rindle.model import migrate

    migrate.upgrade(f"sqlite:///{tmp_path}/x.db")
    code = f"""
import asyncio, sys
from rindle import LocalStorage, Profile, Rindle

class Photos(Profile):
    storage = "local"
    allow_mime = ["image/png"]

media = Rindle(database_url="sqlite:///{tmp_path}/x.db",
               storages={{"local": LocalStorage(root="{tmp_path}/files")}},
               profiles=[Photos], secret_keys=["k" * 32])

async def main():
    async with media.connected():
        a = await media.repo.insert_asset(profile="photos", storage="local", storage_key="k")
        assert (await media.asset(a.id)).id == a.id

asyncio.run(main())
print([m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic", "greenlet")])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
