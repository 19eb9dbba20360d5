"""Serve one stored object over HTTP, with validators, single byte ranges and a sandbox."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import ObjectNotFound
from ..storage.base import ObjectInfo, Storage
from ..storage.content_disposition import content_disposition

# Stored files are user content: a stored HTML or SVG file must not run script on our origin.
_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
_FALLBACK_TYPE = "application/octet-stream"
# An entity-tag may itself contain commas, so a list is tokenised rather than split on ",".
_ETAG_LIST_ITEM = re.compile(r'\*|(?:W/)?"[^"]*"')


class _RangeNotSatisfiable(Exception):
    pass


async def object_response(
    storage: Storage,
    key: str,
    *,
    method: str,
    headers: Mapping[str, str],
    content_type: str | None,
    filename: str | None,
    disposition: str = "inline",
    max_age: int = 0,
) -> Response:
    """The response for a GET or HEAD of ``key``: 200, 206, 304, 404 or 416.

    ``headers`` are the request's headers. The body is streamed from storage, never read whole.
    """
    method = method.upper()
    if method not in ("GET", "HEAD"):
        return JSONResponse(
            {"error": {"code": "method_not_allowed", "message": "use GET or HEAD"}},
            status_code=405,
            headers={"Allow": "GET, HEAD"},
        )
    # Built first, so a bad disposition fails loudly even when the object is missing.
    disposition_value = content_disposition(disposition, filename)
    info = await storage.head(key)
    if info is None:
        error = ObjectNotFound("there is no stored object for this file")
        return JSONResponse(error.to_dict(), status_code=404, headers={"Cache-Control": "no-store"})

    request_headers = headers if isinstance(headers, Headers) else Headers(headers=dict(headers))
    validators = _validators(info)
    cache_control = f"private, max-age={max_age}" if max_age > 0 else "private, no-store"

    if _not_modified(request_headers, info):
        # RFC 9110 15.4.5: repeat only what a cache needs to update its stored response.
        kept = {k: v for k, v in validators.items() if k == "ETag"} or validators
        return Response(status_code=304, headers={**kept, "Cache-Control": cache_control})

    response_headers = {
        **validators,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
        "Content-Type": content_type or info.content_type or _FALLBACK_TYPE,
        "Content-Disposition": disposition_value,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _CSP,
    }

    byte_range: tuple[int, int] | None = None
    range_header = request_headers.get("range")
    # RFC 9110 14.2: GET is the only method with range handling, so HEAD ignores Range.
    if method == "GET" and range_header is not None:
        if _if_range_holds(request_headers.get("if-range"), info):
            try:
                byte_range = _parse_range(range_header, info.size)
            except _RangeNotSatisfiable:
                for name in ("Content-Type", "Content-Disposition"):
                    del response_headers[name]
                response_headers["Content-Range"] = f"bytes */{info.size}"
                return Response(status_code=416, headers=response_headers)

    if byte_range is None:
        start, end, status = 0, info.size - 1, 200
    else:
        start, end = byte_range
        status = 206
        response_headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    response_headers["Content-Length"] = str(max(end - start + 1, 0))

    if method == "HEAD":
        return Response(status_code=status, headers=response_headers)
    return StreamingResponse(
        storage.stream(key, start=start, end=end), status_code=status, headers=response_headers
    )


def _validators(info: ObjectInfo) -> dict[str, str]:
    validators: dict[str, str] = {}
    if info.etag:
        validators["ETag"] = info.etag
    if info.modified_at is not None:
        validators["Last-Modified"] = formatdate(info.modified_at.timestamp(), usegmt=True)
    return validators


def _not_modified(headers: Headers, info: ObjectInfo) -> bool:
    if_none_match = headers.getlist("if-none-match")
    if if_none_match:
        # RFC 9110 13.1.3: weak comparison, and If-Modified-Since is then ignored.
        tags = _ETAG_LIST_ITEM.findall(",".join(if_none_match))
        return "*" in tags or (
            info.etag is not None and _opaque(info.etag) in {_opaque(t) for t in tags}
        )
    since = _parse_http_date(headers.get("if-modified-since"))
    if since is None or info.modified_at is None:
        return False
    # Last-Modified has one-second resolution, so compare whole seconds.
    return int(info.modified_at.timestamp()) <= int(since.timestamp())


def _if_range_holds(value: str | None, info: ObjectInfo) -> bool:
    """Whether a Range may be honoured: no If-Range, or one naming the current representation."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        # If-Range needs the strong comparison: a weak tag never matches.
        return info.etag is not None and not info.etag.startswith("W/") and value == info.etag
    since = _parse_http_date(value)
    return (
        since is not None
        and info.modified_at is not None
        and int(since.timestamp()) == int(info.modified_at.timestamp())
    )


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """The inclusive ``(start, end)`` of one byte range, or ``None`` to ignore the header.

    Multiple ranges and malformed headers are ignored (RFC 9110 14.2 allows it): the client
    then gets the whole object with a 200. Raises ``_RangeNotSatisfiable`` for a 416.
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _is_digits(first or "0") or not _is_digits(last or "0"):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def _is_digits(text: str) -> bool:
    # str.isdigit() alone accepts "²" and other non-ASCII digits that int() may reject.
    return text.isascii() and text.isdigit()


def _opaque(etag: str) -> str:
    return etag.removeprefix("W/")


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
