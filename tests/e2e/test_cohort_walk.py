"""Every Cohort flow in one real browser, on S3 (moto) with the demo's own pages: join, an
avatar by presigned PUT, a post with a 40 MB hero image by S3 multipart, a video lesson by
tus that survives the network dropping mid-upload and then plays, replacing the avatar (the
old one purged), an operator retrying a failed variant in the console, deleting the account
after its preview, and the console refusing a visitor. Screenshots of each step are kept in
test-artifacts/walk-*.png; the ones the docs embed are cohort-*.png and console-*.png there
(``make screenshots`` copies them to docs/assets/screenshots/)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_browser import ARTIFACTS, HERE, ROOT, _node_finds, node_result
from tests.support.clips import ffmpeg, needs_ffmpeg
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401
from tests.test_demo import _start_demo

pytestmark = [needs_ffmpeg, pytest.mark.skipif(
    shutil.which("node") is None or not Path("/usr/bin/chromium").exists(),
    reason="needs node and Debian's chromium (make test installs both)")]

#: The screenshots docs/ embeds, as the walk names them in test-artifacts/.
DOC_SHOTS = ("cohort-feed.png", "cohort-member.png", "console-overview.png", "console-asset.png")


def _hero(path: Path) -> Path:
    """A 4800x2700 mountain scene stored uncompressed, about 39 MB: under PostImage's
    40 MiB, far over the threshold, so the browser sends it as S3 multipart. (A picture,
    not noise: the feed's screenshot is in the docs.)"""
    import pyvips

    width, height = 4800, 2700
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    t = y / height  # the sky: deep blue at the top to warm orange at the horizon
    sky = t * [250 - 30, 170 - 60, 100 - 150] + [30, 60, 150]
    sun = ((x - width * 0.7) ** 2 + (y - height * 0.45) ** 2) ** 0.5 < height * 0.08
    image = sun.ifthenelse([255, 230, 170], sky)
    far = (x / 410).cos() * 160 + (x / 151).sin() * 40 + height * 0.55
    near = (x / 260).sin() * 200 + (x / 83).sin() * 50 + height * 0.72
    image = (y > far).ifthenelse([120, 100, 150], image)
    image = (y > near).ifthenelse([38, 56, 64], image)
    image.cast("uchar").pngsave(str(path), compression=0)
    return path


def _avatar(path: Path, initial: str, top: tuple[int, int, int],
            bottom: tuple[int, int, int]) -> Path:
    from demo_app.art import avatar_png

    path.write_bytes(avatar_png(initial, top, bottom, size=480))
    return path


def _lesson(path: Path) -> Path:
    """A 6 s 720p clip with grain, about 10 MB: big enough to cut the network mid-upload."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=6,noise=alls=30:allf=t",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-c:v", "libx264",
           "-preset", "ultrafast", "-b:v", "14M", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", "-movflags", "+faststart", str(path))
    return path


def test_a_member_walks_through_every_cohort_flow(tmp_path: Path, s3: S3Bucket) -> None:
    s3.allow_browser_uploads()
    hero, lesson = _hero(tmp_path / "hero.png"), _lesson(tmp_path / "lesson.mp4")
    assert 36 * 1024 * 1024 < hero.stat().st_size < 40 * 1024 * 1024
    assert lesson.stat().st_size > 6 * 1024 * 1024
    avatars = [_avatar(tmp_path / "avatar1.png", "D", (40, 160, 200), (20, 60, 140)),
               _avatar(tmp_path / "avatar2.png", "D", (240, 120, 60), (160, 30, 90))]
    env = {"RINDLE_S3_ENDPOINT_URL": s3.endpoint_url, "RINDLE_S3_BUCKET": s3.name,
           "RINDLE_MULTIPART_THRESHOLD": str(4 * 1024 * 1024)}
    proc, base = _start_demo(tmp_path, env)
    # The operator's brand file goes missing, so the post's share card fails; the walk puts
    # it back (as an operator restoring it would) before retrying the variant.
    mark = tmp_path / "var" / "brand" / "mark.png"
    saved = tmp_path / "mark.saved.png"
    mark.rename(saved)
    if not _node_finds(HERE, "playwright-core"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT,
                       check=True)
    try:
        out = subprocess.run(
            ["node", str(HERE / "cohort_walk.mjs"), base, str(ARTIFACTS), *map(str, avatars),
             str(hero), str(lesson), str(mark), str(saved)],
            capture_output=True, text=True, timeout=420)
    finally:
        proc.terminate()
        proc.wait(10)
    result = node_result(out, tmp_path / "demo.log")

    assert result["welcome"].startswith("Welcome, Dora Explorer!")
    assert result["avatar"]["strategy"] == "presigned_put"
    # The hero went up in parts, with a moving bar; its share card failed for want of the mark.
    assert result["post"]["strategy"] == "multipart"
    assert any(0 < p < 100 for p in result["post"]["progress"])
    assert result["post"]["settled"] == "degraded"
    # The lesson went over tus; after the network came back it asked how far it got and
    # went on from there, with no new upload.
    tus = result["tus"]
    assert result["lesson"]["strategy"] == "tus"
    assert [c["method"] for c in tus].count("POST") == 1, tus
    after = [c for c in tus if c["phase"] == "after"]
    assert "HEAD" in [c["method"] for c in after], tus
    resumed = [c for c in after if c["method"] == "PATCH"]
    assert resumed and int(resumed[0]["offset"]) > 0, tus
    assert any("%" in badge for badge in result["lesson"]["badges"]), result["lesson"]["badges"]
    played = result["lesson"]["video"]
    assert played["readyState"] >= 2 and (played["videoWidth"], played["videoHeight"]) == (1280,
                                                                                           720)
    assert played["poster"]
    # Replaced: a new avatar, the old one purged.
    assert result["avatar"]["replacedBy"] != result["avatar"]["id"]
    assert result["avatar"]["old"] == "gone"
    # The operator saw the failure and retried it: the share card is ready, the post too.
    assert result["console_overview"] == 1
    assert result["share"] == {"before": "failed", "after": "ready"}
    assert result["post"]["afterRetry"] == "ready"
    # The preview listed the avatar, the post and the lesson; all of it was purged.
    assert result["preview"] == {"slots": 3, "purged": 3}
    assert "Dora Explorer was erased" in result["erased"]
    assert set(result["afterErasure"].values()) == {"gone"}
    assert result["phone"] == dict.fromkeys(("members", "join", "member", "feed", "delete"),
                                            True)
    assert result["refused"]["status"] == 403
    assert "Dora" not in result["refused"]["text"]
    # Nothing failed on the way but the walk's own checks that purged assets are gone.
    purged = {result["avatar"]["id"], *result["afterErasure"]}
    assert [f for f in result["failures"]
            if not (f.startswith("404 GET ") and f.rsplit("/", 1)[1] in purged)] == []
    for step in result["steps"]:
        assert (ARTIFACTS / f"walk-{step}.png").stat().st_size > 1000
    assert len(result["steps"]) == 12
    for name in DOC_SHOTS:
        assert (ARTIFACTS / name).stat().st_size > 1000
