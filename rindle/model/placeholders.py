"""``:name`` placeholders, found where the database's parser finds them, numbered for asyncpg."""

from __future__ import annotations

import functools
import re

# What may hold a colon that is not a placeholder. SQLite finds placeholders with its own
# tokenizer, which skips literals, quoted identifiers and comments; asyncpg only knows $1,
# so this must skip the same spans or one statement would mean two things. E'...' and
# $tag$...$tag$ are PostgreSQL's alone (SQL shared with SQLite can't use them), but a
# PostgreSQL-only statement may, and a colon inside them is text too.
_TOKEN = re.compile(
    r"""
      (?P<skip>
          '(?:[^']|'')*'?                         # a string literal ('' is a quote inside)
        | (?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*'?     # an escape string (\' is a quote inside)
        | "(?:[^"]|"")*"?                         # a quoted identifier
        | --[^\n]*                                # a line comment
        | (?<![\w$])\$(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|\Z)  # a dollar-quoted string
        | ::                                      # a cast (x::text): keeps its colons
      )
    | (?P<comment>/\*)
    | (?<![:\w]):(?P<name>[A-Za-z_]\w*)
    """,
    re.VERBOSE | re.DOTALL,
)
_COMMENT_EDGE = re.compile(r"/\*|\*/")


def _comment_end(sql: str, pos: int) -> int:
    """Where the block comment opened just before ``pos`` ends (its end, or the text's).

    PostgreSQL nests block comments (SQLite does not, but there a nested one is a syntax
    error anyway), so a ``*/`` closes only the innermost.
    """
    depth = 1
    for edge in _COMMENT_EDGE.finditer(sql, pos):
        depth += 1 if edge.group() == "/*" else -1
        if depth == 0:
            return edge.end()
    return len(sql)


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` placeholders -> asyncpg's ``$1``; the names in argument order.

    A name used twice is one argument. Literals, quoted identifiers, comments and ``::``
    casts come through unchanged.
    """
    names: list[str] = []
    out: list[str] = []
    pos = 0
    while (token := _TOKEN.search(sql, pos)) is not None:
        out.append(sql[pos:token.start()])
        if (name := token.group("name")) is not None:
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            pos = token.end()
        else:
            end = _comment_end(sql, token.end()) if token.group("comment") else token.end()
            out.append(sql[token.start():end])
            pos = end
    out.append(sql[pos:])
    return "".join(out), tuple(names)
