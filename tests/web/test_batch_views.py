"""A page of pictures renders with one query, not one per picture, and the same markup."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rindle import AllowAll, DenyAll, NotFound, Rindle
from rindle.delivery.authorizer import AuthRequest
from tests.conftest import MakeMedia
from tests.support.pages import Photo, ready_photos

TOKEN = re.compile(r"/rindle/files/[A-Za-z0-9_\-]+")


VARIANTS: list[Any] = [("s", "(max-width: 400px)"), "m", "l"]


class _Counting:
    """Counts the statements the store runs (wrapping the real store's methods)."""

    def __init__(self, media: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        store = media.store
        for name in ("fetch_all", "fetch_one", "execute"):
            real = getattr(store, name)

            def counted(sql: str, *args: Any, _real: Any = real, **kw: Any) -> Any:
                self.statements.append(sql)
                return _real(sql, *args, **kw)

            monkeypatch.setattr(store, name, counted)


async def test_a_page_of_fifty_pictures_is_one_query(make_media: MakeMedia,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    media = make_media(profiles=[Photo])
    async with media.connected():
        assets = await ready_photos(media, 50, still_planned_every=10)
        one_by_one = [str(await media.html.picture_tag(Photo, a, variants=VARIANTS, alt="A"))
                      for a in assets]
        counting = _Counting(media, monkeypatch)
        page = await media.html.picture_tags(Photo, assets, variants=VARIANTS, alt="A")
        assert len(counting.statements) == 1, counting.statements
        # The same markup as one picture_tag at a time (tokens differ: each is sealed anew).
        assert [TOKEN.sub("T", str(p)) for p in page] == [TOKEN.sub("T", p) for p in one_by_one]
        assert "<source" in str(page[0]) and 'media="(max-width: 400px)"' in str(page[0])
        counting.statements.clear()
        by_id = await media.html.views([a.id for a in assets], variants=["m"], original=False)
        assert len(counting.statements) == 2  # the assets, then their variants
        assert [v.id for v in by_id] == [a.id for a in assets]
        # Only what was asked for is signed.
        assert all({n for n, vv in v.variants.items() if vv.url} == {"m"} for v in by_id)
        assert all(v.url is None for v in by_id)
        # original=None: only where a <picture> falls back to it (WebP alone is not enough).
        fallback = await media.html.views(assets[:2], variants=["m"], original=None)
        assert all(v.url for v in fallback)
        with pytest.raises(NotFound):
            await media.html.views([assets[0].id, "no-such-asset"])


class _PerAsset:
    """An Authorizer that looks at each asset (the default): asked once per picture."""

    def __init__(self) -> None:
        self.asked: list[AuthRequest] = []

    def authorize(self, request: AuthRequest) -> bool:
        self.asked.append(request)
        return request.asset is not None and request.asset.storage_key != "photo/0.png"


class _PerProfile(_PerAsset):
    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        self.asked.append(request)
        return request.asset is None


async def test_the_authorizer_is_asked_per_asset_unless_it_decides_per_profile(
        make_media: MakeMedia) -> None:
    per_asset, per_profile = _PerAsset(), _PerProfile()
    media = make_media(profiles=[Photo])
    async with media.connected():
        assets = await ready_photos(media, 5, still_planned_every=10)
        media.authorizer = per_asset
        views = await media.html.views(assets)
        assert len(per_asset.asked) == 5
        assert [v.allowed for v in views] == [False, True, True, True, True]
        assert views[0].url is None and not any(vv.url for vv in views[0].variants.values())
        media.authorizer = per_profile
        views = await media.html.views(assets)
        assert len(per_profile.asked) == 1 and per_profile.asked[0].asset is None
        assert all(v.allowed and v.url for v in views)
        for refusing in (DenyAll(), AllowAll()):
            media.authorizer = refusing
            assert {v.allowed for v in await media.html.views(assets)} == {
                isinstance(refusing, AllowAll)}
