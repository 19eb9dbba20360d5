"""Jinja helpers: asset views signed for one viewer, the ``rindle/macros.html`` macros, and
the HTML fragments live events swap in.

Signing URLs and reading variant rows are async, and Starlette renders templates
synchronously, so a template never does I/O: the route prepares an :class:`AssetView` with
``await media.html.view(asset, request=request)`` and the macros render it. From Python,
``await media.html.picture_tag(...)`` does both and returns ``Markup``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..delivery.authorizer import AuthRequest, decides_per_asset, is_allowed
from ..delivery.url_cache import SignedUrlCache, cache_for
from ..delivery.urls import delivery_urls, servable
from ..errors import NotFound, RindleError
from ..live.sse import subscribe_token
from ..model.records import Asset, AssetVariant
from ._picture import _FORMAT_ORDER, picture_html, picture_plan

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ..delivery.signing import Signer
    from ..delivery.streaming.base import StreamingProvider
    from ..delivery.urls import Delivering
    from ..profile import Profile

    class Viewing(Delivering, Protocol):
        """What views and macros use: delivery, the router's path, the signer of subscribe
        tokens, and ``media.html`` (fragments render through it)."""

        @property
        def router_path(self) -> str: ...

        @property
        def signer(self) -> Signer: ...

        @property
        def html(self) -> Html: ...

        def streaming_provider(self, name: str) -> StreamingProvider:
            """A streaming profile's provider (its playback URLs are signed by it)."""
            ...



@dataclass(frozen=True)
class VariantView:
    """One variant as one viewer may see it: ``url`` is ``None`` until it is servable."""

    name: str
    state: str
    url: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class AssetView:
    """Everything the macros render for one asset and one viewer; no I/O left to do.

    ``url`` and the variants' ``url`` are signed for this viewer, or ``None`` when the
    Authorizer refuses (then nothing secret is rendered). ``events_url`` is the SSE stream
    with a short-lived subscribe token, set while the asset may still change.
    """

    id: str
    profile: str
    state: str
    kind: str
    content_type: str | None
    width: int | None
    height: int | None
    filename: str | None = None
    placeholder: str | None = None
    duration_ms: int | None = None
    url: str | None = None
    variants: dict[str, VariantView] = field(default_factory=dict)
    events_url: str | None = None
    fragment_url: str | None = None
    allowed: bool = False
    #: A streaming profile's asset: its provider row's state and, once ready, the HLS URL
    #: and the provider's thumbnail, signed for this viewer.
    stream: StreamView | None = None
    #: Whether the asset's profile declares variants. Promotion commits ``available``
    #: before the variant rows are planned, so a view read in between has no rows yet and
    #: must still go live.
    expects_variants: bool = False

    @property
    def settled(self) -> bool:
        """True when nothing about the asset will change without an operator."""
        if self.stream is not None and self.stream.state in _STREAM_UNSETTLED:
            return False
        return self.state in ("ready", "degraded", "quarantined", "deleted") or (
            self.state == "available" and not self.variants and not self.expects_variants)


@dataclass(frozen=True)
class StreamView:
    """The streaming side of an asset, for the ``video`` macro."""

    state: str
    url: str | None = None
    thumbnail: str | None = None
    type: str = "application/vnd.apple.mpegurl"


#: Provider-asset states after which the HLS source may still appear.
_STREAM_UNSETTLED = ("pending", "uploading", "processing")


_UNSETTLED = ("staged", "validating", "analyzing", "promoting", "available", "processing",
              "transcoding")


