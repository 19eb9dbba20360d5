"""Who may do what: the Authorizer protocol, and the deny-all default."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ..model.records import Asset, UploadSession

ACTIONS = ("upload", "view", "subscribe", "admin")


@dataclass(frozen=True)
class AuthRequest:
    """Everything an Authorizer may look at to decide one action.

    ``request`` is set when the action comes over HTTP (read the adopter's session or
    ``request.user`` from it); ``actor`` is whatever the adopter passed to the Python API.
    """

    action: str
    profile: str | None = None
    asset: Asset | None = None
    session: UploadSession | None = None
    actor: Any = None
    request: HTTPConnection | None = None


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether an action may happen. May be sync or async.

    An Authorizer whose ``view`` decision never depends on the asset (only on the viewer
    and the profile) may say so with a class attribute ``decides_per_asset = False``: a
    page of pictures (``media.html.views``) then asks it once per profile, with
    ``asset=None``, instead of once per asset.
    """

    def authorize(self, request: AuthRequest) -> Any:
        """Return (or resolve to) ``True`` to allow, anything else to deny."""


def decides_per_asset(authorizer: Authorizer) -> bool:
    """Whether ``authorizer`` must see each asset (the safe default) to decide ``view``."""
    return getattr(authorizer, "decides_per_asset", True) is not False


class DenyAll:
    """The default: nothing is allowed until the adopter says who may do what."""

    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        return False

    def __repr__(self) -> str:
        return "DenyAll()"


class AllowAll:
    """Everything is allowed: for demos and trusted internal tools only."""

    decides_per_asset = False

    def authorize(self, request: AuthRequest) -> bool:
        return True

    def __repr__(self) -> str:
        return "AllowAll()"


async def is_allowed(authorizer: Authorizer, request: AuthRequest) -> bool:
    """Run a sync or async authorizer; only a literal ``True`` allows."""
    result = authorizer.authorize(request)
    if inspect.isawaitable(result):
        result = await result
    return result is True


class AuthorizerLookup(Protocol):
    """Finds who decides for a profile (the runtime's ``Catalog`` has these two).

    The profile class is ``Any`` here because profile.py imports this module (a Profile
    names its Authorizer); the runtime's methods take and return ``type[Profile]``.
    """

    def profile(self, profile: str) -> Any: ...

    def authorizer_for(self, profile: Any) -> Authorizer: ...


async def require_allowed(media: AuthorizerLookup, action: str, *, profile: str | None = None,
                          asset: Asset | None = None, session: UploadSession | None = None,
                          actor: Any = None, request: HTTPConnection | None = None) -> None:
    """Raise ``Forbidden`` unless the profile's Authorizer (or the runtime's) allows ``action``."""
    from ..errors import Forbidden

    prof = media.profile(profile) if profile else None
    authorizer = media.authorizer_for(prof)
    auth = AuthRequest(action=action, profile=profile, asset=asset, session=session,
                       actor=actor, request=request)
    if not await is_allowed(authorizer, auth):
        raise Forbidden(f"{action} is not allowed here")
