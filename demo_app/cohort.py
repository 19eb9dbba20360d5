"""Cohort's own tiny tables and pages: members (seeded with generated avatars and sample
lessons), joining, replacing an avatar, posts with hero images, video and audio lessons, a
feed, and deleting a member through Rindle's owner erasure.

Members, posts and lessons live in the demo's own SQLite file (``VAR/cohort.db``), not in
Rindle's tables: Rindle only knows the owner ``("Member", id)`` and its slots, ``avatar``,
``post:<post id>`` and ``lesson:<lesson id>``.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from rindle import Profile
from rindle.errors import NotFound, RindleError, ValidationError
from rindle.web.templating import AssetView

from .art import avatar_png
from .media import VAR, AvatarProfile, EpisodeProfile, LessonProfile, PostImage, media

log = logging.getLogger("demo_app.cohort")

DB_PATH = VAR / "cohort.db"
OWNER_TYPE = "Member"
FEED_LIMIT = 50
#: The feed's picture: the 600x400 card on phones, the hero above that.
FEED_VARIANTS: list[tuple[str, str | None] | str] = [("card", "(max-width: 40rem)"), "hero"]

#: Who is there at first start, with their avatar's gradient.
SEED = [
    ("Ada", "Ada Lovelace", (214, 69, 101), (92, 61, 190)),
    ("Grace", "Grace Hopper", (28, 140, 120), (40, 70, 170)),
    ("Linus", "Linus Torvalds", (230, 150, 30), (190, 50, 50)),
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  handle TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  asset_id TEXT,
  created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_newest ON posts (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS lessons (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('video', 'audio')),
  asset_id TEXT,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Member:
    id: int
    handle: str
    name: str

    @property
    def owner(self) -> tuple[str, str]:
        return (OWNER_TYPE, str(self.id))

    @property
    def initial(self) -> str:
        return self.name[:1].upper()


@dataclass
class Post:
    id: int
    member_id: int
    title: str
    asset_id: str | None
    created_at: float

    @property
    def slot(self) -> str:
        return post_slot(self.id)


def post_slot(post_id: int) -> str:
    return f"post:{post_id}"


#: A lesson's kind and the profile its upload must come from.
LESSON_PROFILES = {"video": LessonProfile, "audio": EpisodeProfile}


@dataclass
class Lesson:
    id: int
    member_id: int
    title: str
    kind: str
    asset_id: str | None

    @property
    def slot(self) -> str:
        return f"lesson:{self.id}"


@contextmanager
def _db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(DB_PATH, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init_db() -> None:
    with _db() as conn:
        conn.executescript(_SCHEMA)


def list_members() -> list[Member]:
    with _db() as conn:
        rows = conn.execute("SELECT id, handle, name FROM members ORDER BY id").fetchall()
    return [Member(r["id"], r["handle"], r["name"]) for r in rows]


def get_member(member_id: int | str) -> Member:
    try:
        key = int(member_id)
    except (TypeError, ValueError):
        raise NotFound(f"there is no member {member_id!r}") from None
    with _db() as conn:
        row = conn.execute("SELECT id, handle, name FROM members WHERE id = ?",
                           (key,)).fetchone()
    if row is None:
        raise NotFound(f"there is no member {member_id!r}")
    return Member(row["id"], row["handle"], row["name"])


def _post(row: sqlite3.Row) -> Post:
    return Post(row["id"], row["member_id"], row["title"], row["asset_id"], row["created_at"])


def posts_of(member_id: int) -> list[Post]:
    with _db() as conn:
        rows = conn.execute("SELECT * FROM posts WHERE member_id = ? "
                            "ORDER BY created_at DESC, id DESC", (member_id,)).fetchall()
    return [_post(r) for r in rows]


def newest_posts(limit: int = FEED_LIMIT) -> list[Post]:
    with _db() as conn:
        rows = conn.execute("SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT ?",
                            (limit,)).fetchall()
    return [_post(r) for r in rows]


def lessons_of(member_id: int) -> list[Lesson]:
    with _db() as conn:
        rows = conn.execute("SELECT id, member_id, title, kind, asset_id FROM lessons "
                            "WHERE member_id = ? ORDER BY created_at, id", (member_id,)).fetchall()
    return [Lesson(r["id"], r["member_id"], r["title"], r["kind"], r["asset_id"]) for r in rows]


def add_member(name: str) -> Member:
    """A new member; the handle is the name's letters, made unique with a number."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "member"
    with _db() as conn:
        for n in range(1, 1000):
            handle = base if n == 1 else f"{base}-{n}"
            try:
                cur = conn.execute("INSERT INTO members (handle, name, created_at) "
                                   "VALUES (?, ?, ?)", (handle, name, time.time()))
            except sqlite3.IntegrityError:
                continue
            return Member(int(cur.lastrowid or 0), handle, name)
    raise ValidationError(f"too many members are called {name!r}", code="name_taken")


