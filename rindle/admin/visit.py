"""One request to the console: the runtime it reads, its CSRF cookie, its flash message, and
the ways it answers (a page, an htmx fragment, a redirect, a refusal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import InvalidToken
from .csrf import FIELD, Csrf, cookie_path
from .render import HEADERS, Renderer

if TYPE_CHECKING:
    from ..delivery.authorizer import Authorizer
    from ._types import Administered

FLASH_COOKIE = "rindle_admin_flash"
FLASH_PURPOSE = "admin.flash"
#: Long enough to survive the redirect after a POST, short enough not to greet a later visit.
FLASH_TTL = 60
_FLASH_LIMIT = 300

R = TypeVar("R", bound=Response)

#: A flash message: its kind (``ok``, ``info`` or ``error``) and its text.
Flash = tuple[str, str]


@dataclass(frozen=True)
class Site:
    """What every request of one console shares (``page_size``: the rows a page of each
    paged list shows, ``None`` for each list's own default)."""

    media: Administered
    authorizer: Authorizer
    csrf: Csrf
    templates: Renderer
    page_size: int | None = None


class Visit:
    """One request: read what it carries once, answer with the console's headers and cookies.

    ``base`` is the console's own mount path (links and redirects are built on it), so the
    adopter may mount it anywhere.
    """

    def __init__(self, site: Site, request: Request) -> None:
        self.site = site
        self.media = site.media
        self.request = request
        self.base = str(request.scope.get("root_path") or "").rstrip("/")
        self._csrf_value, self._csrf_new = site.csrf.cookie_value(request)
        self._flash_read = FLASH_COOKIE in request.cookies
        self.flash = self._read_flash()

    @property
    def htmx(self) -> bool:
        """Whether htmx sent the request (then a fragment, not a page, answers it)."""
        return self.request.headers.get("hx-request") == "true"

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """A console URL: ``path`` under the mount path, with the non-empty query values."""
        kept = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return self.base + path + (f"?{urlencode(kept)}" if kept else "")

    # --- answers -------------------------------------------------------------------------

    def page(self, template: str, context: Mapping[str, Any], *, status: int = 200,
             section: str | None = None, title: str = "") -> HTMLResponse:
        """A whole page (it shows, and so consumes, the pending flash message)."""
        html = self._render(template, {**context, "section": section, "title": title,
                                       "flash": self.flash})
        return self._finish(HTMLResponse(html, status_code=status), consumed=True)

    def fragment(self, template: str, context: Mapping[str, Any], *, status: int = 200,
                 flash: Flash | None = None,
                 headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """An htmx fragment; ``flash`` rides along as an out-of-band swap of the flash region."""
        html = self._render(template, context)
        if flash is not None:
            html += self._render("_flash.html", {"flash": flash, "oob": True})
        return self._finish(HTMLResponse(html, status_code=status, headers=dict(headers or {})))

    def redirect(self, path: str, flash: Flash | None = None) -> Response:
        """See Other to ``path`` (a console path), with ``flash`` shown on the next page."""
        response = RedirectResponse(self.base + path, status_code=303)
        if flash is not None:
            kind, text = flash
            token = self.site.media.signer.dumps(
                FLASH_PURPOSE, {"k": kind, "m": text[:_FLASH_LIMIT]}, expires_in=FLASH_TTL)
            response.set_cookie(FLASH_COOKIE, token, max_age=FLASH_TTL,
                                path=cookie_path(self.request), httponly=True,
                                samesite="strict", secure=self.request.url.scheme == "https")
            self._flash_read = False  # the cookie just set must outlive this response
        return self._finish(response)

    def refuse(self, status: int, message: str, *, heading: str = "Not allowed",
               admin: bool = True) -> Response:
        """A refusal: the error page, or for htmx the message in the flash region.

        ``admin=False`` for someone the Authorizer refused: the page shows no navigation and
        sets no cookie of the console's.
        """
        if not admin:
            self._csrf_new = False
        if self.htmx:
            html = self._render("_flash.html", {"flash": ("error", message), "oob": False})
            return self._finish(HTMLResponse(html, status_code=status, headers={
                "HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}))
        html = self._render("error.html", {"heading": heading, "message": message,
                                           "flash": None, "section": "" if admin else None,
                                           "title": heading})
        return self._finish(HTMLResponse(html, status_code=status))

    # --- plumbing ------------------------------------------------------------------------

    def _render(self, template: str, context: Mapping[str, Any]) -> str:
        return self.site.templates.render(template, {
            "base": self.base, "csrf_field": FIELD,
            "csrf_token": self.site.csrf.token(self._csrf_value), **context})

    def _read_flash(self) -> Flash | None:
        token = self.request.cookies.get(FLASH_COOKIE)
        if not token:
            return None
        try:
            payload = self.site.media.signer.loads(FLASH_PURPOSE, token)
        except InvalidToken:
            return None
        kind, text = payload.get("k"), payload.get("m")
        if kind not in ("ok", "info", "error") or not isinstance(text, str):
            return None
        return kind, text

    def _finish(self, response: R, *, consumed: bool = False) -> R:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if self._csrf_new:
            self.site.csrf.set_cookie(response, self.request, self._csrf_value)
        if consumed and self._flash_read:
            response.delete_cookie(FLASH_COOKIE, path=cookie_path(self.request),
                                   httponly=True, samesite="strict")
        return response


__all__ = ["Flash", "Site", "Visit"]
