"""``console(media)``: the operator console as a mountable ASGI app.

Every request is asked about first: the Authorizer must allow the ``admin`` action (with
the request, so it can read the adopter's session), or the answer is a 403 page and nothing
else runs. POSTs then pass the CSRF check (``csrf.py``) before their action reads a row.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from ..delivery.authorizer import AllowAll, AuthRequest, DenyAll, is_allowed
from ..errors import ConfigurationError, NotFound, RindleError
from ..logs import get_logger
from . import actions, pages
from ._forms import read_form
from .csrf import Csrf
from .render import Renderer
from .visit import Site, Visit

if TYPE_CHECKING:
    from ..delivery.authorizer import Authorizer
    from ._types import Administered

log = get_logger("rindle.admin")

Page = Callable[[Visit], Awaitable[Response]]
Action = Callable[[Visit, dict[str, str]], Awaitable[Response]]

#: How long a rendered form stays usable: a working day, so a page left open is not
#: refused at once, while a token that leaks does not work for ever.
FORM_TTL = 12 * 3600
#: The most rows ``page_size`` may ask a page for: a page, not an export.
MAX_PAGE_SIZE = 1000


class Console:
    """The console's ASGI app (what ``console()`` returns); mount it anywhere."""

    def __init__(self, site: Site) -> None:
        self.site = site
        page, action = self._page, self._action
        self.router = Router(routes=[
            Route("/", page(pages.overview), methods=["GET"]),
            Route("/assets", page(pages.assets), methods=["GET"]),
            Route("/assets/{asset_id}", page(pages.asset), methods=["GET"]),
            Route("/assets/{asset_id}/live", page(pages.asset_live), methods=["GET"]),
            Route("/assets/{asset_id}/retry", action(actions.retry), methods=["POST"]),
            Route("/assets/{asset_id}/cancel", action(actions.cancel), methods=["POST"]),
            Route("/assets/{asset_id}/purge", action(actions.purge), methods=["POST"]),
            Route("/sessions", page(pages.sessions), methods=["GET"]),
            Route("/jobs", page(pages.jobs), methods=["GET"]),
            Route("/jobs/variants/{asset_id}/{name}", page(pages.job_row), methods=["GET"]),
            Route("/regenerate", page(pages.regenerate), methods=["GET"]),
            Route("/regenerate", action(actions.regenerate), methods=["POST"]),
            Route("/doctor", page(pages.doctor), methods=["GET"]),
        ], default=self._not_found)

    def __repr__(self) -> str:
        return f"Console(authorizer={self.site.authorizer!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the console has no WebSocket routes
            await send({"type": "websocket.close", "code": 1000})
            return
        await self.router(scope, receive, send)

    async def _allowed(self, request: Request) -> bool:
        return await is_allowed(self.site.authorizer,
                                AuthRequest(action="admin", request=request))

    def _page(self, fn: Page) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            visit = Visit(self.site, request)
            if not await self._allowed(request):
                return _forbidden(visit)
            return await _guarded(visit, fn(visit))

        return endpoint

    def _action(self, fn: Action) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            visit = Visit(self.site, request)
            if not await self._allowed(request):
                return _forbidden(visit)
            try:
                form = await read_form(request)
            except RindleError as exc:
                return visit.refuse(exc.status_code, exc.message, heading="Bad request")
            refusal = self.site.csrf.refusal(request, form)
            if refusal is not None:
                log.warning("admin: refused %s %s: %s", request.method, request.url.path,
                            refusal)
                return visit.refuse(403, f"Nothing was changed: {refusal}.")
            return await _guarded(visit, fn(visit, form))

        return endpoint

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        visit = Visit(self.site, request)
        if not await self._allowed(request):
            response = _forbidden(visit)
        else:
            response = visit.refuse(404, "The console has no such page.", heading="Not found")
        await response(scope, receive, send)


def _forbidden(visit: Visit) -> Response:
    # The same page for everyone refused, whatever they asked for: it tells nothing.
    return visit.refuse(403, "You are not allowed to use the operator console.", admin=False)


async def _guarded(visit: Visit, work: Awaitable[Response]) -> Response:
    """Rindle errors as the console's error page (its status, its message)."""
    try:
        return await work
    except NotFound as exc:
        return visit.refuse(404, exc.message, heading="Not found")
    except RindleError as exc:
        if exc.status_code >= 500:
            log.error("admin: %s %s failed: %r", visit.request.method,
                      visit.request.url.path, exc)
        return visit.refuse(exc.status_code, exc.message, heading="That did not work")


def console(media: Administered, *, authorizer: Authorizer | None = None,
            trusted_origins: Sequence[str] = (), form_ttl: int = FORM_TTL,
            page_size: int | None = None) -> Console:
    """The operator console for ``media``, to mount where you like::

        app = Starlette(routes=[Mount("/rindle", app=media.router),
                                Mount("/admin", app=console(media))],
                        lifespan=media.lifespan)

    Every page and action needs the ``admin`` action of ``authorizer`` (the runtime's own
    Authorizer when ``None``). A ``DenyAll`` would lock everyone out, so it is refused here
    (``configuration_error``); an ``AllowAll`` lets anyone administer, which is logged as a
    warning. ``trusted_origins``: origins besides the request's own whose form posts are
    taken (behind a proxy that hides the public scheme or host). ``form_ttl``: seconds a
    rendered form's CSRF token stays valid. ``page_size``: rows a page of the assets and
    upload sessions lists shows (``None``: 50 assets, 100 sessions), from 1 to 1000.

    The console loads htmx and its stylesheet from Rindle's router and subscribes to its
    event streams, at ``media.router_path``: mount the router there too.
    """
    chosen = authorizer if authorizer is not None else media.authorizer
    if isinstance(chosen, DenyAll):
        raise ConfigurationError(
            "the console's Authorizer is DenyAll, which would refuse everyone: pass "
            "console(media, authorizer=...) one that allows the 'admin' action for your "
            "operators (or give the runtime such an Authorizer)", code="configuration_error")
    if isinstance(chosen, AllowAll):
        log.warning("the operator console's Authorizer is AllowAll: anyone who can reach it "
                    "can purge and regenerate media; give it one that allows 'admin' only "
                    "for operators")
    if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigurationError(
            f"console(page_size={page_size!r}): a page shows from 1 to {MAX_PAGE_SIZE} rows",
            code="configuration_error")
    site = Site(media=media, authorizer=chosen,
                csrf=Csrf(media.signer, ttl=form_ttl, trusted_origins=trusted_origins),
                templates=Renderer(media.router_path), page_size=page_size)
    return Console(site)


__all__ = ["Console", "console"]
