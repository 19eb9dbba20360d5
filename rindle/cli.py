"""``rindle ...``: the operator's commands (migrate, worker, sweep)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from .app import Rindle

console = Console(stderr=True)


def _runtime(app_path: str) -> Rindle:
    from .processing.jobs import load_runtime

    # Like uvicorn: the app module is looked up from the current directory first.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return load_runtime(app_path)


def _database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    if args.app:
        return str(_runtime(args.app).database_url)
    env = os.environ.get("RINDLE_DATABASE_URL")
    if env:
        return env
    console.print("[red]error:[/] give --database-url, --app or RINDLE_DATABASE_URL")
    raise SystemExit(2)


def cmd_migrate(args: argparse.Namespace) -> int:
    from .model import migrate
    from .model.db import redact_url

    url = _database_url(args)
    before = migrate.current_revision(url)
    with console.status(f"migrating {redact_url(url)} to {args.revision}"):
        migrate.upgrade(url, args.revision)
    after = migrate.current_revision(url)
    if before == after:
        console.print(f"[green]up to date[/] at revision {after}")
    else:
        console.print(f"[green]migrated[/] {before or 'empty'} -> {after}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .processing.jobs import set_worker_runtime
    from .processing.queue import RQQueue

    media = _runtime(args.app)
    queue = media.queue
    if not isinstance(queue, RQQueue):
        console.print(f"[red]error:[/] {args.app} uses {queue!r}; workers are for rq "
                      "(Rindle(queue='redis://...'))")
        return 2
    if queue.app_path is None:
        queue.app_path = args.app
    set_worker_runtime(media)
    from rq import Worker

    rq_queue = queue.rq_queue()
    worker = Worker([rq_queue], connection=rq_queue.connection, name=args.name)
    console.print(f"[green]rindle worker[/] on queue {queue.name!r} ({queue!r})")
    worker.work(burst=args.burst, with_scheduler=not args.burst,
                logging_level=args.log_level.upper())
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    media = _runtime(args.app)

    async def run() -> int:
        async with media.connected():
            sent = await media.outbox.sweep(include_recent=args.all)
            await media.drain(timeout=args.timeout)
            return sent

    sent = asyncio.run(run())
    console.print(f"re-dispatched {sent} outbox entr{'y' if sent == 1 else 'ies'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rindle", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="bring the database to Rindle's newest schema")
    p.add_argument("--database-url", help="e.g. postgresql://user@host/db or sqlite:///media.db")
    p.add_argument("--app", help="module:attribute of your Rindle runtime")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("worker", help="run an rq worker for the runtime's jobs")
    p.add_argument("--app", required=True, help="module:attribute, e.g. demo_app.media:media")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--name", default=None)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("sweep", help="dispatch outbox entries that were left behind")
    p.add_argument("--app", required=True)
    p.add_argument("--all", action="store_true", help="include entries written just now")
    p.add_argument("--timeout", type=float, default=300.0)
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "worker" else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except Exception as exc:
        from .errors import RindleError

        if isinstance(exc, RindleError):
            console.print(f"[red]error[/] [{exc.code}]: {exc.message}")
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
