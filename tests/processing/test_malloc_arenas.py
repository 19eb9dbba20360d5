"""The image processor caps glibc's malloc arenas so libvips' threads don't strand memory."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from rindle.processing.image import ImageProcessor

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")

# Twelve threads malloc at the same time; glibc's malloc_info then lists one <heap> per arena.
_PROBE = """
import ctypes, sys, threading
from rindle.processing.image import _cap_malloc_arenas
if sys.argv[1] != "-":
    _cap_malloc_arenas(int(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
barrier = threading.Barrier(12)
def work():
    libc.malloc(4096)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
f = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(f))
libc.fclose(ctypes.c_void_p(f))
print(open(sys.argv[2]).read().count("<heap nr="))
"""


def _arenas(tmp_path: Path, cap: str, env_max: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if env_max is not None:
        env["MALLOC_ARENA_MAX"] = env_max
    out = subprocess.run([sys.executable, "-c", _PROBE, cap, str(tmp_path / "info.xml")],
                         capture_output=True, text=True, env=env, check=True)
    return int(out.stdout)


def test_the_cap_limits_arenas(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "-") > 2  # glibc's default: an arena per allocating thread
    assert _arenas(tmp_path, "2") == 2


def test_the_environment_wins(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "2", env_max="3") == 3


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="malloc_arena_max"):
        ImageProcessor(malloc_arena_max=0)
    assert ImageProcessor(malloc_arena_max=None).malloc_arena_max is None
