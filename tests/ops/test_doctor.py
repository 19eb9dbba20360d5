"""The doctor against real services: SQLite and PostgreSQL, local disk and moto's S3, the
real Redis and rq, and this machine's libvips. Each broken setup is really broken, so the
report is checked for what an operator would read, not just that a check ran."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rindle import AllowAll, Delivery, DenyAll, LocalStorage, Profile, Rindle, Variant
from rindle.errors import ConfigurationError
from rindle.model import migrate
from rindle.ops.doctor import Check, DoctorReport, run_doctor
from rindle.processing.image import capabilities
from rindle.processing.queue import RQQueue
from rindle.storage.base import Capability
from tests.conftest import REDIS_URL, SECRET, ImageProfile, MakeMedia
from tests.support.gcs import (  # noqa: F401
    GCSBucket,
    gcs_emulator_fixture,
    gcs_fixture,
    service_account_key,
)
from tests.support.images import png
from tests.support.s3 import S3Bucket, moto_server_fixture, s3_fixture  # noqa: F401

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ORDER = ["doctor.database", "doctor.migrations", "doctor.storage.local", "doctor.tus.local",
         "doctor.clock", "doctor.delivery",
         "doctor.images", "doctor.processors", "doctor.queue", "doctor.broadcast",
         "doctor.secret_keys", "doctor.authorizer", "doctor.outbox"]


def by_id(report: DoctorReport) -> dict[str, Check]:
    return {c.id: c for c in report.checks}


def statuses(report: DoctorReport) -> dict[str, str]:
    return {c.id: c.status for c in report.checks}


def runtime(tmp_path: Path, database_url: str, **overrides: object) -> Rindle:
    """A runtime outside the fixtures, for databases the fixtures don't make."""
    options: dict[str, object] = dict(
        database_url=database_url,
        storages={"local": LocalStorage(root=tmp_path / "files")},
        profiles=[ImageProfile], secret_keys=[SECRET], authorizer=AllowAll())
    options.update(overrides)
    return Rindle(**options)  # type: ignore[arg-type]


@pytest.fixture
def rq_name() -> Iterator[str]:
    """A queue name of this test's own, so workers registered elsewhere don't count."""
    from redis import Redis

    name = f"rindle-doctor-{uuid.uuid4().hex[:8]}"
    yield name
    conn = Redis.from_url(REDIS_URL)
    try:
        conn.delete(f"rq:queue:{name}", f"rq:workers:{name}")
    finally:
        conn.close()


# --- a healthy runtime ------------------------------------------------------------------------


async def test_a_healthy_runtime_passes_and_is_left_as_it_was(make_media: MakeMedia,
                                                              database_url: str,
                                                              tmp_path: Path) -> None:
    media = make_media()
    report = await run_doctor(media)

    assert [c.id for c in report.checks] == ORDER
    assert statuses(report) == {**dict.fromkeys(ORDER, "ok"), "doctor.authorizer": "warn"}
    assert report.ok and report.errors == []
    checks = by_id(report)
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert checks["doctor.database"].summary == f"connected to {database_url} ({dialect})"
    assert migrate.head_revision() in checks["doctor.migrations"].summary
    assert checks["doctor.storage.local"].summary.startswith("LocalStorage(")
    assert "wrote, read back and deleted" in checks["doctor.storage.local"].summary
    assert checks["doctor.delivery"].summary == "1 private profile with signed URLs"
    assert checks["doctor.images"].summary == "no image variants configured"
    assert checks["doctor.processors"].summary == "no variants configured"
    assert checks["doctor.queue"].summary == "in-process queue: jobs run inside this process"
    assert checks["doctor.secret_keys"].summary == "1 secret key, each 32+ characters"
    assert "AllowAll lets anyone" in checks["doctor.authorizer"].summary
    assert checks["doctor.outbox"].summary.startswith("no failed or late jobs")
    assert all(c.fix is None for c in report.checks if c.status == "ok")
    assert all(c.seconds >= 0 for c in report.checks)

    body = report.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert (body["ok"], body["total"], body["errors"], body["warnings"]) == (True, 13, 0, 1)
    assert body["checks"][0]["id"] == "doctor.database"

    # Not connected before, not connected after: the storage was opened and closed again,
    # and the probe object is gone.
    assert not media.store.connected
    storage = media.storages["local"]
    with pytest.raises(ConfigurationError) as closed:
        await storage.signed_url("a/b.png", expires_in=60)
    assert closed.value.code == "storage_not_open"
    assert [p.name for p in (tmp_path / "files").iterdir()] == [".rindle-tmp"]


