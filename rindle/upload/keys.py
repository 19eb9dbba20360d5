"""Where objects live: the asset's permanent key and the staging key an upload writes to.

An upload credential (a presigned PUT, a multipart part URL, a POST policy, a Local upload
token) only ever names a staging key. Promotion moves the verified bytes to the asset's
permanent key, which no credential names, so nobody holding an upload URL can change what
was validated and is served.
"""

from __future__ import annotations

import hashlib
import uuid

from .filenames import extension_of
from .sniff import extensions_for

#: Staging keys start with this. Profile names start with a letter, so no permanent key
#: does; a bucket lifecycle rule on the prefix can expire abandoned uploads.
STAGING_PREFIX = "_rindle_staging/"


def _suffix(filename: str | None, content_type: str | None) -> str:
    ext = extension_of(filename or "")
    if not ext and content_type:
        known = extensions_for(content_type)
        ext = known[0] if known else ""
    return f".{ext}" if ext and ext.isalnum() else ""


def asset_key(profile: str, asset_id: str, filename: str | None,
              content_type: str | None) -> str:
    """``profile/asset_id/<random>.ext``: generated, never taken from the client."""
    return f"{profile}/{asset_id}/{uuid.uuid4().hex}{_suffix(filename, content_type)}"


def staging_key(profile: str, asset_id: str, session_id: str, filename: str | None,
                content_type: str | None) -> str:
    """``_rindle_staging/profile/asset_id/session_id.ext``: where one session's bytes land."""
    return (f"{STAGING_PREFIX}{profile}/{asset_id}/{session_id}"
            f"{_suffix(filename, content_type)}")


def promoted_key(asset_key_: str, session_id: str) -> str:
    """A permanent key for an asset stored before staging keys existed, whose original sits
    under the key its upload credential named. Derived from the session, so a rerun of
    promotion after a crash picks the same key."""
    head, _, name = asset_key_.rpartition("/")
    ext = name[name.rfind("."):] if "." in name else ""
    digest = hashlib.sha256(f"promoted:{session_id}".encode()).hexdigest()[:32]
    return f"{head}/{digest}{ext}"


def asset_id_of(key: str) -> str | None:
    """The asset id in a key built here (permanent or staging), else ``None``."""
    parts = key.split("/")
    if key.startswith(STAGING_PREFIX):
        return parts[2] if len(parts) >= 4 and parts[2] else None
    return parts[1] if len(parts) >= 3 and parts[1] else None


__all__ = ["STAGING_PREFIX", "asset_id_of", "asset_key", "promoted_key", "staging_key"]
