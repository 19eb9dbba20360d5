"""Random bytes read from the OS a page at a time, and never shared with a forked child."""

from __future__ import annotations

import os
import weakref


class RandomPool:
    """``take(n)`` gives ``n`` fresh random bytes from a 4 KiB buffer refilled by
    ``os.urandom``.

    Ids and token nonces are made by the hundred per page or burst, and a system call
    each cost as much as the work around it. After a fork (an rq work horse) the child
    drops the buffer it inherited, so parent and child never hand out the same bytes.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._taken = 0
        _pools.add(self)

    def take(self, n: int) -> bytes:
        if self._taken + n > len(self._buffer):
            self._buffer, self._taken = os.urandom(max(self._size, n)), 0
        out = self._buffer[self._taken:self._taken + n]
        self._taken += n
        return out

    def forget(self) -> None:
        self._buffer, self._taken = b"", 0


_pools: weakref.WeakSet[RandomPool] = weakref.WeakSet()


def _after_fork() -> None:
    for pool in list(_pools):
        pool.forget()


os.register_at_fork(after_in_child=_after_fork)

__all__ = ["RandomPool"]
