"""The console's own reads, for pages the repository has no query for.

Written as the repository writes SQL (plain statements in the subset SQLite and PostgreSQL
share, ``:name`` placeholders, run through ``repo.db``), and kept here rather than in
``model/repo.py`` because nothing but the console asks these questions. The lists read a
keyset window (``paging.py``) both ways, never an OFFSET.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..model.records import Asset, UploadSession
from ..model.repo import ASSETS, ATTACHMENTS, SESSIONS, Repo
from .paging import FIRST, Keyset, Window, seek

#: The session columns a page may show: never ``session_uri`` (a bearer credential for the
#: upload) or ``multipart_upload_id`` (the storage's handle), nor the part list and lease.
SESSION_COLUMNS = ("id", "asset_id", "profile", "state", "strategy", "upload_key", "expires_at",
                   "filename", "declared_content_type", "declared_byte_size", "verified_at",
                   "failure_reason", "last_known_offset", "resumable_protocol", "created_at",
                   "updated_at")


#: How the assets list is paged: by id.
ASSET_KEYS: Keyset[Asset] = Keyset(name="assets", key=lambda a: (a.id,))
#: How the upload sessions list is paged: newest first, the id breaking ties.
SESSION_KEYS: Keyset[UploadSession] = Keyset(
    name="sessions", key=lambda s: (s.created_at, s.id), parts=(datetime, str))


async def assets_page(repo: Repo, *, state: str | None = None, profile: str | None = None,
                      owner: tuple[str, str] | None = None, window: Window = FIRST,
                      limit: int = 50) -> list[Asset]:
    """Assets by id in ``window`` (keyset pagination: no OFFSET to rescan), in one state,
    of one profile and attached to one owner (``(type, id)``), each filter optional.
    A backward window's rows come nearest its key first (by id descending)."""
    params: dict[str, Any] = {"limit": limit}
    conds = []
    if state:
        conds.append("state = :state")
        params["state"] = state
    if profile:
        conds.append("profile = :profile")
        params["profile"] = profile
    if owner is not None:
        # A subquery, not a join: an asset in two of the owner's slots is listed once.
        conds.append(f"id IN (SELECT asset_id FROM {ATTACHMENTS}"
                     " WHERE owner_type = :owner_type AND owner_id = :owner_id)")
        params["owner_type"], params["owner_id"] = owner
    cond, order = seek(("id",), window, params)
    if cond:
        conds.append(cond)
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    rows = await repo.db.fetch_all(
        f"SELECT * FROM {ASSETS}{where} ORDER BY {order} LIMIT :limit", params)
    return [Asset.from_row(r) for r in rows]


async def sessions_page(repo: Repo, *, state: str | None = None, window: Window = FIRST,
                        limit: int = 100) -> list[UploadSession]:
    """Upload sessions newest first (in one state, if given) in ``window``, without their
    secret columns. A backward window's rows come nearest its key first (oldest first)."""
    params: dict[str, Any] = {"limit": limit}
    conds = []
    if state:
        conds.append("state = :state")
        params["state"] = state
    cond, order = seek(("created_at", "id"), window, params, descending=True)
    if cond:
        conds.append(cond)
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    columns = ", ".join(SESSION_COLUMNS)
    rows = await repo.db.fetch_all(
        f"SELECT {columns} FROM {SESSIONS}{where} ORDER BY {order} LIMIT :limit", params)
    return [UploadSession.from_row(r) for r in rows]


__all__ = ["ASSET_KEYS", "SESSION_COLUMNS", "SESSION_KEYS", "assets_page", "sessions_page"]
