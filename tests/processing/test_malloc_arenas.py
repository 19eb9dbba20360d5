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
# Appended to the scripts below, which set `info` (where malloc_info writes) and `label`.
_COUNT_ARENAS = """
import ctypes, threading
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
f = libc.fopen(info.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(f))
libc.fclose(ctypes.c_void_p(f))
print(label, open(info).read().count("<heap nr="))
"""

_PROBE = """
import sys
from rindle.processing.image import _cap_malloc_arenas
if sys.argv[1] != "-":
    _cap_malloc_arenas(int(sys.argv[1]))
info, label = sys.argv[2], "arenas:"
""" + _COUNT_ARENAS


def _arenas(tmp_path: Path, cap: str, env_max: str | None = None,
            tunables: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX",
                                                             "GLIBC_TUNABLES")}
    if env_max is not None:
        env["MALLOC_ARENA_MAX"] = env_max
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", _PROBE, cap, str(tmp_path / "info.xml")],
                         capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.split()[1])


def test_the_cap_limits_arenas(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "-") > 2  # glibc's default: an arena per allocating thread
    assert _arenas(tmp_path, "2") == 2


def test_the_environment_wins(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "2", env_max="3") == 3
    assert _arenas(tmp_path, "2", tunables="glibc.malloc.arena_max=3") == 3


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="malloc_arena_max"):
        ImageProcessor(malloc_arena_max=0)
    assert ImageProcessor(malloc_arena_max=None).malloc_arena_max is None


_RUNTIME = """
import asyncio, sys
from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
from rindle.model import migrate
from rindle.processing import image
from rindle.processing.image import ImageProcessor
from tests.support.images import png

class Photos(Profile):
    name = "photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=8)}

root, cap = sys.argv[1], sys.argv[2]
url = f"sqlite:///{root}/x.db"
migrate.upgrade(url)
processor = ImageProcessor(malloc_arena_max=None if cap == "none" else int(cap))
media = Rindle(database_url=url, storages={"local": LocalStorage(root=f"{root}/files")},
               profiles=[Photos], secret_keys=["k" * 32], authorizer=AllowAll(),
               processors={"image": processor})

async def main():
    async with media.connected():
        result = await media.upload(Photos, png(32, 32), filename="a.png")
        await media.drain()
        assert (await media.asset(result.asset.id)).state == "ready"

asyncio.run(main())
info, label = f"{root}/info.xml", image._arena_cap
""" + _COUNT_ARENAS


def _after_a_variant_job(tmp_path: Path, cap: str) -> tuple[str, int]:
    tmp_path.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX",
                                                             "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", _RUNTIME, str(tmp_path), cap],
                         capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    applied, heaps = out.stdout.split()
    return applied, int(heaps)


def test_building_variants_applies_the_cap_and_none_opts_out(tmp_path: Path) -> None:
    applied, heaps = _after_a_variant_job(tmp_path / "capped", "2")
    # Arenas made before the first image (the event loop's, aiosqlite's threads) remain;
    # every thread after it shares them instead of adding its own.
    assert applied == "2" and heaps <= 8
    applied, free_heaps = _after_a_variant_job(tmp_path / "free", "none")
    assert applied == "None" and free_heaps > heaps
