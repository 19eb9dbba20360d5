"""The small interfaces a subsystem takes instead of the whole runtime.

Each subsystem (upload/, processing/, delivery/, live/, ops/, attachments, web/) names what
it uses of the runtime as a Protocol built from these pieces, the way ``Outbox(repo, queue)``
takes just its two objects. ``Rindle`` satisfies every one of them structurally, so nothing
here imports it, and a test can hand a subsystem a smaller object.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .delivery.authorizer import Authorizer
    from .model.repo import Repo
    from .processing.outbox import Outbox
    from .profile import Profile
    from .storage.base import Storage


class Catalog(Protocol):
    """The runtime's configuration by name: profiles, their storages and Authorizers."""

    @property
    def storages(self) -> Mapping[str, Storage]: ...

    @property
    def profiles(self) -> Mapping[str, type[Profile]]: ...

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The registered profile for a class or a stored name (``NotFound`` otherwise)."""
        ...

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        """The storage a profile keeps its objects in."""
        ...

    def storage_named(self, name: str) -> Storage:
        """A storage by its name in ``storages`` (``ConfigurationError`` otherwise)."""
        ...

    def authorizer_for(self, profile: type[Profile] | None) -> Authorizer:
        """The profile's own Authorizer, else the runtime's (also for ``None``)."""
        ...


class Transactional(Protocol):
    """Opens a database transaction: ``async with media.transaction(): ...``."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """A transaction (a savepoint when one is open); outbox entries added inside it are
        dispatched once it commits."""
        ...


class Rows(Transactional, Protocol):
    """The repository and the outbox, and transactions spanning both."""

    @property
    def repo(self) -> Repo: ...

    @property
    def outbox(self) -> Outbox: ...


class Stores(Catalog, Rows, Protocol):
    """The catalog and the rows: what most subsystems need, and all that many do."""


__all__ = ["Catalog", "Rows", "Stores", "Transactional"]
