"""The upload events of every flow, emitted the same way (see ``rindle.telemetry``).

Each flow (presigned PUT and POST, multipart, tus, GCS sessions, server-side, a streaming
provider's direct upload) times its own initiation and completion around everything it
does, the storage calls included; these helpers keep the keys of its events alike.
"""

from __future__ import annotations

import time
from typing import Any

from .. import telemetry
from ..model.records import UploadSession


def fields(session: UploadSession) -> dict[str, Any]:
    """The metadata every upload event carries."""
    return {"asset_id": session.asset_id, "profile": session.profile,
            "session_id": session.id, "strategy": session.strategy}


def initiating(profile: str, strategy: str) -> telemetry.Span:
    """The ``rindle.upload.initiate`` span; ``initiated`` fills it in once the session exists."""
    return telemetry.span("rindle.upload.initiate", profile=profile, strategy=strategy)


def initiated(span: telemetry.Span, session: UploadSession) -> None:
    span.set(asset_id=session.asset_id, session_id=session.id,
             bytes=session.declared_byte_size)


def completing(session: UploadSession) -> telemetry.Span:
    """The ``rindle.upload.complete`` span of this session's completion."""
    return telemetry.span("rindle.upload.complete", **fields(session))


def signed(session: UploadSession, *, started: float, ttl: float | None,
           parts: int = 1) -> None:
    """``rindle.upload.sign``; ``started`` is the ``time.perf_counter()`` before signing."""
    telemetry.emit("rindle.upload.sign", **fields(session), ttl=ttl, parts=parts,
                   duration=time.perf_counter() - started)


def aborted(session: UploadSession, *, started: float) -> None:
    telemetry.emit("rindle.upload.abort", **fields(session),
                   duration=time.perf_counter() - started)


def status(session: UploadSession, *, started: float, offset: int | None) -> None:
    """``rindle.upload.status``: a resumable upload was asked how far it got."""
    telemetry.emit("rindle.upload.status", **fields(session), state=session.state,
                   offset=offset, bytes=session.declared_byte_size,
                   duration=time.perf_counter() - started)


def received(session: UploadSession, *, started: float, size: int | None,
             offset: int | None, outcome: str) -> None:
    """``rindle.upload.receive``: ``size`` bytes Rindle's own routes took."""
    telemetry.emit("rindle.upload.receive", **fields(session), bytes=size, offset=offset,
                   outcome=outcome, duration=time.perf_counter() - started)
