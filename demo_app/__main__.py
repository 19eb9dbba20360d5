"""``python -m demo_app``: migrate the database, then serve the demo on http://127.0.0.1:8000."""

from __future__ import annotations

import logging
import os

import uvicorn

from rindle.model import migrate

from .media import media


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    migrate.upgrade(media.database_url)
    uvicorn.run("demo_app.app:app", host=os.environ.get("HOST", "127.0.0.1"),
                port=int(os.environ.get("PORT", "8000")), log_level="info",
                # Event streams never end by themselves: don't wait for them forever.
                timeout_graceful_shutdown=3,
                # The production limits of docs/guides/security.md ("Running in production").
                timeout_keep_alive=5, limit_concurrency=2048,
                h11_max_incomplete_event_size=16 * 1024)


if __name__ == "__main__":
    main()