@SQLITE
async def test_the_doctor_leaves_a_connected_runtime_working(make_media: MakeMedia) -> None:
    media = make_media()
    async with media.connected():
        report = await run_doctor(media)
        assert report.ok
        # The runtime's own storage stayed open and its database connected.
        assert media.store.connected
        url = await media.storages["local"].signed_url("a/b.png", expires_in=60)
        assert url.startswith("/rindle/files/")
        result = await media.upload("image", png(8, 8), filename="a.png")
        await media.drain()
        assert (await media.asset(result.asset.id)).state == "available"


# --- database and migrations -----------------------------------------------------------------


async def test_an_unmigrated_sqlite_file_is_a_migrations_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    media = runtime(tmp_path, f"sqlite:///{path}", app_path="myapp.media:media")
    report = await run_doctor(media)

    checks = by_id(report)
    assert checks["doctor.database"].status == "ok"
    migrations = checks["doctor.migrations"]
    assert (migrations.status, migrations.summary) == ("error", "Rindle's tables are missing")
    assert migrations.fix == ("run `rindle migrate --app myapp.media:media` or "
                              "`await media.migrate()`")
    assert (checks["doctor.outbox"].status, checks["doctor.outbox"].summary) == (
        "ok", "not checked: the schema is not at head")
    assert not report.ok and report.errors == [migrations]


async def test_a_schema_behind_this_rindle_is_a_migrations_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(migrate.upgrade, url, "0001")  # as an older Rindle left it
    report = await run_doctor(runtime(tmp_path, url))
    check = by_id(report)["doctor.migrations"]
    assert (check.status, check.summary) == (
        "error", f"schema at 0001, this Rindle needs {migrate.head_revision()}")
    await asyncio.to_thread(migrate.upgrade, url)
    assert by_id(await run_doctor(runtime(tmp_path, url)))["doctor.migrations"].status == "ok"


async def test_a_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "media.db"
    report = await run_doctor(runtime(tmp_path, f"sqlite:///{path}"))

    database = by_id(report)["doctor.database"]
    assert database.status == "error"
    assert database.summary == f"the SQLite file {path} does not exist"
    assert database.fix is not None and "rindle migrate" in database.fix
    assert by_id(report)["doctor.migrations"].summary == "not checked: the database is unreachable"
    assert not path.exists() and not path.parent.exists()


