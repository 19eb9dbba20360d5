"""Every Python sample of the docs runs, so the docs can't rot.

Each page with ```` ```python ```` blocks (docs/**/*.md and README.md) is one test: its
blocks run in page order in one namespace, like a doctest session, with top-level ``await``
allowed (tests/docs/samples.py does the running). A page runs in a fresh temporary directory
(its working directory) with ``RINDLE_SECRET`` set, so a sample that says
``sqlite:///./media.db`` or ``LocalStorage(root="./uploads")`` gets a real database and real
files there; queues are in-process and broadcast in memory unless a page says otherwise.

What a reader should not have to read lives in the page itself, in a hidden chunk just
before or after the sample it serves::

    <!-- sample-test
    media = await sandbox.media(AvatarProfile)   # setup: a connected runtime
    -->
    ```python
    ...the sample...
    ```
    <!-- sample-test
    assert (await media.asset(asset_id)).state == "ready"   # what the sample promised
    -->

Hidden chunks run exactly like the visible ones (the site renders them as nothing). They
use ``sandbox`` (``tests.docs.samples.Sandbox``): ``await sandbox.media(*profiles)`` (a
migrated, connected runtime on SQLite and Local storage), ``await sandbox.connect(media)``
(the same for a runtime a sample built), ``await sandbox.serve(app)`` (an httpx client for
an app served in-process, lifespan included), ``sandbox.fixture("s3")`` (any pytest fixture:
the moto bucket, the GCS emulator...), ``sandbox.png()``/``sandbox.jpeg()`` and
``sandbox.printed`` (what the samples printed). Whenever a sample's point is an observable
result, a hidden chunk after it asserts that result.

``NOT_RUN`` would list, as ``"page:line"``, a sample that is compiled and checked by
test_site.py but not run here, with its reason. It is empty, and should stay so: a sample
that cannot run as written is rewritten until it can (against the moto S3, the GCS emulator
or the Mux simulator of tests/support when it needs a service).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.docs.samples import PAGES, ROOT, Sandbox, chunks, run_page
from tests.support.gcs import gcs_emulator_fixture, gcs_fixture  # noqa: F401
from tests.support.s3 import moto_server_fixture, s3_fixture  # noqa: F401

# "page:line" of a sample that is not run → why. Keep it empty.
NOT_RUN: dict[str, str] = {}
# Pages run in a child process of their own → why.
ISOLATED = {"docs/guides/telemetry.md": "it sets the process's OpenTelemetry providers, which "
            "can be set once per process and whose export threads outlive the page"}
_CHILD = "RINDLE_DOCS_SAMPLES_CHILD"

_WITH_SAMPLES = [p for p in PAGES if any(not c.hidden for c in chunks(p))]


@pytest.mark.parametrize("page", _WITH_SAMPLES,
                         ids=[str(p.relative_to(ROOT)) for p in _WITH_SAMPLES])
def test_the_page_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              request: pytest.FixtureRequest) -> None:
    name = str(page.relative_to(ROOT))
    if name in ISOLATED and not os.environ.get(_CHILD):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"{__file__}::test_the_page_samples_run[{name}]"],
            cwd=ROOT, env={**os.environ, _CHILD: "1"}, capture_output=True, text=True,
            timeout=300)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        return
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RINDLE_SECRET", SECRET)
    sandbox = Sandbox(tmp_path, request.getfixturevalue)
    ran = run_page(page, sandbox, skip=NOT_RUN)
    shown = [c for c in chunks(page) if not c.hidden]
    assert ran == len([c for c in shown if f"{c.page}:{c.line}" not in NOT_RUN])


def test_the_exceptions_name_real_samples() -> None:
    every = {f"{c.page}:{c.line}" for p in PAGES for c in chunks(p) if not c.hidden}
    assert set(NOT_RUN) <= every, f"NOT_RUN names samples that are gone: {set(NOT_RUN) - every}"
