"""The ``<picture>``: which variants become its sources (:func:`picture_plan`) and its markup,
built in Python (:func:`picture_html`). The ``picture`` macro and ``picture_tags`` both call
it, so there is one definition of it.

Why not the Jinja macro alone: a page of pictures spent half its time in the macro's call
machinery (its ``set``s, a nested attribute macro, fifteen escapes) for markup a few
f-strings make; this runs at a fraction of that cost and renders the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from markupsafe import Markup, escape


class AssetView(Protocol):
    """What a picture reads of ``rindle.web.templating.AssetView`` (which imports this
    module, so it is described here rather than imported)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def placeholder(self) -> str | None: ...
    @property
    def events_url(self) -> str | None: ...
    @property
    def fragment_url(self) -> str | None: ...
    @property
    def variants(self) -> Mapping[str, Any]: ...
    @property
    def settled(self) -> bool: ...

#: A transparent pixel: the <img> of a picture with nothing servable yet.
_PENDING_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
ALT_REQUIRED = 'rindle.picture needs alt= (use alt="" for a decorative image)'
#: Formats a browser may not read, in the order their <source>s go: best compression first.
_FORMAT_ORDER = {"image/avif": 0, "image/webp": 1}


def _q(value: Any) -> str:
    # What Jinja's urlencode filter does for a string ("/" kept), then escaped.
    return str(escape(quote(str(value), safe="/")))


def _attrs(attrs: Mapping[str, Any] | None) -> str:
    """Extra ``<img>`` attributes: ``data_x=1`` is ``data-x="1"``, ``True`` a bare name,
    ``None`` and ``False`` left out."""
    out = []
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        name = escape(key.replace("_", "-"))
        out.append(f" {name}" if value is True else f' {name}="{escape(value)}"')
    return "".join(out)


def picture_html(view: AssetView, variants: Sequence[tuple[str, str | None] | str] = (),
                 alt: str | None = None, sizes: str | None = None, loading: str = "lazy",
                 attrs: Mapping[str, Any] | None = None) -> Markup:
    """The ``<picture>`` of ``view`` (see the ``picture`` macro in macros.html)."""
    if alt is None:
        raise ValueError(ALT_REQUIRED)
    plan = picture_plan(view, variants)
    img = plan["img"]
    src = img.url if img else view.url
    live = bool(view.fragment_url) and not view.settled
    style = (f"background: center / cover no-repeat url('{view.placeholder}')"
             if view.placeholder and view.state != "ready" else None)
    e_alt, e_loading = escape(alt), escape(loading)
    parts = []
    if live:
        parts.append(f'<span class="rindle-live" hx-ext="sse" '
                     f'sse-connect="{escape(view.events_url)}">')
    parts.append(f'<picture class="rindle-picture" data-rindle-asset="{escape(view.id)}" '
                 f'data-state="{escape(view.state)}"')
    if live:
        query = [f"{escape(view.fragment_url)}?kind=picture&amp;alt={_q(alt)}"
                 f"&amp;loading={_q(loading)}"]
        if sizes:
            query.append(f"&amp;sizes={_q(sizes)}")
        for name, media_query in plan["pairs"]:
            query.append(f"&amp;v={_q(name)}&amp;m={_q(media_query or '')}")
        parts.append(f' hx-get="{"".join(query)}" hx-trigger="sse:variant_ready, '
                     'sse:variant_failed" hx-target="closest .rindle-live" hx-swap="outerHTML"')
    parts.append(">")
    e_sizes = f' sizes="{escape(sizes)}"' if sizes else ""
    for v, media_query in plan["sources"]:
        kind = f' type="{escape(v.content_type)}"' if v.content_type else ""
        where = f' media="{escape(media_query)}"' if media_query else ""
        parts.append(f'\n  <source{kind} srcset="{escape(v.url)}"{where}{e_sizes}>')
    e_style = f' style="{escape(style)}"' if style else ""
    extra = _attrs(attrs)
    if src:
        if img and img.width:
            size = f' width="{escape(img.width)}" height="{escape(img.height)}"'
        elif view.width:
            size = f' width="{escape(view.width)}" height="{escape(view.height)}"'
        else:
            size = ""
        parts.append(f'\n  <img src="{escape(src)}" alt="{e_alt}" loading="{e_loading}" '
                     f'decoding="async"{size}{e_style}{extra}>')
    else:
        size = (f' width="{escape(view.width)}" height="{escape(view.height)}"'
                if view.width else "")
        parts.append(f'\n  <img src="{_PENDING_GIF}" alt="{e_alt}" '
                     f'class="rindle-picture__pending"{size}{e_style}{extra}>')
    parts.append("\n</picture>")
    if live:
        parts.append("</span>")
    return Markup("".join(parts))


def picture_plan(view: AssetView,
                 variants: Sequence[tuple[str, str | None] | str]) -> dict[str, Any]:
    """Which servable variants become ``<source>``s, in which order, and which is the ``<img>``.

    ``variants`` are names or ``(name, media query)`` pairs; ``pairs`` in the answer is
    them all as pairs (the live element's refresh URL lists them). Done here rather than
    in the macro: a Jinja loop building the list cost a page of pictures a third of its
    rendering time.

    A browser takes the first ``<source>`` that matches, so sources with a media query come
    first (in the order given), the unqualified ones last; within each, AVIF and WebP come
    before the formats every browser reads. The ``<img>`` is the last plain-format variant
    without a media query (or any plain one), and stands for the original while variants
    are still building.
    """
    pairs = [(v, None) if isinstance(v, str) else (v[0], v[1]) for v in variants]
    ready = [(view.variants[n], q) for n, q in pairs
             if n in view.variants and view.variants[n].url]
    plain = [(v, q) for v, q in ready if v.content_type not in _FORMAT_ORDER]
    unqualified = [v for v, q in plain if not q]
    img = unqualified[-1] if unqualified else (plain[-1][0] if plain else None)
    queries: list[str | None] = []
    for _, q in ready:
        if q not in queries:
            queries.append(q)
    queries.sort(key=lambda q: q is None)
    sources = []
    for q in queries:
        group = [(v, q) for v, qq in ready if qq == q and (img is None or v.name != img.name)]
        group.sort(key=lambda item: _FORMAT_ORDER.get(item[0].content_type or "", 9))
        sources.extend(group)
    return {"sources": sources, "img": img, "pairs": pairs}
