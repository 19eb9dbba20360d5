"""Rindle's static files (rindle.js, htmx and its extensions), served with cache-busting names."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".map": "application/json",
          ".css": "text/css; charset=utf-8", ".json": "application/json"}


@lru_cache(maxsize=1)
def _manifest() -> dict[str, str]:
    path = STATIC_DIR / "manifest.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items()}


def static_name(name: str) -> str:
    """The versioned file name of a logical one (``htmx.js`` -> ``htmx-2.0.4.min.js``)."""
    return _manifest().get(name, name)


class StaticFiles:
    """Serves only the files shipped in ``rindle/static``.

    Versioned names never change content, so they are cached for a year; anything else
    (the stable ``rindle.js``) is revalidated.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path_params"]["path"]
        response: Response
        path = (STATIC_DIR / name).resolve()
        if ("/" in name or name.startswith(".") or not path.is_file()
                or path.parent != STATIC_DIR or path.suffix not in _TYPES):
            response = JSONResponse({"error": {"code": "not_found", "message": "no such file"}},
                                    status_code=404)
        else:
            versioned = name in _manifest().values() and name not in _manifest()
            cache = ("public, max-age=31536000, immutable" if versioned
                     else "public, max-age=0, must-revalidate")
            response = FileResponse(path, media_type=_TYPES[path.suffix],
                                    headers={"Cache-Control": cache})
        await response(scope, receive, send)
