"""`import rindle` stays light: heavy optional libraries load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_heavy_modules() -> None:
    code = ("import sys, rindle; heavy = [m for m in ('pyvips', 'aiobotocore', 'botocore', "
            "'rq', 'redis', 'asyncpg', 'alembic') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_public_names() -> None:
    import rindle

    for name in rindle.__all__:
        assert getattr(rindle, name).__doc__, f"{name} has no docstring"
