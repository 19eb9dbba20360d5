"""What the operator console uses of the runtime, as a Protocol (``Rindle`` satisfies it).

The console is an edge like ``web/``, but it is not allowed to import ``rindle.app`` (only
the facade, the CLI and the web layer see the runtime): it names the few things it calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..types import Stores

if TYPE_CHECKING:
    from ..delivery.authorizer import Authorizer
    from ..delivery.signing import Signer
    from ..ops.doctor import DoctorReport
    from ..processing.repair import RegenerateReport
    from ..profile import Profile


class Administered(Stores, Protocol):
    """The runtime as the console sees it: rows, reports and the repair calls."""

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def router_path(self) -> str: ...

    @property
    def signer(self) -> Signer: ...

    async def runtime_status(self) -> dict[str, Any]: ...

    async def doctor(self) -> DoctorReport: ...

    async def requeue_variants(self, asset_id: str,
                               variant_names: list[str] | None = None) -> list[str]: ...

    async def cancel_processing(self, asset_id: str) -> list[str]: ...

    async def regenerate_variants(self, *, profile: type[Profile] | str,
                                  dry_run: bool = False) -> RegenerateReport: ...

    async def purges(self, *, asset_id: str | None = None, limit: int = 100) -> list[Any]: ...


__all__ = ["Administered"]
