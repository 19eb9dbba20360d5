"""What the benchmarks share: each contender runs in a child process of the benchmark's own
script and reports one JSON line, so one contender's memory, threads and imports never
colour another's numbers."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The prefix of a child's result line on its stdout (everything else is its own output).
RESULT_PREFIX = "@@BENCH@@ "


def emit(payload: dict[str, Any]) -> None:
    """In a child: print its result line."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


def run_child(script: Path, argv: Sequence[str], timeout: float, *,
              env: Mapping[str, str] | None = None,
              exit_code_is_error: bool = False) -> dict[str, Any]:
    """Run ``python script *argv`` from the repository root and return its result line as a
    dict, or ``{"error", "stderr_tail"}`` when it timed out, crashed or printed none.
    ``exit_code_is_error``: a non-zero exit fails the run even after a result line."""
    cmd = [sys.executable, str(script), *argv]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=str(REPO), env=None if env is None else dict(env))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    if result is None:
        result = {"error": f"no result line (exit {proc.returncode})"}
    if exit_code_is_error and proc.returncode != 0 and "error" not in result:
        result["error"] = f"exit {proc.returncode}"
    if "error" in result:
        result["stderr_tail"] = "\n".join(proc.stderr.strip().splitlines()[-12:])
    return result


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
