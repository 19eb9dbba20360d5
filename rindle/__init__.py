"""Rindle: uploads, verification, variants and signed delivery for Starlette/FastAPI apps.

The public names are re-exported here; everything else lives in submodules. Heavy optional
libraries (pyvips, aiobotocore) load only when a feature that needs them is used.
"""

from .app import Rindle
from .delivery.authorizer import AllowAll, Authorizer, AuthRequest, DenyAll
from .errors import (
    ConfigurationError,
    DeliveryUnsupported,
    FileTooLarge,
    Forbidden,
    InvalidToken,
    InvalidTransition,
    NotFound,
    RindleError,
    SessionExpired,
    TokenExpired,
    UnsupportedMediaType,
    UploadIncomplete,
    UploadRejected,
    UploadUnsupported,
    ValidationError,
)
from .processing.scanner import Scanner, ScanVerdict
from .profile import Delivery, Profile, Variant
from .storage.base import Capability
from .storage.local import LocalStorage

__version__ = "0.1.0"

__all__ = [
    "AllowAll",
    "AuthRequest",
    "Authorizer",
    "Capability",
    "ConfigurationError",
    "Delivery",
    "DeliveryUnsupported",
    "DenyAll",
    "FileTooLarge",
    "Forbidden",
    "InvalidToken",
    "InvalidTransition",
    "LocalStorage",
    "NotFound",
    "Profile",
    "Rindle",
    "RindleError",
    "ScanVerdict",
    "Scanner",
    "SessionExpired",
    "TokenExpired",
    "UnsupportedMediaType",
    "UploadIncomplete",
    "UploadRejected",
    "UploadUnsupported",
    "ValidationError",
    "Variant",
]