class Html:
    """``media.html``: asset views and the macros, callable from Python."""

    def __init__(self, media: Viewing) -> None:
        self.media = media
        self.env = Environment(
            loader=PackageLoader("rindle", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True, lstrip_blocks=True,
        )
        _add_globals(self.env, media)

    async def view(self, asset: Asset | str, *, request: HTTPConnection | None = None,
                   actor: Any = None, expires_in: int | None = None) -> AssetView:
        """Prepare ``asset`` for rendering: states, dimensions and URLs signed for this viewer."""
        media = self.media
        row = asset if isinstance(asset, Asset) else await media.repo.require_asset(asset)
        profile = media.profile(row.profile)
        allowed = await is_allowed(media.authorizer_for(profile), AuthRequest(
            action="view", profile=profile.name, asset=row, actor=actor, request=request))
        return await self._build(row, profile, allowed, await media.repo.list_variants(row.id),
                                 request=request, actor=actor, expires_in=expires_in)

    async def views(self, assets: Sequence[Asset | str], *,
                    variants: Collection[str] | None = None, original: bool | None = True,
                    request: HTTPConnection | None = None, actor: Any = None,
                    expires_in: int | None = None) -> list[AssetView]:
        """``view`` for a whole page of assets, without a query per asset.

        One query loads the assets given by id (``Asset`` rows are used as they are), one
        loads the variants of all of them, and an Authorizer that decides by profile
        (``decides_per_asset = False``, as ``AllowAll`` and ``DenyAll`` do) is asked once
        per profile rather than once per asset. ``variants``: sign only these variants'
        URLs (a page showing three of them needs no others); ``original=None``: sign the
        original only where a ``<picture>`` of ``variants`` falls back to it (none of them
        servable in a format every browser reads). The views come back in the order given.
        """
        out = []
        async for row, profile, allowed, rows in self._page(assets, variants, request=request,
                                                            actor=actor):
            out.append(await self._build(row, profile, allowed, rows, request=request,
                                         actor=actor, expires_in=expires_in, only=variants,
                                         original=original))
        return out

    async def _page(self, assets: Sequence[Asset | str], variants: Collection[str] | None, *,
                    request: HTTPConnection | None, actor: Any,
                    ) -> AsyncIterator[tuple[Asset, type[Profile], bool, list[AssetVariant]]]:
        """Each asset of a page with its profile, the Authorizer's decision and its variant
        rows: two queries in all, one decision per profile where the Authorizer allows it."""
        media = self.media
        ids = [a for a in assets if isinstance(a, str)]
        loaded = {a.id: a for a in await media.repo.get_assets(ids)} if ids else {}
        rows: list[Asset] = []
        for item in assets:
            row = item if isinstance(item, Asset) else loaded.get(item)
            if row is None:
                raise NotFound(f"asset {item} does not exist")
            rows.append(row)
        by_asset = await media.repo.variants_of(
            [r.id for r in rows], names=list(variants) if variants is not None else None,
            for_display=True)
        decided: dict[str, bool] = {}
        for row in rows:
            profile = media.profile(row.profile)
            authorizer = media.authorizer_for(profile)
            if decides_per_asset(authorizer):
                allowed = await is_allowed(authorizer, AuthRequest(
                    action="view", profile=profile.name, asset=row, actor=actor,
                    request=request))
            elif profile.name in decided:
                allowed = decided[profile.name]
            else:
                allowed = decided[profile.name] = await is_allowed(authorizer, AuthRequest(
                    action="view", profile=profile.name, actor=actor, request=request))
            yield row, profile, allowed, by_asset.get(row.id, [])

    async def _build(self, row: Asset, profile: type[Profile], allowed: bool,
                     rows: list[AssetVariant], *, request: HTTPConnection | None, actor: Any,
                     expires_in: int | None, only: Collection[str] | None = None,
                     original: bool | None = True) -> AssetView:
        media = self.media
        if original is None:
            # What picture_plan makes the <img>: a plain-format variant, else the original.
            original = not any(servable(v) and (only is None or v.name in only)
                               and v.content_type not in _FORMAT_ORDER for v in rows)
        url, urls = (await delivery_urls(media, profile, row, rows, actor=actor,
                                         request=request, expires_in=expires_in,
                                         authorized=True, only=only, original=original)
                     if allowed else (None, {}))
        variants = {v.name: VariantView(name=v.name, state=v.state, url=urls.get(v.name),
                                        content_type=v.content_type, width=v.width,
                                        height=v.height) for v in rows}
        stream = await self._stream(profile, row, allowed, expires_in)
        events_url = fragment_url = None
        # Live while anything shown may still change: the asset, a variant, the stream.
        if allowed and (row.state in _UNSETTLED or any(
                v.state in ("planned", "queued", "processing") for v in variants.values())
                or (stream is not None and stream.state in _STREAM_UNSETTLED)):
            token = subscribe_token(media, row.id)
            events_url = (f"{media.router_path}/events/asset/{row.id}?format=html&token={token}")
            fragment_url = f"{media.router_path}/fragments/asset/{row.id}"
        width, height = display_size(row)
        return AssetView(
            id=row.id, profile=row.profile, state=row.state, kind=row.kind,
            content_type=row.content_type, width=width, height=height,
            filename=row.filename, placeholder=row.metadata.get("placeholder"),
            duration_ms=row.duration_ms, url=url,
            variants=variants, events_url=events_url if allowed else None,
            fragment_url=fragment_url if allowed else None, allowed=allowed, stream=stream,
            expects_variants=bool(profile.variants))

    async def _stream(self, profile: type[Profile], row: Asset, allowed: bool,
                      expires_in: int | None) -> StreamView | None:
        """The provider side of a streaming profile's asset; URLs only for a viewer the
        Authorizer allowed (it was asked once, in ``view``)."""
        if profile.delivery.streaming is None:
            return None
        from ..delivery.streaming.playback import playable, playback_url

        rows = [r for r in await self.media.repo.provider_assets_for(row.id)
                if r.provider_name == profile.delivery.streaming.provider_name]
        if not rows:
            # Not pushed yet: it will be once the source is ready, unless nothing will come.
            state = "pending" if row.state in _UNSETTLED else "none"
            return StreamView(state=state)
        pushed = playable(profile, row, rows)
        if not allowed or pushed is None:
            return StreamView(state=rows[0].state)
        return StreamView(
            state="ready",
            url=playback_url(self.media, profile, pushed, expires_in=expires_in),
            thumbnail=playback_url(self.media, profile, pushed, kind="thumbnail",
                                   expires_in=expires_in))

    def _macro(self, name: str) -> Any:
        return getattr(self.env.get_template("rindle/macros.html").module, name)

    async def picture_tag(self, profile: type[Profile] | str, asset: Asset | str, *,
                          variants: Sequence[tuple[str, str | None] | str] = (),
                          alt: str, sizes: str | None = None, loading: str = "lazy",
                          request: HTTPConnection | None = None, actor: Any = None,
                          **attrs: Any) -> Markup:
        """A responsive ``<picture>``; the original stands in while variants build."""
        view = await self.view(asset, request=request, actor=actor)
        if view.profile != self.media.profile(profile).name:
            raise RindleError(f"asset {view.id} is not a {profile!r} asset", code="not_found")
        return picture_html(view, variants, alt, sizes, loading, attrs)

    async def picture_tags(self, profile: type[Profile] | str, assets: Sequence[Asset | str],
                           *, variants: Sequence[tuple[str, str | None] | str] = (),
                           alt: str | Sequence[str], sizes: str | None = None,
                           loading: str = "lazy", request: HTTPConnection | None = None,
                           actor: Any = None, **attrs: Any) -> list[Markup]:
        """``picture_tag`` for a page of assets (a feed, a gallery) through ``views``: a
        couple of queries for the page, not one per picture. ``alt`` is one text for all,
        or one per asset."""
        prof = self.media.profile(profile)
        names = [v if isinstance(v, str) else v[0] for v in variants]
        alts = [alt] * len(assets) if isinstance(alt, str) else list(alt)
        if len(alts) != len(assets):
            raise ValueError("give one alt text, or one per asset")
        # A settled picture's markup is reused while its signed URLs are (see
        # delivery/url_cache.py): a feed re-rendered for the next visitor costs its two
        # queries and a lookup per picture. Everything the markup depends on is the key.
        cache: SignedUrlCache | None = cache_for(self.media, "pictures")
        ttl = prof.delivery.signed_url_ttl_seconds or self.media.signed_url_ttl
        shape = (tuple(v if isinstance(v, str) else tuple(v) for v in variants), sizes,
                 loading, tuple(sorted(attrs.items())),
                 None if request is None else (request.url.scheme, request.url.netloc))
        try:
            hash(shape)
        except TypeError:  # an attribute value that can't be a key: render without the cache
            cache = None
        out = []
        texts = iter(alts)
        async for row, profile_, allowed, rows in self._page(assets, names, request=request,
                                                             actor=actor):
            text = next(texts)
            if profile_.name != prof.name:
                raise RindleError(f"asset {row.id} is not a {prof.name!r} asset",
                                  code="not_found")
            key = (row.id, row.state, row.storage_key, row.updated_at, allowed, text, shape,
                   tuple((v.name, v.state, v.storage_key, v.content_type, v.width, v.height,
                          v.generated_at is not None) for v in rows))
            markup = cache.get(key, ttl) if cache is not None else None
            if markup is None:
                view = await self._build(row, profile_, allowed, rows, request=request,
                                         actor=actor, expires_in=None, only=names,
                                         original=None)
                markup = picture_html(view, variants, text, sizes, loading, attrs)
                if cache is not None and view.settled and view.stream is None:
                    cache.put(key, markup, ttl)  # a live picture is for this page only
            out.append(Markup(markup))
        return out

    async def video_tag(self, profile: type[Profile] | str, asset: Asset | str, *,
                        variants: Sequence[str] = (), poster: str | None = None,
                        controls: bool = True, original: bool = True,
                        request: HTTPConnection | None = None, actor: Any = None,
                        **attrs: Any) -> Markup:
        """A ``<video>`` with a ``<source>`` per ready rendition (in the order given), then
        the original; ``poster`` names the poster variant (or is a URL)."""
        view = await self._view_of(profile, asset, request=request, actor=actor)
        return Markup(self._macro("video")(view, variants=list(variants), poster=poster,
                                           controls=controls, original=original,
                                           attrs=attrs))

    async def audio_tag(self, profile: type[Profile] | str, asset: Asset | str, *,
                        variants: Sequence[str] = (), waveform: str | None = None,
                        controls: bool = True, original: bool = True,
                        request: HTTPConnection | None = None, actor: Any = None,
                        **attrs: Any) -> Markup:
        """An ``<audio>`` with a ``<source>`` per ready rendition, then the original;
        ``waveform`` names the waveform variant: the built-in recipe's JSON peaks become the
        ``data-rindle-waveform`` URL of the ``<audio>`` (for a player script to draw); an
        image variant is shown under the player. Either only once it is ready."""
        view = await self._view_of(profile, asset, request=request, actor=actor)
        return Markup(self._macro("audio")(view, variants=list(variants), waveform=waveform,
                                           controls=controls, original=original,
                                           attrs=attrs))

    async def _view_of(self, profile: type[Profile] | str, asset: Asset | str, *,
                       request: HTTPConnection | None, actor: Any) -> AssetView:
        view = await self.view(asset, request=request, actor=actor)
        if view.profile != self.media.profile(profile).name:
            raise RindleError(f"asset {view.id} is not a {profile!r} asset", code="not_found")
        return view

    async def media_fragment(self, asset_id: str, *, kind: str, variants: Sequence[str],
                             poster: str | None = None, waveform: str | None = None,
                             controls: bool = True, original: bool = True,
                             request: HTTPConnection | None = None) -> Markup:
        """The ``<video>``/``<audio>`` markup a live element fetches when a rendition is
        ready (``kind`` is ``video`` or ``audio``)."""
        view = await self.view(asset_id, request=request)
        if kind == "audio":
            return Markup(self._macro("audio")(view, variants=list(variants),
                                               waveform=waveform, controls=controls,
                                               original=original, attrs={}))
        return Markup(self._macro("video")(view, variants=list(variants), poster=poster,
                                           controls=controls, original=original, attrs={}))

    async def picture_fragment(self, asset_id: str, *, variants: Sequence[tuple[str, str | None]],
                               alt: str, sizes: str | None, loading: str,
                               request: HTTPConnection | None = None) -> Markup:
        """The picture markup a live ``<picture>`` fetches when a variant becomes ready."""
        view = await self.view(asset_id, request=request)
        return picture_html(view, variants, alt, sizes, loading)

    async def badge_tag(self, asset: Asset | str, *, request: HTTPConnection | None = None,
                        actor: Any = None) -> Markup:
        """A live "processing… / ready / failed" badge that updates over SSE."""
        view = await self.view(asset, request=request, actor=actor)
        return Markup(self._macro("badge")(view))

    def uploader_tag(self, profile: type[Profile] | str, *, name: str,
                     label: str | None = None) -> Markup:
        """A file input wired to the JS uploader; the asset id lands in hidden ``name``."""
        prof = self.media.profile(profile)
        return Markup(self._macro("uploader")(prof.name, name=name, label=label,
                                              accept=",".join(prof.allow_mime)))

    def fragment(self, event_name: str, data: dict[str, Any]) -> str | None:
        """The HTML an ``sse-swap`` target receives for one live event, or ``None`` when the
        event has nothing to show (a variant's or session's own state change).

        Asset state changes (and the snapshot sent on connect or after a resync) render the
        badge label; ``variant_ready``/``variant_failed`` (and ``stream_ready``/
        ``stream_failed``) are sent as empty triggers that make a ``<picture>`` or
        ``<video>`` fetch its new markup.
        """
        if event_name in ("state_change", "resync"):
            if data.get("entity", "asset") != "asset" or "to" not in data:
                return None
            return str(self._macro("badge_label")(str(data["to"])))
        if event_name in ("variant_ready", "variant_failed", "stream_ready", "stream_failed"):
            return ""
        if event_name == "processing_progress":
            return str(self._macro("progress_label")(data))
        return None


def display_size(asset: Asset) -> tuple[int | None, int | None]:
    """The size an asset shows at: the row's, else the analysis's (ffprobe's facts are
    already turned by the stream's rotation: a portrait phone clip is 1080x1920)."""
    if asset.width and asset.height:
        return asset.width, asset.height
    width, height = asset.metadata.get("width"), asset.metadata.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    return asset.width, asset.height


def media_plan(view: AssetView, names: Sequence[str], *, poster: str | None = None,
               original: bool = True) -> dict[str, Any]:
    """What a ``<video>``/``<audio>`` shows: a source per servable rendition, in the order
    given; the original last (``original=True``), so it plays while renditions build or
    when a browser can play none of them; the poster's URL.

    ``poster`` is a variant name (its URL once servable, else none) or, when it holds a
    ``/`` or ``:``, a URL used as it is.
    """
    sources: list[dict[str, Any]] = []
    if view.stream is not None and view.stream.url:
        # HLS first: players that can stream take it; the others fall through to the MP4s.
        sources.append({"url": view.stream.url, "type": view.stream.type, "name": "stream"})
    sources += [
        {"url": v.url, "type": v.content_type, "name": v.name}
        for v in (view.variants.get(n) for n in names) if v is not None and v.url]
    if original and view.url:
        sources.append({"url": view.url, "type": view.content_type, "name": None})
    poster_url = None
    if poster and ("/" in poster or ":" in poster):
        poster_url = poster
    elif poster and poster in view.variants:
        poster_url = view.variants[poster].url
    if poster_url is None and view.stream is not None:
        poster_url = view.stream.thumbnail
    hls = view.stream.url if view.stream is not None else None
    return {"sources": sources, "poster": poster_url, "hls": hls}


def _static_url(media: Viewing, name: str) -> str:
    from .static import static_name

    return f"{media.router_path}/static/{static_name(name)}"


def _add_globals(env: Environment, media: Viewing) -> None:
    env.globals.update(
        rindle_static=lambda name: _static_url(media, name),
        rindle_endpoint=media.router_path,
        rindle_json=lambda value: Markup(json.dumps(value)),
        rindle_picture_plan=picture_plan,
        rindle_picture_html=picture_html,
        rindle_media_plan=media_plan,
    )


def install(env: Environment, media: Viewing) -> None:
    """Make ``{% import "rindle/macros.html" as rindle %}`` work in an adopter's environment.

    Adds Rindle's templates behind the adopter's own loader (so they can override them) and
    the helpers the macros use. Autoescaping must be on for HTML templates.
    """
    package = PackageLoader("rindle", "templates")
    env.loader = ChoiceLoader([env.loader, package]) if env.loader else package
    _add_globals(env, media)


def render_live_fragment(media: Viewing, event_name: str, data: dict[str, Any]) -> str | None:
    """The fragment for an SSE event with ``?format=html`` (see ``Html.fragment``)."""
    return media.html.fragment(event_name, data)
