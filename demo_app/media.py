"""The demo's Rindle runtime, configured from the environment with embedded defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rindle import (
    AllowAll,
    AudioWeb,
    LocalStorage,
    MuxDirectUploadWeb,
    MuxWeb,
    Profile,
    Rindle,
    Variant,
    Web,
)
from rindle.storage.base import Storage

from .art import make_mark
from .social import ShareCard
from .streaming import streaming

VAR = Path(os.environ.get("RINDLE_DEMO_VAR", "var")).resolve()
VAR.mkdir(parents=True, exist_ok=True)


def _secret() -> str:
    # A stable dev key so signed URLs survive a restart; production passes its own.
    env = os.environ.get("RINDLE_SECRET_KEY")
    if env:
        return env
    path = VAR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _storages() -> dict[str, Storage]:
    """Local disk by default; S3 (or MinIO, R2) when RINDLE_S3_ENDPOINT_URL and
    RINDLE_S3_BUCKET are set, with credentials from the usual AWS variables."""
    endpoint, bucket = os.environ.get("RINDLE_S3_ENDPOINT_URL"), os.environ.get("RINDLE_S3_BUCKET")
    if endpoint and bucket:
        from rindle.storage.s3 import S3Storage

        return {"media": S3Storage(bucket=bucket, endpoint_url=endpoint,
                                   region=os.environ.get("AWS_REGION", "us-east-1"),
                                   addressing_style="path")}
    return {"media": LocalStorage(root=os.environ.get("RINDLE_UPLOAD_ROOT",
                                                      str(VAR / "uploads")))}


STORAGES = _storages()


class AvatarProfile(Profile):
    name = "avatar"
    storage = "media"
    allow_mime = ["image/png", "image/jpeg", "image/webp", "image/heic"]
    max_bytes = 8 * 1024 * 1024
    variants = {
        "thumb": Variant(mode="fit", width=128, height=128),
        "large": Variant(mode="fit", width=1024, height=1024),
    }


class PostImage(Profile):
    """A post's hero image: a 600x400 WebP card for the feed and a hero up to 1600 wide."""

    name = "post_image"
    storage = "media"
    allow_mime = ["image/jpeg", "image/png", "image/webp"]
    max_bytes = 40 * 1024 * 1024
    # Big heroes go to S3 as multipart (parts straight to the bucket); tus elsewhere.
    large_uploads = ("multipart", "tus")
    variants = {
        "card": Variant(mode="fill", width=600, height=400, format="webp"),
        "hero": Variant(mode="fit", width=1600, height=1600),
        # Built by Cohort's own processor (demo_app/social.py), with the brand mark.
        "share": Variant(kind="share_card", width=1200, height=630, quality=82),
    }


class LessonProfile(Web):
    """Lesson videos: MP4, MOV or WebM up to 2 GB, as 720p and 480p MP4s with a poster."""

    name = "lesson"
    storage = "media"
    max_bytes = 2 * 1024 * 1024 * 1024
    with_480p = True
    # A lesson upload survives a dropped connection or a reloaded tab.
    large_uploads = ("tus", "multipart")


class StreamProfile(MuxWeb):
    """Streamed lessons: the 720p MP4 and poster as with lessons, and the 720p pushed to Mux
    for HLS; the MP4 stays the fallback."""

    name = "stream"
    storage = "media"
    max_bytes = 2 * 1024 * 1024 * 1024


class ClipProfile(MuxDirectUploadWeb):
    """Clips the browser uploads straight to Mux: Rindle keeps the rows and the playback."""

    name = "clip"
    storage = "media"
    max_duration_seconds = 600


class EpisodeProfile(AudioWeb):
    """Podcast episodes: MP3, M4A or WAV, as a 128 kbit/s M4A with a waveform."""

    name = "episode"
    storage = "media"


#: This site's address, for the URLs Mux fetches (server push) and the simulator's own.
PUBLIC_URL = os.environ.get(
    "RINDLE_PUBLIC_URL",
    f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
MUX, MUX_SIMULATOR = streaming(VAR, PUBLIC_URL)

#: The brand file the share cards need: made at first start, an operator's file after that.
BRAND_MARK = VAR / "brand" / "mark.png"
if not BRAND_MARK.exists():
    make_mark(BRAND_MARK)

media = Rindle(
    database_url=os.environ.get("RINDLE_DATABASE_URL", f"sqlite:///{VAR / 'demo.db'}"),
    storages=STORAGES,
    profiles=[AvatarProfile, PostImage, LessonProfile, EpisodeProfile, StreamProfile,
              ClipProfile],
    streaming={"mux": MUX},
    public_url=PUBLIC_URL,
    secret_keys=[_secret()],
    queue=os.environ.get("RINDLE_QUEUE", "inline"),
    broadcast_url=os.environ.get("RINDLE_BROADCAST_URL", "memory://"),
    # The demo lets anyone do anything so it can be driven with curl; a real app decides here.
    authorizer=AllowAll(),
    app_path="demo_app.media:media",
    processors={"share_card": ShareCard(BRAND_MARK)},
    # Above this size browsers switch to a resumable flow: tus (Local and S3), or S3
    # multipart when RINDLE_LARGE_UPLOADS puts it first ("multipart,tus").
    multipart_threshold=int(os.environ.get("RINDLE_MULTIPART_THRESHOLD", str(16 * 1024 * 1024))),
    large_uploads=tuple(os.environ.get("RINDLE_LARGE_UPLOADS", "tus,multipart").split(",")),
)
