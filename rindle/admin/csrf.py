"""Cross-site request forgery defence for the console's forms: a signed double-submit token
and an ``Origin`` check.

An admin's browser sends their cookies (or whatever the Authorizer reads) along with any
form another site makes it post, so the Authorizer alone cannot tell a click in the console
from a forged request. Every form therefore carries a token that only a page of the console
could have given it:

* a random value lives in an HttpOnly, ``SameSite=Strict`` cookie scoped to the console's
  path (no other page of the site, and no script, reads it);
* each form's hidden field holds the same value (as its SHA-256 digest, so the page never
  shows what the HttpOnly cookie holds), signed with the runtime's keys for the
  ``admin.csrf`` purpose and an expiry.

A POST is accepted only when the field verifies and names the cookie's value. Another site
can neither read the cookie nor sign a field for it; a token copied from one browser is
useless with another browser's cookie. Browsers also say where a POST came from: a present
``Origin`` that is not the console's own is refused before anything else is looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidToken, TokenExpired

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ..delivery.signing import Signer

COOKIE = "rindle_admin_csrf"
FIELD = "csrf"
PURPOSE = "admin.csrf"
#: What ``secrets.token_urlsafe(32)`` makes; any other cookie value is treated as absent.
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def origin_of(request: Request) -> str:
    """The request's own origin (``scheme://host[:port]``), as a browser would name it.

    Behind a TLS-terminating proxy this is right only when the server trusts the proxy's
    forwarded headers (uvicorn's ``--proxy-headers``); ``console(trusted_origins=...)``
    names extra origins otherwise.
    """
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def cookie_path(request: Request) -> str:
    """The console's mount path: its cookies go to its own pages and nowhere else."""
    return str(request.scope.get("root_path") or "") or "/"


class Csrf:
    """Makes the tokens of the console's forms and checks them on POST."""

    def __init__(self, signer: Signer, *, ttl: int, trusted_origins: Sequence[str] = ()) -> None:
        self.signer = signer
        self.ttl = ttl
        self.trusted = frozenset(o.rstrip("/").lower() for o in trusted_origins)

    def cookie_value(self, request: Request) -> tuple[str, bool]:
        """This browser's value, and whether it is new (then the response must set it)."""
        value = request.cookies.get(COOKIE, "")
        if _VALUE.match(value):
            return value, False
        return secrets.token_urlsafe(32), True

    def token(self, value: str) -> str:
        """The hidden field for the browser whose cookie holds ``value``."""
        return self.signer.dumps(PURPOSE, {"v": _digest(value)}, expires_in=self.ttl)

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        # No Max-Age: a browser session's cookie; forms rendered before a restart of the
        # browser then fail with a clear "reload the page" rather than linger for days.
        response.set_cookie(COOKIE, value, path=cookie_path(request), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")

    def refusal(self, request: Request, form: Mapping[str, str]) -> str | None:
        """Why this POST must be refused, or ``None`` when its token is good."""
        origin = request.headers.get("origin")
        if origin is not None:
            sent = origin.rstrip("/").lower()
            if sent != origin_of(request) and sent not in self.trusted:
                return "the form was sent from another site"
        cookie = request.cookies.get(COOKIE, "")
        if not _VALUE.match(cookie):
            return "the console's cookie is missing: reload the page and try again"
        field = form.get(FIELD, "")
        if not field:
            return "the form carries no token: reload the page and try again"
        try:
            payload = self.signer.loads(PURPOSE, field)
        except TokenExpired:
            return "the form has expired: reload the page and try again"
        except InvalidToken:
            return "the form's token is not valid: reload the page and try again"
        if not hmac.compare_digest(str(payload.get("v", "")), _digest(cookie)):
            return "the form's token belongs to another browser: reload the page"
        return None


__all__ = ["COOKIE", "FIELD", "PURPOSE", "Csrf", "cookie_path", "origin_of"]
