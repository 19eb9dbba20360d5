"""Which database this is: a random id kept in the database, and the fingerprint made of it.

Processes of two runtimes may share one Redis (a staging worker on production's Redis). Each
says which database it serves with a fingerprint, so a worker can refuse a job that is not its
database's, and the doctor can name workers of another one.

The fingerprint is built from facts read *from* the database, never from its URL: the web
process and the workers may reach the same database through different URLs (a pooler, a
service name, ``localhost`` vs an address), and they must still agree; two databases with the
same URL on different hosts must still differ.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from ..logs import get_logger
from .db import Store

__all__ = ["DATABASE_ID", "META", "database_id", "fingerprint"]

log = get_logger("rindle.model")

META = "rindle_meta"
DATABASE_ID = "database_id"


async def database_id(store: Store, *, create: bool = True) -> str | None:
    """The database's random id; ``None`` when it cannot be read (not migrated yet).

    Migration 0004 makes the row. If it is gone (a TRUNCATE of every Rindle table, a hand
    edit) and ``create`` is true, a new one is made: concurrent processes race on the primary
    key and all read back the winner. Call it outside a transaction: on PostgreSQL a missing
    table would abort the caller's.
    """
    select = f"SELECT value FROM {META} WHERE name = :name"
    try:
        row = await store.fetch_one(select, {"name": DATABASE_ID})
        if row is None and create:
            await store.execute(
                f"INSERT INTO {META} (name, value, created_at) VALUES (:name, :value, :at)"
                " ON CONFLICT (name) DO NOTHING",
                {"name": DATABASE_ID, "value": uuid.uuid4().hex, "at": datetime.now(UTC)})
            row = await store.fetch_one(select, {"name": DATABASE_ID})
    except Exception as exc:
        # Never fatal: without an id, jobs carry no fingerprint and workers fall back to
        # checking that the outbox entry exists, which every version did.
        log.warning("cannot read the database id from %s (%s); is the database migrated?",
                    META, type(exc).__name__)
        return None
    return None if row is None else str(row["value"])


async def fingerprint(store: Store, *, create: bool = True) -> str | None:
    """16 hex digits naming this database, or ``None`` when its id cannot be read.

    On PostgreSQL the database's own name is mixed in: a copy made with ``CREATE DATABASE
    staging TEMPLATE prod`` (or a dump restored under another name) keeps the id row but not
    the name. A dump restored under the *same* name elsewhere keeps both: delete its
    ``database_id`` row and the next process makes a new one.
    """
    ident = await database_id(store, create=create)
    if ident is None:
        return None
    parts = [ident]
    if store.dialect == "postgresql":
        row = await store.fetch_one("SELECT current_database() AS name")
        parts.append(str(row["name"]) if row else "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

