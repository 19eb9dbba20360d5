"""Database URLs: which dialect one names, where it points, how to show it without a password."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode


def normalize_url(url: str) -> tuple[str, str]:
    """The SQLAlchemy async URL (for Alembic) and the dialect name, from any spelling."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}", "postgresql"
    if base == "sqlite":
        if rest in ("/:memory:", "") or ":memory:" in rest and "cache=shared" not in rest:
            # Each connection would get its own empty in-memory database.
            raise ValueError(
                "an in-memory SQLite database is per-connection: use a file "
                "(sqlite:///./rindle.db) or a shared cache (sqlite:///file:x?mode=memory"
                "&cache=shared&uri=true)"
            )
        return f"sqlite+aiosqlite://{rest}", "sqlite"
    raise ValueError(f"unsupported database {scheme!r}: use sqlite:/// or postgresql://")


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and status output."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url
    return url


def sqlite_target(url: str) -> tuple[str, bool]:
    """(database, uri) for ``sqlite3.connect`` from a SQLAlchemy-style SQLite URL.

    ``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db``
    absolute; ``?uri=true`` passes the rest as an SQLite URI (``file:x?mode=memory``).
    """
    rest = url.partition("://")[2]
    database, _, query = rest[1:].partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    uri = any(k == "uri" and v.lower() in ("1", "true", "yes") for k, v in params)
    others = [(k, v) for k, v in params if k != "uri"]
    if others and not uri:
        raise ValueError(f"unsupported SQLite URL options {urlencode(others)!r}: only "
                         "uri=true (with the options of an SQLite URI) is understood")
    if uri and others:
        database = f"{database}?{urlencode(others)}"
    return database, uri


def pg_dsn(url: str) -> str:
    """The libpq DSN asyncpg takes, from any spelling of a PostgreSQL URL (``+asyncpg``...)."""
    return "postgresql://" + url.partition("://")[2]
