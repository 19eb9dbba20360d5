"""``rindle ...``: the operator's commands (migrate, worker, sweep, status, cleanup, doctor)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from .app import Rindle
    from .ops.cleanup import CleanupReport
    from .ops.erasure import BatchErasure
    from .ops.reconcile import ReconcileReport
    from .processing.repair import RegenerateReport

console = Console(stderr=True)


def _runtime(app_path: str) -> Rindle:
    from .processing.jobs import load_runtime

    # Like uvicorn: the app module is looked up from the current directory first.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    from .app import Rindle

    media = load_runtime(app_path)
    if not isinstance(media, Rindle):
        raise TypeError(f"{app_path} is a {type(media).__name__}, not a Rindle runtime")
    return media


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
    from .model.urls import redact_url
    from .processing.jobs import close_worker_runtime, prepare_worker, set_worker_runtime
    from .processing.queue import RQQueue

    media = _runtime(args.app)
    queue = media.queue
    if not isinstance(queue, RQQueue):
        console.print(f"[red]error:[/] {escape(args.app)} uses {escape(repr(queue))}; "
                      "workers are for rq (Rindle(queue='redis://...'))")
        return 2
    if queue.app_path is None:
        queue.app_path = args.app
    # Read once, before rq forks: every work horse inherits it (and the imports a job
    # needs), and jobs of another database are refused without opening a connection.
    queue.fingerprint = prepare_worker(media)
    if queue.fingerprint is None:
        console.print("[yellow]warning:[/] the database id could not be read (is the "
                      "database migrated?); this worker cannot tell its jobs from another "
                      "database's and does not listen on its own queue")
    # Without --fork the jobs run in this process and share one connected runtime.
    set_worker_runtime(media, keep_connected=not args.fork)
    from .processing.rq_worker import ForkingRindleWorker, RindleWorker

    queues = queue.worker_queues()
    worker_class = ForkingRindleWorker if args.fork else RindleWorker
    worker = worker_class(queues, connection=queues[0].connection, name=args.name,
                          fingerprint=queue.fingerprint,
                          database=redact_url(media.database_url), app=args.app)
    names = ", ".join(repr(q.name) for q in queues)
    mode = "a work horse per job" if args.fork else "jobs in this process"
    console.print(f"[green]rindle worker[/] on {escape(names)} ({escape(repr(queue))}, "
                  f"{mode}), database {escape(redact_url(media.database_url))} "
                  f"({queue.fingerprint or 'no fingerprint'})")
    try:
        worker.work(burst=args.burst, with_scheduler=not args.burst,
                    logging_level=args.log_level.upper())
    finally:
        close_worker_runtime()
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


@contextlib.contextmanager
def _progress(label: str, *, total: int | None = None,
              disable: bool = False) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on stderr (a counting spinner when ``total`` is unknown);
    yields the ``progress(n)`` callback the ops functions take."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    columns = ((TextColumn(label), BarColumn(), MofNCompleteColumn()) if total is not None
               else (SpinnerColumn(), TextColumn(label + ": {task.completed}")))
    with Progress(*columns, console=console, transient=True, disable=disable) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _json_flags(p: argparse.ArgumentParser) -> None:
    """``--format text|json`` and its short form ``--json``."""
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="how to print the report")
    p.add_argument("--json", action="store_true", help="same as --format json")


def _preview_flags(p: argparse.ArgumentParser, acts: str) -> None:
    """A destructive command previews unless told to act: the same report either way."""
    p.add_argument("--execute", action="store_true", help=f"{acts} (without it: a preview "
                   "that changes nothing)")
    p.add_argument("--dry-run", action="store_true",
                   help="preview, change nothing (the default; kept for scripts)")


def _previewing(args: argparse.Namespace) -> bool:
    if args.execute and args.dry_run:
        raise SystemExit("rindle: --execute and --dry-run contradict each other")
    return not args.execute


def _print_json(data: object) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    media = _runtime(args.app)

    async def run() -> dict[str, object]:
        async with media.connected(start_queue=False):
            return await media.runtime_status(profile=args.profile, limit=args.limit)

    report = asyncio.run(run())
    if args.json:
        _print_json(report)
        return 0
    out = Console()
    counts = Table(title="rows by state", show_lines=False)
    counts.add_column("table")
    counts.add_column("total", justify="right")
    counts.add_column("states")
    for section in ("assets", "variants", "upload_sessions", "outbox"):
        data = report[section]
        assert isinstance(data, dict)
        states = ", ".join(f"{k} {v}" for k, v in data["counts"].items()) or "none"
        counts.add_row(section, str(data["total"]), escape(states))
    out.print(counts)
    recommendations = report["recommendations"]
    assert isinstance(recommendations, list)
    if not recommendations:
        out.print("[green]nothing needs attention[/]")
        return 0
    found = Table(title="findings")
    for column in ("class", "count", "oldest", "samples", "what to do"):
        found.add_column(column)
    for section in ("variants", "upload_sessions", "assets", "outbox"):
        data = report[section]
        assert isinstance(data, dict)
        for f in data["findings"]:
            action = next(r for r in recommendations if r["class"] == f["class"])
            samples = "\n".join(_describe(s) for s in f["samples"])
            found.add_row(f["class"], str(f["count"]), _duration(f["oldest_age_seconds"]),
                          escape(samples), escape(f"{action['action']}: {action['how']}"))
    out.print(found)
    return 0


def _describe(sample: dict[str, object]) -> str:
    who = sample.get("variant") and f"{sample['asset_id']}/{sample['variant']}"
    who = who or sample.get("session_id") or sample.get("job_id") or sample.get("asset_id")
    error = sample.get("error")
    return f"{who}" + (f" ({error})" if error else "")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def cmd_cleanup(args: argparse.Namespace) -> int:
    from .ops.cleanup import expire_uploads, sweep_scratch_dirs

    media = _runtime(args.app)

    dry_run = _previewing(args)

    async def run() -> CleanupReport:
        async with media.connected(start_queue=True):
            with _progress("expiring abandoned uploads", disable=args.json) as advance:
                report = await expire_uploads(media, dry_run=dry_run, limit=args.limit,
                                              progress=advance)
            if args.scratch_older_than is not None:
                await asyncio.to_thread(sweep_scratch_dirs, media, dry_run=dry_run,
                                        older_than=args.scratch_older_than, report=report)
            if not dry_run:
                await media.drain(timeout=args.timeout)  # inline queue: purge before exit
            return report

    report = asyncio.run(run())
    if args.json:
        _print_json(report.to_dict())
    else:
        verb = "would expire" if report.dry_run else "expired"
        console.print(f"{'[DRY RUN] ' if report.dry_run else ''}{verb} "
                      f"{report.sessions_expired} of {report.sessions_found} abandoned upload "
                      f"session(s); {report.sessions_skipped} finished meanwhile")
        if args.scratch_older_than is not None:
            verb = "would remove" if report.dry_run else "removed"
            console.print(f"{verb} {report.scratch_dirs_removed} scratch director"
                          f"{'y' if report.scratch_dirs_removed == 1 else 'ies'}")
        if report.provider_events_pruned:
            verb = "would forget" if report.dry_run else "forgot"
            console.print(f"{verb} {report.provider_events_pruned} streaming webhook event "
                          "id(s) older than 30 days")
        if report.dry_run:
            console.print("nothing was changed; run again with --execute to do it")
        for error in report.errors:
            console.print(f"[red]error:[/] {escape(error)}")
    return 1 if report.errors else 0


def cmd_requeue(args: argparse.Namespace) -> int:
    from .errors import RindleError

    states = [s for s, wanted in (("failed", args.failed), ("missing", args.missing)) if wanted]
    if not args.asset and not states:
        console.print("[red]error:[/] give --asset ID (repeatable), --failed or --missing")
        return 2
    media = _runtime(args.app)
    names = args.variant or None

    async def run() -> tuple[int, int, list[str]]:
        assets = queued = 0
        problems: list[str] = []
        async with media.connected():
            ids: list[str] = list(args.asset or [])
            if states:
                after = None
                while batch := await media.repo.asset_ids_with_variants_in(
                        states, profile=args.profile, after=after, limit=500):
                    ids.extend(batch)
                    after = batch[-1]
            with _progress("requeueing", total=len(ids)) as advance:
                for asset_id in ids:
                    try:
                        done = await media.requeue_variants(asset_id, names, force=args.force)
                    except RindleError as exc:
                        problems.append(f"{asset_id}: [{exc.code}] {exc.message}")
                    else:
                        assets += 1 if done else 0
                        queued += len(done)
                    advance(1)
            await media.drain(timeout=args.timeout)
        return assets, queued, problems

    assets, queued, problems = asyncio.run(run())
    console.print(f"queued {queued} variant(s) of {assets} asset(s)")
    for problem in problems:
        console.print(f"[red]error:[/] {escape(problem)}")
    return 1 if problems else 0


def cmd_streaming_sync(args: argparse.Namespace) -> int:
    from .errors import RindleError

    media = _runtime(args.app)

    async def run() -> tuple[list[Any], list[str]]:
        problems: list[str] = []
        rows: list[Any] = []
        async with media.connected():
            targets: list[str | None] = list(args.asset or []) or [None]
            with _progress("syncing", total=len(targets)) as advance:
                for asset_id in targets:
                    try:
                        rows += await media.sync_streaming(asset_id,
                                                           stuck_after=args.stuck_after,
                                                           limit=args.limit)
                    except RindleError as exc:
                        problems.append(f"{asset_id or 'stuck rows'}: [{exc.code}] "
                                        f"{exc.message}")
                    advance(1)
            await media.drain(timeout=args.timeout)
        return rows, problems

    rows, problems = asyncio.run(run())
    for row in rows:
        console.print(f"asset {row.asset_id} at {row.provider_name}: {row.state}"
                      + (f" ({escape(row.last_sync_error)})" if row.last_sync_error else ""))
    console.print(f"synced {len(rows)} provider asset(s)")
    for problem in problems:
        console.print(f"[red]error:[/] {escape(problem)}")
    return 1 if problems else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    media = _runtime(args.app)

    async def run() -> Any:
        async with media.connected(start_queue=False):
            total = await media.repo.count_by_state("asset", profile=args.profile)
            stored = sum(n for state, n in total.items() if state in (
                "available", "processing", "transcoding", "ready", "degraded"))
            with _progress("assets read", total=stored, disable=args.json) as advance:
                return await media.backfill_metadata(profile=args.profile,
                                                     restart=args.restart, progress=advance)

    report = asyncio.run(run())
    if args.json:
        _print_json(report.to_dict())
    else:
        resumed = f" (resumed after {report.resumed_after})" if report.resumed_after else ""
        console.print(f"read {report.assets} asset(s) of {escape(report.profile)}{resumed}: "
                      f"{report.changed} changed, {len(report.failed)} failed; no state was "
                      "changed")
        for item in report.failed:
            console.print(f"[red]error:[/] {escape(item['asset_id'])}: "
                          f"{escape('[' + item['code'] + '] ' + item['message'])}")
    return 1 if report.failed else 0


def cmd_regenerate(args: argparse.Namespace) -> int:
    media = _runtime(args.app)
    dry_run = _previewing(args)

    async def run() -> RegenerateReport:
        async with media.connected():
            verb = "previewing" if dry_run else "regenerating"
            with console.status(f"{verb} {args.profile} variants"):
                report = await media.regenerate_variants(profile=args.profile,
                                                         variant=args.variant,
                                                         dry_run=dry_run)
                if not dry_run:
                    await media.drain(timeout=args.timeout)
            return report

    report = asyncio.run(run())
    if args.json:
        _print_json(report.to_dict())
        return 0
    if dry_run:
        console.print(f"[DRY RUN] would mark {report.marked_stale} stale, plan "
                      f"{report.planned_missing} missing, queue {report.queued}; run again "
                      "with --execute to do it")
    else:
        console.print(f"{report.marked_stale} marked stale, {report.planned_missing} missing "
                      f"planned, {report.queued} queued")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .ops.reconcile import reconcile_storage

    media = _runtime(args.app)
    dry_run = not args.apply  # --apply, or its other name --execute

    async def run() -> ReconcileReport:
        async with media.connected(start_queue=False):
            with _progress("rows and objects checked", disable=args.json) as advance:
                return await reconcile_storage(
                    media, profile=args.profile, dry_run=dry_run,
                    delete_orphans=args.delete_orphans, orphan_grace=args.orphan_grace,
                    progress=advance)

    report = asyncio.run(run())
    if args.json:
        _print_json(report.to_dict())
    else:
        prefix = "[DRY RUN] " if dry_run else ""
        console.print(f"{prefix}checked {report.assets_checked} asset(s) and "
                      f"{report.variants_checked} variant(s)")
        for item in report.missing_originals:
            console.print(f"[red]original missing[/] {escape(item['asset_id'])} "
                          f"({escape(item['storage_key'])}, {item['state']})")
        for item in report.missing_variants:
            console.print(f"[yellow]variant missing[/] {escape(item['asset_id'])}/"
                          f"{escape(item['variant'])} ({escape(item['storage_key'])})")
        for item in report.orphans:
            console.print(f"orphan {escape(item['storage'])}:{escape(item['key'])} "
                          f"({item['size']} bytes, {_duration(item['age_seconds'])} old)")
        marked = (f"would mark {len(report.missing_variants)}" if dry_run
                  else f"marked {report.variants_marked_missing}")
        console.print(f"{prefix}{marked} variant(s) missing (`rindle requeue` rebuilds them); "
                      f"{len(report.orphans)} orphan(s), {report.orphans_deleted} deleted")
        for error in report.errors:
            console.print(f"[red]error:[/] {escape(error)}")
    return 1 if report.errors else 0


def _owners(args: argparse.Namespace) -> list[tuple[str, str]]:
    from .ops.erasure import parse_owner, parse_owners_file

    owners = [parse_owner(t) for t in args.owner or []]
    if args.owners_file:
        with open(args.owners_file, encoding="utf-8") as f:
            owners += parse_owners_file(f.read())
    return owners


def cmd_erase(args: argparse.Namespace) -> int:
    from .errors import RindleError
    from .ops.erasure import MAX_OWNERS, BatchOwnerFailed, batch_owner_erasure
    from .processing.queue import InlineQueue

    preview = _previewing(args)
    try:
        owners = _owners(args)
    except RindleError as exc:
        console.print(f"[red]error:[/] {escape(f'[{exc.code}] {exc.message}')}")
        return 1
    if not owners:
        console.print("[red]error:[/] give --owner type:id (repeatable) or --owners-file")
        return 2
    media = _runtime(args.app)
    limit = args.max_owners or MAX_OWNERS

    async def run() -> BatchErasure:
        async with media.connected():
            label = "previewing" if preview else "erasing"
            try:
                with _progress(label, total=len(set(owners)), disable=args.json) as advance:
                    return await batch_owner_erasure(media, owners, preview=preview,
                                                     max_owners=limit, progress=advance)
            finally:
                if not preview:
                    await media.drain(timeout=args.timeout)  # inline queue: purge before exit

    failed: BatchOwnerFailed | None = None
    try:
        result = asyncio.run(run())
    except BatchOwnerFailed as exc:
        failed, result = exc, exc.partial
    summary = result.to_dict()
    if failed is not None:
        summary["error"] = failed.to_dict()["error"]
    if args.json:
        _print_json(summary)
    else:
        verb = ("would purge" if preview else "purged" if isinstance(
            media.queue, InlineQueue) else "queued the purge of")
        console.print(f"{'[DRY RUN] ' if preview else ''}{summary['owners']} owner(s): "
                      f"{summary['slots']} slot(s) detached, {verb} {summary['assets_purged']} "
                      f"asset(s) ({summary['stored_objects']} stored object(s)), kept "
                      f"{summary['assets_kept']} shared with other owners")
        if preview:
            console.print("nothing was changed; run again with --execute to erase")
    if failed is not None:
        console.print(f"[red]error:[/] {escape(f'[{failed.code}] {failed.message}')}")
        console.print("the owners before it are done; fix the cause and run the same batch "
                      "again (it is idempotent)")
        return 1
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rich.table import Table

    media = _runtime(args.app)
    report = asyncio.run(media.doctor())
    if args.json:
        _print_json(report.to_dict())
    else:
        out = Console()
        table = Table(title=f"rindle doctor: {args.app}")
        for column in ("status", "check", "summary", "fix"):
            table.add_column(column)
        style = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "error": "[red]error[/]"}
        for check in report.checks:
            table.add_row(style[check.status], check.id, escape(check.summary),
                          escape(check.fix or ""))
        out.print(table)
        out.print(f"{len(report.checks)} checks: {len(report.errors)} error(s), "
                  f"{len(report.warnings)} warning(s)")
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    return 1 if failed else 0


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
    p.add_argument("--fork", action="store_true",
                   help="run each job in a forked work horse (rq's default: isolates a job's "
                        "memory and crashes, costs ~100 ms per job)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("sweep", help="dispatch outbox entries that were left behind")
    p.add_argument("--app", required=True)
    p.add_argument("--all", action="store_true", help="include entries written just now")
    p.add_argument("--timeout", type=float, default=300.0)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("status", help="counts by state, stuck or failed work, what to do")
    p.add_argument("--app", required=True)
    p.add_argument("--profile", default=None, help="only this profile's rows")
    p.add_argument("--limit", type=int, default=5, help="samples per finding")
    _json_flags(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cleanup", help="expire abandoned uploads and purge what they left")
    p.add_argument("--app", required=True)
    _preview_flags(p, "expire them and purge what they left")
    p.add_argument("--limit", type=int, default=10_000)
    p.add_argument("--scratch-older-than", type=float, default=None, metavar="SECONDS",
                   help="also remove image-job scratch directories older than this")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="how long to wait for in-process purges to finish")
    _json_flags(p)
    p.set_defaults(func=cmd_cleanup)

    p = sub.add_parser("requeue", help="queue failed, stale, missing or cancelled variants again")
    p.add_argument("--app", required=True)
    p.add_argument("--asset", action="append", help="an asset id (repeatable)")
    p.add_argument("--failed", action="store_true", help="every asset with a failed variant")
    p.add_argument("--missing", action="store_true",
                   help="every asset with a missing variant (see rindle reconcile)")
    p.add_argument("--profile", default=None, help="with --failed/--missing: only this profile")
    p.add_argument("--variant", action="append", help="only this variant (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild ready variants too")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="how long to wait for in-process jobs to finish")
    p.set_defaults(func=cmd_requeue)

    p = sub.add_parser("streaming", help="streaming-provider (Mux) operations")
    streaming = p.add_subparsers(dest="streaming_command", required=True)
    p = streaming.add_parser("sync", help="re-read provider assets from the provider's API "
                             "(the repair for lost webhooks)")
    p.add_argument("--app", required=True)
    p.add_argument("--asset", action="append", help="an asset id (repeatable); default: "
                   "every provider asset stuck past --stuck-after")
    p.add_argument("--stuck-after", type=float, default=3600.0, metavar="SECONDS")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=300.0,
                   help="how long to wait for in-process jobs to finish")
    p.set_defaults(func=cmd_streaming_sync)

    p = sub.add_parser("backfill-metadata", help="run the analyzers again over stored assets "
                       "(resumes where an interrupted run stopped)")
    p.add_argument("--app", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--restart", action="store_true",
                   help="begin at the first asset even if an earlier run stopped half-way")
    _json_flags(p)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("regenerate", help="rebuild variants after a recipe changed")
    p.add_argument("--app", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--variant", default=None)
    _preview_flags(p, "mark, plan and queue the variants")
    p.add_argument("--timeout", type=float, default=300.0)
    _json_flags(p)
    p.set_defaults(func=cmd_regenerate)

    p = sub.add_parser("reconcile", help="compare rows and stored objects (a dry run by "
                       "default)")
    p.add_argument("--app", required=True)
    p.add_argument("--profile", default=None)
    p.add_argument("--apply", "--execute", dest="apply", action="store_true",
                   help="mark lost variants missing (otherwise only report)")
    p.add_argument("--delete-orphans", action="store_true",
                   help="with --apply: delete objects no row names")
    p.add_argument("--orphan-grace", type=float, default=86400.0, metavar="SECONDS",
                   help="only objects older than this count as orphans (default a day)")
    _json_flags(p)
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("erase", help="detach an owner's media and purge what nobody else uses")
    p.add_argument("--app", required=True)
    p.add_argument("--owner", action="append", help="type:id, e.g. User:42 (repeatable)")
    p.add_argument("--owners-file", help="a file of owners: JSON (a list of \"type:id\" or "
                   "{\"type\", \"id\"} objects) or type:id lines (# comments allowed)")
    _preview_flags(p, "detach and purge")
    p.add_argument("--max-owners", type=int, default=None,
                   help="refuse a batch of more owners than this (default 1000)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="how long to wait for in-process purges to finish")
    _json_flags(p)
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("doctor", help="check the configuration and the services it needs")
    p.add_argument("--app", required=True)
    _json_flags(p)
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "format", None) == "json":
        args.json = True
    level = logging.INFO if args.command == "worker" else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except Exception as exc:
        from .errors import RindleError

        if isinstance(exc, RindleError):
            console.print(f"[red]error[/] {escape(f'[{exc.code}]: {exc.message}')}")
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
