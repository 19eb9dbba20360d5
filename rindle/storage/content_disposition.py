"""Build a safe ``Content-Disposition`` header value (RFC 6266, with RFC 8187/5987 filenames)."""

from __future__ import annotations

import re
from urllib.parse import quote

_DISPOSITIONS = frozenset({"inline", "attachment"})
# C0 controls and DEL, plus the C1 range: none belongs in a filename, and CR/LF would let a
# name inject headers.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Characters the quoted fallback must not carry as-is: `"` and `\` need quoted-pair escapes that
# user agents honour inconsistently (RFC 6266 appendix D), and `%XX` is wrongly decoded by some.
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%]')
# RFC 5987 attr-char beyond ALPHA / DIGIT and the "-._~" that quote() always keeps.
_ATTR_CHAR_EXTRA = "!#$&+^`|"


def content_disposition(disposition: str, filename: str | None) -> str:
    """``inline`` or ``attachment``, with the filename when there is one.

    An ASCII name that needs no change is sent as ``filename="..."`` alone; any other name also
    gets ``filename*=UTF-8''...``, which every current browser prefers over the fallback.
    Raises ``ValueError`` for any other disposition type.
    """
    if disposition not in _DISPOSITIONS:
        raise ValueError(f"disposition must be 'inline' or 'attachment', not {disposition!r}")
    name = _CONTROL.sub("", filename or "").strip()
    if not name:
        return disposition
    fallback = _FALLBACK_UNSAFE.sub("_", name)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != name:
        encoded = quote(name, safe=_ATTR_CHAR_EXTRA, errors="replace")
        value += f"; filename*=UTF-8''{encoded}"
    return value


__all__ = ["content_disposition"]
