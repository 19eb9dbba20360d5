"""The video and audio macros, rendered from real asset and variant rows."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from rindle import AudioWeb, AuthRequest, Profile, Rindle, Web
from rindle.web.templating import AssetView
from tests.conftest import MakeMedia


class Lessons(Web):
    name = "lessons"
    storage = "local"
    with_480p = True


class Episodes(AudioWeb):
    name = "episodes"
    storage = "local"
    with_mp3 = True


class NotForAnna:
    """Refuses the actor "anna"; allows everyone else."""

    def authorize(self, request: AuthRequest) -> bool:
        return request.actor != "anna"


def _media(make_media: MakeMedia, **overrides: Any) -> Rindle:
    return make_media(profiles=[Lessons, Episodes], **overrides)


async def _asset(media: Rindle, profile: type[Profile], *, state: str, kind: str,
                 content_type: str, metadata: dict[str, Any] | None = None,
                 ready: dict[str, str] | None = None, duration_ms: int | None = None,
                 size: tuple[int, int] | None = None) -> str:
    """An asset row in ``state`` with its profile's variants planned; those in ``ready``
    (name -> content type) are marked ready with a stored file."""
    asset = await media.repo.insert_asset(
        profile=profile.name, state=state, storage=profile.storage, kind=kind,
        storage_key=f"{profile.name}/original", filename="clip.mov",
        content_type=content_type, metadata=metadata or {}, duration_ms=duration_ms,
        width=size[0] if size else None, height=size[1] if size else None)
    await media.repo.plan_variants(
        asset.id, [(n, v.digest, v.kind) for n, v in profile.variants.items()])
    for name in profile.variants:
        await media.repo.transition_variant(asset.id, name, "planned", "queued")
        await media.repo.transition_variant(asset.id, name, "queued", "processing")
    for name, content_type in (ready or {}).items():
        ext = {"video/mp4": "mp4", "image/jpeg": "jpg", "image/png": "png",
               "audio/mp4": "m4a", "audio/mpeg": "mp3", "application/json": "json"}[content_type]
        await media.repo.transition_variant(
            asset.id, name, "processing", "ready", content_type=content_type,
            storage_key=f"{profile.name}/{asset.id}/variants/{name}.{ext}",
            width=1280 if name == "web_720p" else None,
            height=720 if name == "web_720p" else None)
    return asset.id


def _sources(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<source src="([^"]+)" type="([^"]+)">', html)


# ffprobe's facts of a portrait phone clip, as promotion stores them: the size as displayed.
PHONE = {"width": 1080, "height": 1920, "rotation": 90, "duration": 12.5, "has_video": True}


async def test_sources_only_for_ready_renditions_then_the_original(
        make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Lessons, state="processing", kind="video",
                           content_type="video/quicktime", metadata=PHONE,
                           ready={"web_720p": "video/mp4", "poster": "image/jpeg"})
        html = await media.html.video_tag(Lessons, aid, variants=["web_720p", "web_480p"],
                                          poster="poster", muted=True)
    sources = _sources(html)
    # web_480p is still building: no source for it; the original comes last.
    assert [t for _, t in sources] == ["video/mp4", "video/quicktime"]
    assert all(url.startswith("/rindle/files/") for url, _ in sources)
    poster = re.search(r'poster="([^"]+)"', html)
    assert poster and poster.group(1).startswith("/rindle/files/")
    assert poster.group(1) not in {url for url, _ in sources}
    assert 'width="1080" height="1920"' in html  # from the analysis
    assert " controls" in html and " muted" in html
    # Still building: a live badge with the progress, one event stream for both.
    assert html.startswith('<span class="rindle-live"') and html.count("sse-connect") == 1
    assert "processing_progress" in html and 'data-state="processing"' in html
    assert "kind=video&amp;v=web_720p&amp;v=web_480p&amp;poster=poster" in html


async def test_the_original_stands_in_while_renditions_build(make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Lessons, state="processing", kind="video",
                           content_type="video/mp4", metadata={"width": 640, "height": 360})
        html = await media.html.video_tag(Lessons, aid, variants=["web_720p"], poster="poster")
        without = await media.html.video_tag(Lessons, aid, variants=["web_720p"],
                                             original=False)
    assert [t for _, t in _sources(html)] == ["video/mp4"]
    assert _sources(html)[0][0].startswith("/rindle/files/")
    assert "poster=" not in html.split("hx-get")[0]  # the poster is not built yet
    assert 'width="640" height="360"' in html
    assert _sources(without) == []


async def test_ready_video_is_not_live(make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Lessons, state="ready", kind="video",
                           content_type="video/mp4",
                           ready={"web_720p": "video/mp4", "web_480p": "video/mp4",
                                  "poster": "image/jpeg"})
        html = await media.html.video_tag(Lessons, aid, variants=["web_720p", "web_480p"],
                                          poster="poster")
    assert html.startswith("<video") and "sse-connect" not in html and "rindle-badge" not in html
    assert len(_sources(html)) == 3


async def test_a_refused_viewer_gets_no_url(make_media: MakeMedia) -> None:
    media = _media(make_media, authorizer=NotForAnna())
    async with media.connected():
        aid = await _asset(media, Lessons, state="processing", kind="video",
                           content_type="video/mp4",
                           ready={"web_720p": "video/mp4", "poster": "image/jpeg"})
        refused = await media.html.video_tag(Lessons, aid, variants=["web_720p"],
                                             poster="poster", actor="anna")
        allowed = await media.html.video_tag(Lessons, aid, variants=["web_720p"],
                                             poster="poster", actor="ben")
        audio = await media.html.audio_tag(Lessons, aid, variants=["web_720p"], actor="anna")
    for html in (refused, audio):
        assert "<source" not in html and "/files/" not in html and "token=" not in html
        assert "poster=" not in html and "sse-connect" not in html
    assert len(_sources(allowed)) == 2 and "poster=" in allowed


async def test_audio_with_its_waveform(make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Episodes, state="processing", kind="audio",
                           content_type="audio/wav", duration_ms=61_000,
                           ready={"m4a_128k": "audio/mp4", "waveform": "image/png"})
        html = await media.html.audio_tag(Episodes, aid, variants=["m4a_128k", "mp3_128k"],
                                          waveform="waveform")
    assert "<audio" in html and "<video" not in html
    assert [t for _, t in _sources(html)] == ["audio/mp4", "audio/wav"]
    assert re.search(r'<img class="rindle-audio__waveform" src="/rindle/files/[^"]+"', html)
    assert 'data-duration-ms="61000"' in html and "processing_progress" in html
    assert "data-rindle-waveform" not in html


async def test_the_built_in_waveform_is_a_url_for_the_player(make_media: MakeMedia) -> None:
    """The ``waveform`` recipe writes JSON peaks: the <audio> carries its URL for a player
    script, and no <img> points at JSON."""
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Episodes, state="ready", kind="audio",
                           content_type="audio/wav", duration_ms=61_000,
                           ready={"m4a_128k": "audio/mp4", "waveform": "application/json"})
        html = await media.html.audio_tag(Episodes, aid, variants=["m4a_128k"],
                                          waveform="waveform")
    assert re.search(r'<audio [^>]*data-rindle-waveform="/rindle/files/[^"]+"', html)
    assert "<img" not in html


async def test_the_live_element_refetches_itself(make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Lessons, state="processing", kind="video",
                           content_type="video/mp4")
        html = await media.html.video_tag(Lessons, aid, variants=["web_720p"], poster="poster")
        fragment = re.search(r'hx-get="([^"]+)"', html)
        assert fragment is not None
        await media.repo.transition_variant(
            aid, "web_720p", "processing", "ready", content_type="video/mp4",
            storage_key=f"lessons/{aid}/variants/web_720p.mp4")
        app = Starlette(routes=[Mount("/rindle", app=media.router)])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.get(fragment.group(1).replace("&amp;", "&"))
    assert r.status_code == 200
    assert [t for _, t in _sources(r.text)] == ["video/mp4", "video/mp4"]
    assert r.text.count("http://t/rindle/files/") == 2  # signed for this request's host


async def test_view_sizes_and_duration(make_media: MakeMedia) -> None:
    media = _media(make_media)
    async with media.connected():
        aid = await _asset(media, Lessons, state="processing", kind="video",
                           content_type="video/mp4", duration_ms=12_500, size=(1280, 720),
                           metadata={"width": 640, "height": 360})
        view: AssetView = await media.html.view(aid)
    assert (view.width, view.height, view.duration_ms) == (1280, 720, 12_500)  # the row wins
