"""Kept for imports of the old home: the redaction filter now lives in :mod:`rindle.logs`."""

from __future__ import annotations

from ..logs import RedactTokens, install, redact

__all__ = ["RedactTokens", "install", "redact"]
