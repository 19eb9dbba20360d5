"""The rq workers ``rindle worker`` runs: they say which database they serve, refuse quietly.

Two additions to rq's workers:

* the worker hash in Redis carries the runtime's database fingerprint and redacted URL, so
  ``rindle doctor`` of any runtime can tell which workers on its queue serve another database
  (the fields live and expire with rq's own registration);
* a job refused as another database's (``ownership.ForeignJob``) is logged as one warning
  line, not as rq's error with a traceback: the message already says everything, and a
  stray worker refusing hundreds of jobs must not bury the log.

``RindleWorker`` runs each job in its own process, like the inline queue does in the web
process: rq's forking worker spent ~100 ms per job on the fork, the copy-on-write faults of
a large parent and connecting the runtime afresh (``bench/rq_burst.py``), as much as a small
job's work. ``ForkingRindleWorker`` (``rindle worker --fork``) keeps rq's work horse per job,
for processors that leak memory or may crash the process.

Imported only by the CLI: it needs rq at import time.
"""

from __future__ import annotations

from typing import Any

from rq import SimpleWorker, Worker
from rq.job_lifecycle import call_exception_handlers

from .ownership import ForeignJob, worker_fields


class _Announcing:
    """What both workers add: announce the runtime's database, one line for a refusal."""

    log: Any
    _exc_handlers: list[Any]

    def __init__(self, *args: Any, fingerprint: str | None = None, database: str = "",
                 app: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rindle_fields = worker_fields(fingerprint=fingerprint, database=database, app=app)

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = super().serialize()  # type: ignore[misc]
        data.update(self.rindle_fields)
        return data

    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        error = exc_info[1] if len(exc_info) > 1 else None
        if isinstance(error, ForeignJob):
            self.log.warning("%s", error)
            # The adopter's handlers (an error tracker) still hear of it.
            call_exception_handlers(self._exc_handlers, job, *exc_info)
            return
        super().handle_exception(job, *exc_info)  # type: ignore[misc]


class RindleWorker(_Announcing, SimpleWorker):
    """Runs every job in this process, with the runtime kept connected between jobs."""


class ForkingRindleWorker(_Announcing, Worker):
    """rq's forking worker: a fresh work horse, and fresh connections, for every job."""
