"""Every error code has one status, listed in one table that the docs and the code share."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rindle import errors
from rindle.errors import ERROR_CODES, RindleError, UploadRejected

ROOT = Path(__file__).resolve().parents[1]
_ROW = re.compile(r"^\| `([a-z_]+)` \| (\d{3}) \| .+ \|$")


def _docs_table() -> dict[str, int]:
    text = (ROOT / "docs" / "guides" / "errors.md").read_text()
    rows = [_ROW.match(line) for line in text.splitlines() if line.startswith("| `")]
    assert all(rows), "every table row must look like | `code` | 409 | meaning |"
    found = [(m.group(1), int(m.group(2))) for m in rows if m]
    assert len(found) == len(dict(found)), "a code is listed twice in the docs"
    return dict(found)


def _codes_in_source() -> set[str]:
    """Every literal code: ``code="..."`` arguments, ``code = "..."`` class attributes, and
    the failure tuples the broker raises from (``("size_mismatch", "...")``)."""
    found: set[str] = set()
    for path in (ROOT / "rindle").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "code" \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found.add(node.value.value)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "code" \
                    and isinstance(node.value, ast.Constant):
                found.add(str(node.value.value))
    return found


def test_the_docs_table_is_the_code_table() -> None:
    assert _docs_table() == dict(ERROR_CODES)


def test_every_code_raised_in_rindle_is_in_the_table() -> None:
    missing = sorted(_codes_in_source() - set(ERROR_CODES))
    assert not missing, f"codes raised but not in ERROR_CODES/docs: {missing}"


def test_every_error_class_default_code_is_in_the_table() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, RindleError):
            assert cls.code in ERROR_CODES, cls
            assert ERROR_CODES[cls.code] == cls.default_status, cls


@pytest.mark.parametrize(("code", "status"), [("session_closed", 409),
                                              ("session_already_completed", 409),
                                              ("invalid_token", 403), ("body_too_large", 413),
                                              ("invalid_json", 400), ("json_required", 415)])
def test_the_status_follows_the_code_not_the_class(code: str, status: int) -> None:
    assert UploadRejected("x", code=code).status_code == status


def test_an_adopters_own_code_keeps_its_class_status() -> None:
    assert UploadRejected("x", code="my_own_code").status_code == 422
