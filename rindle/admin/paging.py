"""Keyset paging for the console's lists, both ways: which page a request asks for, the
page's rows, and the signed cursors its *previous* and *next* links carry.

A list is ordered by a key whose last part is unique (an id), so the order is total and
stable; a page is the rows after (or before) one row's key, read with ``LIMIT`` and never
``OFFSET``. A cursor is that key, signed with the runtime's keys for this list only
(``admin.cursor.<list>``): a link the console did not make, or made for another list, is
refused with ``invalid_cursor`` (400), not sent to the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import InvalidToken, RindleError

if TYPE_CHECKING:
    from ..delivery.signing import Signer

T = TypeVar("T")

#: How long a page link keeps working: long enough for a bookmark, and a key rotation
#: or a very old link only costs a trip back to the first page.
CURSOR_TTL = 30 * 86400
#: The longest cursor a query string may carry (a signed key is about 150 characters).
CURSOR_LIMIT = 1000

#: A key's parts: text and, for an ordering by time, aware datetimes.
Key = tuple[Any, ...]


class InvalidCursor(RindleError):
    """A page link whose cursor the console did not make for this list, or made too long
    ago: start again from the first page."""

    code = "invalid_cursor"
    default_status = 400


@dataclass(frozen=True)
class Window:
    """The page a request asks for: the first (``key`` is ``None``), or the rows after
    ``key`` in the list's order, or with ``backward`` the rows before it."""

    key: Key | None = None
    backward: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page's rows in the list's order, and the cursors of its neighbours (``None``
    where there is no such page)."""

    rows: list[T]
    before: str | None = None
    after: str | None = None


#: The first page of a list.
FIRST = Window()

#: Reads up to ``limit`` rows of a window, in the window's direction (the rows nearest the
#: key first: reversed for a backward window).
Fetch = Callable[[Window, int], Awaitable[list[T]]]


@dataclass(frozen=True)
class Keyset(Generic[T]):
    """How one list is paged: its name (which scopes its cursors), a row's key, and the
    type of each of the key's parts (``str`` or ``datetime``), checked when a cursor brings
    them back."""

    name: str
    key: Callable[[T], Key]
    parts: tuple[type, ...] = (str,)

    def dump(self, key: Key) -> list[str]:
        return [part.isoformat() if isinstance(part, datetime) else str(part) for part in key]

    def parse(self, parts: Any) -> Key:
        """A key from a cursor's parts; ``ValueError`` when they are not one."""
        if not isinstance(parts, list) or len(parts) != len(self.parts) or not all(
                isinstance(p, str) and p and len(p) <= 200 for p in parts):
            raise ValueError("not a key of this list")
        key: list[Any] = []
        for kind, text in zip(self.parts, parts, strict=True):
            if kind is datetime:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    raise ValueError("a key's time has no zone")
                key.append(moment)
            else:
                key.append(text)
        return tuple(key)


class Pager(Generic[T]):
    """Reads pages of one list and signs and checks its cursors."""

    def __init__(self, signer: Signer, keyset: Keyset[T]) -> None:
        self.signer = signer
        self.keyset = keyset
        self.purpose = f"admin.cursor.{keyset.name}"

    def cursor(self, row: T) -> str:
        """The cursor of ``row``'s position (a page starts after or before it)."""
        return self.signer.dumps(self.purpose, {"k": self.keyset.dump(self.keyset.key(row))},
                                 expires_in=CURSOR_TTL)

    def window(self, *, after: str = "", before: str = "") -> Window:
        """The window a request's ``after`` or ``before`` cursor asks for (neither: the first
        page); raises InvalidCursor for a cursor that does not verify, or for both."""
        if after and before:
            raise InvalidCursor("a page link has either an after or a before cursor, not "
                                "both: start again from the first page")
        token = after or before
        if not token:
            return Window()
        try:
            payload = self.signer.loads(self.purpose, token)
            key = self.keyset.parse(payload.get("k"))
        except (InvalidToken, ValueError):
            raise InvalidCursor("this page link is damaged, was made for another list or "
                                "is out of date: start again from the first page") from None
        return Window(key=key, backward=bool(before))

    async def page(self, fetch: Fetch[T], window: Window, *, size: int) -> Page[T]:
        """The page ``window`` asks for, ``size`` rows at most, and its neighbours' cursors.

        One row more than a page tells whether the list goes on that way; one row past the
        page's other edge (a ``LIMIT 1`` read) whether it goes on the way the operator came
        from, so the first page shows no *previous* link however it was reached, and a
        page emptied since its link was made shows neither link.
        """
        found = await fetch(window, size + 1)
        onward = len(found) > size
        rows = found[:size]
        if window.backward:
            rows.reverse()
        if not rows:
            return Page(rows=[])
        back = False
        if window.key is not None:
            edge = rows[-1] if window.backward else rows[0]
            beyond = Window(key=self.keyset.key(edge), backward=not window.backward)
            back = bool(await fetch(beyond, 1))
        has_before, has_after = (onward, back) if window.backward else (back, onward)
        return Page(rows=rows,
                    before=self.cursor(rows[0]) if has_before else None,
                    after=self.cursor(rows[-1]) if has_after else None)


def seek(columns: tuple[str, ...], window: Window, params: dict[str, Any], *,
         descending: bool = False) -> tuple[str | None, str]:
    """The condition and ``ORDER BY`` that read ``window`` of a list ordered by
    ``columns`` (ascending, or ``descending``), the last column unique.

    The row comparison ``(a, b) > (:a, :b)`` spelled out as ``a > :a OR (a = :a AND
    b > :b)``, in the SQL SQLite and PostgreSQL share. A backward window reads the other
    way (nearest the key first); the caller puts its rows back in order.
    """
    down = descending != window.backward
    order = ", ".join(f"{c} DESC" if down else c for c in columns)
    if window.key is None:
        return None, order
    op = "<" if down else ">"
    terms = []
    for i, column in enumerate(columns):
        same = [f"{c} = :k{j}" for j, c in enumerate(columns[:i])]
        terms.append("(" + " AND ".join([*same, f"{column} {op} :k{i}"]) + ")")
    for i, part in enumerate(window.key):
        params[f"k{i}"] = part
    return "(" + " OR ".join(terms) + ")", order


__all__ = ["CURSOR_LIMIT", "CURSOR_TTL", "FIRST", "InvalidCursor", "Keyset", "Page", "Pager",
           "Window", "seek"]
