"""Run a docs page's Python samples as one program: extraction, and the sandbox they run in.

A page's ```` ```python ```` fences and its hidden ``<!-- sample-test ... -->`` comments are
*chunks*, run in page order in one namespace (like a doctest session). Each chunk is compiled
with top-level ``await`` allowed: one that awaits runs in the page's event loop, one that does
not runs outside it (so a complete script may call ``asyncio.run`` itself).

The namespace starts with one name, ``sandbox`` (a ``Sandbox``): the hidden chunks use it for
what a reader would not want to see — a connected runtime, an app served in-process, a test
bucket, a sample image — and everything it opens is closed when the page ends.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]

# A visible sample, or a hidden one: an HTML comment the site renders as nothing.
CHUNK = re.compile(r"^```python\n(?P<shown>.*?)^```|^<!-- sample-test\n(?P<hidden>.*?)^-->",
                   re.DOTALL | re.MULTILINE)
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True)
class Chunk:
    page: str
    line: int
    code: str
    hidden: bool

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}{' (hidden)' if self.hidden else ''}"


def chunks(page: Path) -> list[Chunk]:
    text = page.read_text()
    found = []
    for match in CHUNK.finditer(text):
        hidden = match.group("hidden") is not None
        code = match.group("hidden") if hidden else match.group("shown")
        # The code starts on the line after the fence or the comment's first line.
        line = text.count("\n", 0, match.start()) + 2
        found.append(Chunk(str(page.relative_to(ROOT)), line, code, hidden))
    return found


class Sandbox:
    """A fresh, real environment for one page: its files, runtimes, servers and buckets.

    ``fixture`` fetches a pytest fixture by name (``request.getfixturevalue``), so a page
    asks for the S3 or GCS test bucket only when it needs one."""

    def __init__(self, tmp: Path, fixture: Callable[[str], Any]) -> None:
        self.tmp = tmp
        self.fixture = fixture
        self.stdout = io.StringIO()
        self._stack = contextlib.AsyncExitStack()
        self._databases = 0

    @property
    def printed(self) -> str:
        """What the page's samples have printed so far."""
        return self.stdout.getvalue()

    async def connect(self, media: Any) -> Any:
        """Create the runtime's tables and connect it until the page ends."""
        await media.migrate()
        await self._stack.enter_async_context(media.connected())
        return media

    async def media(self, *profiles: Any, **options: Any) -> Any:
        """A connected runtime on a SQLite file in the sandbox, with two Local storages
        (``local`` and ``media``), the tests' secret key and ``AllowAll``."""
        from rindle import AllowAll, LocalStorage, Rindle
        from tests.conftest import SECRET

        self._databases += 1  # a database of its own for each runtime of the page
        database = self.tmp / f"sandbox-{self._databases}.db"
        options.setdefault("database_url", f"sqlite:///{database}")
        options.setdefault("storages", {"local": LocalStorage(root=self.tmp / "local"),
                                        "media": LocalStorage(root=self.tmp / "media")})
        options.setdefault("secret_keys", [SECRET])
        options.setdefault("authorizer", AllowAll())
        return await self.connect(Rindle(profiles=list(profiles), **options))

    async def serve(self, app: Any, *, base_url: str = "http://testserver") -> Any:
        """An httpx client for ``app`` served in-process, its lifespan running."""
        import httpx

        router = getattr(app, "router", None)
        lifespan = getattr(router, "lifespan_context", None)
        if lifespan is not None:
            await self._stack.enter_async_context(lifespan(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        return await self._stack.enter_async_context(client)

    async def enter(self, context: Any) -> Any:
        """Enter an async context manager (a simulator, a server) until the page ends."""
        return await self._stack.enter_async_context(context)

    def serve_in_thread(self, app: Any) -> str:
        """Serve ``app`` with uvicorn on a loopback port, in a thread with its own event loop
        (for a synchronous client such as tuspy); returns its base URL. The app's lifespan
        connects the runtime in that loop, so the page's own loop must leave it alone."""
        import threading
        import time

        import uvicorn

        from tests.conftest import free_port

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, name=f"sample-server-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sample's server did not start")
            time.sleep(0.02)

        def stop() -> None:
            server.should_exit = True
            thread.join(30)

        self._stack.callback(stop)
        return f"http://127.0.0.1:{port}"

    def later(self, close: Callable[[], Any]) -> None:
        """Call ``close`` (awaiting it if it returns an awaitable) when the page ends."""
        async def run() -> None:
            result = close()
            if inspect.isawaitable(result):
                await result

        self._stack.push_async_callback(run)

    @staticmethod
    def png(width: int = 640, height: int = 480) -> bytes:
        import pyvips

        return bytes((pyvips.Image.black(width, height, bands=3) + [90, 140, 200])
                     .pngsave_buffer())

    @staticmethod
    def jpeg(width: int = 640, height: int = 480, *, size: int | None = None) -> bytes:
        """A JPEG photo; with ``size``, padded with comment segments to exactly that many
        bytes (a valid JPEG all the same)."""
        import pyvips

        data = bytes((pyvips.Image.black(width, height, bands=3) + [200, 120, 40])
                     .jpegsave_buffer(Q=85))
        if size is None:
            return data
        padding = size - len(data)
        if padding < 4:
            raise ValueError(f"a {width}x{height} JPEG is already {len(data)} bytes")
        segments = []
        while padding:
            take = min(padding, 65535 + 2)
            if padding - take and padding - take < 4:
                take -= 4  # leave room for one more whole segment
            body = take - 4
            segments.append(b"\xff\xfe" + (body + 2).to_bytes(2, "big") + b" " * body)
            padding -= take
        return data[:2] + b"".join(segments) + data[2:]

    async def aclose(self) -> None:
        await self._stack.aclose()


def run_page(page: Path, sandbox: Sandbox, *, skip: Collection[str] = ()) -> int:
    """Run every chunk of ``page`` in order, but the visible ones named in ``skip``
    (``"page:line"``); returns how many visible samples ran."""
    namespace: dict[str, Any] = {"__name__": "__main__", "sandbox": sandbox}
    loop = asyncio.new_event_loop()
    shown = 0
    try:
        with contextlib.redirect_stdout(sandbox.stdout):
            for chunk in chunks(page):
                if not chunk.hidden and f"{chunk.page}:{chunk.line}" in skip:
                    continue
                source = "\n" * (chunk.line - 1) + chunk.code  # tracebacks name page lines
                code = compile(source, str(ROOT / chunk.page), "exec", flags=_FLAGS)
                try:
                    if code.co_flags & inspect.CO_COROUTINE:
                        loop.run_until_complete(eval(code, namespace))
                    else:
                        exec(code, namespace)
                except BaseException as e:
                    e.add_note(f"in the sample at {chunk.name}")
                    raise
                shown += not chunk.hidden
    finally:
        try:
            loop.run_until_complete(sandbox.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
    return shown
