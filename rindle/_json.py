"""Parse untrusted JSON (request bodies, WebSocket commands) with limits.

The stdlib ``json`` has no nesting limit: ``[`` x 3000 makes ``json.loads`` raise
``RecursionError``, which is not a ``ValueError``, so a plain ``except ValueError`` lets it
escape as a 500 with a traceback (or a dropped WebSocket). And a value that does parse but
is nested hundreds deep is a hazard for whatever walks it next. :func:`loads_object` turns
all of that into one ``invalid_json`` :class:`~rindle.errors.ValidationError`.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from .errors import ValidationError

#: Rindle's commands are at most a few levels deep (``{"parts": [{...}]}``); 32 leaves
#: adopters' metadata plenty of room and is far below the interpreter's recursion limit.
MAX_DEPTH = 32


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259); Python accepts them unless told not to.
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests containers more than ``max_depth`` deep (a loop, not
    recursion, so the check itself cannot hit the recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def loads_object(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH,
                 what: str = "the body") -> dict[str, Any]:
    """``data`` parsed as a JSON object; ``invalid_json`` if it is not JSON, not an object,
    or nested deeper than ``max_depth``. ``what`` names the input in the message."""
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep_error(what, max_depth) from None
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise ValidationError(f"{what} must be a JSON object", code="invalid_json") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object", code="invalid_json")
    if _too_deep(value, max_depth):
        raise _too_deep_error(what, max_depth)
    return value


def _too_deep_error(what: str, max_depth: int) -> ValidationError:
    return ValidationError(f"{what} is nested more than {max_depth} levels deep",
                           code="invalid_json", max_depth=max_depth)


__all__ = ["MAX_DEPTH", "loads_object"]