def get_post(member_id: int, post_id: int | str) -> Post:
    try:
        key = int(post_id)
    except (TypeError, ValueError):
        raise NotFound(f"there is no post {post_id!r}") from None
    with _db() as conn:
        row = conn.execute("SELECT * FROM posts WHERE id = ? AND member_id = ?",
                           (key, member_id)).fetchone()
    if row is None:
        raise NotFound(f"there is no post {post_id!r}")
    return _post(row)


# --- seeding ------------------------------------------------------------------------------


async def seed() -> None:
    """Create the seeded members and their avatars once; a restart changes nothing."""
    init_db()
    with _db() as conn:
        if conn.execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone():
            return
    for handle, name, top, bottom in SEED:
        with _db() as conn:
            conn.execute("INSERT OR IGNORE INTO members (handle, name, created_at) "
                         "VALUES (?, ?, ?)", (handle.lower(), name, time.time()))
            row = conn.execute("SELECT id FROM members WHERE handle = ?",
                               (handle.lower(),)).fetchone()
        member = Member(row["id"], handle.lower(), name)
        if await media.attachment_for(member.owner, "avatar") is not None:
            continue
        data = avatar_png(member.initial, top, bottom)
        result = await media.upload(AvatarProfile, data, filename=f"{handle.lower()}.png",
                                    content_type="image/png", byte_size=len(data))
        await media.attach(result.asset.id, member.owner, "avatar")
        log.info("seeded member %s with avatar %s", name, result.asset.id)
    if os.environ.get("RINDLE_DEMO_SAMPLE_MEDIA", "1") != "0":
        await _seed_lessons(list_members()[0])
    with _db() as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seeded', ?)",
                     (str(time.time()),))


#: The sample lessons: ffmpeg's own test sources, so no media file is committed.
SAMPLE_LESSONS = [
    ("video", "Reading a colour chart", "chart.mp4",
     ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4",
      "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
      "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
      "-shortest", "-movflags", "+faststart"], "video/mp4"),
    ("audio", "Tuning to A 330", "tuning.wav",
     ["-f", "lavfi", "-i", "sine=frequency=330:duration=6", "-c:a", "pcm_s16le"],
     "audio/wav"),
]


