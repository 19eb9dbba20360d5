"""``rindle doctor``: inspect a runtime's configuration and the services it needs.

Most of what goes wrong with Rindle in a new deployment is not a bug but a mismatch
between the configuration and the machine: a database nobody migrated, a bucket the
credentials cannot write, rq workers whose live events go to a ``memory://`` broadcast no
other process hears, an rq worker of another database on the same queue (it takes this
runtime's jobs), a libvips without an AV1 encoder for AVIF variants, an ffmpeg without the
H.264 encoder video variants need. Each of those otherwise surfaces much later, as a job
failing for good or a badge that never changes.
The doctor asks each question once, up front, and answers with what it found and what to
do about it.

It must be safe to run anywhere, so:

* it works on a runtime that is not connected, opening what it needs itself (its own
  database pool; each storage opened and closed again) and leaving the runtime as it was;
  on a connected runtime it uses the storages as they are, because closing them would pull
  them from under the application;
* one failing service never stops the others being checked: every check catches its own
  failure, has a time limit, and ``run_doctor`` does not raise because something is down;
* nothing secret reaches the report: database and Redis URLs are redacted, error messages
  are scrubbed of credentials and signed query strings, and secret keys are only measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlparse

from .. import telemetry
from ..delivery.authorizer import AllowAll, DenyAll
from ..errors import ConfigurationError, RindleError
from ..model import identity, migrate
from ..model.db import Store, redact_url, sqlite_target
from ..model.records import utc
from ..model.repo import Repo
from ..processing import ownership
from ..processing.queue import InlineQueue, RQQueue
from ..storage.append import appendable_storage
from ..storage.base import Capability, Storage, StorageContext
from . import PROBE_PREFIX

if TYPE_CHECKING:
    from ..delivery.authorizer import Authorizer
    from ..delivery.signing import Signer
    from ..live.hub import Live
    from ..model.db import Store
    from ..processing.processor import Processor
    from ..types import Catalog

    class Diagnosed(Catalog, Protocol):
        """What the doctor inspects: the configuration and every service behind it."""

        database_url: str
        app_path: str | None
        router_path: str
        authorizer: Authorizer

        @property
        def store(self) -> Store: ...

        @property
        def signer(self) -> Signer: ...

        @property
        def queue(self) -> object: ...

        @property
        def live(self) -> Live: ...

        def processor_for(self, kind: str) -> Processor | None: ...

        def streaming_provider(self, name: str) -> StreamingProvider: ...

        @property
        def public_url(self) -> str | None: ...
    from ..delivery.streaming.base import StreamingProvider
    from ..profile import Profile

__all__ = ["AV_ENCODERS", "Check", "CheckStatus", "DoctorReport", "run_doctor"]

CheckStatus = Literal["ok", "warn", "error"]

#: Longest a single check may take; a blackholed host must not hang the whole report.
CHECK_TIMEOUT = 20.0
#: Connect and read timeout of the Redis pings (queue and broadcast).
REDIS_TIMEOUT = 2.0
#: Shorter than ``CHECK_TIMEOUT``: asyncpg would otherwise wait 60 s for an unreachable host.
DATABASE_TIMEOUT = 10.0
#: Seconds of clock skew against the database worth a warning, and an error.
CLOCK_WARN = 2.0
CLOCK_ERROR = 30.0
#: Seconds without a heartbeat after which an rq worker is taken for dead (rq beats about
#: every job timeout and at least every 60-90 s while idle).
HEARTBEAT_STALE = 180.0
#: Seconds a due outbox job may wait undispatched before the doctor warns.
BACKLOG_WARN = 300.0
#: Below this, a key is guessable enough to forge delivery and upload tokens offline.
MIN_SECRET_KEY_LENGTH = 32

_DB_FIX = "check database_url; is the server running?"
_STORAGE_FIX = "check the bucket/root exists and the credentials allow put/get/delete"
_LIBVIPS_FIX = ("install libvips (Debian: apt install libvips42) — not pyvips-binary, "
                "it cannot decode HEIC")
_FFMPEG_FIX = "install ffmpeg, which brings ffprobe (Debian: apt install ffmpeg)"
_STREAMING_FIX = ("set MUX_TOKEN_ID, MUX_TOKEN_SECRET, MUX_WEBHOOK_SECRETS, MUX_SIGNING_KEY_ID "
                  "and MUX_SIGNING_PRIVATE_KEY (or pass Rindle(streaming={'mux': Mux(...)}))")
#: How long ``ffmpeg -version`` or ``-encoders`` may take.
FFMPEG_TIMEOUT = 10.0
#: The ffmpeg encoders each built-in video/audio recipe needs (by ``Variant.format``).
AV_ENCODERS: Mapping[str, tuple[str, ...]] = {
    "web_720p": ("libx264", "aac"),
    "web_480p": ("libx264", "aac"),
    "poster": ("mjpeg",),
    "scrub_strip": ("mjpeg",),
    "m4a_128k": ("aac",),
    "mp3_128k": ("libmp3lame",),
}
_KEY_FIX = ("use 32+ random characters, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'")
_SKIPPED_DB = "not checked: the database is unreachable"
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
_SECRET_FIELD = re.compile(
    r"(?i)\b(password|passwd|secret|token|signature|credential|access_key|api_key)"
    r"(\w*\s*[=:]\s*)(['\"]?)[^\s'\",)]+")
_SUMMARY_LIMIT = 240


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, how it went, and what to do about it."""

    id: str
    status: CheckStatus
    component: str
    summary: str
    fix: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "component": self.component,
                "summary": self.summary, "fix": self.fix, "seconds": round(self.seconds, 4)}


