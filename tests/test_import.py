"""`import rindle` stays light: heavy optional libraries load only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_import_does_not_load_heavy_modules() -> None:
    code = ("import sys, rindle; heavy = [m for m in ('pyvips', 'aiobotocore', 'botocore', "
            "'rq', 'redis', 'asyncpg', 'alembic', 'sqlalchemy', 'opentelemetry') "
            "if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


#: What a stranger implements (the plug-in Protocols) and the errors a storage adapter raises.
PLUG_IN_NAMES = {"Storage", "Analyzer", "Processor", "Scanner", "Authorizer", "StorageError",
                 "ObjectNotFound"}


def test_public_names() -> None:
    import rindle

    assert len(set(rindle.__all__)) == len(rindle.__all__), "a name is listed twice"
    assert PLUG_IN_NAMES <= set(rindle.__all__)
    exported: dict[str, object] = {}
    exec("from rindle import *", exported)  # every listed name imports
    for name in rindle.__all__:
        assert name in exported, f"rindle.__all__ lists {name} but it does not import"
        # A class's __doc__ is its own (not inherited): each public name says what it is.
        assert getattr(exported[name], "__doc__", None), f"{name} has no docstring"


def test_plug_in_names_are_the_protocols_of_their_modules() -> None:
    import rindle
    from rindle import errors
    from rindle.delivery import authorizer
    from rindle.processing import analyzer, processor, scanner
    from rindle.storage import base

    assert rindle.Storage is base.Storage
    assert rindle.Analyzer is analyzer.Analyzer
    assert rindle.Processor is processor.Processor
    assert rindle.Scanner is scanner.Scanner
    assert rindle.Authorizer is authorizer.Authorizer
    for protocol in (rindle.Storage, rindle.Analyzer, rindle.Processor, rindle.Scanner,
                     rindle.Authorizer):
        assert getattr(protocol, "_is_protocol", False), protocol
    assert issubclass(rindle.ObjectNotFound, rindle.StorageError)
    assert rindle.StorageError is errors.StorageError
    # Every error class of rindle.errors is public at the top level.
    assert set(errors.__all__) - {"ERROR_CODES"} <= set(rindle.__all__)


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
