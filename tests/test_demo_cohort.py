"""Cohort, the demo's members/posts/feed pages, driven over HTTP as `python -m demo_app`:
seeded members with generated avatars and sample lessons, joining, replacing an avatar,
posts with hero images in the feed, video and audio lessons, detaching a post's image, and
deleting a member through the erasure preview."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clips import clips, needs_ffmpeg
from tests.support.images import png
from tests.test_demo import _start_demo, _upload


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    proc, base = _start_demo(tmp_path, {})
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def _asset(c: httpx.Client, asset_id: str) -> httpx.Response:
    return c.get(f"/rindle/assets/{asset_id}")


def _until(check: Any, *, tries: int = 300) -> Any:
    for _ in range(tries):
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _ready(c: httpx.Client, asset_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = _asset(c, asset_id)
        body: dict[str, Any] = r.json()
        shown = body.get("asset", body)
        return shown if shown.get("state") in ("ready", "degraded", "quarantined") else None
    shown: dict[str, Any] = _until(check)
    assert shown["state"] == "ready", shown
    return shown


def _gone(c: httpx.Client, asset_id: str) -> None:
    _until(lambda: _asset(c, asset_id).status_code == 404)


def _members(c: httpx.Client) -> dict[str, str]:
    """Name -> id, from the members page."""
    page = c.get("/members")
    assert page.status_code == 200
    return {name: mid for mid, name in re.findall(r'<a href="/members/(\d+)">([^<]+)</a>',
                                                  page.text)}


def _avatar_id(c: httpx.Client, member_id: str) -> str:
    page = c.get(f"/members/{member_id}").text
    head = page[page.index('class="member-head"'):page.index("</h1>")]
    found = re.search(r'data-rindle-asset="([0-9a-f-]{36})"', head)
    assert found, head
    return found.group(1)


def _post(c: httpx.Client, member_id: str, title: str, *, size: tuple[int, int] = (900, 600),
          ) -> tuple[str, str]:
    """Upload a PNG through the JSON API, then the post form; (post id, asset id)."""
    body = _upload(c, "post_image", "hero.png", "image/png", png(*size))
    assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
    r = c.post(f"/members/{member_id}/posts", data={"title": title,
                                                     "asset_id": body["asset_id"]})
    assert r.status_code == 303, r.text
    post_id = r.headers["location"].rsplit("#post-", 1)[1]
    return post_id, body["asset_id"]


def _lessons(c: httpx.Client, member_id: str) -> dict[str, str]:
    """Lesson title -> its asset id, from the member's page."""
    page = c.get(f"/members/{member_id}").text
    found = {}
    for block in page.split('<article class="lesson"')[1:]:
        title = re.search(r'-title">([^<]+) <span', block)
        asset = re.search(r'data-rindle-asset="([0-9a-f-]{36})"', block)
        assert title and asset, block
        found[title.group(1)] = asset.group(1)
    return found


@needs_ffmpeg
def test_seeded_members_have_ready_avatars_and_are_not_reseeded(tmp_path: Path) -> None:
    proc, base = _start_demo(tmp_path, {"RINDLE_DEMO_SAMPLE_MEDIA": "1"})
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            members = _members(c)
            assert {"Ada Lovelace", "Grace Hopper", "Linus Torvalds"} <= set(members)
            avatars = {name: _avatar_id(c, mid) for name, mid in members.items()}
            for asset_id in avatars.values():
                shown = _ready(c, asset_id)
                assert shown["variants"]["thumb"]["width"] == 128
            page = c.get("/members").text
            assert 'alt="Ada Lovelace&#39;s avatar"' in page
            nav = c.get("/").text
            for href in ('href="/members"', 'href="/feed"', 'href="/admin/"'):
                assert href in nav
            assert c.get("/static/cohort.css").status_code == 200
            # Ada's sample lessons, made with ffmpeg at first start, are ready to play.
            lessons = _lessons(c, members["Ada Lovelace"])
            assert set(lessons) == {"Reading a colour chart", "Tuning to A 330"}
            video = _ready(c, lessons["Reading a colour chart"])
            assert {"web_720p", "poster"} <= set(video["variants"])
            assert (video["variants"]["web_720p"]["width"],
                    video["variants"]["web_720p"]["height"]) == (640, 360)  # never enlarged
            audio = _ready(c, lessons["Tuning to A 330"])
            assert {"m4a_128k", "waveform"} <= set(audio["variants"])
            page = c.get(f"/members/{members['Ada Lovelace']}").text
            assert "<video" in page and "<audio" in page
    finally:
        proc.terminate()
        proc.wait(10)
    # A restart keeps the same members and avatars.
    (tmp_path / "demo.log").rename(tmp_path / "demo.1.log")
    proc, base = _start_demo(tmp_path, {})
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            again = _members(c)
            assert again == members
            assert {name: _avatar_id(c, mid) for name, mid in again.items()} == avatars
    finally:
        proc.terminate()
        proc.wait(10)
    assert "seeded member" not in (tmp_path / "demo.log").read_text()
    assert "seeded video lesson" in (tmp_path / "demo.1.log").read_text()
    assert "seeded" not in (tmp_path / "demo.log").read_text()