@dataclass(frozen=True)
class DoctorReport:
    """Every check in the order it ran. Only errors fail a report; warnings never do."""

    checks: list[Check]

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.status == "error"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``rindle doctor --json``)."""
        return {"ok": self.ok, "total": len(self.checks), "errors": len(self.errors),
                "warnings": len(self.warnings), "checks": [c.to_dict() for c in self.checks]}


async def run_doctor(media: Diagnosed) -> DoctorReport:
    """Check ``media``'s configuration and services; never raises because one is down."""
    run = _Doctor(media)
    started = time.perf_counter()
    report: DoctorReport | None = None
    try:
        report = DoctorReport(await run.checks())
        return report
    finally:
        await run.close()
        telemetry.emit("rindle.doctor",
                       outcome="error" if report is None else "ok" if report.ok else "failed",
                       errors=len(report.errors) if report else 0,
                       warnings=len(report.warnings) if report else 0,
                       duration=time.perf_counter() - started)


# --- helpers --------------------------------------------------------------------------------

Outcome = tuple[CheckStatus, str, str | None]


def _scrub(text: str) -> str:
    """``text`` without URL credentials, query strings (signatures live there) or secrets."""

    def clean(match: re.Match[str]) -> str:
        url = match.group(0).split("?", 1)[0].split("#", 1)[0]
        return redact_url(url)

    text = _SECRET_FIELD.sub(r"\1\2\3***", _URL.sub(clean, text))
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY_LIMIT else text[:_SUMMARY_LIMIT - 1] + "…"


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, RindleError) else str(exc)
    name = type(exc).__name__
    return f"{name}: {_scrub(message)}" if message.strip() else name


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Findings:
    """Problems found by one check; the worst decides its status, all are reported."""

    def __init__(self) -> None:
        self.items: list[tuple[CheckStatus, str, str]] = []

    def error(self, summary: str, fix: str) -> None:
        self.items.append(("error", summary, fix))

    def warn(self, summary: str, fix: str) -> None:
        self.items.append(("warn", summary, fix))

    def outcome(self, ok_summary: str) -> Outcome:
        if not self.items:
            return "ok", ok_summary, None
        ordered = sorted(self.items, key=lambda item: item[0] != "error")
        status: CheckStatus = ordered[0][0]
        fixes = dict.fromkeys(fix for _, _, fix in ordered)
        return status, "; ".join(s for _, s, _ in ordered), "; ".join(fixes)


