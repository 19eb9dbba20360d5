"""Rindle's loggers, and the filter that keeps credentials out of every line they write.

A filter attached to a logger only sees records created on that very logger (not those of its
children), so each Rindle module takes its logger from :func:`get_logger`, which attaches the
shared filter; :func:`install` attaches it to the ASGI servers' loggers.

This module imports nothing else of Rindle's, so any layer (model, storage) may use it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# Rindle's routes whose last path segment is a bearer token ({profile} is one plain segment).
TOKEN_ROUTES: tuple[str, ...] = ("local/{token}", "files/{token}", "tus/{profile}/{token}")

# Query parameters that carry a credential: S3/GCS presigned-URL signatures and credentials,
# a GCS resumable session's upload_id (the session URI alone authorizes the upload) and the
# SSE subscribe token.
SECRET_QUERY_PARAMS: tuple[str, ...] = (
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature",
    "GoogleAccessId", "X-Goog-Signature", "X-Goog-Credential", "upload_id", "token",
)

SERVER_LOGGERS: tuple[str, ...] = (
    "uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error",
    "hypercorn.access", "hypercorn.error",
)

# URL-safe base64 (Fernet pads with "="), also when a server logs it percent-encoded.
_TOKEN = r"(?:[A-Za-z0-9_\-=.]|%[0-9A-Fa-f]{2}){16,}"
_SEGMENT = r"[^/\s?#]+"


def _route_pattern(template: str) -> str:
    prefix = template.removesuffix("{token}")
    return re.escape(prefix).replace(re.escape("{profile}"), _SEGMENT)


_TOKEN_PATH = re.compile(
    r"(/(?:" + "|".join(_route_pattern(t) for t in TOKEN_ROUTES) + r"))" + _TOKEN
)
_SECRET_QUERY = re.compile(
    r"([?&;](?:" + "|".join(map(re.escape, SECRET_QUERY_PARAMS)) + r")=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)
# user:password@ in any URL (database, Redis): the password is a credential too.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@/\s]+@")

_UNFORMATTABLE = "[log message withheld: it could not be formatted to check it for credentials]"
_UNFORMATTABLE_TRACEBACK = "[traceback withheld: it could not be formatted]"


def redact(text: str) -> str:
    """``text`` with every token, URL signature and URL password replaced by ``[redacted]``."""
    text = _TOKEN_PATH.sub(r"\1" + REDACTED, text)
    text = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
    return _URL_PASSWORD.sub(r"\1" + REDACTED + "@", text)


def _is_clean(text: str) -> bool:
    return redact(text) == text


def _clean_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    text = str(arg)
    # An object whose str() or repr() holds a credential (an exception quoting a URL) is
    # replaced by its redacted text; anything else keeps its type for %d and friends.
    if _is_clean(text) and _is_clean(repr(arg)):
        return arg
    return redact(text)


def _arg_is_clean(arg: Any) -> bool:
    return _is_clean(arg) if isinstance(arg, str) else _clean_arg(arg) is arg


def _scrub_message(record: logging.LogRecord) -> None:
    message = record.getMessage()
    clean = redact(message)
    args = record.args
    arg_values = args.values() if isinstance(args, dict) else (args or ())
    if clean == message and all(map(_arg_is_clean, arg_values)):
        return
    # Keep the arguments' shape when redacting them one by one renders the same line:
    # uvicorn's AccessFormatter unpacks record.args and would fail on an empty tuple.
    if isinstance(args, tuple) and args:
        cleaned = tuple(_clean_arg(a) for a in args)
        template = redact(record.msg) if isinstance(record.msg, str) else record.msg
        try:
            rebuilt = str(template) % cleaned
        except Exception:
            rebuilt = None
        if rebuilt == clean:
            record.msg, record.args = template, cleaned
            return
    record.msg, record.args = clean, ()


def _scrub_traceback(record: logging.LogRecord) -> None:
    if record.exc_info and not record.exc_text:
        # Formatted here so handlers reuse this redacted text instead of formatting their own.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


def _scrub_stack(record: logging.LogRecord) -> None:
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactTokens(logging.Filter):
    """Rewrites a record's final message, traceback and stack without credentials.

    It never raises, and never drops a record: a log call must not break a request. What
    cannot be formatted is withheld rather than let through unchecked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _scrub_message(record)
        except Exception:
            record.msg, record.args = _UNFORMATTABLE, ()
        try:
            _scrub_traceback(record)
        except Exception:
            record.exc_info, record.exc_text = None, _UNFORMATTABLE_TRACEBACK
        try:
            _scrub_stack(record)
        except Exception:
            record.stack_info = None
        return True


FILTER = RedactTokens()


def attach(logger: logging.Logger) -> logging.Logger:
    """``logger`` with the shared filter attached (once)."""
    if FILTER not in logger.filters:
        logger.addFilter(FILTER)
    return logger


def get_logger(name: str) -> logging.Logger:
    """The named logger, carrying the redaction filter: every Rindle module logs through it."""
    return attach(logging.getLogger(name))


def install(logger_names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Attach the filter to the usual ASGI servers' loggers (idempotent)."""
    for name in logger_names:
        attach(logging.getLogger(name))