def test_joining_then_replacing_the_avatar_purges_the_old_one(demo: str) -> None:
    with httpx.Client(base_url=demo, timeout=30) as c:
        assert 'href="/members/new"' in c.get("/members").text
        assert 'id="join-name"' in c.get("/members/new").text
        refused = c.post("/members/new", data={"name": "   "})
        assert refused.status_code == 422 and "Tell us your name" in refused.text
        r = c.post("/members/new", data={"name": "Dora  Explorer"})
        assert r.status_code == 303
        dora = r.headers["location"].split("/members/", 1)[1].split("?", 1)[0]
        page = c.get(r.headers["location"]).text
        assert "Welcome, Dora Explorer!" in page and "Add an avatar" in page
        assert "No avatar yet." in page
        # Someone else of the same name is another member.
        twin = c.post("/members/new", data={"name": "Dora Explorer"}).headers["location"]
        assert twin.split("?")[0] != f"/members/{dora}"

        def set_avatar(size: tuple[int, int]) -> str:
            body = _upload(c, "avatar", "me.png", "image/png", png(*size))
            assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
            done = c.post(f"/members/{dora}/avatar", data={"asset_id": body["asset_id"]})
            assert done.status_code == 303, done.text
            return str(body["asset_id"])

        first = set_avatar((300, 200))
        assert _avatar_id(c, dora) == first
        _ready(c, first)
        assert "Replace the avatar" in c.get(f"/members/{dora}").text
        second = set_avatar((200, 300))
        assert _avatar_id(c, dora) == second
        _ready(c, second)
        _gone(c, first)  # replaced: Rindle purged it
        # htmx gets the avatar block back; a post image is no avatar.
        body = _upload(c, "avatar", "me.png", "image/png", png(64, 64))
        c.post(f"/rindle/uploads/{body['session_id']}/complete")
        block = c.post(f"/members/{dora}/avatar", data={"asset_id": body["asset_id"]},
                       headers={"HX-Request": "true"})
        assert block.status_code == 200 and 'id="member-avatar"' in block.text
        assert body["asset_id"] in block.text
        _, image = _post(c, dora, "A hero")
        wrong = c.post(f"/members/{dora}/avatar", data={"asset_id": image},
                       headers={"HX-Request": "true"})
        assert wrong.status_code == 422 and "an avatar takes avatar uploads" in wrong.text
        assert _avatar_id(c, dora) == body["asset_id"]


