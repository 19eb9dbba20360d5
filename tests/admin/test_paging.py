"""Keyset paging of the console's lists (``rindle/admin/paging.py``), on SQLite and
PostgreSQL: the assets and upload sessions lists walked forward to their end and back to
their start with a filter on, page by page, through the links the pages themselves give;
refused cursors; and the pager's markup."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest

from rindle import ConfigurationError
from rindle.admin import console
from rindle.admin.paging import FIRST, Window, seek
from tests.admin.conftest import Console, HeaderAdmin, assert_no_secrets, console_site
from tests.conftest import ImageProfile, MakeMedia

#: Small, so a few rows make several pages.
SIZE = 3

_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
_PREV = re.compile(r'<a href="([^"]+)" rel="prev">')
_ASSET = re.compile(r'<td><a href="/admin/assets/([0-9a-f-]{36})">')
_SESSION = re.compile(r'<tr>\s*<td><code title="([0-9a-f-]{36})">')


@pytest.fixture
async def paged(make_media: MakeMedia) -> AsyncIterator[Console]:
    """The console with pages of ``SIZE`` rows."""
    async with console_site(make_media, page_size=SIZE) as running:
        yield running


def _link(pattern: re.Pattern[str], html: str) -> str | None:
    found = pattern.search(html)
    return unescape(found.group(1)) if found else None


async def _walk(client: httpx.AsyncClient, url: str, rows: re.Pattern[str],
                keep: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    """Every page from ``url`` forward, following *Next page* to the last, then back,
    following *Previous page* to the first: the ids of each page, in the order visited.
    Every link keeps the filters ``keep``."""
    forward: list[list[str]] = []
    html = ""
    next_url: str | None = url
    while next_url is not None:
        page = await client.get(next_url)
        assert page.status_code == 200, page.text
        html = page.text
        assert_no_secrets(html)
        forward.append(rows.findall(html))
        if len(forward) == 1:
            assert _link(_PREV, html) is None  # the first page has no previous page
        next_url = _link(_NEXT, html)
        for link in filter(None, (next_url, _link(_PREV, html))):
            for name, value in keep.items():
                assert httpx.URL(link).params.get(name) == value, link
        assert len(forward) < 50, "the pager does not end"
    backward = [forward[-1]]
    prev_url = _link(_PREV, html)
    while prev_url is not None:
        page = await client.get(prev_url)
        assert page.status_code == 200, page.text
        backward.append(rows.findall(page.text))
        assert _link(_NEXT, page.text) is not None  # the way back
        prev_url = _link(_PREV, page.text)
        assert len(backward) < 50, "the pager does not end"
    return forward, backward


def _pages(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + SIZE] for i in range(0, len(ids), SIZE)]


async def test_assets_page_forward_and_back_with_each_filter(paged: Console) -> None:
    repo, media = paged.media.repo, paged.media
    made = []
    for i in range(17):
        made.append(await repo.insert_asset(
            profile="photos" if i % 3 == 0 else "image", storage="local",
            storage_key=f"k/{i}/original", state="ready" if i % 2 else "quarantined",
            byte_size=100 + i))
    for a in made:
        if a.state == "ready" and a.profile == "image":
            await media.attach(a.id, ("user", "42"), f"slot-{a.id}")
    attached = await repo.insert_asset(profile="photos", storage="local",
                                       storage_key="k/x/original", state="ready")
    await media.attach(attached.id, ("user", "42"), "one")
    await media.attach(attached.id, ("user", "42"), "two")  # two slots: listed once
    everything = [*made, attached]

    cases = [
        ({"state": "ready"}, [a for a in everything if a.state == "ready"]),
        ({"profile": "image", "state": "quarantined"},
         [a for a in everything if a.profile == "image" and a.state == "quarantined"]),
        ({"owner": "user:42"},
         [a for a in everything if a.state == "ready" and a.profile == "image"] + [attached]),
        ({}, everything),
    ]
    for filters, matching in cases:
        expected = sorted(a.id for a in matching)
        assert len(expected) > SIZE, filters  # more than a page
        forward, backward = await _walk(paged.admin, str(httpx.URL("/admin/assets",
                                                                   params=filters)),
                                        _ASSET, filters)
        assert forward == _pages(expected), filters
        assert backward == list(reversed(_pages(expected))), filters

    # The first page reached by going back has no previous link, but a first page link
    # is only offered where there is a page before.
    first = await paged.admin.get("/admin/assets?state=ready")
    assert "First page" not in first.text
    second = await paged.admin.get(_link(_NEXT, first.text) or "")
    assert "First page" in second.text
    again = await paged.admin.get(_link(_PREV, second.text) or "")
    assert _ASSET.findall(again.text) == _ASSET.findall(first.text)
    assert _link(_PREV, again.text) is None and "First page" not in again.text


async def test_sessions_page_forward_and_back_newest_first_ties_broken_by_id(
        paged: Console) -> None:
    media = paged.media
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    sessions = []
    for i in range(14):
        s = await media.initiate_upload(ImageProfile, filename=f"f{i}.png",
                                        content_type="image/png", byte_size=10)
        # Groups of three share a creation time (the id orders them), and the times are
        # not in the order the sessions were made.
        at = base + timedelta(minutes=(i // 3) * 7 % 5, microseconds=0)
        state = "aborted" if i % 4 else "initialized"
        await media.repo.update_session(s.id, created_at=at, state=state)
        sessions.append((at, s.id, state))

    for filters in ({"state": "aborted"}, {}):
        rows = [r for r in sessions if r[2] == filters.get("state", r[2])]
        expected = [sid for _, sid, _ in sorted(rows, reverse=True)]
        assert len(expected) > SIZE
        forward, backward = await _walk(paged.admin, str(httpx.URL("/admin/sessions",
                                                                   params=filters)),
                                        _SESSION, filters)
        assert forward == _pages(expected), filters
        assert backward == list(reversed(_pages(expected))), filters


@pytest.mark.parametrize("path", ["/admin/assets", "/admin/sessions"])
async def test_a_malformed_or_foreign_cursor_is_a_400_with_its_code(paged: Console,
                                                                    path: str) -> None:
    media = paged.media
    for _ in range(SIZE + 1):
        await media.initiate_upload(ImageProfile, filename="a.png", content_type="image/png",
                                    byte_size=10)
    first = await paged.admin.get(path, params={"state": ""})
    genuine = httpx.URL(_link(_NEXT, first.text) or "").params["after"]
    other = "/admin/sessions" if path == "/admin/assets" else "/admin/assets"
    foreign = httpx.URL(_link(_NEXT, (await paged.admin.get(other)).text) or "").params["after"]
    tampered = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    for query in ({"after": "garbage"}, {"before": "x" * 5000}, {"after": tampered},
                  {"after": foreign}, {"after": genuine, "before": genuine},
                  {"before": "%00'; DROP TABLE x; --"}):
        refused = await paged.admin.get(path, params={**query, "state": ""})
        assert refused.status_code == 400, query
        assert "<code>invalid_cursor</code>" in refused.text
        assert "start again from the first page" in refused.text
        assert f'<a href="{path}">Go to the first page</a>' in refused.text
        assert 'rel="next"' not in refused.text and 'rel="prev"' not in refused.text
    # The filters survive into the way back.
    kept = await paged.admin.get(path, params={"after": "garbage", "state": "aborted"})
    assert kept.status_code == 400
    assert f'<a href="{path}?state=aborted">Go to the first page</a>' in kept.text
    # The genuine cursor still works.
    assert (await paged.admin.get(path, params={"after": genuine})).status_code == 200


async def test_an_empty_page_shows_no_next_link(paged: Console) -> None:
    repo = paged.media.repo
    for path in ("/admin/assets?state=deleted", "/admin/sessions?state=completed"):
        empty = await paged.admin.get(path)
        assert empty.status_code == 200
        assert "match." in empty.text
        assert 'rel="next"' not in empty.text and 'rel="prev"' not in empty.text
        assert 'aria-label="Pagination"' not in empty.text

    # A page emptied since its link was made: neither link, only the way to the first.
    made = [await repo.insert_asset(profile="image", storage="local",
                                    storage_key=f"k/{i}", state="ready") for i in range(4)]
    first = await paged.admin.get("/admin/assets")
    nxt = _link(_NEXT, first.text)
    assert nxt is not None
    last = max(made, key=lambda a: a.id)
    await repo.db.execute("DELETE FROM rindle_assets WHERE id = :id", {"id": last.id})
    emptied = await paged.admin.get(nxt)
    assert emptied.status_code == 200 and "No assets match." in emptied.text
    assert 'rel="next"' not in emptied.text and 'rel="prev"' not in emptied.text
    assert '<a href="/admin/assets">First page</a>' in emptied.text

    # The last page of a list has no next link, only the way back.
    rows = await paged.admin.get("/admin/assets")
    assert _link(_NEXT, rows.text) is None and _link(_PREV, rows.text) is None


async def test_links_say_what_is_there_now_not_what_was(paged: Console) -> None:
    """The previous link is offered only while a row lies before the page (and the next
    only while one lies after it), however the page was reached."""
    repo = paged.media.repo
    made = sorted([await repo.insert_asset(profile="image", storage="local",
                                           storage_key=f"k/{i}", state="ready")
                   for i in range(SIZE * 3)], key=lambda a: a.id)
    first = await paged.admin.get("/admin/assets")
    middle_url = _link(_NEXT, first.text)
    assert middle_url is not None
    middle = await paged.admin.get(middle_url)
    back_url, last_url = _link(_PREV, middle.text), _link(_NEXT, middle.text)
    assert back_url is not None and last_url is not None
    last = await paged.admin.get(last_url)
    from_last = _link(_PREV, last.text)
    assert from_last is not None
    for a in made[:SIZE] + made[-SIZE:]:  # the first and the last page's rows go
        await repo.db.execute("DELETE FROM rindle_assets WHERE id = :id", {"id": a.id})
    for url in (middle_url, from_last):  # the middle page, reached forward and back
        now = await paged.admin.get(url)
        assert _ASSET.findall(now.text) == [a.id for a in made[SIZE:-SIZE]]
        assert _link(_PREV, now.text) is None and _link(_NEXT, now.text) is None
        assert "First page" not in now.text


async def test_the_pager_markup(paged: Console) -> None:
    repo = paged.media.repo
    for i in range(SIZE * 2 + 1):
        await repo.insert_asset(profile="image", storage="local", storage_key=f"k/{i}",
                                state="ready")
    first = (await paged.admin.get("/admin/assets")).text
    middle = (await paged.admin.get(_link(_NEXT, first) or "")).text
    nav = re.search(r'<nav class="pager" aria-label="Pagination">(.*?)</nav>', middle, re.S)
    assert nav, middle
    links = re.findall(r'<a href="[^"]+"(?: rel="(\w+)")?>([^<]+)</a>', nav.group(1))
    assert links == [("", "First page"), ("prev", "Previous page"), ("next", "Next page")]
    assert middle.count('aria-label="Pagination"') == 1


def test_seek_spells_out_the_row_comparison() -> None:
    params: dict[str, object] = {}
    assert seek(("id",), FIRST, params) == (None, "id")
    assert seek(("created_at", "id"), FIRST, params, descending=True) == (
        None, "created_at DESC, id DESC")
    assert params == {}
    cond, order = seek(("created_at", "id"), Window(key=("t", "i")), params, descending=True)
    assert cond == "((created_at < :k0) OR (created_at = :k0 AND id < :k1))"
    assert order == "created_at DESC, id DESC" and params == {"k0": "t", "k1": "i"}
    cond, order = seek(("created_at", "id"), Window(key=("t", "i"), backward=True), params,
                       descending=True)
    assert cond == "((created_at > :k0) OR (created_at = :k0 AND id > :k1))"
    assert order == "created_at, id"


@pytest.mark.parametrize("size", [0, -1, 1001])
async def test_a_page_size_out_of_range_is_refused(make_media: MakeMedia, size: int) -> None:
    media = make_media(profiles=[ImageProfile], authorizer=HeaderAdmin())
    with pytest.raises(ConfigurationError, match="page_size"):
        console(media, page_size=size)
