"""The demo app with one test-only page beside it on the same origin: ``/uppy/`` serves the
files in ``$RINDLE_UPPY_PAGE`` (a page tests/e2e/test_uppy_tus.py bundles with @uppy/core and
@uppy/tus). demo_app/ itself is unchanged; this wraps it.

    RINDLE_UPPY_PAGE=/tmp/page PORT=8001 python -m tests.e2e.uppy_app
"""

from __future__ import annotations

import os

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from demo_app.app import app as demo
from demo_app.app import lifespan
from demo_app.media import media
from rindle.model import migrate

app = Starlette(
    routes=[
        Mount("/uppy", app=StaticFiles(directory=os.environ["RINDLE_UPPY_PAGE"], html=True)),
        Mount("", app=demo),
    ],
    lifespan=lifespan,
)


def main() -> None:
    migrate.upgrade(media.database_url)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="info",
                timeout_graceful_shutdown=3)


if __name__ == "__main__":
    main()
