"""The operator console against a real runtime (SQLite and PostgreSQL), through httpx's ASGI
transport: every page with real rows, the Authorizer's ``admin`` action, CSRF, the repair
actions and their typed confirmations, filters and pagination, and no secret on any page."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest

from rindle import AllowAll, ConfigurationError, DenyAll, Profile, Variant
from rindle.admin import console
from rindle.admin.csrf import COOKIE
from rindle.live.sse import SUBSCRIBE_PURPOSE
from rindle.model.repo import new_id
from tests.admin.conftest import (
    ADMIN_HEADER,
    MULTIPART_ID,
    PROVIDER_ASSET_ID,
    PROVIDER_UPLOAD_ID,
    SESSION_URI,
    Console,
    FlakyProcessor,
    HeaderAdmin,
    Photos,
    assert_no_secrets,
    console_app,
    failed_asset,
    form_token,
    upload,
)
from tests.conftest import ImageProfile, LiveServer, MakeMedia
from tests.support.images import png


async def _seed(site: Console) -> dict[str, Any]:
    """Rows of every kind a page shows: a failed variant, an attached asset, an abandoned
    session holding a session URI and a multipart upload id, a provider asset holding the
    provider's ids, and a job that failed for good."""
    media = site.media
    failed = await failed_asset(site)
    ready = await upload(media, ImageProfile)
    await media.attach(ready.id, ("user", "7"), "avatar")
    session = await media.initiate_upload(ImageProfile, filename="left.png",
                                          content_type="image/png", byte_size=100)
    await media.repo.update_session(session.id, session_uri=SESSION_URI,
                                    multipart_upload_id=MULTIPART_ID,
                                    expires_at=datetime.now(UTC) - timedelta(hours=2))
    row, _ = await media.repo.insert_provider_asset(
        asset_id=failed.id, profile="photos", provider_name="mux", ingest_mode="push",
        playback_policy="signed", source=None)
    await media.repo.update_provider_asset(row.id, provider_asset_id=PROVIDER_ASSET_ID,
                                           provider_upload_id=PROVIDER_UPLOAD_ID,
                                           last_sync_error="the provider said no",
                                           state="errored")
    entry = await media.repo.add_outbox("process_variants", {"asset_id": failed.id,
                                                             "variants": ["thumb"]})
    await media.repo.mark_outbox_failed(entry.id, "the job gave up", final=True)
    return {"failed": failed, "ready": ready, "session": session, "job": entry}


