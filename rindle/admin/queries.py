"""The console's own reads, for pages the repository has no query for.

Written as the repository writes SQL (plain statements in the subset SQLite and PostgreSQL
share, ``:name`` placeholders, run through ``repo.db``), and kept here rather than in
``model/repo.py`` because nothing but the console asks these questions.
"""

from __future__ import annotations

from typing import Any

from ..model.records import Asset, UploadSession
from ..model.repo import ASSETS, ATTACHMENTS, SESSIONS, Repo

#: The session columns a page may show: never ``session_uri`` (a bearer credential for the
#: upload) or ``multipart_upload_id`` (the storage's handle), nor the part list and lease.
SESSION_COLUMNS = ("id", "asset_id", "profile", "state", "strategy", "upload_key", "expires_at",
                   "filename", "declared_content_type", "declared_byte_size", "verified_at",
                   "failure_reason", "last_known_offset", "resumable_protocol", "created_at",
                   "updated_at")


async def assets_page(repo: Repo, *, state: str | None = None, profile: str | None = None,
                      owner: tuple[str, str] | None = None, after: str | None = None,
                      limit: int = 50) -> list[Asset]:
    """Assets by id after ``after`` (keyset pagination: no OFFSET to rescan), in one state,
    of one profile and attached to one owner (``(type, id)``), each filter optional."""
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
    if after:
        conds.append("id > :after")
        params["after"] = after
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    rows = await repo.db.fetch_all(f"SELECT * FROM {ASSETS}{where} ORDER BY id LIMIT :limit",
                                   params)
    return [Asset.from_row(r) for r in rows]


async def recent_sessions(repo: Repo, *, state: str | None = None,
                          limit: int = 100) -> list[UploadSession]:
    """The newest upload sessions (in one state, if given), without their secret columns."""
    params: dict[str, Any] = {"limit": limit}
    where = ""
    if state:
        where, params["state"] = " WHERE state = :state", state
    columns = ", ".join(SESSION_COLUMNS)
    rows = await repo.db.fetch_all(
        f"SELECT {columns} FROM {SESSIONS}{where} ORDER BY created_at DESC, id LIMIT :limit",
        params)
    return [UploadSession.from_row(r) for r in rows]


__all__ = ["SESSION_COLUMNS", "assets_page", "recent_sessions"]
