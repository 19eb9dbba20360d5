"""Alembic environment for Rindle's own tables; runs on SQLite and PostgreSQL async drivers."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from rindle.model.tables import metadata

config = context.config
version_table = config.attributes.get("version_table", "rindle_alembic_version")


def _include_object(obj: object, name: str | None, type_: str, reflected: bool,
                    compare_to: object) -> bool:
    # Only Rindle's tables: adopters keep their own tables in the same database.
    if type_ == "table":
        return bool(name and name.startswith("rindle_"))
    return True


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      version_table=version_table, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