def _text(html: str) -> str:
    """The page's text, tags dropped (what a reader sees)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def test_every_page_renders_real_rows_for_an_admin(site: Console) -> None:
    rows = await _seed(site)
    failed, ready, session = rows["failed"], rows["ready"], rows["session"]
    c = site.admin

    overview = await c.get("/admin/")
    assert overview.status_code == 200
    text = _text(overview.text)
    assert "Failed variants" in text and "Abandoned uploads" in text
    assert "Jobs that failed for good" in text and "Provider assets the provider rejected" in text
    assert "media.requeue_variants(asset_id) once the cause is fixed" in text  # the repair
    assert f'href="/admin/assets/{failed.id}"' in overview.text  # samples link their asset
    assert 'href="/admin/doctor"' in overview.text

    listing = await c.get("/admin/assets")
    assert listing.status_code == 200
    for asset in (failed, ready):
        assert f'href="/admin/assets/{asset.id}"' in listing.text
    assert "degraded" in listing.text and "photos" in listing.text

    page = await c.get(f"/admin/assets/{failed.id}")
    assert page.status_code == 200
    text = _text(page.text)
    assert failed.id in text and "the test processor was told to fail" in text
    assert "thumb" in text and "failed" in text
    assert "the provider said no" in text and "mux" in text  # the provider row, its error
    assert "process_variants" in text  # a processing run
    assert 'sse-connect="/rindle/events/asset/' in page.text
    assert "Type the asset's id to confirm" in text

    attached = await c.get(f"/admin/assets/{ready.id}")
    assert "user:7" in attached.text and "avatar" in attached.text

    sessions = await c.get("/admin/sessions")
    assert sessions.status_code == 200
    assert session.id[:8] in sessions.text and "left.png" in sessions.text

    jobs = await c.get("/admin/jobs")
    assert jobs.status_code == 200
    assert f'id="job-{failed.id}-thumb"' in jobs.text
    assert "the job gave up" in jobs.text and "Retry" in jobs.text

    doctor = await c.get("/admin/doctor")
    assert doctor.status_code == 200
    assert "<th scope=\"col\">Fix</th>" in doctor.text and "database" in doctor.text

    regenerate = await c.get("/admin/regenerate?profile=photos")
    assert regenerate.status_code == 200 and "Type the profile's name" in regenerate.text

    live = await c.get(f"/admin/assets/{failed.id}/live")
    row = await c.get(f"/admin/jobs/variants/{failed.id}/thumb")
    for response in (overview, listing, page, attached, sessions, jobs, doctor, regenerate,
                     live, row):
        assert_no_secrets(response.text)
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"


async def test_a_viewer_who_may_not_administer_gets_403_everywhere(site: Console) -> None:
    failed = await failed_asset(site)
    # The viewer may see the asset (the Authorizer allows view) but not the console.
    assert (await site.viewer.get(f"/rindle/assets/{failed.id}")).status_code == 200
    token = await form_token(site.admin)  # even with an admin's token
    for path in ("/admin/", "/admin/assets", f"/admin/assets/{failed.id}",
                 f"/admin/assets/{failed.id}/live", "/admin/sessions", "/admin/jobs",
                 f"/admin/jobs/variants/{failed.id}/thumb", "/admin/regenerate",
                 "/admin/doctor", "/admin/no-such-page"):
        r = await site.viewer.get(path)
        assert r.status_code == 403, path
        assert "You are not allowed to use the operator console." in r.text
        assert failed.id not in r.text and "set-cookie" not in r.headers
    for path, form in ((f"/admin/assets/{failed.id}/retry", {}),
                       (f"/admin/assets/{failed.id}/cancel", {}),
                       (f"/admin/assets/{failed.id}/purge", {"confirm": failed.id}),
                       ("/admin/regenerate", {"profile": "photos", "confirm": "photos"})):
        r = await site.viewer.post(path, data={"csrf": token, **form})
        assert r.status_code == 403, path
    variant = await site.media.repo.get_variant(failed.id, "thumb")
    assert variant is not None and variant.state == "failed"
    assert await site.media.repo.get_asset(failed.id) is not None
    assert await site.media.repo.list_outbox(kind="purge_asset") == []


async def test_console_refuses_deny_all_and_warns_about_allow_all(
        make_media: MakeMedia, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError) as err:
        console(make_media(authorizer=DenyAll()))
    assert err.value.code == "configuration_error" and "DenyAll" in err.value.message
    with pytest.raises(ConfigurationError):
        console(make_media(authorizer=AllowAll()), authorizer=DenyAll())
    # The runtime's default is DenyAll too.
    with pytest.raises(ConfigurationError):
        console(make_media(authorizer=None))
    with caplog.at_level(logging.WARNING, logger="rindle.admin"):
        console(make_media(authorizer=AllowAll()))
    assert any("AllowAll" in r.getMessage() for r in caplog.records)


async def _still_failed(site: Console, asset_id: str) -> None:
    variant = await site.media.repo.get_variant(asset_id, "thumb")
    assert variant is not None and variant.state == "failed" and variant.attempts == 1


async def test_a_post_without_a_good_csrf_token_is_403_and_changes_nothing(
        site: Console) -> None:
    failed = await failed_asset(site)
    retry = f"/admin/assets/{failed.id}/retry"
    token = await form_token(site.admin)
    assert site.admin.cookies.get(COOKIE)

    missing = await site.admin.post(retry, data={})
    assert missing.status_code == 403 and "Nothing was changed" in missing.text
    forged = await site.admin.post(retry, data={"csrf": token[:-4] + "AAAA"})
    assert forged.status_code == 403
    wrong_purpose = site.media.signer.dumps("live.subscribe", {"v": "x"}, expires_in=60)
    assert (await site.admin.post(retry, data={"csrf": wrong_purpose})).status_code == 403
    expired = site.media.signer.dumps("admin.csrf", {"v": "x"}, expires_in=-10)
    assert (await site.admin.post(retry, data={"csrf": expired})).status_code == 403

    # A token from another browser: it names that browser's cookie, not this one's.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app),
                                 base_url="http://testserver", headers=ADMIN_HEADER) as other:
        other_token = await form_token(other)
        assert other.cookies.get(COOKIE) != site.admin.cookies.get(COOKIE)
        swapped = await site.admin.post(retry, data={"csrf": other_token})
        assert swapped.status_code == 403 and "another browser" in swapped.text
        # And without any cookie, the token alone is worth nothing.
        other.cookies.clear()
        assert (await other.post(retry, data={"csrf": other_token})).status_code == 403

    # A genuine token, sent from another site's page.
    cross = await site.admin.post(retry, data={"csrf": token},
                                  headers={"origin": "https://evil.example"})
    assert cross.status_code == 403 and "another site" in cross.text

    # htmx gets the refusal in the flash region.
    hx = await site.admin.post(retry, data={}, headers={"hx-request": "true"})
    assert hx.status_code == 403 and hx.headers["hx-retarget"] == "#flash"
    await _still_failed(site, failed.id)

    ok = await site.admin.post(retry, data={"csrf": token},
                               headers={"origin": "http://testserver"})
    assert ok.status_code == 303


async def test_form_bodies_are_read_with_limits(site: Console) -> None:
    failed = await failed_asset(site)
    retry = f"/admin/assets/{failed.id}/retry"
    token = await form_token(site.admin)
    huge = await site.admin.post(retry, content=b"csrf=" + token.encode() + b"&x=" + b"a" * 20000,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413
    as_json = await site.admin.post(retry, json={"csrf": token})
    assert as_json.status_code == 422
    await _still_failed(site, failed.id)


async def test_retry_requeues_a_failed_variant_which_then_builds(site: Console) -> None:
    failed = await failed_asset(site)
    token = await form_token(site.admin, f"/admin/assets/{failed.id}")
    r = await site.admin.post(f"/admin/assets/{failed.id}/retry", data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == f"/admin/assets/{failed.id}"
    await site.media.drain()
    variant = await site.media.repo.get_variant(failed.id, "thumb")
    assert variant is not None and variant.state == "ready"
    assert (await site.media.asset(failed.id)).state == "ready"
    # The flash message shows once, on the page the redirect leads to.
    shown = await site.admin.get(r.headers["location"])
    assert "Queued thumb of asset" in shown.text
    again = await site.admin.get(r.headers["location"])
    assert "Queued thumb of asset" not in again.text
    # Nothing left to retry: said so, nothing changes.
    r = await site.admin.post(f"/admin/assets/{failed.id}/retry",
                              data={"csrf": token, "fragment": "asset"},
                              headers={"hx-request": "true"})
    assert r.status_code == 200 and "Nothing to retry" in r.text
    assert 'hx-swap-oob="innerHTML"' in r.text


async def test_retry_from_a_jobs_row_answers_with_a_live_row(site: Console) -> None:
    failed = await failed_asset(site)
    token = await form_token(site.admin)
    site.proc.block = block = asyncio.Event()
    r = await site.admin.post(f"/admin/assets/{failed.id}/retry",
                              data={"csrf": token, "variant": "thumb", "fragment": "row"},
                              headers={"hx-request": "true"})
    assert r.status_code == 200
    row = r.text
    assert row.startswith(f'<tr id="job-{failed.id}-thumb"')
    assert "sse-connect=" in row and "sse:variant_ready" in row  # follows the asset live
    assert 'hx-swap-oob="innerHTML"' in row and "Queued thumb" in row
    token_in_row = re.search(r"token=([^\"&]+)", row)
    assert token_in_row
    assert site.media.signer.loads(SUBSCRIBE_PURPOSE, token_in_row.group(1))["a"] == failed.id
    # While it builds, a refresh swaps the cells only (the row keeps its open stream).
    cells = await site.admin.get(f"/admin/jobs/variants/{failed.id}/thumb",
                                 headers={"hx-request": "true"})
    assert cells.text.lstrip().startswith("<td>") and "hx-reswap" not in cells.headers
    block.set()
    await site.media.drain()
    # Settled: the whole row is replaced by one without a stream, closing it.
    done = await site.admin.get(f"/admin/jobs/variants/{failed.id}/thumb",
                                headers={"hx-request": "true"})
    assert done.headers["hx-reswap"] == "outerHTML"
    assert 'data-state="ready"' in done.text and "sse-connect" not in done.text


async def test_cancel_cancels_the_work_in_flight(site: Console) -> None:
    site.proc.block = block = asyncio.Event()
    result = await site.media.upload(Photos, png(30, 30), filename="slow.png")
    asset_id = result.asset.id
    await asyncio.wait_for(site.proc.started.wait(), 10)
    jobs = await site.admin.get("/admin/jobs")
    assert f'id="job-{asset_id}-thumb"' in jobs.text and "processing" in jobs.text
    token = await form_token(site.admin)
    r = await site.admin.post(f"/admin/assets/{asset_id}/cancel",
                              data={"csrf": token, "next": "/jobs"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/jobs"
    block.set()
    await site.media.drain()
    variant = await site.media.repo.get_variant(asset_id, "thumb")
    assert variant is not None and variant.state == "cancelled"
    assert "Cancelled thumb of asset" in (await site.admin.get("/admin/jobs")).text


class PhotosV2(Profile):
    """``Photos`` with a changed recipe: its built thumbnails are outdated."""

    name = "photos"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"thumb": Variant(width=24, height=24, kind="flaky")}


async def test_regenerate_needs_the_profile_name_typed(make_media: MakeMedia) -> None:
    proc = FlakyProcessor()
    first = make_media(profiles=[Photos], processors={"flaky": proc})
    async with first.connected():
        asset = await upload(first, Photos)
    old = Photos.variants["thumb"].digest
    media = make_media(profiles=[PhotosV2], processors={"flaky": proc},
                       authorizer=HeaderAdmin())
    transport = httpx.ASGITransport(app=console_app(media))
    async with media.connected(), httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=ADMIN_HEADER) as c:
        preview = await c.get("/admin/regenerate?profile=photos")
        assert "mark <strong>1</strong> ready variant" in preview.text
        token = await form_token(c, "/admin/regenerate?profile=photos")
        for typed in ("", "photo", "PHOTOS"):
            r = await c.post("/admin/regenerate", data={"csrf": token, "profile": "photos",
                                                        "confirm": typed})
            assert r.status_code == 422
            assert "Type the profile's name exactly" in _text(r.text)
            assert 'aria-invalid="true"' in r.text
            row = await media.repo.get_variant(asset.id, "thumb")
            assert row is not None and (row.state, row.recipe_digest) == ("ready", old)
        unknown = await c.post("/admin/regenerate", data={"csrf": token, "profile": "nope",
                                                          "confirm": "nope"})
        assert unknown.status_code == 404
        r = await c.post("/admin/regenerate", data={"csrf": token, "profile": "photos",
                                                    "confirm": "photos"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/jobs"
        flash = await c.get("/admin/jobs")
        assert "Regenerating photos: 1 marked stale, 0 planned, 1 queued." in flash.text
        await media.drain()
        row = await media.repo.get_variant(asset.id, "thumb")
        assert row is not None and row.state == "ready"
        assert row.recipe_digest == PhotosV2.variants["thumb"].digest != old


async def test_purge_needs_the_id_typed_then_queues_the_purge(site: Console) -> None:
    media = site.media
    asset = await upload(media, ImageProfile)
    await media.attach(asset.id, ("user", "9"), "avatar")
    token = await form_token(site.admin, f"/admin/assets/{asset.id}")
    purge = f"/admin/assets/{asset.id}/purge"
    for typed in ("", asset.id[:8], "x" + asset.id):
        r = await site.admin.post(purge, data={"csrf": token, "confirm": typed})
        assert r.status_code == 422
        assert "Type the asset's id exactly" in _text(r.text)
        assert await media.repo.get_asset(asset.id) is not None
        assert await media.repo.attachments_for_asset(asset.id)
        assert await media.repo.list_outbox(kind="purge_asset") == []
    r = await site.admin.post(purge, data={"csrf": token, "confirm": f" {asset.id} "})
    assert r.status_code == 303 and r.headers["location"] == "/admin/assets"
    [queued] = await media.repo.list_outbox(kind="purge_asset")
    assert queued.payload["reason"] == "admin_purged"
    await media.drain()
    assert await media.repo.get_asset(asset.id) is None
    [logged] = await media.purges(asset_id=asset.id)
    assert logged.reason == "admin_purged"
    assert await media.attachment_for(("user", "9"), "avatar") is None
    # The asset's page now says it was purged, with the log.
    gone = await site.admin.get(f"/admin/assets/{asset.id}")
    assert gone.status_code == 404 and "admin_purged" in gone.text
    again = await site.admin.post(purge, data={"csrf": token, "confirm": asset.id})
    assert again.status_code == 404


async def test_asset_filters_and_pagination(site: Console) -> None:
    media = site.media
    # Many rows, inserted directly: the page size is 50.
    made = []
    for i in range(53):
        made.append(await media.repo.insert_asset(
            profile="image", storage="local", storage_key=f"image/{i}/original",
            state="ready" if i % 2 else "quarantined", byte_size=1000 + i))
    photo = await upload(media, Photos)
    await media.attach(made[5].id, ("user", "42"), "avatar")
    await media.attach(photo.id, ("user", "42"), "cover")
    await media.attach(photo.id, ("user", "42"), "banner")  # twice: listed once

    def listed(html: str) -> list[str]:
        return re.findall(r'href="/admin/assets/([0-9a-f-]{36})"', html)

    first = await site.admin.get("/admin/assets")
    ids = listed(first.text)
    assert len(ids) == 50 and ids == sorted(ids)
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt
    second = await site.admin.get(nxt.group(1).replace("&amp;", "&"))
    rest = listed(second.text)
    assert len(rest) == 4 and rest[0] > ids[-1]
    assert set(ids + rest) == {a.id for a in made} | {photo.id}
    assert 'rel="next"' not in second.text and "First page" in second.text

    quarantined = listed((await site.admin.get("/admin/assets?state=quarantined")).text)
    assert set(quarantined) == {a.id for i, a in enumerate(made) if i % 2 == 0}
    photos = listed((await site.admin.get("/admin/assets?profile=photos")).text)
    assert photos == [photo.id]
    owned = await site.admin.get("/admin/assets", params={"owner": "user:42"})
    assert listed(owned.text) == sorted([made[5].id, photo.id])
    both = await site.admin.get("/admin/assets", params={"owner": "user:42",
                                                         "profile": "photos"})
    assert listed(both.text) == [photo.id]
    bad = await site.admin.get("/admin/assets", params={"owner": "nobody"})
    assert bad.status_code == 422 and "type:id" in bad.text
    assert (await site.admin.get("/admin/assets?state=bogus")).status_code == 422


async def test_upload_sessions_filter_by_state(site: Console) -> None:
    media = site.media
    open_one = await media.initiate_upload(ImageProfile, filename="open.png",
                                           content_type="image/png", byte_size=10)
    aborted = await media.initiate_upload(ImageProfile, filename="gone.png",
                                          content_type="image/png", byte_size=10)
    await media.abort_upload(aborted.id)
    all_rows = (await site.admin.get("/admin/sessions")).text
    assert "open.png" in all_rows and "gone.png" in all_rows
    only = (await site.admin.get("/admin/sessions?state=aborted")).text
    assert "gone.png" in only and "open.png" not in only
    assert open_one.id[:8] not in only
    assert (await site.admin.get("/admin/sessions?state=nope")).status_code == 422


async def test_the_asset_page_subscribes_to_the_assets_stream(make_media: MakeMedia) -> None:
    """Over a real server: the page's stream URL (with its subscribe token) opens, and sends
    the asset's state first, which the page's live part refreshes on."""
    media = make_media(authorizer=HeaderAdmin())
    async with media.connected():
        asset = await upload(media, ImageProfile)
        async with LiveServer(console_app(media), access_log=False) as server, \
                httpx.AsyncClient(base_url=server.url, headers=ADMIN_HEADER,
                                  timeout=10) as c:
            page = await c.get(f"/admin/assets/{asset.id}")
            found = re.search(r'sse-connect="([^"]+)"', page.text)
            assert found
            url = found.group(1).replace("&amp;", "&")
            assert "/admin/assets/" + asset.id + "/live" in page.text
            # A browser without the admin header: the token alone lets it subscribe.
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser, \
                    browser.stream("GET", url) as stream:
                assert stream.status_code == 200
                lines = []
                async for line in stream.aiter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        break
            assert "event: state_change" in lines


async def test_a_page_tells_a_new_browser_its_csrf_cookie_once(site: Console) -> None:
    first = await site.admin.get("/admin/")
    set_cookie = first.headers["set-cookie"]
    assert f"{COOKIE}=" in set_cookie and "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie or "samesite=strict" in set_cookie.lower()
    assert "Path=/admin" in set_cookie
    again = await site.admin.get("/admin/")
    assert "set-cookie" not in again.headers
    # The hidden field never shows the cookie's own value.
    assert site.admin.cookies[COOKIE] not in again.text


async def test_unknown_assets_and_rows(site: Console) -> None:
    missing = new_id()
    r = await site.admin.get(f"/admin/assets/{missing}")
    assert r.status_code == 404 and "There is no asset with this id" in r.text
    live = await site.admin.get(f"/admin/assets/{missing}/live")
    assert live.status_code == 200 and "no longer exists" in live.text
    row = await site.admin.get(f"/admin/jobs/variants/{missing}/thumb")
    assert 'data-state="gone"' in row.text