async def _seed_lessons(member: Member) -> None:
    """The first member's sample video and audio lessons, made with ffmpeg at first start.
    ``RINDLE_DEMO_SAMPLE_MEDIA=0`` leaves them out (the test suite's many demo starts)."""
    from rindle.processing.ffmpeg import binary

    samples = VAR / "samples"
    samples.mkdir(exist_ok=True)
    for kind, title, filename, args, content_type in SAMPLE_LESSONS:
        path = samples / filename
        proc = await asyncio.create_subprocess_exec(
            binary("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-y", *args, str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            log.warning("could not make the sample lesson %s: %s", filename, err.decode()[-300:])
            continue
        data = path.read_bytes()
        result = await media.upload(LESSON_PROFILES[kind], data, filename=filename,
                                    content_type=content_type, byte_size=len(data))
        lesson = _insert_lesson(member.id, title, kind, result.asset.id)
        await media.attach(result.asset.id, member.owner, lesson.slot)
        path.unlink()
        log.info("seeded %s lesson %r for %s", kind, title, member.name)


def _insert_lesson(member_id: int, title: str, kind: str, asset_id: str) -> Lesson:
    with _db() as conn:
        cur = conn.execute("INSERT INTO lessons (member_id, title, kind, asset_id, created_at) "
                           "VALUES (?, ?, ?, ?, ?)", (member_id, title, kind, asset_id,
                                                      time.time()))
    return Lesson(int(cur.lastrowid or 0), member_id, title, kind, asset_id)


# --- rendering helpers --------------------------------------------------------------------


async def avatar_views(request: Request, members: list[Member]) -> dict[int, AssetView]:
    """Each member's avatar as a view, the views prepared together (one query for them)."""
    ids: dict[int, str] = {}
    for member in members:
        attachment = await media.attachment_for(member.owner, "avatar")
        if attachment is not None and attachment.asset is not None:
            ids[member.id] = attachment.asset.id
    if not ids:
        return {}
    views = await media.html.views(list(ids.values()), variants=["thumb"], request=request)
    return dict(zip(ids, views, strict=True))


async def lesson_views(request: Request, lessons: list[Lesson]) -> dict[int, AssetView]:
    """Each lesson's media as a view, prepared together."""
    with_media = [lesson for lesson in lessons if lesson.asset_id]
    if not with_media:
        return {}
    views = await media.html.views([lesson.asset_id for lesson in with_media if lesson.asset_id],
                                   request=request)
    return {lesson.id: view for lesson, view in zip(with_media, views, strict=True)}


async def post_pictures(request: Request, posts: list[Post]) -> dict[int, Any]:
    """The ``<picture>`` of every post that still has its image: one query for the page."""
    with_image = [p for p in posts if p.asset_id]
    if not with_image:
        return {}
    tags = await media.html.picture_tags(
        PostImage, [p.asset_id for p in with_image if p.asset_id], variants=FEED_VARIANTS,
        alt=[p.title for p in with_image], sizes="(max-width: 40rem) 100vw, 40rem",
        request=request)
    return {p.id: tag for p, tag in zip(with_image, tags, strict=True)}


async def _upload_for(asset_id: str, profile: type[Profile], what: str) -> None:
    """Refuse an asset id that is not an upload of ``profile`` (``what`` takes only those)."""
    asset = await media.asset(asset_id)
    if asset.profile != profile.name:
        raise ValidationError(f"{what} takes {profile.name} uploads, not {asset.profile}",
                              code="invalid_slot")


async def _member_form(request: Request) -> tuple[Member, FormData, bool]:
    """A member's form POST: the member (``NotFound`` if there is none), the form, and
    whether htmx sent it (it then wants a fragment back, not a redirect)."""
    member = get_member(request.path_params["member_id"])
    return member, await request.form(), request.headers.get("hx-request") == "true"


def _not_found(templates: Jinja2Templates, request: Request, exc: RindleError) -> Response:
    return templates.TemplateResponse(request, "cohort/error.html",
                                      {"title": "Not found", "message": exc.message},
                                      status_code=404)


def routes(templates: Jinja2Templates) -> list[Route]:
    """The Cohort pages, rendered with the demo's templates."""

    async def members_page(request: Request) -> Response:
        members = list_members()
        return templates.TemplateResponse(request, "cohort/members.html", {
            "members": members, "avatars": await avatar_views(request, members),
            "erased": request.query_params.get("erased"),
        })

    async def member_page(request: Request, *, error: str | None = None,
                          status_code: int = 200) -> Response:
        try:
            member = get_member(request.path_params["member_id"])
        except NotFound as exc:
            return _not_found(templates, request, exc)
        posts = posts_of(member.id)
        lessons = lessons_of(member.id)
        return templates.TemplateResponse(request, "cohort/member.html", {
            "member": member, "posts": posts, "lessons": lessons,
            "avatar": await _avatar_view(request, member),
            "pictures": await post_pictures(request, posts),
            "lesson_views": await lesson_views(request, lessons),
            "accept": ",".join(PostImage.allow_mime),
            "avatar_accept": ",".join(AvatarProfile.allow_mime),
            "lesson_accept": {kind: ",".join(p.allow_mime) for kind, p in LESSON_PROFILES.items()},
            "error": error,
        }, status_code=status_code)

    async def _avatar_view(request: Request, member: Member) -> AssetView | None:
        # The member's own page shows the large avatar, so all its variants are signed.
        attachment = await media.attachment_for(member.owner, "avatar")
        if attachment is None or attachment.asset is None:
            return None
        return await media.html.view(attachment.asset, request=request)

    async def join_page(request: Request) -> Response:
        """GET: the join form. POST: a new member, then their page (to add an avatar)."""
        error = None
        name = ""
        if request.method == "POST":
            form = await request.form()
            name = " ".join(str(form.get("name") or "").split())
            if not name:
                error = "Tell us your name."
            elif len(name) > 80:
                error = "A name is at most 80 characters."
            else:
                try:
                    member = add_member(name)
                except RindleError as exc:
                    error = exc.message
                else:
                    return RedirectResponse(f"/members/{member.id}?joined=1", status_code=303)
        return templates.TemplateResponse(request, "cohort/join.html", {
            "error": error, "name": name}, status_code=422 if error else 200)

    def _refused(htmx: bool, message: str, status_code: int) -> Response | None:
        if htmx:
            return HTMLResponse(f'<p class="error" role="alert">{html.escape(message)}</p>',
                                status_code=status_code)
        return None

    async def set_avatar(request: Request) -> Response:
        """The avatar form: attach the new upload; the replaced avatar is purged by Rindle
        once no one else uses it."""
        try:
            member, form, htmx = await _member_form(request)
        except NotFound as exc:
            return _not_found(templates, request, exc)
        asset_id = str(form.get("asset_id") or "").strip()
        try:
            if not asset_id:
                raise ValidationError("Upload a photo first.", code="missing_field")
            await _upload_for(asset_id, AvatarProfile, "an avatar")
            await media.attach(asset_id, member.owner, "avatar")
        except RindleError as exc:
            message = f"Could not set the avatar: {exc.message}"
            return (_refused(htmx, message, exc.status_code)
                    or await member_page(request, error=message, status_code=exc.status_code))
        if not htmx:
            return RedirectResponse(f"/members/{member.id}", status_code=303)
        return templates.TemplateResponse(request, "cohort/_member_avatar.html", {
            "member": member, "avatar": await _avatar_view(request, member)})

    async def add_lesson(request: Request) -> Response:
        """A lesson form: a title, the kind (video or audio) and the uploaded asset."""
        try:
            member, form, htmx = await _member_form(request)
        except NotFound as exc:
            return _not_found(templates, request, exc)
        title = str(form.get("title") or "").strip()
        kind = str(form.get("kind") or "")
        asset_id = str(form.get("asset_id") or "").strip()
        problem = None
        if kind not in LESSON_PROFILES:
            problem = "A lesson is a video or an audio recording."
        elif not title or len(title) > 200:
            problem = "Give the lesson a title (at most 200 characters)."
        elif not asset_id:
            problem = "Upload the recording first."
        else:
            try:
                await _upload_for(asset_id, LESSON_PROFILES[kind], f"a {kind} lesson")
            except RindleError as exc:
                problem = f"Could not attach: {exc.message}"
        if problem is not None:
            return (_refused(htmx, problem, 422)
                    or await member_page(request, error=problem, status_code=422))
        lesson = _insert_lesson(member.id, title, kind, asset_id)
        try:
            await media.attach(asset_id, member.owner, lesson.slot)
        except RindleError as exc:
            with _db() as conn:
                conn.execute("DELETE FROM lessons WHERE id = ?", (lesson.id,))
            message = f"Could not attach: {exc.message}"
            return (_refused(htmx, message, exc.status_code)
                    or await member_page(request, error=message, status_code=exc.status_code))
        if not htmx:
            return RedirectResponse(f"/members/{member.id}#lesson-{lesson.id}", status_code=303)
        return templates.TemplateResponse(request, "cohort/_lesson.html", {
            "lesson": lesson, "lesson_views": await lesson_views(request, [lesson])})

    async def write_post(request: Request) -> Response:
        """The post form: a title, and the asset the uploader made. htmx gets the new
        post's block; a plain form submit is sent back to the member's page."""
        try:
            member, form, htmx = await _member_form(request)
        except NotFound as exc:
            return _not_found(templates, request, exc)
        title = str(form.get("title") or "").strip()
        asset_id = str(form.get("asset_id") or "").strip()
        problem = None
        if not title:
            problem = "Give the post a title."
        elif len(title) > 200:
            problem = "A title is at most 200 characters."
        elif not asset_id:
            problem = "Upload an image first."
        if problem is None:
            try:
                await _upload_for(asset_id, PostImage, "a post")
            except RindleError as exc:
                problem = f"Could not attach: {exc.message}"
        if problem is not None:
            if htmx:
                return HTMLResponse(f'<p class="error" role="alert">{html.escape(problem)}</p>',
                                    status_code=422)
            return await member_page(request, error=problem, status_code=422)
        with _db() as conn:
            cur = conn.execute("INSERT INTO posts (member_id, title, asset_id, created_at) "
                               "VALUES (?, ?, ?, ?)", (member.id, title, asset_id, time.time()))
            post_id = int(cur.lastrowid or 0)
        try:
            await media.attach(asset_id, member.owner, post_slot(post_id))
        except RindleError as exc:
            with _db() as conn:
                conn.execute("DELETE FROM posts WHERE id = ?", (post_id,))
            message = f"Could not attach: {exc.message}"
            if htmx:
                return HTMLResponse(f'<p class="error" role="alert">{html.escape(message)}</p>',
                                    status_code=exc.status_code)
            return await member_page(request, error=message, status_code=exc.status_code)
        if not htmx:
            return RedirectResponse(f"/members/{member.id}#post-{post_id}", status_code=303)
        post = get_post(member.id, post_id)
        return templates.TemplateResponse(request, "cohort/_post.html", {
            "post": post, "member": member,
            "pictures": await post_pictures(request, [post]),
        })

    async def detach_post_image(request: Request) -> Response:
        """Empty the post's slot: Rindle purges the asset (no one else uses it)."""
        try:
            member = get_member(request.path_params["member_id"])
            post = get_post(member.id, request.path_params["post_id"])
        except NotFound as exc:
            return _not_found(templates, request, exc)
        await media.detach(member.owner, post.slot)
        with _db() as conn:
            conn.execute("UPDATE posts SET asset_id = NULL WHERE id = ?", (post.id,))
        if request.headers.get("hx-request") == "true":
            post.asset_id = None
            return templates.TemplateResponse(request, "cohort/_post.html", {
                "post": post, "member": member, "pictures": {}})
        return RedirectResponse(f"/members/{member.id}#post-{post.id}", status_code=303)

    async def feed(request: Request) -> Response:
        posts = newest_posts()
        by_id = {m.id: m for m in list_members()}
        authors = [by_id[i] for i in dict.fromkeys(p.member_id for p in posts) if i in by_id]
        return templates.TemplateResponse(request, "cohort/feed.html", {
            "posts": posts, "members": by_id,
            "avatars": await avatar_views(request, authors),
            "pictures": await post_pictures(request, posts),
        })

    async def delete_member(request: Request) -> Response:
        """GET: what erasing the member would do. POST with ``confirm``: do it."""
        try:
            member = get_member(request.path_params["member_id"])
        except NotFound as exc:
            return _not_found(templates, request, exc)
        error = None
        if request.method == "POST":
            form = await request.form()
            if form.get("confirm") == "yes":
                plan = await media.erase_owner(member.owner)
                with _db() as conn:
                    conn.execute("DELETE FROM posts WHERE member_id = ?", (member.id,))
                    conn.execute("DELETE FROM lessons WHERE member_id = ?", (member.id,))
                    conn.execute("DELETE FROM members WHERE id = ?", (member.id,))
                log.info("erased member %s: %s", member.id, plan.to_dict())
                return RedirectResponse(f"/members?erased={member.name}", status_code=303)
            error = "Tick the box to confirm: erasing cannot be undone."
        plan = await media.preview_owner_erasure(member.owner)
        titles = {p.slot: p.title for p in posts_of(member.id)}
        titles |= {lesson.slot: f"{lesson.kind.capitalize()} lesson: {lesson.title}"
                   for lesson in lessons_of(member.id)}
        return templates.TemplateResponse(request, "cohort/delete.html", {
            "member": member, "plan": plan, "titles": titles, "error": error,
        }, status_code=422 if error else 200)

    return [
        Route("/members", members_page, methods=["GET"]),
        Route("/members/new", join_page, methods=["GET", "POST"]),
        Route("/members/{member_id}", member_page, methods=["GET"]),
        Route("/members/{member_id}/avatar", set_avatar, methods=["POST"]),
        Route("/members/{member_id}/lessons", add_lesson, methods=["POST"]),
        Route("/members/{member_id}/posts", write_post, methods=["POST"]),
        Route("/members/{member_id}/posts/{post_id}/detach", detach_post_image,
              methods=["POST"]),
        Route("/members/{member_id}/delete", delete_member, methods=["GET", "POST"]),
        Route("/feed", feed, methods=["GET"]),
    ]
