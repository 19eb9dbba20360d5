"""The console's Jinja environment: its templates, filters for sizes, ages and times, and
the headers every console response carries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..logs import redact
from ..web.static import static_name

#: Every console response: never cached (it shows live rows and carries form tokens), never
#: framed (a framed console is a clickjacking target for its buttons), and no script or
#: style but the console's own files from this origin.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

#: htmx's configuration (a meta tag: the CSP allows no inline script). Refusals (403) and
#: rejected forms (422) are swapped too: the server retargets them at the flash region.
#: No indicator <style> element: the CSP would refuse it.
HTMX_CONFIG = json.dumps({
    "includeIndicatorStyles": False,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "4..", "swap": True, "error": False},
        {"code": "...", "swap": False, "error": True},
    ],
}, separators=(",", ":"))

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: Any) -> str:
    """``1536`` -> ``1.5 KiB``; empty for an unknown size."""
    if value is None:
        return ""
    size = float(value)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)  # pragma: no cover (the loop always returns)


def human_age(seconds: Any) -> str:
    """Seconds as the largest unit that fits (``95`` -> ``1 min``); empty when unknown."""
    if seconds is None:
        return ""
    s = float(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600),
                              (float("inf"), "d", 86400)):
        if s < limit:
            return f"{sign}{int(s // size)} {unit}"
    return ""  # pragma: no cover


def when(moment: datetime | str | None) -> Markup:
    """A ``<time>`` element in UTC, readable on a phone: ``2026-11-03 12:04:05`` (from a
    datetime or the ISO text a JSON report holds)."""
    if moment is None or moment == "":
        return Markup("")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), shown)


def scrub(text: Any) -> str:
    """Error text as a page may show it: tokens, URL signatures and passwords redacted (an
    error quoting a signed URL must not hand it to whoever reads the page)."""
    return "" if text is None else redact(str(text))


def pretty_json(value: Any) -> str:
    """Metadata as indented JSON, long strings (a placeholder's data URI) shortened."""

    def shorten(item: Any) -> Any:
        if isinstance(item, str) and len(item) > 200:
            return item[:120] + f"… ({len(item)} characters)"
        if isinstance(item, dict):
            return {k: shorten(v) for k, v in item.items()}
        if isinstance(item, list):
            return [shorten(v) for v in item]
        return item

    return scrub(json.dumps(shorten(value), indent=2, sort_keys=True, default=str))


def short_id(value: Any) -> Markup:
    """The first 8 characters of an id (enough to tell rows apart), the whole id on hover."""
    text = str(value)
    if len(text) <= 12:
        return Markup("<code>{}</code>").format(text)
    return Markup('<code title="{}">{}…</code>').format(text, text[:8])


class Renderer:
    """The console's templates (``rindle/templates/rindle/admin/``) and their helpers.

    ``router_path`` is where Rindle's router is mounted: the console loads htmx, its SSE
    extension and its stylesheet from the router's static route, and subscribes to the
    router's event streams.
    """

    def __init__(self, router_path: str) -> None:
        self.env = Environment(
            loader=PackageLoader("rindle", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters.update(bytes=human_bytes, age=human_age, when=when, scrub=scrub,
                                pretty_json=pretty_json, short_id=short_id)
        self.env.globals.update(
            static=lambda name: f"{router_path}/static/{static_name(name)}",
            htmx_config=HTMX_CONFIG,
        )

    def render(self, template: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"rindle/admin/{template}").render(context)


__all__ = ["HEADERS", "Renderer", "human_age", "human_bytes"]
