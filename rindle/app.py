"""Rindle: the runtime an adopter builds once — database, storages, profiles, queue, live events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import attachments as _attachments
from . import telemetry
from .delivery import urls as _urls
from .delivery.authorizer import Authorizer, DenyAll
from .delivery.signing import Signer
from .errors import ConfigurationError, NotFound
from .live.events import from_change
from .live.hub import Live
from .logs import get_logger, install
from .model.db import Store, redact_url
from .model.records import Asset, Attachment, Change, UploadSession
from .model.repo import Repo
from .model.states import TERMINAL_SESSION_STATES
from .processing.outbox import Outbox
from .processing.queue import InlineQueue, Queue, RQQueue
from .profile import Profile
from .storage.base import Storage, StorageContext, UploadTicket
from .upload import multipart as _multipart
from .upload import resumable as _resumable
from .upload.broker import Broker, UploadResult
from .upload.multipart import MultipartSession
from .upload.resumable import ResumableSession, ResumableStatus

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.routing import Router

    from .delivery.streaming.base import StreamingProvider
    from .ops.backfill import BackfillReport
    from .ops.cleanup import CleanupReport
    from .ops.doctor import DoctorReport
    from .ops.erasure import BatchErasure, ErasurePlan
    from .ops.reconcile import ReconcileReport
    from .processing.analyzer import Analyzer
    from .processing.processor import Processor
    from .processing.repair import RegenerateReport
    from .web.templating import Html

log = get_logger("rindle")


def _make_queue(queue: str | Queue, app_path: str | None) -> Queue:
    if isinstance(queue, str):
        if queue == "inline":
            return InlineQueue()
        if queue.startswith(("redis://", "rediss://", "unix://")):
            return RQQueue(queue, app_path=app_path)
        raise ConfigurationError(f"queue must be 'inline', a redis:// URL for rq, or a Queue; "
                                 f"got {queue!r}", code="invalid_queue")
    return queue


class Rindle:
    """The runtime. Build it once, mount ``media.router``, use ``media.lifespan``.

    Example::

        media = Rindle(
            database_url="sqlite:///./media.db",
            storages={"local": LocalStorage(root="./uploads")},
            profiles=[AvatarProfile],
            secret_keys=["...random..."],
        )
        app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)

    ``secret_keys``: the first signs, all verify — put a new key first to rotate, and remove
    the old one once every URL it signed has expired. ``upload_idle_timeout``: seconds an
    upload body through Rindle's own route may send nothing before it is cut (408).
    ``scratch_dir``: where each processing job gets its private scratch directory (the
    system's temporary directory when ``None``). ``durable_uploads``: fsync every resumable
    (tus) append on Local storage before acknowledging its offset (``False`` is faster, but
    a machine that loses power may lose acknowledged bytes: the upload then starts over).
    ``large_uploads``: the flows browsers use for files over ``multipart_threshold``, in
    order of preference, where the storage offers them (``("tus", "multipart")``); a
    profile's own ``large_uploads`` takes precedence for its files.
    ``streaming``: streaming providers by the name profiles give in
    ``Delivery(streaming=Streaming(provider=...))``, e.g. ``{"mux": Mux(...)}``; a profile
    naming ``"mux"`` without one gets ``Mux.from_env()``. ``public_url``: this site's
    address (``https://example.com``), for URLs handed to a provider that fetches from
    Rindle's own file route (Local storage).
    """

    def __init__(
        self,
        *,
        database_url: str,
        storages: Mapping[str, Storage],
        profiles: Sequence[type[Profile]],
        secret_keys: Sequence[str],
        queue: str | Queue = "inline",
        broadcast_url: str = "memory://",
        signed_url_ttl: int = 900,
        upload_ttl: int = 3600,
        authorizer: Authorizer | None = None,
        router_path: str = "/rindle",
        sweep_interval: float = 30.0,
        job_max_attempts: int = 5,
        app_path: str | None = None,
        processors: Mapping[str, Processor] | None = None,
        analyzers: Sequence[Analyzer] = (),
        job_stale_after: float = 900.0,
        multipart_threshold: int = 16 * 1024 * 1024,
        live_buffer: int = 1000,
        upload_idle_timeout: float = 30.0,
        scratch_dir: str | None = None,
        durable_uploads: bool = True,
        large_uploads: Sequence[str] = ("tus", "multipart"),
        streaming: Mapping[str, StreamingProvider] | None = None,
        public_url: str | None = None,
    ) -> None:
        install()  # the servers' loggers are redacted even without the lifespan
        if not storages:
            raise ConfigurationError("storages is empty: give at least one, e.g. "
                                     "{'local': LocalStorage(root='./uploads')}",
                                     code="storage_missing")
        self.storages: dict[str, Storage] = dict(storages)
        self._profiles: dict[str, type[Profile]] = {}
        for p in profiles:
            if not (isinstance(p, type) and issubclass(p, Profile)):
                raise ConfigurationError(f"{p!r} is not a Profile subclass",
                                         code="invalid_profile")
            if p.name in self._profiles and self._profiles[p.name] is not p:
                raise ConfigurationError(f"two profiles are named {p.name!r}",
                                         code="duplicate_profile")
            if p.storage not in self.storages:
                raise ConfigurationError(
                    f"profile {p.name!r} uses storage {p.storage!r}, which is not among "
                    f"{sorted(self.storages)}", code="unknown_storage")
            self._profiles[p.name] = p
        self.signer = Signer(secret_keys)
        self.signed_url_ttl = signed_url_ttl
        self.upload_ttl = upload_ttl
        self.authorizer: Authorizer = authorizer or DenyAll()
        self.router_path = "/" + router_path.strip("/") if router_path.strip("/") else ""
        self.sweep_interval = sweep_interval
        self.job_max_attempts = job_max_attempts
        self.multipart_threshold = multipart_threshold
        # An upload body through Rindle's own route that stalls this long is cut.
        self.upload_idle_timeout = upload_idle_timeout
        self.scratch_dir = None if scratch_dir is None else str(scratch_dir)
        # fsync each resumable (tus) append on Local before its offset is acknowledged.
        self.durable_uploads = durable_uploads
        unknown = sorted(set(large_uploads) - {"tus", "multipart"})
        if unknown:
            raise ConfigurationError(f"large_uploads names {unknown}; it orders 'tus' and "
                                     "'multipart'", code="configuration_error")
        self.large_uploads = tuple(large_uploads)
        self._streaming: dict[str, StreamingProvider] = dict(streaming or {})
        for p in self._profiles.values():
            wanted = p.delivery.streaming
            if wanted is None:
                continue
            name = wanted.provider_name
            if not isinstance(wanted.provider, str):
                # The profile brings its own provider (its own credentials).
                if self._streaming.setdefault(name, wanted.provider) is not wanted.provider:
                    raise ConfigurationError(
                        f"profile {p.name!r} brings its own streaming provider named "
                        f"{name!r}, but another one has that name", code="invalid_profile")
            elif name not in self._streaming and name != "mux":
                raise ConfigurationError(
                    f"profile {p.name!r} streams through {name!r}, which is not among "
                    f"streaming={sorted(self._streaming)}", code="streaming_not_configured")
        self.public_url = public_url.rstrip("/") if public_url else None
        self.app_path = app_path
        self.database_url = database_url
        self.store = Store(database_url)
        self.repo = Repo(self.store)
        self.queue: Queue = _make_queue(queue, app_path)
        self.outbox = Outbox(self.repo, self.queue, stale_after=job_stale_after)
        self.live = Live(broadcast_url, max_queue=live_buffer)
        if isinstance(self.queue, RQQueue) and broadcast_url.startswith("memory://"):
            log.warning("rq workers run in other processes, but broadcast_url is memory://: "
                        "their live events will not reach this process; use a redis:// "
                        "broadcast_url")
        self.broker = Broker(self)
        self._processors: dict[str, Processor] = dict(processors or {})
        from .processing.analyzer import builtin_analyzers

        self.analyzers: list[Analyzer] = [*builtin_analyzers(), *analyzers]
        self._router: Router | None = None
        self._html: Html | None = None
        self._connected = 0
        self._sweeper: asyncio.Task[None] | None = None
        # The loop the runtime is connected in: code of other threads (the OpenTelemetry
        # bridge's metric callbacks) hands its database reads to it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.store.listeners.append(self._on_change)

    def __repr__(self) -> str:
        return (f"Rindle(database={redact_url(self.database_url)!r}, "
                f"storages={sorted(self.storages)}, profiles={sorted(self._profiles)}, "
                f"queue={self.queue!r})")

    # --- configuration lookups -----------------------------------------------------------

    @property
    def profiles(self) -> dict[str, type[Profile]]:
        return dict(self._profiles)

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The registered profile class for a class or a stored profile name."""
        name = profile if isinstance(profile, str) else profile.name
        found = self._profiles.get(name)
        if found is None:
            # The registered names stay out of the message: it is also an HTTP answer, to
            # anyone (OPTIONS on a tus endpoint asks no Authorizer). ``profiles`` lists them.
            raise NotFound(f"no profile named {name!r} is registered",
                           code="unknown_profile")
        return found

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        return self.storages[self.profile(profile).storage]

    def storage_named(self, name: str) -> Storage:
        try:
            return self.storages[name]
        except KeyError:
            raise ConfigurationError(f"storage {name!r} is not configured",
                                     code="unknown_storage") from None

    def authorizer_for(self, profile: type[Profile] | None) -> Authorizer:
        """The profile's own Authorizer, else the runtime's (also for ``None``)."""
        if profile is None:
            return self.authorizer
        return profile.delivery.authorizer or self.authorizer

    def streaming_provider(self, name: str) -> StreamingProvider:
        """The streaming provider called ``name``; ``"mux"`` is made from the environment
        (``Mux.from_env()``) the first time it is asked for when none was given."""
        provider = self._streaming.get(name)
        if provider is None:
            if name != "mux":
                raise ConfigurationError(f"no streaming provider named {name!r} is configured",
                                         code="streaming_not_configured")
            from .delivery.streaming.mux import Mux

            provider = self._streaming[name] = Mux.from_env()
        return provider

    @property
    def streaming_providers(self) -> Mapping[str, StreamingProvider]:
        """The streaming providers made so far, by name (read-only)."""
        return MappingProxyType(self._streaming)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """``async with media.transaction():`` — one database transaction (a savepoint when
        one is open). Rindle's own changes made inside it, and the jobs they queue, take
        effect together when it commits; nothing is dispatched if it rolls back."""
        return self.store.transaction()

    @property
    def processors(self) -> Mapping[str, Processor]:
        """The processors registered or loaded so far, by variant kind (read-only)."""
        return MappingProxyType(self._processors)

    def processor_for(self, kind: str) -> Processor | None:
        """The processor registered for a variant kind; the built-in ones load lazily."""
        proc = self._processors.get(kind)
        if proc is None:
            from .processing.builtins import builtin_processor

            proc = builtin_processor(kind)
            if proc is not None:
                self._processors[kind] = proc
        return proc

    # --- lifecycle -----------------------------------------------------------------------

    async def connect(self, *, start_queue: bool = True, sweeper: bool = False) -> None:
        """Open the database, storages, broadcast and queue. Nested calls are counted."""
        self._connected += 1
        if self._connected > 1:
            return
        try:
            await self.store.connect()
            context = StorageContext(router_path=self.router_path, sign=self.signer)
            for storage in self.storages.values():
                await storage.open(context)
            await self.live.connect()
            if start_queue:
                await self.queue.start(self)
        except BaseException:
            # Half-open: close what did open, and count this call out, so the next
            # connect() really connects instead of seeing a runtime it believes is open.
            self._connected = 0
            with contextlib.suppress(Exception):
                await self._close_all()
            raise
        self._loop = asyncio.get_running_loop()
        if sweeper:
            if isinstance(self.queue, InlineQueue):
                # Nothing of an in-process queue survives a restart: resend what was unfinished.
                await self.outbox.sweep(include_recent=True)
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def disconnect(self) -> None:
        self._connected -= 1
        if self._connected > 0:
            return
        self._connected = 0
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._close_all()

    async def _close_all(self) -> None:
        self._loop = None
        await self.queue.stop()
        for provider in self._streaming.values():
            with contextlib.suppress(Exception):
                await provider.close()
        await self.live.disconnect()
        for storage in self.storages.values():
            await storage.close()
        await self.store.disconnect()

    @contextlib.asynccontextmanager
    async def connected(self, *, start_queue: bool = True,
                        sweeper: bool = False) -> AsyncIterator[Rindle]:
        """``async with media.connected():`` for scripts, workers and tests."""
        await self.connect(start_queue=start_queue, sweeper=sweeper)
        try:
            yield self
        finally:
            await self.disconnect()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """A Starlette/FastAPI lifespan: connects on start-up, disconnects on shutdown.

        It also keeps Rindle's URL tokens out of the server's access log.
        """
        from .web import log_redaction

        log_redaction.install()
        async with self.connected(sweeper=True):
            yield

    async def _sweep_forever(self) -> None:
        from .ops.cleanup import expire_uploads

        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.outbox.sweep()
            except Exception:
                log.exception("outbox sweep failed; trying again in %ss", self.sweep_interval)
            try:
                # Abandoned uploads are purged a sweep after they expire; rows and objects
                # of a user who closed the tab never pile up.
                await expire_uploads(self, limit=200)
            except Exception:
                log.exception("expiring abandoned uploads failed; trying again in %ss",
                              self.sweep_interval)

    async def migrate(self, revision: str = "head") -> None:
        """Bring the database to the newest schema (runs Alembic in a thread)."""
        from .model import migrate

        await asyncio.to_thread(migrate.upgrade, self.database_url, revision)

    async def _on_change(self, change: Change) -> None:
        meta: dict[str, Any] = {"asset_id": change.asset_id, "profile": change.profile,
                                "from_state": change.from_state, "to_state": change.to_state,
                                "reason": change.reason}
        if change.entity == "variant":
            meta["variant"] = change.name
            meta.pop("profile")
        elif change.entity == "session":
            meta["session_id"] = change.entity_id
        elif change.entity == "provider_asset":
            meta["provider"] = change.provider
        telemetry.emit(f"rindle.{change.entity}.state_change", **meta)
        if change.entity == "asset" and change.to_state == "quarantined":
            # Every way into quarantine (promotion, a provider's verdict) passes here.
            telemetry.emit("rindle.quarantine", asset_id=change.asset_id,
                           profile=change.profile, reason=change.reason,
                           from_state=change.from_state)
        for event in from_change(change):
            await self.live.publish("asset", change.asset_id, event)

    # --- the router ----------------------------------------------------------------------

    @property
    def router(self) -> Router:
        """The mountable Starlette router (see the HTTP surface in the docs)."""
        if self._router is None:
            from .web.routes import build_router

            self._router = build_router(self)
        return self._router

    @property
    def html(self) -> Html:
        """Asset views and the picture/video/badge/uploader macros, from Python."""
        if self._html is None:
            from .web.templating import Html

            self._html = Html(self)
        return self._html

    # --- the public API ------------------------------------------------------------------

    async def initiate_upload(self, profile: type[Profile] | str, *, filename: str | None,
                              content_type: str | None = None, byte_size: int | None = None,
                              checksum: str | None = None) -> UploadSession:
        """Start a direct upload: a staged asset and a session, nothing signed yet.

        ``checksum`` (optional, ``sha256:<base64>`` or ``md5:<base64>`` of the file) is signed
        into the upload URL, so the store refuses other bytes, and checked at promotion.
        """
        return await self.broker.initiate_upload(profile, filename=filename,
                                                 content_type=content_type, byte_size=byte_size,
                                                 checksum=checksum)

    def upload_options(self, profile: type[Profile] | str) -> dict[str, Any]:
        """What a client needs to pick an upload flow for this profile's storage.

        ``strategies`` lists the flows the storage can honour, in the order the runtime
        prefers them for files over ``multipart_threshold`` (``large_uploads``: tus, then
        multipart, by default), then ``resumable`` (GCS's own sessions) and
        ``presigned_put`` (what small files use).
        """
        from .storage.base import Capability

        prof = self.profile(profile)
        caps = self.storage_for(prof).capabilities
        offered = {"tus": Capability.TUS_UPLOAD in caps,
                   "multipart": Capability.MULTIPART_UPLOAD in caps}
        strategies = [s for s in (prof.large_uploads or self.large_uploads) if offered.get(s)]
        if Capability.RESUMABLE_UPLOAD in caps:
            strategies.append("resumable")  # the store's own sessions (GCS)
        if Capability.PRESIGNED_PUT in caps:
            strategies.append("presigned_put")
        streaming = prof.delivery.streaming
        if streaming is not None and streaming.ingest == "direct_upload":
            # One PUT of the whole file to the provider's upload URL, whatever its size.
            strategies = ["presigned_put"]
        return {
            "profile": prof.name,
            "strategies": strategies,
            "max_bytes": prof.max_bytes,
            "accept": list(prof.allow_mime),
            "extensions": list(prof.allow_extensions or ()),
            "multipart_threshold": self.multipart_threshold,
            "endpoints": {
                "uploads": f"{self.router_path}/uploads",
                "multipart": f"{self.router_path}/multipart",
                "tus": f"{self.router_path}/tus/{prof.name}/",
                "resumable": f"{self.router_path}/resumable",
            },
        }

    async def sign_url(self, session_id: str) -> UploadTicket:
        """Shortcut for ``media.broker.sign_url``."""
        return await self.broker.sign_url(session_id)

    async def verify_completion(self, session_id: str) -> UploadResult:
        """Check the bytes landed; the asset moves to validating and promotion is queued.

        A direct upload to a streaming provider asks the provider instead: its asset moves
        to transcoding once the provider has the file."""
        session = await self.repo.get_session(session_id)
        if session is not None and session.strategy == "direct_upload":
            return await self.complete_direct_upload(session)
        return await self.broker.verify_completion(session_id, session=session)

    # --- streaming (Mux) ----------------------------------------------------------------

    async def create_direct_upload(self, profile: type[Profile] | str, *,
                                   filename: str | None, content_type: str | None = None,
                                   byte_size: int | None = None,
                                   origin: str = "*") -> tuple[UploadSession, UploadTicket]:
        """Start a browser upload straight to the profile's streaming provider (a
        ``MuxDirectUploadWeb`` profile): the session and where to PUT the file.
        ``origin``: the page's origin, which the provider allows for CORS."""
        from .delivery.streaming import ingest

        started = await ingest.initiate_direct_upload(
            self, self.profile(profile), filename=filename, content_type=content_type,
            byte_size=byte_size, origin=origin)
        return started.session, started.ticket

    async def complete_direct_upload(self, session: UploadSession) -> UploadResult:
        """``verify_completion`` of a direct upload to a streaming provider."""
        from .delivery.streaming import ingest

        session = await self.broker.live_session(session.id, row=session)
        asset = await ingest.complete_direct_upload(self, session)
        return UploadResult(session=await self.broker.live_session(session.id), asset=asset)

    async def abort_upload(self, session_id: str) -> UploadSession:
        """Give up on an unfinished upload: the session is aborted and whatever reached
        storage (or the streaming provider) is purged. Idempotent."""
        session = await self.repo.get_session(session_id)
        if session is not None and session.strategy == "direct_upload" \
                and session.state not in TERMINAL_SESSION_STATES:
            from .delivery.streaming import ingest

            await ingest.cancel_direct_upload(self, session)
        return await self.broker.abort_upload(session_id)

    async def streaming_url(self, profile: type[Profile] | str, asset: Asset | str, *,
                            kind: str = "video", actor: Any = None,
                            request: HTTPConnection | None = None,
                            expires_in: int | None = None) -> str:
        """The HLS playback URL of a streamed asset (``kind``: ``video``, ``thumbnail`` or
        ``storyboard``), signed unless the profile's streaming is public. The Authorizer
        runs first; ``streaming_not_ready`` (404) until the provider has it ready."""
        from .delivery.streaming.playback import streaming_url

        prof = self.profile(profile)
        row = asset if isinstance(asset, Asset) else await self.asset(asset)
        return await streaming_url(self, prof, row, kind=kind, actor=actor, request=request,
                                   expires_in=expires_in)

    async def sync_streaming(self, asset_id: str | None = None, *,
                             stuck_after: float = 3600.0, limit: int = 100) -> list[Any]:
        """Re-read provider assets from the provider's API and apply what it says (the
        repair for a lost webhook). One asset's rows, or every row stuck (pending,
        uploading or processing for ``stuck_after`` seconds) or errored. Returns the rows
        as they are now."""
        from .delivery.streaming.events import sync

        if asset_id is not None:
            ids = [row.id for row in await self.repo.provider_assets_for(asset_id)]
        else:
            _, _, found = await self.repo.findings(
                "provider_asset", ("pending", "uploading", "processing"),
                since_column="updated_at",
                before=datetime.now(UTC) - timedelta(seconds=stuck_after), limit=limit)
            ids = [row["id"] for row in found]
        synced = []
        for row_id in ids:
            now_row = await sync(self, row_id)
            if now_row is not None:
                synced.append(now_row)
        telemetry.emit("rindle.repair", action="sync_streaming", asset_id=asset_id,
                       profile=None, count=len(synced), outcome="ok")
        return synced

    async def upload(self, profile: type[Profile] | str, file: Any, *,
                     filename: str | None = None, content_type: str | None = None,
                     byte_size: int | None = None, checksum: str | None = None) -> UploadResult:
        """Server-side upload, streamed to storage, verified like a direct one."""
        return await self.broker.upload(profile, file, filename=filename,
                                        content_type=content_type, byte_size=byte_size,
                                        checksum=checksum)

    # --- multipart (S3) -------------------------------------------------------------------

    async def initiate_multipart_upload(self, profile: type[Profile] | str, *,
                                        filename: str | None, byte_size: int,
                                        content_type: str | None = None,
                                        part_size: int | None = None) -> MultipartSession:
        """Start a browser multipart upload; the storage's upload id stays server-side."""
        return await _multipart.initiate_multipart_upload(
            self, profile, filename=filename, byte_size=byte_size, content_type=content_type,
            part_size=part_size)

    async def sign_multipart_part(self, session_id: str, part_number: int) -> UploadTicket:
        """Where to PUT one part (its size is bound into the signature)."""
        return await _multipart.sign_multipart_part(self, session_id, part_number)

    async def sign_multipart_parts(self, session_id: str,
                                   part_numbers: Sequence[int]) -> dict[int, UploadTicket]:
        """Sign several parts in one call."""
        return await _multipart.sign_multipart_parts(self, session_id, part_numbers)

    async def list_uploaded_parts(self, session_id: str) -> list[dict[str, Any]]:
        """The parts storage already has, so a client can resume after a reload."""
        return await _multipart.list_uploaded_parts(self, session_id)

    async def complete_multipart_upload(self, session_id: str,
                                        parts: Sequence[dict[str, Any]]) -> UploadResult:
        """Check the part list, complete it in storage, then verify like any upload."""
        return await _multipart.complete_multipart_upload(self, session_id, parts)

    async def abort_multipart_upload(self, session_id: str) -> UploadSession:
        """Abort in storage, mark the session aborted and purge the staged asset."""
        return await _multipart.abort_multipart_upload(self, session_id)

    # --- native resumable sessions (GCS) -------------------------------------------------

    async def initiate_resumable_session(self, profile: type[Profile] | str, *,
                                         filename: str | None, byte_size: int,
                                         content_type: str | None = None,
                                         origin: str | None = None) -> ResumableSession:
        """Start a native resumable upload (GCS): the client gets the store's session URI
        and sends the chunks straight to it. See ``rindle.upload.resumable``."""
        return await _resumable.initiate_resumable_session(
            self, profile, filename=filename, byte_size=byte_size, content_type=content_type,
            origin=origin)

    async def resumable_session_status(self, session_id: str) -> ResumableStatus:
        """How many bytes the store holds; a finished upload is verified on the way."""
        return await _resumable.resumable_session_status(self, session_id)

    async def cancel_resumable_session(self, session_id: str) -> UploadSession:
        """Drop the store's session and purge the staged asset."""
        return await _resumable.cancel_resumable_session(self, session_id)

    async def asset(self, asset_id: str) -> Asset:
        """The asset row; NotFound when there is none."""
        return await self.repo.require_asset(asset_id)

    async def attach(self, asset_id: str, owner: Any, slot: str) -> Attachment:
        """Attach an asset to ``owner``'s ``slot``, purging a replaced asset after commit."""
        return await _attachments.attach(self, asset_id, owner, slot)

    async def detach(self, owner: Any, slot: str, *, purge: bool = True) -> bool:
        """Empty ``owner``'s ``slot``; idempotent."""
        return await _attachments.detach(self, owner, slot, purge=purge)

    async def attachment_for(self, owner: Any, slot: str) -> Attachment | None:
        """The attachment in the slot with its asset loaded, or ``None``."""
        return await _attachments.attachment_for(self, owner, slot)

    async def url(self, profile: type[Profile] | str, asset: Asset | str, *, actor: Any = None,
                  request: HTTPConnection | None = None, expires_in: int | None = None,
                  disposition: str | None = None) -> str:
        """The original's delivery URL (signed unless the profile is public)."""
        prof = self.profile(profile)
        row = asset if isinstance(asset, Asset) else await self.asset(asset)
        return await _urls.url(self, prof, row, actor=actor, request=request,
                               expires_in=expires_in, disposition=disposition)

    async def variant_url(self, profile: type[Profile] | str, asset: Asset | str, name: str, *,
                          actor: Any = None, request: HTTPConnection | None = None,
                          expires_in: int | None = None) -> str:
        """A ready variant's delivery URL."""
        prof = self.profile(profile)
        row = asset if isinstance(asset, Asset) else await self.asset(asset)
        return await _urls.variant_url(self, prof, row, name, actor=actor, request=request,
                                       expires_in=expires_in)

    async def reprobe(self, asset_id: str) -> Asset:
        """Re-detect the original's type, size, dimensions and facts; the state is unchanged."""
        from .processing import repair

        return await repair.reprobe(self, asset_id)

    async def requeue_variants(self, asset_id: str, variant_names: list[str] | None = None, *,
                               force: bool = False) -> list[str]:
        """Queue failed/stale/missing/cancelled variants again (ready ones too with force)."""
        from .processing import repair

        return await repair.requeue_variants(self, asset_id, variant_names, force=force)

    async def cancel_processing(self, asset_id: str) -> list[str]:
        """Cancel queued and running variant work; a running job stops at its next checkpoint."""
        from .processing import repair

        return await repair.cancel_processing(self, asset_id)

    async def regenerate_variants(self, *, profile: type[Profile] | str,
                                  variant: str | None = None,
                                  dry_run: bool = False) -> RegenerateReport:
        """Mark variants built from an old recipe stale and queue them with missing ones
        (``dry_run``: count what that would do, change nothing)."""
        from .processing import repair

        return await repair.regenerate_variants(self, profile, variant=variant,
                                                dry_run=dry_run)

    async def backfill_metadata(self, *, profile: type[Profile] | str, restart: bool = False,
                                progress: Any = None) -> BackfillReport:
        """Run the analyzers again over every stored asset of ``profile``, never changing
        a state; an interrupted run continues where it stopped (``restart`` begins again).
        Returns a ``rindle.ops.backfill.BackfillReport``."""
        from .ops.backfill import backfill_metadata

        return await backfill_metadata(self, profile=profile, restart=restart,
                                       progress=progress)

    async def purges(self, *, asset_id: str | None = None, limit: int = 100) -> list[Any]:
        """What was purged and why, newest first."""
        return await self.repo.purges(asset_id=asset_id, limit=limit)

    # --- operating ---------------------------------------------------------------------

    async def runtime_status(self, *, profile: type[Profile] | str | None = None,
                             limit: int = 5,
                             streaming_stuck_after: float = 3600.0) -> dict[str, Any]:
        """Counts by state, stuck or failed work with samples, and the repair for each.

        See ``rindle.ops.status``; ``rindle status`` prints the same report.
        """
        from .ops.status import runtime_status

        return await runtime_status(self, profile=profile, limit=limit,
                                    streaming_stuck_after=streaming_stuck_after)

    async def expire_uploads(self, *, dry_run: bool = False,
                             limit: int = 1000) -> CleanupReport:
        """Expire upload sessions abandoned past their expiry and queue their purge.

        The runtime's sweeper already does this every ``sweep_interval``; returns a
        ``rindle.ops.cleanup.CleanupReport``.
        """
        from .ops.cleanup import expire_uploads

        return await expire_uploads(self, dry_run=dry_run, limit=limit)

    async def reconcile_storage(self, *, profile: type[Profile] | str | None = None,
                                dry_run: bool = True, delete_orphans: bool = False,
                                orphan_grace: float = 86400.0) -> ReconcileReport:
        """Compare rows and stored objects both ways; a dry run unless ``dry_run=False``.

        Lost variant files are marked ``missing`` (``requeue_variants`` rebuilds them), lost
        originals reported, and objects no row names (older than ``orphan_grace``
        seconds) listed, or deleted with ``delete_orphans``. Returns a
        ``rindle.ops.reconcile.ReconcileReport``.
        """
        from .ops.reconcile import reconcile_storage

        return await reconcile_storage(self, profile=profile, dry_run=dry_run,
                                       delete_orphans=delete_orphans, orphan_grace=orphan_grace)

    async def preview_owner_erasure(self, owner: Any) -> ErasurePlan:
        """What ``erase_owner`` would detach and purge; changes nothing.

        Returns a ``rindle.ops.erasure.ErasurePlan``.
        """
        from .ops.erasure import plan_owner_erasure

        return await plan_owner_erasure(self, owner)

    async def erase_owner(self, owner: Any) -> ErasurePlan:
        """Detach all of ``owner``'s slots and purge the assets no other owner uses.

        ``owner`` is an object with an ``id`` or a ``(type, id)`` pair, as for ``attach``.
        The purges are queued in the same commit and logged with reason ``owner_erased``.
        """
        from .ops.erasure import erase_owner

        return await erase_owner(self, owner)

    async def preview_batch_owner_erasure(self, owners: Sequence[Any], *,
                                          max_owners: int = 1000) -> BatchErasure:
        """``preview_owner_erasure`` for many owners (see ``erase_batch_owner_erasure``);
        a ``rindle.ops.erasure.BatchErasure``."""
        from .ops.erasure import batch_owner_erasure

        return await batch_owner_erasure(self, owners, preview=True, max_owners=max_owners)

    async def erase_batch_owner_erasure(self, owners: Sequence[Any], *,
                                        max_owners: int = 1000) -> BatchErasure:
        """``erase_owner`` for many owners. Duplicates count once; an empty batch or one
        over ``max_owners`` is refused (``invalid_batch``) before any work. One transaction
        per owner, in order; the first owner that fails stops the batch with
        ``BatchOwnerFailed`` (code ``batch_owner_failed``) carrying the report of the
        owners already erased. Running the same batch again after the fix is safe."""
        from .ops.erasure import batch_owner_erasure

        return await batch_owner_erasure(self, owners, preview=False, max_owners=max_owners)

    async def doctor(self) -> DoctorReport:
        """Check the configuration and every service it depends on; never raises for a
        service that is down. Returns a ``rindle.ops.doctor.DoctorReport``."""
        from .ops.doctor import run_doctor

        return await run_doctor(self)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for in-process jobs to finish (inline queue only; a no-op for rq)."""
        if isinstance(self.queue, InlineQueue):
            await self.queue.join(timeout)