async def test_a_revision_from_a_newer_rindle_is_an_error(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    with conn:
        conn.execute(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999_future'")
    conn.close()
    report = await run_doctor(runtime(tmp_path, sqlite_url))

    migrations = by_id(report)["doctor.migrations"]
    assert migrations.status == "error"
    assert "'9999_future'" in migrations.summary
    assert "does not know (newer Rindle?)" in migrations.summary


async def test_an_unreachable_postgres_is_reported_without_its_password(
        tmp_path: Path) -> None:
    url = "postgresql://rindle:hunter2-secret@127.0.0.1:1/rindle"
    report = await run_doctor(runtime(tmp_path, url))  # must not raise

    checks = by_id(report)
    database = checks["doctor.database"]
    assert database.status == "error"
    assert database.summary.startswith(
        "cannot connect to postgresql://rindle:***@127.0.0.1:1/rindle: ")
    assert database.fix == "check database_url; is the server running?"
    assert (checks["doctor.migrations"].status, checks["doctor.migrations"].summary) == (
        "error", "not checked: the database is unreachable")
    assert (checks["doctor.outbox"].status, checks["doctor.outbox"].summary) == (
        "ok", "not checked: the database is unreachable")
    # Everything that doesn't need the database was still checked.
    assert checks["doctor.storage.local"].status == "ok"
    assert [c.id for c in report.checks] == ORDER
    assert "hunter2" not in json.dumps(report.to_dict())


# --- storage and delivery --------------------------------------------------------------------


@SQLITE
async def test_a_storage_root_that_cannot_be_created_is_a_storage_error(
        make_media: MakeMedia, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    media = make_media(storages={"local": LocalStorage(root=blocker / "files")})
    report = await run_doctor(media)

    storage = by_id(report)["doctor.storage.local"]
    assert storage.status == "error"
    assert storage.summary.startswith("NotADirectoryError: ")
    assert storage.fix == ("check the bucket/root exists and the credentials allow "
                           "put/get/delete")
    assert report.errors == [storage]


class _S3Profile(Profile):
    name = "s3photo"
    storage = "s3"
    allow_mime = ["image/png"]


@SQLITE
async def test_s3_storages_are_probed_and_a_missing_bucket_is_an_error(
        make_media: MakeMedia, s3: S3Bucket, tmp_path: Path) -> None:
    missing = S3Bucket(endpoint_url=s3.endpoint_url, name=f"{s3.name}-missing",
                       client=s3.client)
    media = make_media(storages={"local": LocalStorage(root=tmp_path / "files"),
                                 "s3": s3.storage(), "gone": missing.storage()},
                       profiles=[ImageProfile, _S3Profile])
    report = await run_doctor(media)

    checks = by_id(report)
    assert checks["doctor.storage.s3"].status == "ok"
    assert checks["doctor.storage.s3"].summary.startswith(f"S3Storage(bucket={s3.name!r}")
    # Resumable uploads to S3: a probe multipart upload, appended twice and aborted.
    tus = checks["doctor.tus.s3"]
    assert tus.status == "ok" and "appended twice" in tus.summary, tus.summary
    assert s3.keys() == []  # the probes were deleted
    assert s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", []) == []
    assert "doctor.tus.gone" not in checks  # no profile takes uploads there
    gone = checks["doctor.storage.gone"]
    assert gone.status == "error"
    assert gone.summary == "StorageError: S3 PutObject failed: the bucket does not exist"
    assert "testing" not in json.dumps(report.to_dict())  # the fake credentials


class _NoSignedUrls(LocalStorage):
    """A real local storage that declares it cannot sign GET URLs."""

    capabilities = LocalStorage.capabilities - {Capability.SIGNED_URL}


class _PublicProfile(Profile):
    name = "public"
    storage = "local"
    allow_mime = ["image/png"]
    delivery = Delivery(public=True)


class _PrivateProfile(Profile):
    name = "private"
    storage = "unsigned"
    allow_mime = ["image/png"]


@SQLITE
async def test_delivery_needs_signed_urls_for_private_and_public_urls_for_public(
        make_media: MakeMedia, tmp_path: Path) -> None:
    media = make_media(storages={"local": LocalStorage(root=tmp_path / "files"),
                                 "unsigned": _NoSignedUrls(root=tmp_path / "unsigned")},
                       profiles=[_PublicProfile, _PrivateProfile])
    delivery = by_id(await run_doctor(media))["doctor.delivery"]

    assert delivery.status == "error"
    assert ("profile 'private' is private but its storage 'unsigned' cannot sign URLs"
            in delivery.summary)
    assert ("profile 'public' is public but its storage 'local' has no public URL "
            "(DeliveryUnsupported)" in delivery.summary)
    assert delivery.fix is not None and "public_base_url" in delivery.fix

    fixed = make_media(storages={"local": LocalStorage(root=tmp_path / "files",
                                                       public_base_url="https://cdn.test")},
                       profiles=[_PublicProfile])
    ok = by_id(await run_doctor(fixed))["doctor.delivery"]
    assert (ok.status, ok.summary) == ("ok", "1 public profile with public URLs")


# --- images ----------------------------------------------------------------------------------


class _AvifProfile(Profile):
    name = "avif"
    storage = "local"
    allow_mime = ["image/png", "image/heic"]
    variants = {"thumb": Variant(width=64, height=64, format="avif")}


@SQLITE
async def test_image_variants_are_checked_against_this_libvips(make_media: MakeMedia) -> None:
    caps = capabilities()
    images = by_id(await run_doctor(make_media(profiles=[_AvifProfile])))["doctor.images"]

    if not caps["available"]:
        assert images.status == "error" and "libvips is missing" in images.summary
        assert images.fix is not None and "libvips42" in images.fix
    elif not caps["avif_encode"]:
        assert images.status == "error"
        assert "variant avif.thumb is AVIF but this libvips cannot encode AVIF" in images.summary
    elif not caps["heic_decode"]:
        assert images.status == "warn" and "accept HEIC" in images.summary
    else:
        assert images.status == "ok"
        assert images.summary.startswith(f"libvips {caps['libvips_version']} builds "
                                         "1 image variant")
        assert "avif" in images.summary and "HEIC decode yes" in images.summary


# --- queue and broadcast ---------------------------------------------------------------------


@SQLITE
async def test_rq_with_a_memory_broadcast_is_an_error(make_media: MakeMedia,
                                                      rq_name: str) -> None:
    media = make_media(queue=RQQueue(REDIS_URL, name=rq_name))
    report = await run_doctor(media)

    checks = by_id(report)
    broadcast = checks["doctor.broadcast"]
    assert (broadcast.status, broadcast.summary) == (
        "error", "workers run in other processes but broadcast_url is memory://: their live "
                 "events never reach the web process")
    assert broadcast.fix == "set broadcast_url to the same redis:// URL"
    # Redis answers, but nobody works this queue yet.
    queue = checks["doctor.queue"]
    assert queue.status == "warn"
    assert queue.summary == (f"rq queue {rq_name!r} on Redis at {REDIS_URL}: 0 jobs waiting, "
                             "but no rq worker listens on it")
    assert not report.ok


@SQLITE
async def test_rq_and_redis_broadcast_pass_with_a_worker_listening(make_media: MakeMedia,
                                                                   rq_name: str) -> None:
    from redis import Redis
    from rq import Queue, Worker

    conn = Redis.from_url(REDIS_URL)
    worker = Worker([Queue(rq_name, connection=conn)], connection=conn)
    worker.register_birth()
    try:
        media = make_media(queue=RQQueue(REDIS_URL, name=rq_name), broadcast_url=REDIS_URL)
        report = await run_doctor(media)
    finally:
        worker.register_death()
        conn.close()

    checks = by_id(report)
    assert checks["doctor.queue"].status == "ok"
    assert checks["doctor.queue"].summary.endswith("0 jobs waiting, 1 worker listening")
    assert (checks["doctor.broadcast"].status, checks["doctor.broadcast"].summary) == (
        "ok", f"live events go through Redis at {REDIS_URL}")
    assert report.ok


@SQLITE
async def test_an_unreachable_redis_is_reported_without_its_password(
        make_media: MakeMedia) -> None:
    url = "redis://:redis-pass-42@127.0.0.1:1/0"
    media = make_media(queue=url, broadcast_url=url)
    report = await run_doctor(media)

    checks = by_id(report)
    for check_id in ("doctor.queue", "doctor.broadcast"):
        assert checks[check_id].status == "error"
        assert checks[check_id].summary.startswith(
            "cannot reach Redis at redis://:***@127.0.0.1:1/0: ")
        assert checks[check_id].seconds < 10
    assert "redis-pass-42" not in json.dumps(report.to_dict())


# --- security ---------------------------------------------------------------------------------


@SQLITE
async def test_a_short_secret_key_is_a_warning_and_never_shown(make_media: MakeMedia) -> None:
    short = "short-but-signable-24chr"
    media = make_media(secret_keys=[SECRET, short])
    report = await run_doctor(media)

    keys = by_id(report)["doctor.secret_keys"]
    # Rindle refuses keys under 16 characters; 16 to 31 work but are weak.
    assert (keys.status, keys.component) == ("warn", "security")
    assert keys.summary == f"secret key #2 is only {len(short)} characters"
    assert keys.fix is not None and "secrets.token_urlsafe(32)" in keys.fix
    dumped = json.dumps(report.to_dict())
    assert short not in dumped and SECRET not in dumped


@SQLITE
async def test_deny_all_is_a_warning_that_does_not_fail_the_report(
        make_media: MakeMedia) -> None:
    report = await run_doctor(make_media(authorizer=DenyAll()))

    check = by_id(report)["doctor.authorizer"]
    assert (check.status, check.summary, check.fix) == (
        "warn", "every delivery and upload is refused (DenyAll)",
        "pass authorizer=... to Rindle")
    assert report.ok and report.warnings == [check]


class _OwnAuthorizer:
    def authorize(self, request: object) -> bool:
        return True


@SQLITE
async def test_an_authorizer_of_the_adopter_is_ok(make_media: MakeMedia) -> None:
    check = by_id(await run_doctor(make_media(authorizer=_OwnAuthorizer())))["doctor.authorizer"]
    assert (check.status, check.summary, check.fix) == (
        "ok", "authorizer _OwnAuthorizer", None)


# --- outbox -----------------------------------------------------------------------------------


async def test_jobs_that_failed_for_good_are_a_warning(make_media: MakeMedia) -> None:
    media = make_media()
    async with media.connected():
        for _ in range(2):
            entry = await media.repo.add_outbox("process_variants",
                                                {"asset_id": "gone", "variants": ["thumb"]})
            await media.repo.mark_outbox_failed(entry.id, "boom", final=True)
        await media.repo.add_outbox("promote_asset", {"asset_id": "later"})
    report = await run_doctor(media)

    outbox = by_id(report)["doctor.outbox"]
    assert (outbox.status, outbox.summary) == ("warn", "2 jobs failed for good")
    assert outbox.fix == "inspect them (rindle status) and requeue the variants"
    assert report.ok


@SQLITE
async def test_a_variant_kind_without_a_processor_is_an_error(make_media: MakeMedia) -> None:
    from rindle import Profile, Variant

    class Clips(Profile):
        name = "clips"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"poster": Variant(width=10, kind="imagee")}  # a typo of "image"

    report = await run_doctor(make_media(profiles=[Clips]))
    check = by_id(report)["doctor.processors"]
    assert check.status == "error" and check.component == "processing"
    assert check.summary == "no processor builds 'imagee' variants (clips.poster)"
    assert not report.ok


async def test_late_jobs_and_the_clock_are_checked(make_media: MakeMedia) -> None:
    from datetime import UTC, datetime, timedelta

    media = make_media()
    async with media.connected(start_queue=False):
        late = await media.repo.add_outbox("purge_asset", {"asset_id": "gone"})
        await media.store.execute("UPDATE rindle_outbox SET available_at = :t WHERE id = :id",
                                  {"t": datetime.now(UTC) - timedelta(seconds=900),
                                   "id": late.id})
    report = await run_doctor(media)
    checks = by_id(report)
    outbox = checks["doctor.outbox"]
    assert outbox.status == "warn" and "1 due job waiting" in outbox.summary
    assert "rindle sweep" in str(outbox.fix)
    clock = checks["doctor.clock"]
    assert clock.status == "ok" and "within 2 s" in clock.summary


@SQLITE
async def test_gcs_credentials_and_bucket_are_checked(make_media: MakeMedia, gcs: GCSBucket,
                                                      tmp_path: Path) -> None:
    """The emulator takes any token, so refused credentials are a service-account key whose
    token endpoint answers ``invalid_grant``, as Google's does for a revoked key; a missing
    bucket is the bucket's own error. Neither leaks the key."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.conftest import LiveServer

    async def refuse(request: object) -> JSONResponse:
        return JSONResponse({"error": "invalid_grant",
                             "error_description": "Invalid JWT Signature."}, status_code=400)

    missing = GCSBucket(endpoint_url=gcs.endpoint_url, name=f"{gcs.name}-missing",
                        client=gcs.client, data_dir=gcs.data_dir)
    async with LiveServer(Starlette(routes=[Route("/token", refuse, methods=["POST"])]),
                          access_log=False) as google:
        revoked_key = {**service_account_key(), "token_uri": f"{google.url}/token"}
        media = make_media(storages={"local": LocalStorage(root=tmp_path / "files"),
                                     "gcs": gcs.storage(), "gone": missing.storage(),
                                     "revoked": gcs.storage(anonymous=False,
                                                            credentials=revoked_key)})
        report = await run_doctor(media)
    checks = by_id(report)
    assert checks["doctor.storage.gcs"].status == "ok", checks["doctor.storage.gcs"].summary
    assert checks["doctor.storage.gone"].status == "error"
    revoked = checks["doctor.storage.revoked"]
    assert revoked.status == "error", revoked
    assert "HTTP 400" in revoked.summary and "credentials" in revoked.summary
    text = json.dumps(report.to_dict())
    assert "PRIVATE KEY" not in text and service_account_key()["private_key"][40:80] not in text
