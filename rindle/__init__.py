"""Rindle: uploads, verification, variants and signed delivery for Starlette/FastAPI apps.

The public names are re-exported here; everything else lives in submodules. Heavy optional
libraries (pyvips, aiobotocore) load only when a feature that needs them is used.

The plug-in contracts an adopter implements are Protocols: ``Storage``, ``Analyzer``,
``Processor``, ``Scanner`` and ``Authorizer``; a storage adapter raises ``StorageError`` (or
``ObjectNotFound``) when its backend fails.
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
    ObjectNotFound,
    RindleError,
    SessionExpired,
    StorageError,
    TokenExpired,
    UnsupportedMediaType,
    UploadIncomplete,
    UploadRejected,
    UploadUnsupported,
    ValidationError,
)
from .processing.analyzer import Analyzer
from .processing.processor import Processor
from .processing.scanner import Scanner, ScanVerdict
from .profile import Delivery, Profile, Variant
from .storage.base import Capability, Storage
from .storage.local import LocalStorage

__version__ = "0.1.0"

__all__ = [
    "AllowAll",
    "Analyzer",
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
    "ObjectNotFound",
    "Processor",
    "Profile",
    "Rindle",
    "RindleError",
    "ScanVerdict",
    "Scanner",
    "SessionExpired",
    "Storage",
    "StorageError",
    "TokenExpired",
    "UnsupportedMediaType",
    "UploadIncomplete",
    "UploadRejected",
    "UploadUnsupported",
    "ValidationError",
    "Variant",
]
