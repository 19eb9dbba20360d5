"""The console in Debian's chromium (playwright-core, driven by console_flow.mjs): an admin
opens the overview, retries a failed variant on /jobs and on an asset's page and watches it
become ready live; the pages fit a phone; a non-admin gets the 403 page. Screenshots are
saved under test-artifacts/ (admin-*.png)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from rindle import AuthRequest, Rindle
from rindle.model.records import Asset
from tests.admin.conftest import FlakyProcessor, Photos, console_app, upload
from tests.conftest import ImageProfile, LiveServer, MakeMedia

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"


def _node_finds(start: Path, package: str) -> bool:
    return any((folder / "node_modules" / package / "package.json").exists()
               for folder in (start, *start.parents))


pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not Path("/usr/bin/chromium").exists()
    or not _node_finds(HERE, "playwright-core"),
    reason="needs node, Debian's chromium and playwright-core (make test installs them)")


class CookieAdmin:
    """``admin`` for browsers carrying ``operator=yes``; everything else for everyone."""

    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        if request.action != "admin":
            return True
        return request.request is not None and request.request.cookies.get("operator") == "yes"


async def _failed(media: Rindle, proc: FlakyProcessor) -> Asset:
    proc.failing = True
    asset = await upload(media, Photos)
    proc.failing = False
    return asset


async def test_an_admin_retries_a_failed_variant_and_sees_it_ready(make_media: MakeMedia) -> None:
    proc = FlakyProcessor()
    media = make_media(profiles=[ImageProfile, Photos], processors={"flaky": proc},
                       authorizer=CookieAdmin())
    async with media.connected():
        on_jobs, on_page = await _failed(media, proc), await _failed(media, proc)
        # Slow enough for the browser to see the row waiting before the stream says ready.
        proc.delay = 1.0
        async with LiveServer(console_app(media), access_log=False) as server:
            node = await asyncio.create_subprocess_exec(
                "node", str(HERE / "console_flow.mjs"), server.url, on_jobs.id, on_page.id,
                str(ARTIFACTS), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(node.communicate(), 180)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, out.decode() + err.decode()
    result = json.loads(lines[-1])
    assert result["ok"], json.dumps(result, indent=1)
    assert result["overview"] == {"status": 200, "failed": 1}
    assert result["firstFocus"] == "skip-link"
    assert result["before"] == "failed"
    assert result["during"]["state"] in ("queued", "processing") and result["during"]["live"]
    assert "Queued thumb" in result["during"]["flash"]
    assert result["after"] == {"state": "ready", "live": False, "cell": "ready",
                               "reloaded": False}
    streams = {url.rsplit("/rindle", 1)[1] for url in result["streams"]}
    assert f"/events/asset/{on_jobs.id}" in streams
    assert result["pageBefore"] == "failed" and result["pageDuring"] in ("queued", "processing")
    assert result["pageAfter"]["state"] == "ready" and "ready" in result["pageAfter"]["heading"]
    assert f"/events/asset/{on_page.id}" in streams
    assert result["phone"] == {"overview": True, "jobs": True, "asset": True, "assets": True}
    assert result["refused"]["status"] == 403
    assert "not allowed" in result["refused"]["text"]
    # Nothing failed to load but the favicon this test app has none of.
    assert not [f for f in result["failures"] if not f.endswith("/favicon.ico")], result
    assert not [m for m in result["console"] if m.startswith("pageerror")], result["console"]
    for name in ("1-overview", "2-jobs-failed", "4-jobs-ready", "5-asset-ready", "7-refused"):
        assert (ARTIFACTS / f"admin-{name}.png").stat().st_size > 1000
