"""A page of pictures renders with one query, not one per picture, and the same markup."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rindle import AllowAll, DenyAll, NotFound, Profile, Rindle, Variant
from rindle.delivery.authorizer import AuthRequest
from tests.conftest import MakeMedia

TOKEN = re.compile(r"/rindle/files/[A-Za-z0-9_\-]+")


class Photo(Profile):
    name = "photo"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"s": Variant(width=100), "m": Variant(width=400),  # noqa: RUF012
                "l": Variant(width=800)}


VARIANTS: list[Any] = [("s", "(max-width: 400px)"), "m", "l"]


async def _page(media: Rindle, n: int) -> list[Any]:
    path = ["staged", "validating", "analyzing", "promoting", "available", "processing",
            "ready"]
    assets = []
    for i in range(n):
        a = await media.repo.insert_asset(profile="photo", storage="local",
                                          storage_key=f"photo/{i}.png",
                                          content_type="image/png", width=1000, height=800)
        for x, y in zip(path, path[1:], strict=False):
            a = await media.repo.transition_asset(a.id, x, y)
        await media.repo.plan_variants(a.id, [(name, v.digest, "image")
                                              for name, v in Photo.variants.items()])
        for name in Photo.variants:
            if i % 10 == 9 and name == "s":
                continue  # every tenth asset's small variant is still planned
            for x, y in (("planned", "queued"), ("queued", "processing"),
                         ("processing", "ready")):
                extra = ({"storage_key": f"photo/{i}-{name}.webp",
                          "content_type": "image/webp", "width": 100, "height": 80,
                          "generated_at": a.created_at} if y == "ready" else {})
                await media.repo.transition_variant(a.id, name, x, y, **extra)
        assets.append(await media.asset(a.id))
    return assets


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
        assets = await _page(media, 50)
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
        assets = await _page(media, 5)
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
