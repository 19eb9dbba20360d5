"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .db import normalize_url

VERSION_TABLE = "rindle_alembic_version"
_HERE = Path(__file__).parent / "migrations"


def _config(url: str) -> Config:
    async_url, _ = normalize_url(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    # Escaped because Config interpolates %-signs (URL-encoded passwords contain them).
    cfg.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run every pending migration up to ``revision``. Blocking: call from a thread."""
    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Undo migrations down to ``revision`` ("base" removes every Rindle table)."""
    command.downgrade(_config(url), revision)


def head_revision() -> str:
    """The newest migration shipped with this version of Rindle."""
    head = ScriptDirectory.from_config(_config("sqlite:///unused.db")).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every revision shipped with this version of Rindle."""
    script = ScriptDirectory.from_config(_config("sqlite:///unused.db"))
    return {s.revision for s in script.walk_revisions()}


def current_revision(url: str) -> str | None:
    """The revision the database is at, or ``None`` when Rindle's tables are absent."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async_url, _ = normalize_url(url)

    async def _read() -> str | None:
        engine = create_async_engine(async_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: MigrationContext.configure(
                        c, opts={"version_table": VERSION_TABLE}
                    ).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(_read())
