"""The macros: picture, video, badge, uploader; views signed per viewer; live fragments."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from rindle import AuthRequest, DenyAll, Profile, Rindle, Variant
from rindle.web.templating import install
from tests.conftest import MakeMedia
from tests.support.images import png


class Photos(Profile):
    name = "photos"
    storage = "local"
    allow_mime = ["image/png", "image/jpeg"]
    variants = {
        "thumb_webp": Variant(width=24, format="webp"),
        "thumb": Variant(width=24, format="jpeg"),
        "large_webp": Variant(width=48, format="webp"),
        "large": Variant(width=48, format="jpeg"),
    }


@pytest.fixture
def photos_media(make_media: MakeMedia) -> Rindle:
    return make_media(profiles=[Photos])


async def _ready_asset(media: Rindle) -> str:
    result = await media.upload(Photos, png(96, 64), filename='a "cat" <b>.png')
    await media.drain()
    assert (await media.asset(result.asset.id)).state == "ready"
    return result.asset.id


async def test_picture_of_a_ready_asset(photos_media: Rindle) -> None:
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        small = "(max-width: 480px)"
        html = await media.html.picture_tag(
            Photos, aid, variants=[("thumb", small), ("thumb_webp", small), ("large", None),
                                   ("large_webp", None)],
            alt='A <cat> & "friend"', sizes="50vw")
    assert isinstance(html, Markup)
    sources = [line for line in html.split("<source")[1:]]
    # Media-qualified sources first (a browser takes the first match), WebP before JPEG in
    # each group; the unqualified JPEG is the <img>.
    assert ['media=' in s for s in sources] == [True, True, False]
    assert ['image/webp' in s for s in sources] == [True, False, True]
    assert html.count("<img") == 1 and 'width="48" height="32"' in html
    assert 'alt="A &lt;cat&gt; &amp; &#34;friend&#34;"' in html
    assert html.count("/rindle/files/") == 4
    assert "sse-connect" not in html  # settled: nothing live
    assert 'loading="lazy"' in html and 'sizes="50vw"' in html


async def test_an_asset_promoted_before_its_variants_are_planned_is_live(
        photos_media: Rindle) -> None:
    """Promotion commits ``available`` before the variant rows exist; a page rendered in
    that moment must still subscribe, or its badge stays at "processing" for good."""
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        await media.store.execute("DELETE FROM rindle_variants WHERE asset_id = :id", {"id": aid})
        await media.store.execute("UPDATE rindle_assets SET state = 'available' WHERE id = :id",
                                  {"id": aid})
        view = await media.html.view(aid)
        html = await media.html.picture_tag(Photos, aid, variants=["thumb"], alt="A cat")
        badge = await media.html.badge_tag(aid)
    assert view.variants == {} and not view.settled
    assert "sse-connect" in html and "sse-connect" in badge


async def test_a_decorative_picture_takes_an_empty_alt(photos_media: Rindle) -> None:
    """``alt=""`` is how a decorative image says so (the error message says as much); the
    live refresh, which passes the alt along, takes it too."""
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        html = await media.html.picture_tag(Photos, aid, variants=["thumb"], alt="")
        fragment = await media.html.picture_fragment(aid, variants=[("thumb", None)], alt="",
                                                     sizes=None, loading="lazy")
    assert 'alt=""' in html and 'alt=""' in fragment


async def test_alt_is_required(photos_media: Rindle) -> None:
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        with pytest.raises(ValueError, match="alt"):
            media.html._macro("picture")(await media.html.view(aid), variants=["thumb"])


async def test_no_signed_url_for_a_refused_viewer(make_media: MakeMedia) -> None:
    media = make_media(profiles=[Photos], authorizer=DenyAll())
    async with media.connected():
        result = await media.upload(Photos, png(32, 32), filename="a.png")
        await media.drain()
        view = await media.html.view(result.asset.id)
        html = media.html._macro("picture")(view, variants=["thumb"], alt="x")
        badge = media.html._macro("badge")(view)
    assert not view.allowed and view.url is None
    assert "/files/" not in html and "token=" not in html and "token=" not in badge


async def test_a_view_asks_the_authorizer_once(make_media: MakeMedia) -> None:
    asked: list[str] = []

    class Counting:
        """Allows everything and remembers each question."""

        def authorize(self, request: AuthRequest) -> bool:
            asked.append(request.action)
            return True

    media = make_media(profiles=[Photos], authorizer=Counting())
    async with media.connected():
        aid = await _ready_asset(media)
        asked.clear()
        view = await media.html.view(aid)
    assert view.url is not None and len([v for v in view.variants.values() if v.url]) == 4
    assert asked == ["view"]


async def test_badge_and_uploader_markup(photos_media: Rindle) -> None:
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        badge = await media.html.badge_tag(aid)
        uploader = media.html.uploader_tag(Photos, name="photo_id", label="Photo")
    assert 'data-state="ready"' in badge and ">ready<" in badge
    for needle in ('data-rindle-uploader', 'data-profile="photos"', 'data-endpoint="/rindle"',
                   'accept="image/png,image/jpeg"', 'data-rindle-file', 'data-rindle-progress',
                   'data-rindle-cancel', 'name="photo_id" data-rindle-asset-id'):
        assert needle in uploader


async def test_live_fragments(photos_media: Rindle) -> None:
    html = photos_media.html
    label = html.fragment("state_change", {"entity": "asset", "to": "ready"})
    assert label is not None and 'data-state="ready"' in label
    assert html.fragment("state_change", {"entity": "variant", "to": "ready"}) is None
    assert html.fragment("variant_ready", {"variant": "thumb"}) == ""
    assert html.fragment("bogus", {}) is None


async def test_install_into_an_adopters_environment(photos_media: Rindle,
                                                    tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        '{% import "rindle/macros.html" as rindle %}'
        '{{ rindle.uploader("photos", name="f", accept="image/png") }}{{ rindle.scripts() }}')
    env = Environment(loader=FileSystemLoader(tmp_path), autoescape=True)
    install(env, photos_media)
    out = env.get_template("page.html").render()
    assert "data-rindle-uploader" in out
    assert '/rindle/static/' in out and "htmx" in out


async def test_static_files_are_served_with_cache_busting_names(photos_media: Rindle) -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from rindle.web.static import static_name

    app = Starlette(routes=[Mount("/rindle", app=photos_media.router)])
    versioned = static_name("htmx.js")
    assert versioned.startswith("htmx-2.") and versioned.endswith(".js")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        r = await client.get(f"/rindle/static/{versioned}")
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert r.headers["content-type"].startswith("text/javascript")
        stable = await client.get("/rindle/static/rindle.js")
        assert stable.status_code == 200 and "immutable" not in stable.headers["cache-control"]
        assert "Rindle" in stable.text
        assert (await client.get("/rindle/static/..%2Fapp.py")).status_code == 404
        assert (await client.get("/rindle/static/nope.js")).status_code == 404


async def test_video_macro(photos_media: Rindle) -> None:
    media = photos_media
    async with media.connected():
        aid = await _ready_asset(media)
        html = await media.html.video_tag(Photos, aid, variants=["large"],
                                          poster="/p.jpg", controls=True, muted=True)
    assert html.startswith("<video") and " controls" in html and 'poster="/p.jpg"' in html
    assert html.count("<source") == 2  # the variant, then the original as a fallback
    assert " muted" in html and 'preload="metadata"' in html
