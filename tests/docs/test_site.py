"""The docs site: it builds strictly, its diagrams are the real state machines, every image
it shows is there, and every Python sample compiles and names only Rindle APIs that exist (so
renames can't rot it; tests/docs/test_samples.py runs them)."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rindle import LocalStorage, Rindle
from rindle.model.states import MACHINES
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_MERMAID = re.compile(r"^```mermaid\n(.*?)^```", re.DOTALL | re.MULTILINE)
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _samples() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for n, block in enumerate(_PYTHON.findall(page.read_text())):
            found.append((str(page.relative_to(ROOT)), n, block))
    return found


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "guides" / "concepts" / "index.html").exists()


def test_the_concept_diagrams_are_the_state_machines() -> None:
    page = (ROOT / "docs" / "guides" / "concepts.md").read_text()
    drawn: set[tuple[str, str]] = set()
    for block in _MERMAID.findall(page):
        drawn |= set(re.findall(r"^\s+(\w+) --> (\w+)$", block, re.M))
    # The same state names appear in several machines: compare each machine's edges.
    for entity, machine in MACHINES.items():
        edges = {(a, b) for a, nxt in machine.items() for b in nxt}
        assert edges <= drawn, (entity, edges - drawn)
    assert len(_MERMAID.findall(page)) == len(MACHINES)


def test_every_image_a_page_shows_is_a_png_that_exists() -> None:
    shown = [(page, m["alt"], m["src"]) for page in PAGES for m in _IMAGE.finditer(page.read_text())
             if "://" not in m["src"]]
    assert shown, "no page shows an image"
    for page, alt, src in shown:
        where = f"{page.relative_to(ROOT)}: {src}"
        assert alt.strip(), f"{where} has no alt text"
        path = (page.parent / src).resolve()
        assert path.is_file(), f"{where} does not exist"
        with path.open("rb") as f:
            assert f.read(8) == PNG_SIGNATURE, f"{where} is not a PNG"
    for name in ("cohort-feed", "cohort-member", "console-overview", "console-asset"):
        assert any(src.endswith(f"screenshots/{name}.png") for _, _, src in shown), name


@pytest.mark.parametrize(("page", "n", "code"), _samples(),
                         ids=[f"{p}#{n}" for p, n, _ in _samples()])
def test_every_python_sample_names_real_apis(page: str, n: int, code: str) -> None:
    tree = compile(code, f"{page}#{n}", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    media = Rindle(database_url="sqlite:///unused.db", profiles=[], secret_keys=[SECRET],
                   storages={"local": LocalStorage(root=str(ROOT / "unused"))})
    # A runtime, not the class: its subsystems (broker, repo, live...) are attributes of
    # the instance. Nothing connects.
    apis: dict[str, object] = {"media": media, "media.html": media.html,
                               "media.broker": media.broker}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rindle"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):  # a submodule: import it
                    importlib.import_module(f"{node.module}.{alias.name}")
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if owner in apis:
                assert hasattr(apis[owner], node.attr), f"{owner}.{node.attr} does not exist"
