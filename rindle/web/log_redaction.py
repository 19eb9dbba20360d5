"""Keep bearer tokens of Rindle's own routes out of access logs."""

from __future__ import annotations

import logging
import re

# /local/<token> and /files/<token>: the token is the credential, so only its route is logged.
_TOKEN_PATH = re.compile(r"(/(?:local|files)/)[A-Za-z0-9_.\-]{16,}")


def redact(text: str) -> str:
    """``text`` with every Rindle token replaced by ``[redacted]``."""
    return _TOKEN_PATH.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """A logging filter that rewrites a record's message and arguments without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


_FILTER = RedactTokens()


def install(logger_names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error",
                                              "gunicorn.access", "hypercorn.access")) -> None:
    """Attach the filter to the usual ASGI servers' loggers (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
