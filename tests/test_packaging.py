"""The wheel: rindle and its data files, nothing of the repository beside it (the demo, the
tests); its metadata says what pyproject.toml says. Built offline from a copy of the tree."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import rindle

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
DIST_INFO = f"rindle-{PROJECT['version']}.dist-info"

#: Never copied: installs, caches and build output (a stale egg-info or build/ must not leak in).
_IGNORED = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", "*.pyc",
                                  "*.egg-info", "build", "dist", "var", "test-artifacts",
                                  ".*_cache")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tree: the build writes no build/ or egg-info into the working tree, and
    the wheel is compared with exactly the files it was built from."""
    src = tmp_path_factory.mktemp("src") / "rindle-src"
    shutil.copytree(ROOT, src, ignore=_IGNORED)
    return src


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    for backend in ("setuptools", "wheel"):
        assert importlib.util.find_spec(backend), f"{backend} is missing: pip install -e '.[dev]'"
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation and --no-index: the venv's setuptools builds it, PyPI is never asked.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("rindle-*.whl")
    with zipfile.ZipFile(path) as whl:
        yield whl


def _names(whl: zipfile.ZipFile) -> set[str]:
    return {n for n in whl.namelist() if not n.endswith("/")}


def _files(src: Path, folder: str, pattern: str) -> set[str]:
    files = {p.relative_to(src).as_posix() for p in (src / folder).glob(pattern) if p.is_file()}
    assert files, f"nothing matches {folder}/{pattern}"
    return files


def test_only_rindle_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in _names(wheel)}
    assert tops == {"rindle", DIST_INFO}  # no demo_app/, no tests/, no js/
    assert wheel.read(f"{DIST_INFO}/top_level.txt").decode().split() == ["rindle"]


def test_every_module_and_data_file_is_in_the_wheel(wheel: zipfile.ZipFile, source: Path) -> None:
    names = _names(wheel)
    # Every module of the tree it was built from: a new subpackage is found without a list.
    assert _files(source, "rindle", "**/*.py") <= names
    assert "rindle/py.typed" in names
    assert _files(source, "rindle/model/migrations/versions", "*.py") <= names
    # env.py, and an .ini if one is added (rindle.model.migrate builds its alembic Config in
    # code, so none is needed); script.py.mako only serves `alembic revision` in the repository.
    migrations = _files(source, "rindle/model/migrations", "*")
    assert migrations - {"rindle/model/migrations/script.py.mako"} <= names
    assert "rindle/static/rindle.js" in names
    assert _files(source, "rindle/static", "*") <= names
    assert "rindle/templates/rindle/macros.html" in names
    assert _files(source, "rindle/templates/rindle", "*") <= names


def test_metadata_matches_pyproject(wheel: zipfile.ZipFile) -> None:
    meta = wheel.read(f"{DIST_INFO}/METADATA").decode()
    headers = meta.split("\n\n", 1)[0].splitlines()

    def field(key: str) -> list[str]:
        return [h.split(": ", 1)[1] for h in headers if h.startswith(f"{key}: ")]

    assert field("Version") == [PROJECT["version"]] == [rindle.__version__]
    assert field("Requires-Python") == [PROJECT["requires-python"]]
    requires = {Requirement(r) for r in field("Requires-Dist")}
    expected = {Requirement(r) for r in PROJECT["dependencies"]}
    for extra, reqs in PROJECT["optional-dependencies"].items():
        expected |= {Requirement(f'{r}; extra == "{extra}"') for r in reqs}
    assert requires == expected
    assert set(field("Provides-Extra")) == set(PROJECT["optional-dependencies"])
    # The demo's form parsing is the only user of python-multipart: not rindle's to require.
    assert "python-multipart" not in {r.name for r in requires if r.marker is None}
    entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "rindle = rindle.cli:main" in entry_points
