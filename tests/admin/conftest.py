"""The operator console's fixtures: a runtime whose variants fail on demand, the console
mounted beside Rindle's router, an admin's client and a viewer's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AuthRequest, Profile, Rindle, RindleError, Variant
from rindle.admin import console
from rindle.model.records import Asset
from rindle.processing.processor import Output
from tests.conftest import ImageProfile, MakeMedia
from tests.support.images import png

#: What no page may ever show: an upload session's URI and storage upload id, and the
#: provider's own ids for its copy of an asset.
SESSION_URI = "https://storage.example/upload/session-uri-SECRET-0a1b2c3d4e5f"
MULTIPART_ID = "multipart-upload-id-SECRET-9f8e7d"
PROVIDER_ASSET_ID = "provider-asset-id-SECRET-77aa"
PROVIDER_UPLOAD_ID = "provider-upload-id-SECRET-88bb"
SECRETS = (SESSION_URI, MULTIPART_ID, PROVIDER_ASSET_ID, PROVIDER_UPLOAD_ID)

ADMIN_HEADER = {"x-admin": "yes"}


class FlakyProcessor:
    """Builds a copy of the original, or fails for good (a non-retryable error) while
    ``failing`` is set; ``delay`` slows a build down so a browser can watch it."""

    def __init__(self) -> None:
        self.failing = False
        self.delay = 0.0
        self.block: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def process(self, source: Any, variant: Variant, context: Any) -> Output:
        self.started.set()
        if self.block is not None:
            await self.block.wait()
            if await context.cancelled():
                raise RindleError("cancelled", code="processing_cancelled")
        if self.failing:
            raise RindleError("the test processor was told to fail", code="rindle_error")
        await asyncio.sleep(self.delay)
        out = context.scratch / "thumb.png"
        out.write_bytes((await source.path()).read_bytes())
        return Output(path=out, content_type="image/png", width=20, height=20)


class Photos(Profile):
    """A profile with one variant, built by the flaky processor."""

    name = "photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=20, height=20, kind="flaky")}


class HeaderAdmin:
    """Allows everything, but ``admin`` only to requests carrying ``x-admin: yes``: a
    viewer who may see media but not administer it."""

    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        if request.action != "admin":
            return True
        return request.request is not None and request.request.headers.get("x-admin") == "yes"


@dataclass
class Console:
    media: Rindle
    proc: FlakyProcessor
    admin: httpx.AsyncClient
    viewer: httpx.AsyncClient
    app: Starlette


def console_app(media: Rindle, **options: Any) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router),
                             Mount("/admin", app=console(media, **options))])


@pytest.fixture
async def site(make_media: MakeMedia) -> AsyncIterator[Console]:
    async with console_site(make_media) as running:
        yield running


@asynccontextmanager
async def console_site(make_media: MakeMedia, **options: Any) -> AsyncIterator[Console]:
    """A connected runtime with the console mounted (``options`` go to ``console()``), an
    admin client and a client that is no admin."""
    proc = FlakyProcessor()
    media = make_media(profiles=[ImageProfile, Photos], processors={"flaky": proc},
                       authorizer=HeaderAdmin())
    app = console_app(media, **options)
    transport = httpx.ASGITransport(app=app)
    async with media.connected(), \
            httpx.AsyncClient(transport=transport, base_url="http://testserver",
                              headers=ADMIN_HEADER) as admin, \
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as viewer:
        yield Console(media=media, proc=proc, admin=admin, viewer=viewer, app=app)


async def upload(media: Rindle, profile: type[Profile], *, size: int = 40) -> Asset:
    result = await media.upload(profile, png(size, size), filename="photo.png")
    await media.drain()
    return await media.asset(result.asset.id)


async def failed_asset(site: Console) -> Asset:
    """A photo whose thumbnail failed for good (the asset is degraded)."""
    site.proc.failing = True
    asset = await upload(site.media, Photos)
    site.proc.failing = False
    variant = await site.media.repo.get_variant(asset.id, "thumb")
    assert variant is not None and variant.state == "failed"
    assert asset.state == "degraded"
    return asset


_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


async def form_token(client: httpx.AsyncClient, path: str = "/admin/jobs") -> str:
    """The CSRF field of a console page, as the browser would submit it."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = _TOKEN.search(page.text)
    assert found, page.text
    return found.group(1)


def assert_no_secrets(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html
