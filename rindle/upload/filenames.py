"""Turn a client-supplied filename into one that is safe to display and to save under."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["extension_of", "sanitize_filename"]

_SEPARATORS = re.compile(r"[/\\]")
# Reserved on Windows or by common filesystems; "/" and "\\" are gone after splitting.
_INVALID_CHARS = frozenset('<>:"/\\|?*')
# Cc covers NUL and other controls; Cf hides bidi overrides (U+202E) and zero-width tricks;
# Cs are lone surrogates, which no filesystem encoding can store.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_MAX_EXTENSION = 16
# Windows treats these as devices whatever the extension ("con.txt" opens the console).
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{suffix}" for device in ("COM", "LPT") for suffix in "0123456789¹²³"}
)


def extension_of(name: str) -> str:
    """Lower-case extension without the dot, "" if none ("archive.tar.gz" -> "gz")."""
    stem, dot, extension = _SEPARATORS.split(name)[-1].rpartition(".")
    # A leading dot marks a hidden file (".bashrc"), not an extension.
    if not dot or not stem.strip(".") or not _usable_extension(extension):
        return ""
    return extension.lower()


def sanitize_filename(name: str | None, *, fallback: str = "upload", max_length: int = 200) -> str:
    """A display filename with paths, controls, invalid characters and device names removed.

    Unicode letters survive. The result is at most ``max_length`` characters, keeping the
    extension when truncating; ``fallback`` (plus the original extension) when nothing is left.
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    base = unicodedata.normalize("NFC", _SEPARATORS.split(name or "")[-1])
    raw_stem, dot, raw_extension = base.rpartition(".")
    extension = _clean(raw_extension)
    # "version 1. final" has a sentence in it, not an extension.
    spaced = any(char.isspace() for char in raw_extension)
    if not dot or spaced or not _usable_extension(extension):
        raw_stem, extension = base, ""
    stem = _clean(raw_stem).strip(". ")
    if not stem:
        if extension and not raw_stem.strip(". "):
            # Only dots before it (".bashrc", "...png"): the word is the name, not a type.
            stem, extension = extension, ""
        else:
            # Everything before the extension was junk ("???.jpg"): keep the type.
            stem = fallback
    result = _truncate(stem, extension, max_length)
    # Checked after truncating, which can itself cut "CONSOLE" down to "CON".
    if result.split(".", 1)[0].rstrip(" ").upper() in _RESERVED_NAMES:
        result = _truncate("_" + stem, extension, max_length)
    return result


def _clean(text: str) -> str:
    # Whitespace first, so a tab or newline separates words instead of joining them.
    spaced = "".join(" " if char.isspace() else char for char in text)
    kept = "".join(
        char
        for char in spaced
        if char not in _INVALID_CHARS and unicodedata.category(char) not in _REMOVED_CATEGORIES
    )
    return " ".join(kept.split())


def _usable_extension(extension: str) -> bool:
    return 0 < len(extension) <= _MAX_EXTENSION and extension.isalnum()


def _truncate(stem: str, extension: str, max_length: int) -> str:
    suffix = f".{extension}" if extension else ""
    if len(stem) + len(suffix) <= max_length:
        return stem + suffix
    if len(suffix) < max_length:
        # The stem keeps at least its first character, which is never a dot or space.
        return stem[: max_length - len(suffix)].rstrip(". ") + suffix
    return (stem + suffix)[:max_length].rstrip(". ")
