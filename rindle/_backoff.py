"""One rule for waiting before a retry: capped exponential growth with jitter."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, *, jitter: float = 0.5) -> float:
    """The delay before retry ``attempt`` (1 for the first): ``base`` doubling per attempt up
    to ``cap``, then scaled by a random factor in ``[1 - jitter, 1]`` so that many clients
    failing together don't all come back at once."""
    delay = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    return delay * (1.0 - jitter * random.random())


__all__ = ["backoff"]
