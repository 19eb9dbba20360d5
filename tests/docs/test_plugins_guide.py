"""The plug-in guide's examples run as written (docs/guides/plugins.md)."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "plugins.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[str]:
    return _BLOCK.findall(GUIDE.read_text())


def test_the_grayscale_example_runs_end_to_end(tmp_path: Path) -> None:
    [example] = [b for b in _blocks() if "class Grayscale" in b]
    script = tmp_path / "grayscale_example.py"
    script.write_text(example)
    # A process of its own, as a reader would run it: nothing of the test suite leaks in.
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "grey variant: /rindle/files/" in done.stdout


def test_the_analyzer_example_is_an_analyzer() -> None:
    from rindle import Analyzer

    [example] = [b for b in _blocks() if "class FirstByte" in b]
    namespace = runpy.run_path(_write(example), run_name="example")
    assert isinstance(namespace["FirstByte"](), Analyzer)


def test_the_processor_example_is_a_processor() -> None:
    from rindle import Processor

    [example] = [b for b in _blocks() if "class Grayscale" in b]
    head = example.split("class PhotoProfile")[0]  # the class, not the run
    namespace = runpy.run_path(_write(head), run_name="example")
    assert isinstance(namespace["Grayscale"](), Processor)


def _write(code: str) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    return f.name
