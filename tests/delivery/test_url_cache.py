"""Signed URLs are reused while most of their life is left, then signed anew; settled
pictures' markup is reused the same way and changes whenever anything it shows changes."""

from __future__ import annotations

import pytest

from rindle import Rindle
from rindle.delivery.url_cache import SignedUrlCache, cache_for
from tests.conftest import MakeMedia
from tests.support.pages import Photo, ready_photos


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_for_the_first_share_of_its_life_only() -> None:
    clock = Clock()
    cache = SignedUrlCache(reuse=0.1, clock=clock)
    cache.put("k", "url-1", 900)
    clock.now += 89
    assert cache.get("k", 900) == "url-1"  # 811 s of 900 left: handed out again
    clock.now += 2
    assert cache.get("k", 900) is None  # under 90 % left: sign anew
    assert len(cache) == 0  # and the stale entry is gone


def test_the_cache_is_bounded_and_can_be_turned_off() -> None:
    cache = SignedUrlCache(max_entries=3)
    for n in range(5):
        cache.put(n, f"url-{n}", 900)
    assert len(cache) == 3 and cache.get(0, 900) is None and cache.get(4, 900) == "url-4"
    off = SignedUrlCache(reuse=0)
    off.put("k", "url", 900)
    assert off.get("k", 900) is None
    with pytest.raises(ValueError, match="reuse"):
        SignedUrlCache(reuse=1)


async def test_a_pages_urls_stay_the_same_between_renders_then_change(
        make_media: MakeMedia, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same URL for a while, so the browser's cache serves the image again; a URL
    always has at least 80 % of its life left when a page hands it out."""
    import time

    clock = Clock()
    monkeypatch.setattr(time, "time", clock)  # the caches' clock and the tokens' expiry
    media: Rindle = make_media(profiles=[Photo])
    async with media.connected():
        [asset] = await ready_photos(media, 1)
        first = await media.variant_url(Photo, asset, "m")
        assert await media.variant_url(Photo, asset, "m") == first
        page = await media.html.picture_tags(Photo, [asset], variants=["m"], alt="A")
        assert await media.html.picture_tags(Photo, [asset], variants=["m"], alt="A") == page
        # Other arguments, another host: other markup (the absolute URLs name the host).
        other = await media.html.picture_tags(Photo, [asset], variants=["m"], alt="B")
        assert other != page and 'alt="B"' in other[0]
        clock.now += media.signed_url_ttl * 0.1 + 1
        later = await media.variant_url(Photo, asset, "m")
        assert later != first
        assert await media.html.picture_tags(Photo, [asset], variants=["m"], alt="A") != page


async def test_a_pictures_markup_follows_its_rows(make_media: MakeMedia) -> None:
    """A regenerated variant, a refused viewer or a picture still building never gets the
    markup cached for another state."""
    from rindle import DenyAll

    media: Rindle = make_media(profiles=[Photo])
    async with media.connected():
        [asset, building] = await ready_photos(media, 2)
        await media.store.execute("UPDATE rindle_assets SET state = 'processing' "
                                  "WHERE id = :id", {"id": building.id})
        before = (await media.html.picture_tags(Photo, [asset], variants=["m"], alt="A"))[0]
        [row] = [v for v in await media.repo.list_variants(asset.id) if v.name == "m"]
        await media.repo.update_variant(asset.id, "m", storage_key=f"{row.storage_key}.v2")
        after = (await media.html.picture_tags(Photo, [asset], variants=["m"], alt="A"))[0]
        assert after != before
        # The live picture (a variant still planned) is rendered afresh each time: its
        # subscribe token and refresh link are for this page.
        cached = len(cache_for(media, "pictures"))
        live = await media.html.picture_tags(Photo, [building.id], variants=["m"], alt="A")
        assert "sse-connect" in live[0]
        assert len(cache_for(media, "pictures")) == cached
        refused = make_media(profiles=[Photo], authorizer=DenyAll())
        async with refused.connected():
            shown = (await refused.html.picture_tags(Photo, [asset.id], variants=["m"],
                                                     alt="A"))[0]
        assert "/rindle/files/" not in shown


async def test_arguments_that_cannot_be_a_key_render_without_the_cache(
        make_media: MakeMedia) -> None:
    media: Rindle = make_media(profiles=[Photo])
    async with media.connected():
        [asset] = await ready_photos(media, 1)
        pairs: list[object] = [["s", "(max-width: 400px)"], "m"]  # lists, as from JSON
        tags = await media.html.picture_tags(Photo, [asset], variants=pairs,  # type: ignore
                                             alt="A", data_tags=["a", "b"])
        assert 'media="(max-width: 400px)"' in tags[0] and "data-tags=" in tags[0]
        assert len(cache_for(media, "pictures")) == 0