@needs_ffmpeg
def test_video_and_audio_lessons_play_and_are_erased_with_the_member(
        demo: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    media = clips(tmp_path_factory)
    with httpx.Client(base_url=demo, timeout=30) as c:
        grace = _members(c)["Grace Hopper"]
        page = c.get(f"/members/{grace}").text
        assert 'id="video-lesson-form"' in page and 'id="audio-lesson-form"' in page

        def lesson(kind: str, profile: str, path: Path, content_type: str, title: str,
                   ) -> httpx.Response:
            body = _upload(c, profile, path.name, content_type, path.read_bytes())
            assert c.post(f"/rindle/uploads/{body['session_id']}/complete").status_code == 200
            return c.post(f"/members/{grace}/lessons",
                          data={"kind": kind, "title": title, "asset_id": body["asset_id"]},
                          headers={"HX-Request": "true"})

        video = lesson("video", "lesson", media.video_audio, "video/mp4", "COBOL in 2 seconds")
        assert video.status_code == 200 and "<video" in video.text
        audio = lesson("audio", "episode", media.audio_wav, "audio/wav", "A nanosecond")
        assert audio.status_code == 200 and "<audio" in audio.text
        lessons = _lessons(c, grace)
        assert set(lessons) == {"COBOL in 2 seconds", "A nanosecond"}
        assert {"web_720p", "poster"} <= set(_ready(c, lessons["COBOL in 2 seconds"])["variants"])
        assert "m4a_128k" in _ready(c, lessons["A nanosecond"])["variants"]
        # A video lesson takes a lesson upload, not an episode; kinds are video or audio.
        wrong = lesson("video", "episode", media.audio_wav, "audio/wav", "Wrong")
        assert wrong.status_code == 422 and "a video lesson takes lesson uploads" in wrong.text
        assert c.post(f"/members/{grace}/lessons", data={"kind": "gif", "title": "t",
                                                          "asset_id": "x"}).status_code == 422
        preview = c.get(f"/members/{grace}/delete").text
        assert "Video lesson: COBOL in 2 seconds" in preview
        assert "Audio lesson: A nanosecond" in preview
        assert c.post(f"/members/{grace}/delete", data={"confirm": "yes"}).status_code == 303
        for asset_id in lessons.values():
            _gone(c, asset_id)


def test_a_post_shows_in_the_feed_with_its_picture_then_its_image_can_be_detached(
        demo: str) -> None:
    with httpx.Client(base_url=demo, timeout=30) as c:
        ada = _members(c)["Ada Lovelace"]
        assert 'id="post-form"' in c.get(f"/members/{ada}").text
        post_id, asset_id = _post(c, ada, "Notes on the <Analytical> Engine")
        shown = _ready(c, asset_id)
        assert {"card", "hero", "share"} <= set(shown["variants"])
        share = shown["variants"]["share"]  # Cohort's own processor, with the brand mark
        assert (share["width"], share["height"]) == (1200, 630)
        assert c.get(share["url"]).content[:3] == b"\xff\xd8\xff"  # a JPEG
        feed = c.get("/feed")
        assert feed.status_code == 200
        post = feed.text[feed.text.index(f'id="post-{post_id}"'):]
        post = post[:post.index("</article>")]
        assert "<picture" in post and f'data-rindle-asset="{asset_id}"' in post
        assert 'type="image/webp"' in post and 'media="(max-width: 40rem)"' in post
        assert 'alt="Notes on the &lt;Analytical&gt; Engine"' in post
        assert "Ada Lovelace" in post  # the byline, with the avatar
        assert post.count("<picture") == 2
        # The image's variants are served.
        card = shown["variants"]["card"]
        assert (card["width"], card["height"]) == (600, 400)
        assert c.get(card["url"]).status_code == 200
        # Detach: the slot empties and Rindle purges the asset.
        r = c.post(f"/members/{ada}/posts/{post_id}/detach")
        assert r.status_code == 303
        _gone(c, asset_id)
        feed = c.get("/feed").text
        post = feed[feed.index(f'id="post-{post_id}"'):]
        assert "The image was removed." in post[:post.index("</article>")]
        # A bad post is refused, and another member's post is not found.
        assert c.post(f"/members/{ada}/posts", data={"title": "", "asset_id": "x"}
                      ).status_code == 422
        assert c.post(f"/members/{ada}/posts", data={"title": "t", "asset_id": "nope"}
                      ).status_code == 422
        grace = _members(c)["Grace Hopper"]
        assert c.post(f"/members/{grace}/posts/{post_id}/detach").status_code == 404
        assert c.get("/members/999").status_code == 404


def test_the_feed_renders_a_page_of_many_posts_newest_first(demo: str) -> None:
    n = 12
    with httpx.Client(base_url=demo, timeout=30) as c:
        members = list(_members(c).values())
        posts = [_post(c, members[i % len(members)], f"Post number {i}", size=(320, 200))
                 for i in range(n)]
        for _, asset_id in posts:
            _ready(c, asset_id)
        feed = c.get("/feed")
    assert feed.status_code == 200
    text = feed.text
    assert text.count("<picture") == n * 2  # each post's image, and its author's avatar
    order = [int(m) for m in re.findall(r'<article class="post" id="post-(\d+)"', text)]
    assert order == sorted((int(p) for p, _ in posts), reverse=True)
    for i in range(n):
        assert f'alt="Post number {i}"' in text


def test_deleting_a_member_previews_then_erases(demo: str) -> None:
    with httpx.Client(base_url=demo, timeout=30) as c:
        members = _members(c)
        linus = members["Linus Torvalds"]
        avatar = _avatar_id(c, linus)
        _ready(c, avatar)
        post_id, image = _post(c, linus, "Just a hobby")
        preview = c.get(f"/members/{linus}/delete")
        assert preview.status_code == 200
        assert "Delete Linus Torvalds?" in preview.text
        assert "avatar" in preview.text and f"post:{post_id}" in preview.text
        assert avatar in preview.text and image in preview.text
        assert "Assets purged (2)" in preview.text and 'id="erase-form"' in preview.text
        # The preview changed nothing; a POST without the confirmation neither.
        assert _asset(c, avatar).status_code == 200
        refused = c.post(f"/members/{linus}/delete", data={})
        assert refused.status_code == 422 and "Tick the box" in refused.text
        assert _asset(c, avatar).status_code == 200
        done = c.post(f"/members/{linus}/delete", data={"confirm": "yes"})
        assert done.status_code == 303 and done.headers["location"].startswith("/members")
        page = c.get(done.headers["location"])
        assert "was erased" in page.text
        assert "Linus Torvalds" not in _members(c)
        assert c.get(f"/members/{linus}").status_code == 404
        _gone(c, avatar)
        _gone(c, image)
        assert f'id="post-{post_id}"' not in c.get("/feed").text
        # The others are untouched.
        ada = members["Ada Lovelace"]
        assert _asset(c, _avatar_id(c, ada)).status_code == 200