async def _timed(check_id: str, component: str, run: Callable[[], Awaitable[Outcome]], *,
                 fix: str, timeout: float = CHECK_TIMEOUT) -> Check:
    started = time.perf_counter()
    limit = asyncio.timeout(timeout)
    try:
        async with limit:
            status, summary, found_fix = await run()
    except TimeoutError as exc:
        if limit.expired():
            status, summary, found_fix = "error", f"no answer within {timeout:g} s", fix
        else:  # raised by the service itself, not by our time limit
            status, summary, found_fix = "error", f"the check failed: {_describe(exc)}", fix
    except Exception as exc:
        status, summary, found_fix = "error", f"the check failed: {_describe(exc)}", fix
    return Check(id=check_id, status=status, component=component, summary=summary,
                 fix=None if status == "ok" else found_fix,
                 seconds=time.perf_counter() - started)


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist (connecting would create it)."""
    if not url.startswith("sqlite"):
        return None
    try:
        database, uri = sqlite_target(url)
    except ValueError:
        return None  # options the store refuses: its own error says which
    if uri or not database:
        return None  # an SQLite URI (shared memory, mode=ro...): let the driver judge it
    path = Path(database)
    return None if path.exists() else path.resolve()


def _redis_status(url: str, rq_name: str | None) -> tuple[int, int] | None:
    """Ping Redis at ``url``; with ``rq_name``, also (workers listening, jobs waiting).

    Blocking, so run in a thread. A fresh client with the doctor's short timeouts, not the
    queue's own, which a running application may be using.
    """
    from redis import Redis

    conn = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT,
                          socket_timeout=REDIS_TIMEOUT)
    try:
        conn.ping()
        if rq_name is None:
            return None
        from rq import Queue as RQ
        from rq import Worker

        queue = RQ(rq_name, connection=conn)
        return Worker.count(connection=conn, queue=queue), int(queue.count)
    finally:
        conn.close()


def _listening_workers(url: str, queue_names: list[str]) -> list[dict[str, Any]]:
    """The rq workers on ``queue_names`` and the database each announced. Blocking."""
    from redis import Redis

    conn = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT,
                          socket_timeout=REDIS_TIMEOUT)
    try:
        return ownership.listening_workers(conn, queue_names)
    finally:
        conn.close()


def _revisions() -> tuple[str, set[str]]:
    """(head, every revision shipped): reading the migration scripts is blocking."""
    return migrate.head_revision(), migrate.known_revisions()


async def _run_tool(argv: list[str]) -> str:
    """``argv``'s standard output; ``RuntimeError`` when it fails, killed after
    ``FFMPEG_TIMEOUT``."""
    from ..processing.ffmpeg import reap, spawn

    # spawn/reap: its own session, dying with us, and killed and reaped on a timeout or
    # when the doctor's own limit cancels the check.
    proc = await spawn(argv)
    try:
        async with asyncio.timeout(FFMPEG_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        raise RuntimeError(f"{Path(argv[0]).name} gave no answer within "
                           f"{FFMPEG_TIMEOUT:g} s") from None
    finally:
        await reap(proc)
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{Path(argv[0]).name} exited with {proc.returncode}: {tail[0]}")
    return out.decode(errors="replace")


def _version(output: str) -> str:
    """"5.1.6-0+deb12u1" from the first line of ``ffmpeg -version``."""
    words = output.split(None, 3)
    return words[2] if len(words) > 2 and words[1] == "version" else "unknown version"


def _encoders(output: str) -> set[str]:
    """The encoder names ``ffmpeg -hide_banner -encoders`` lists (after its legend)."""
    names: set[str] = set()
    listing = False
    for line in output.splitlines():
        if line.strip().startswith("------"):
            listing = True
            continue
        fields = line.split()
        if listing and len(fields) >= 2 and len(fields[0]) == 6:
            names.add(fields[1])
    return names


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


# --- the checks -----------------------------------------------------------------------------


class _Doctor:
    """One run: the checks in order, and what they share (the doctor's own database pool)."""

    def __init__(self, media: Diagnosed) -> None:
        self.media = media
        self.store: Store | None = None
        self.database_ok = False
        self.schema_at_head = False
        self.redis_ok = False
        self.storage_ok: dict[str, bool] = {}

    async def checks(self) -> list[Check]:
        media = self.media
        out = [
            await _timed("doctor.database", "database", self.database, fix=_DB_FIX,
                         timeout=DATABASE_TIMEOUT),
            await _timed("doctor.migrations", "migrations", self.migrations,
                         fix=self._migrate_fix()),
        ]
        for name, storage in media.storages.items():
            out.append(await _timed(f"doctor.storage.{name}", "storage",
                                    functools.partial(self.storage, name, storage),
                                    fix=_STORAGE_FIX))
        for name, storage in media.storages.items():
            if Capability.TUS_UPLOAD in storage.capabilities and self._tus_profiles(name):
                out.append(await _timed(f"doctor.tus.{name}", "resumable uploads",
                                        functools.partial(self.tus, name, storage),
                                        fix=_STORAGE_FIX))
        out.append(await _timed("doctor.clock", "database", self.clock,
                                fix="sync this machine's clock (NTP) with the database's"))
        out += [
            await _timed("doctor.delivery", "delivery", self.delivery,
                         fix="give private profiles a storage that can sign URLs"),
            await _timed("doctor.images", "images", self.images, fix=_LIBVIPS_FIX),
            await _timed("doctor.processors", "processing", self.processors,
                         fix="register a processor for every variant kind"),
        ]
        if any(self._av_profiles()):
            out.append(await _timed("doctor.ffmpeg", "video and audio", self.ffmpeg,
                                    fix=_FFMPEG_FIX))
        if self._streaming_profiles():
            out.append(await _timed("doctor.streaming", "streaming", self.streaming,
                                    fix=_STREAMING_FIX))
        out += [
            await _timed("doctor.queue", "queue", self.queue,
                         fix="check the queue URL; is Redis running?"),
        ]
        if isinstance(media.queue, RQQueue):
            out.append(await _timed("doctor.workers", "queue", self.workers,
                                    fix=ownership.REPAIR))
        out += [
            await _timed("doctor.broadcast", "broadcast", self.broadcast,
                         fix="check broadcast_url; is Redis running?"),
            await _timed("doctor.secret_keys", "security", self.secret_keys, fix=_KEY_FIX),
            await _timed("doctor.authorizer", "security", self.authorizer,
                         fix="pass authorizer=... to Rindle"),
            await _timed("doctor.outbox", "outbox", self.outbox,
                         fix="inspect them (rindle status) and requeue the variants"),
        ]
        return out

    async def close(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            with contextlib.suppress(Exception):
                await store.disconnect()

    def _migrate_fix(self) -> str:
        app = self.media.app_path or "module:media"
        return f"run `rindle migrate --app {app}` or `await media.migrate()`"

    # 1 ---------------------------------------------------------------------------------------
    async def database(self) -> Outcome:
        url = self.media.database_url
        shown = redact_url(url)
        missing = _missing_sqlite_file(url)
        if missing is not None:
            # Connecting would silently create an empty file at a mistyped path.
            return ("error", f"the SQLite file {missing} does not exist",
                    f"check database_url (a relative sqlite:/// path is relative to the "
                    f"working directory, here {os.getcwd()}); to create a new database, "
                    f"{self._migrate_fix()}")
        # Assigned before connecting, so close() releases whatever a timeout left half-open.
        store = self.store = Store(url, pool_size=2)
        try:
            await store.connect()
            await store.fetch_one("SELECT 1")
        except ConfigurationError as exc:
            if exc.code == "database_driver_missing":
                return "error", exc.message, "pip install 'rindle[postgres]'"
            # The cause's type, not its message: driver messages may quote the DSN.
            cause = exc.__cause__ or exc
            detail = type(cause).__name__
            if isinstance(cause, OSError) and cause.strerror:
                detail += f" ({cause.strerror})"
            return "error", f"cannot connect to {shown}: {detail}", _DB_FIX
        self.database_ok = True
        return "ok", f"connected to {shown} ({store.dialect})", None

    # 2 ---------------------------------------------------------------------------------------
    async def migrations(self) -> Outcome:
        fix = self._migrate_fix()
        if not self.database_ok:
            return "error", _SKIPPED_DB, "fix doctor.database first"
        current = await asyncio.to_thread(migrate.current_revision, self.media.database_url)
        head, known = await asyncio.to_thread(_revisions)
        if current == head:
            self.schema_at_head = True
            return "ok", f"schema at {head}, the newest this Rindle knows", None
        if current is None:
            return "error", "Rindle's tables are missing", fix
        if current in known:
            return "error", f"schema at {current}, this Rindle needs {head}", fix
        return ("error", f"the database is at revision {current!r}, which this version of "
                "Rindle does not know (newer Rindle?)",
                "run the Rindle version that migrated it, or upgrade Rindle here")

    # 3 ---------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _open(self, storage: Storage) -> AsyncIterator[None]:
        media = self.media
        # A connected runtime has its storages open; reopening and closing them would
        # close the clients the application is using.
        opened = False
        if not media.store.connected:
            await storage.open(StorageContext(router_path=media.router_path,
                                              sign=media.signer))
            opened = True
        try:
            yield
        finally:
            if opened:
                with contextlib.suppress(Exception):
                    await storage.close()

    async def storage(self, name: str, storage: Storage) -> Outcome:
        try:
            async with self._open(storage):
                outcome = await self._probe(storage)
        except Exception as exc:
            outcome = "error", _describe(exc), _STORAGE_FIX
        self.storage_ok[name] = outcome[0] == "ok"
        return outcome

    async def _probe(self, storage: Storage) -> Outcome:
        key = f"{PROBE_PREFIX}{uuid.uuid4()}.txt"
        data = f"rindle doctor probe {key}\n".encode()
        written = False
        try:
            await storage.write(key, _once(data), content_type="text/plain",
                                max_bytes=len(data))
            written = True
            back = b"".join([chunk async for chunk in storage.stream(key)])
            if back != data:
                return ("error", f"a probe object of {len(data)} bytes read back as "
                        f"{len(back)} different bytes", _STORAGE_FIX)
            written = not await storage.delete(key)
            if written:
                return "error", "the probe object could not be deleted", _STORAGE_FIX
            if await storage.head(key) is not None:
                return "error", "the probe object is still there after delete", _STORAGE_FIX
        finally:
            if written:  # a failed read must not leave the probe behind
                with contextlib.suppress(Exception):
                    await storage.delete(key)
        return ("ok", f"{_scrub(repr(storage))}: wrote, read back and deleted a probe object "
                f"under {PROBE_PREFIX}", None)

    def _tus_profiles(self, storage_name: str) -> list[str]:
        return sorted(n for n, p in self.media.profiles.items() if p.storage == storage_name)

    async def tus(self, name: str, storage: Storage) -> Outcome:
        # What a tus upload does to the store, on a probe key: start, append in two
        # requests (the second at the recorded offset, as a resumed PATCH), then abort.
        # The lease that keeps two PATCHes apart is a column of the session row, so the
        # database check covers it; nothing else (no Redis) is needed across processes.
        if not self.storage_ok.get(name, False):
            return "ok", "not checked: the storage probe failed", None
        store = appendable_storage(storage)
        key = f"{PROBE_PREFIX}{uuid.uuid4()}.tus"
        try:
            async with self._open(storage):
                state = await store.append_start(key, content_type="text/plain", length=10,
                                                 max_length=10)
                try:
                    first = await store.append(key, state, 0, _once(b"rindle"), limit=10,
                                               length=10)
                    state = first.state  # the abort must see what the appends made (S3's tail)
                    second = await store.append(key, first.state, first.offset,
                                                _once(b"docs"), limit=10, length=10)
                    state = second.state
                    for leftover in second.garbage:  # the first append's tail, on S3
                        await storage.delete(leftover)
                finally:
                    with contextlib.suppress(Exception):
                        await store.append_abort(key, state)
                    with contextlib.suppress(Exception):
                        await storage.delete(key)
        except Exception as exc:
            return "error", f"a probe upload failed: {_describe(exc)}", _STORAGE_FIX
        if second.offset != 10:
            return ("error", f"two appends of 10 bytes left an offset of {second.offset}",
                    _STORAGE_FIX)
        profiles = self._tus_profiles(name)
        return ("ok", f"resumable (tus) uploads to {name} for {', '.join(profiles)}: started, "
                "appended twice at the recorded offset and aborted a probe upload; their "
                "leases live in the session rows", None)

    async def clock(self) -> Outcome:
        # Signed URLs, upload expiry and tus leases compare this machine's clock with times
        # the database stored: a skewed clock expires them early or keeps them too long.
        if self.store is None or not self.database_ok:
            return "ok", _SKIPPED_DB, None
        sql = ("SELECT now() AS t" if self.store.dialect == "postgresql"
               else "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') AS t")
        before = time.time()
        row = await self.store.fetch_one(sql, {})
        after = time.time()
        theirs = utc(row["t"]) if row else None
        if theirs is None:
            return "warn", "the database did not say its time", None
        skew = theirs.timestamp() - (before + after) / 2
        shown = f"{abs(skew):.2f} s {'ahead of' if skew > 0 else 'behind'} this machine"
        if abs(skew) > CLOCK_ERROR:
            return ("error", f"the database's clock is {shown}: signed URLs and upload "
                    "expiries will be wrong", "sync both clocks (NTP)")
        if abs(skew) > CLOCK_WARN:
            return "warn", f"the database's clock is {shown}", "sync both clocks (NTP)"
        return "ok", f"the database's clock is within {CLOCK_WARN:.0f} s of this machine's", None

    # 4 ---------------------------------------------------------------------------------------
    async def delivery(self) -> Outcome:
        found = _Findings()
        private = public = 0
        for name, profile in sorted(self.media.profiles.items()):
            storage = self.media.storages[profile.storage]
            if not profile.delivery.public:
                private += 1
                if Capability.SIGNED_URL not in storage.capabilities:
                    found.error(f"profile {name!r} is private but its storage "
                                f"{profile.storage!r} cannot sign URLs",
                                "give it a storage with signed URLs, or make it public")
                continue
            public += 1
            try:
                storage.public_url(f"{PROBE_PREFIX}probe.txt")
            except Exception as exc:
                found.error(f"profile {name!r} is public but its storage {profile.storage!r} "
                            f"has no public URL ({type(exc).__name__})",
                            "set public_base_url on the storage, or make the profile private")
        parts = [f"{_plural(private, 'private profile')} with signed URLs" if private else "",
                 f"{_plural(public, 'public profile')} with public URLs" if public else ""]
        return found.outcome(", ".join(p for p in parts if p) or "no profiles")

    # 5 ---------------------------------------------------------------------------------------
    async def images(self) -> Outcome:
        recipes = [(pname, vname, variant)
                   for pname, profile in sorted(self.media.profiles.items())
                   for vname, variant in profile.variants.items() if variant.kind == "image"]
        if not recipes:
            return "ok", "no image variants configured", None
        from ..processing.image import capabilities

        caps = await asyncio.to_thread(capabilities)  # probes libvips once: blocking
        if not caps["available"]:
            error = _scrub(str(caps.get("error") or "pyvips could not load libvips"))
            return ("error", f"image variants are configured but libvips is missing ({error})",
                    _LIBVIPS_FIX)
        found = _Findings()
        outputs = set(caps["outputs"])
        for pname, vname, variant in recipes:
            if variant.format == "avif" and not caps["avif_encode"]:
                found.error(f"variant {pname}.{vname} is AVIF but this libvips cannot encode "
                            "AVIF", "install libheif with an AV1 encoder (Debian 12: libheif1 "
                            "and libaom3; Debian 13: libheif-plugin-aomenc), or use "
                            "format='webp'")
            elif variant.format is not None and variant.format not in outputs:
                found.error(f"variant {pname}.{vname} is {variant.format} but this libvips "
                            f"cannot write it", _LIBVIPS_FIX)
        profiles = self.media.profiles
        heic = {"image/heic", "image/heif"}
        heic_profiles = sorted({p for p, _, _ in recipes if heic & set(profiles[p].allow_mime)})
        if heic_profiles and not caps["heic_decode"]:
            found.warn(f"profile(s) {', '.join(heic_profiles)} accept HEIC but this libvips "
                       "cannot decode it: their variants will fail", _LIBVIPS_FIX)
        return found.outcome(f"libvips {caps['libvips_version']} builds "
                             f"{_plural(len(recipes), 'image variant')} "
                             f"(writes {', '.join(caps['outputs'])}; HEIC decode "
                             f"{'yes' if caps['heic_decode'] else 'no'})")

    async def processors(self) -> Outcome:
        # A typo in Variant(kind=...) would otherwise surface only when every job of that
        # variant has failed for good.
        kinds: dict[str, list[str]] = {}
        for pname, profile in sorted(self.media.profiles.items()):
            for vname, variant in profile.variants.items():
                kinds.setdefault(variant.kind, []).append(f"{pname}.{vname}")
        if not kinds:
            return "ok", "no variants configured", None
        found = _Findings()
        for kind, users in sorted(kinds.items()):
            if self.media.processor_for(kind) is None:
                found.error(f"no processor builds {kind!r} variants ({', '.join(users)})",
                            "register one: Rindle(processors={" + repr(kind) + ": ...}), or "
                            "fix the variant's kind")
        return found.outcome(f"a processor for every variant kind ({', '.join(sorted(kinds))})")

    def _av_profiles(self) -> tuple[list[str], list[tuple[str, str, str | None]]]:
        """(profiles whose uploads ffprobe analyses, their video/audio recipes)."""
        probed: list[str] = []
        recipes: list[tuple[str, str, str | None]] = []
        for pname, profile in sorted(self.media.profiles.items()):
            if any(m.startswith(("video/", "audio/")) for m in profile.allow_mime):
                probed.append(pname)
            recipes += [(pname, vname, v.format) for vname, v in profile.variants.items()
                        if v.kind in ("video", "audio")]
        return probed, recipes

    async def ffmpeg(self) -> Outcome:
        # Only run when a profile takes video or audio: promotion probes those with
        # ffprobe, and their variants are built by ffmpeg with the encoders below.
        probed, recipes = self._av_profiles()
        found = _Findings()
        ffprobe, ffmpeg = shutil.which("ffprobe"), shutil.which("ffmpeg")
        if ffprobe is None:
            found.error(f"profile(s) {', '.join(probed or sorted({p for p, _, _ in recipes}))} "
                        "take video or audio, but ffprobe is not on PATH: their uploads "
                        "cannot be analysed", _FFMPEG_FIX)
        if ffmpeg is None and recipes:
            found.error(f"{_plural(len(recipes), 'video/audio variant')} "
                        f"({', '.join(f'{p}.{v}' for p, v, _ in recipes)}) need ffmpeg, which "
                        "is not on PATH", _FFMPEG_FIX)
        if found.items:
            return found.outcome("")
        facts = []
        if ffprobe is not None:
            facts.append(f"ffprobe {_version(await _run_tool([ffprobe, '-version']))}")
        if ffmpeg is not None:
            facts.append(f"ffmpeg {_version(await _run_tool([ffmpeg, '-version']))}")
        needed: dict[str, list[str]] = {}
        for pname, vname, fmt in recipes:
            for encoder in AV_ENCODERS.get(fmt or "", ()):
                needed.setdefault(encoder, []).append(f"{pname}.{vname}")
        if ffmpeg is not None and needed:
            have = _encoders(await _run_tool([ffmpeg, "-hide_banner", "-encoders"]))
            for encoder, users in sorted(needed.items()):
                if encoder not in have:
                    found.error(f"this ffmpeg has no {encoder} encoder, which "
                                f"{', '.join(users)} need",
                                f"install an ffmpeg built with {encoder} (Debian's ffmpeg "
                                "package has libx264, aac, libmp3lame and mjpeg)")
        encoders = f" with {', '.join(sorted(needed))}" if needed else ""
        return found.outcome(f"{'; '.join(facts)}{encoders}: "
                             f"{_plural(len(recipes), 'video/audio variant')}, "
                             f"{_plural(len(probed), 'profile')} analysed by ffprobe")

    def _streaming_profiles(self) -> dict[str, list[str]]:
        """Provider name -> the profiles streaming through it."""
        found: dict[str, list[str]] = {}
        for name, profile in sorted(self.media.profiles.items()):
            if profile.delivery.streaming is not None:
                found.setdefault(profile.delivery.streaming.provider_name, []).append(name)
        return found

    async def streaming(self) -> Outcome:
        # Credentials (an authenticated read), webhook secrets and the signing key, per
        # provider; the provider reports problems without the secrets in them.
        found = _Findings()
        facts = []
        for name, profiles in self._streaming_profiles().items():
            try:
                provider = self.media.streaming_provider(name)
            except RindleError as exc:
                found.error(f"{name}: {exc.message} (profiles {', '.join(profiles)})",
                            _STREAMING_FIX)
                continue
            signed = [p for p in profiles
                      if (s := self.media.profile(p).delivery.streaming) is not None
                      and s.playback_policy == "signed"]
            for problem in await provider.check():
                if problem.startswith("signed playback") and not signed:
                    continue  # every profile of this provider plays publicly
                found.error(f"{name}: {problem}", _STREAMING_FIX)
            facts.append(f"{name} for {', '.join(profiles)}")
            if self.media.public_url is None and any(
                    Capability.LOCAL in self.media.storage_for(p).capabilities
                    for p in profiles):
                found.error(f"{name}: the provider must fetch files from Rindle's own route, "
                            "but Rindle(public_url=...) is not set",
                            "pass public_url='https://your.site' to Rindle")
        return found.outcome(f"credentials, webhook secrets and signing keys work: "
                             f"{'; '.join(facts)}")

    # 6 ---------------------------------------------------------------------------------------
    async def queue(self) -> Outcome:
        queue = self.media.queue
        if isinstance(queue, InlineQueue):
            return "ok", "in-process queue: jobs run inside this process", None
        if not isinstance(queue, RQQueue):
            return "ok", f"custom queue {_scrub(repr(queue))}", None
        shown = redact_url(queue.redis_url)
        try:
            status = await asyncio.to_thread(_redis_status, queue.redis_url, queue.name)
        except ImportError as exc:
            return ("error", f"the rq queue needs {exc.name or 'rq and redis'}, which is not "
                    "installed", "pip install 'rindle[rq]'")
        except Exception as exc:
            return ("error", f"cannot reach Redis at {shown}: {_describe(exc)}",
                    "check the queue's redis:// URL; is Redis running and reachable from here?")
        assert status is not None
        self.redis_ok = True
        workers, waiting = status
        facts = f"rq queue {queue.name!r} on Redis at {shown}: {_plural(waiting, 'job')} waiting"
        if workers == 0:
            # Jobs would wait forever; a warning only, since workers may start after the web.
            return ("warn", f"{facts}, but no rq worker listens on it",
                    f"start workers: rindle worker --app {self.media.app_path or 'module:media'}")
        return "ok", f"{facts}, {_plural(workers, 'worker')} listening", None

    async def workers(self) -> Outcome:
        """Which database each rq worker on the queue serves: one of another database takes
        this runtime's jobs (and, since fingerprints, hands them back)."""
        queue = self.media.queue
        assert isinstance(queue, RQQueue)
        if not self.redis_ok:
            return "ok", "not checked: Redis is unreachable", None
        ours = None
        if self.store is not None and self.schema_at_head:
            ours = await identity.fingerprint(self.store, create=False)
        names = [queue.name] + ([ownership.owner_queue(queue.name, ours)] if ours else [])
        workers = await asyncio.to_thread(_listening_workers, queue.redis_url, names)
        if not workers:
            return "ok", f"no rq worker listens on {queue.name!r} to check", None
        listed: list[str] = []
        problems: list[str] = []
        fixes: list[str] = []
        for w in workers:
            who = f"{w['name']} on {w['hostname']} (pid {w['pid']})"
            database = redact_url(str(w["database"] or "?"))
            age = w.get("heartbeat_age")
            if age is not None and age > HEARTBEAT_STALE:
                # rq keeps a dead worker's entry until its TTL runs out: it takes nothing.
                problems.append(f"worker {who} has not sent a heartbeat for {age:.0f} s: it "
                                "is probably dead (its entry lingers until rq expires it)")
                fixes.append("restart the worker; a job it held is re-sent by the sweeper "
                             "once `job_stale_after` has passed")
            if w["fingerprint"] is None:
                listed.append(f"{who}: database not announced")
                problems.append(f"worker {who} does not say which database it serves (a plain "
                                "`rq worker` or an older Rindle): if it serves another one, it "
                                "takes this runtime's jobs")
                fixes.append(f"run workers with `rindle worker --app "
                             f"{self.media.app_path or 'module:media'}`")
            elif ours is not None and w["fingerprint"] == ours:
                listed.append(f"{who}: this database")
            else:
                listed.append(f"{who}: {database} ({w['fingerprint']})")
                if ours is not None:
                    problems.append(f"worker {who} serves another database, {database} "
                                    f"({w['fingerprint']}, this one is {ours}): it takes jobs "
                                    f"from {queue.name!r} and hands them back")
                    fixes.append(f"{ownership.REPAIR} (RQQueue(name=...))")
        summary = f"{_plural(len(workers), 'rq worker')} on {queue.name!r}: {'; '.join(listed)}"
        if ours is None:
            summary += " (this database's id could not be read, so not compared)"
        if problems:
            return "warn", f"{'; '.join(problems)} — {summary}", "; ".join(dict.fromkeys(fixes))
        return "ok", summary, None

    # 7 ---------------------------------------------------------------------------------------
    async def broadcast(self) -> Outcome:
        url = self.media.live.url
        scheme = urlparse(url).scheme
        if scheme == "memory":
            if isinstance(self.media.queue, RQQueue):
                return ("error", "workers run in other processes but broadcast_url is "
                        "memory://: their live events never reach the web process",
                        "set broadcast_url to the same redis:// URL")
            return ("ok", "memory://: live events reach subscribers in this process "
                    "(use redis:// once you run several web processes)", None)
        shown = redact_url(url)
        if scheme not in ("redis", "rediss"):
            return "ok", f"broadcast through {scheme}:// (not checked by the doctor)", None
        try:
            await asyncio.to_thread(_redis_status, url, None)
        except ImportError:
            return "error", "redis:// broadcast needs redis-py", "pip install 'rindle[rq]'"
        except Exception as exc:
            return ("error", f"cannot reach Redis at {shown}: {_describe(exc)}",
                    "check broadcast_url; is Redis running and reachable from here?")
        return "ok", f"live events go through Redis at {shown}", None

    # 8 ---------------------------------------------------------------------------------------
    async def secret_keys(self) -> Outcome:
        # Numbered as the adopter wrote them; only lengths are ever seen here. Rindle
        # refuses keys under 16 characters outright; under 32 still works but is weak.
        lengths = self.media.signer.key_lengths
        found = _Findings()
        for n, length in enumerate(lengths, start=1):
            if length < MIN_SECRET_KEY_LENGTH:
                found.warn(f"secret key #{n} is only {length} characters", _KEY_FIX)
        return found.outcome(f"{_plural(len(lengths), 'secret key')}, each "
                             f"{MIN_SECRET_KEY_LENGTH}+ characters")

    # 9 ---------------------------------------------------------------------------------------
    async def authorizer(self) -> Outcome:
        media = self.media
        default = media.authorizer
        profiles: Mapping[str, type[Profile]] = media.profiles
        own = {name: p.delivery.authorizer for name, p in sorted(profiles.items())
               if p.delivery.authorizer is not None}
        uses_default = [name for name in sorted(profiles) if name not in own]
        found = _Findings()
        if isinstance(default, DenyAll) and uses_default:
            scope = f" (profiles {', '.join(uses_default)})" if own else ""
            found.warn(f"every delivery and upload is refused (DenyAll){scope}",
                       "pass authorizer=... to Rindle")
        allow_all = [name for name, a in own.items() if isinstance(a, AllowAll)]
        if isinstance(default, AllowAll) and uses_default:
            allow_all = sorted([*allow_all, *uses_default])
        if allow_all:
            scope = "" if len(allow_all) == len(profiles) else f" (profiles {', '.join(allow_all)})"
            found.warn("AllowAll lets anyone who knows an asset id get its URLs; fine for "
                       f"demos, not for production{scope}",
                       "pass an Authorizer that checks the actor to Rindle (authorizer=...)")
        names = sorted({type(a).__name__ for a in own.values()})
        extra = f"; profiles also use {', '.join(names)}" if names else ""
        return found.outcome(f"authorizer {type(default).__name__}{extra}")

    # 10 --------------------------------------------------------------------------------------
    async def outbox(self) -> Outcome:
        if self.store is None or not self.database_ok:
            return "ok", _SKIPPED_DB, None
        if not self.schema_at_head:
            return "ok", "not checked: the schema is not at head", None
        repo = Repo(self.store)
        counts = await repo.count_outbox()
        failed = counts.get("failed", 0)
        found = _Findings()
        if failed:
            found.warn(f"{_plural(failed, 'job')} failed for good",
                       "inspect them (rindle status) and requeue the variants")
        # Due jobs nobody dispatched: the queue or its workers are not running.
        at = datetime.now(UTC)
        late, oldest, _ = await repo.findings(
            "outbox", ["pending"], since_column="available_at",
            before=at - timedelta(seconds=BACKLOG_WARN), limit=1)
        if late and oldest is not None:
            found.warn(f"{_plural(late, 'due job')} waiting to be dispatched, the oldest for "
                       f"{(at - oldest).total_seconds():.0f} s",
                       "is the queue (an rq worker, the web process's sweeper) running? "
                       "`rindle sweep --app ...` sends them now")
        waiting = counts.get("pending", 0) + counts.get("dispatched", 0)
        return found.outcome(f"no failed or late jobs ({_plural(waiting, 'job')} pending or "
                             "dispatched)")
