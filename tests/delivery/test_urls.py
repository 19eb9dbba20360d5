"""Delivery URLs: signed with the profile's TTL, plain when public, refused when unauthorized."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rindle import (
    AllowAll,
    AuthRequest,
    Delivery,
    Forbidden,
    LocalStorage,
    Profile,
    Rindle,
)
from tests.conftest import SECRET, ImageProfile, MakeMedia
from tests.support.images import png


class Private(Profile):
    name = "private"
    storage = "local"
    allow_mime = ["image/png"]
    delivery = Delivery(signed_url_ttl_seconds=120)


class Public(Profile):
    name = "public"
    storage = "cdn"
    allow_mime = ["image/png"]
    delivery = Delivery(public=True)


class OwnerOnly:
    async def authorize(self, request: AuthRequest) -> bool:
        return request.action == "view" and request.actor == "owner"


class Guarded(Profile):
    name = "guarded"
    storage = "local"
    allow_mime = ["image/png"]
    delivery = Delivery(authorizer=OwnerOnly())


@pytest.fixture
def delivery_media(make_media: MakeMedia, tmp_path: Path) -> Rindle:
    return make_media(
        storages={"local": LocalStorage(root=tmp_path / "l"),
                  "cdn": LocalStorage(root=tmp_path / "c",
                                      public_base_url="https://cdn.example/media")},
        profiles=[Private, Public, Guarded])


async def test_private_urls_are_signed_with_the_profile_ttl(delivery_media: Rindle) -> None:
    media = delivery_media
    async with media.connected():
        asset = (await media.upload(Private, png(4, 4), filename="a.png")).asset
        await media.drain()
        url = await media.url(Private, asset.id)
        token = url.rsplit("/", 1)[1]
        grant = media.storages["local"].verify_get_token(token)  # type: ignore[attr-defined]
        assert abs(grant.expires_at.timestamp() - (time.time() + 120)) < 5
        assert grant.key == (await media.asset(asset.id)).storage_key


async def test_public_urls_are_plain(delivery_media: Rindle) -> None:
    media = delivery_media
    async with media.connected():
        asset = (await media.upload(Public, png(4, 4), filename="a.png")).asset
        await media.drain()
        url = await media.url(Public, asset.id)
        key = (await media.asset(asset.id)).storage_key
        assert url == f"https://cdn.example/media/{key}"


async def test_the_authorizer_runs_before_signing(delivery_media: Rindle) -> None:
    media = delivery_media
    async with media.connected():
        asset = (await media.upload(Guarded, png(4, 4), filename="a.png")).asset
        await media.drain()
        with pytest.raises(Forbidden):
            await media.url(Guarded, asset.id, actor="stranger")
        assert "/rindle/files/" in await media.url(Guarded, asset.id, actor="owner")


async def test_default_authorizer_denies_views(database_url: str, tmp_path: Path) -> None:
    # No authorizer= at all: what an adopter gets before saying who may see what.
    media = Rindle(database_url=database_url,
                   storages={"local": LocalStorage(root=tmp_path / "files")},
                   profiles=[ImageProfile], secret_keys=[SECRET])
    async with media.connected():
        asset = (await media.upload("image", png(4, 4), filename="a.png")).asset
        await media.drain()
        with pytest.raises(Forbidden) as err:
            await media.url("image", asset.id)
        assert err.value.code == "forbidden"
        view = await media.html.view(asset.id)
        assert view.allowed is False and view.url is None and view.events_url is None


async def test_rotated_keys_verify_until_removed(make_media: MakeMedia, tmp_path: Path) -> None:
    old = make_media(secret_keys=[SECRET])
    async with old.connected():
        asset = (await old.upload("image", png(4, 4), filename="a.png")).asset
        await old.drain()
        url = await old.url("image", asset.id)
    token = url.rsplit("/", 1)[1]
    rotated = make_media(secret_keys=["a-brand-new-secret-key-987654321", SECRET],
                         authorizer=AllowAll())
    async with rotated.connected():
        rotated.storages["local"].verify_get_token(token)  # type: ignore[attr-defined]
        fresh = (await rotated.url("image", asset.id)).rsplit("/", 1)[1]
    only_old = make_media(secret_keys=[SECRET])
    async with only_old.connected():
        from rindle import InvalidToken

        with pytest.raises(InvalidToken):
            only_old.storages["local"].verify_get_token(fresh)  # type: ignore[attr-defined]
    removed = make_media(secret_keys=["a-brand-new-secret-key-987654321"])
    async with removed.connected():
        with pytest.raises(InvalidToken):
            removed.storages["local"].verify_get_token(token)  # type: ignore[attr-defined]


def test_secret_keys_are_required_and_never_shown(tmp_path: Path) -> None:
    from rindle import ConfigurationError

    with pytest.raises(ConfigurationError):
        Rindle(database_url=f"sqlite:///{tmp_path}/x.db",
               storages={"local": LocalStorage(root=tmp_path)}, profiles=[Private],
               secret_keys=[])
    media = Rindle(database_url=f"sqlite:///{tmp_path}/x.db",
                   storages={"local": LocalStorage(root=tmp_path)}, profiles=[Private],
                   secret_keys=[SECRET])
    assert SECRET not in repr(media) and SECRET not in repr(media.signer)
