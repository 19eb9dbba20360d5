"""Rindle: uploads, verification, variants and signed delivery for Starlette/FastAPI apps.

The public names are re-exported here; everything else lives in submodules. Heavy optional
libraries (pyvips, aiobotocore) load only when a feature that needs them is used.

The plug-in contracts an adopter implements are Protocols: ``Storage``, ``Analyzer``,
``Processor`` (returning an ``Output``; ``BatchProcessor`` builds several variants at once),
``Scanner`` and ``Authorizer``; a storage adapter raises ``StorageError`` (or
``ObjectNotFound``) when its backend fails. docs/guides/plugins.md shows each in full.
``Web`` and ``AudioWeb`` are stock video and audio profiles to subclass
(docs/guides/video.md).
"""

from .app import Rindle
from .delivery.authorizer import AllowAll, Authorizer, AuthRequest, DenyAll
from .delivery.streaming import Mux, StreamingError
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
from .presets import AudioWeb, MuxDirectUploadWeb, MuxWeb, Web
from .processing.analyzer import Analyzer
from .processing.processor import BatchProcessor, Output, Processor
from .processing.scanner import Scanner, ScanVerdict
from .profile import Delivery, Profile, Streaming, Variant
from .storage.base import Capability, Storage
from .storage.local import LocalStorage

__version__ = "0.1.0"

__all__ = [
    "AllowAll",
    "Analyzer",
    "AuthRequest",
    "AudioWeb",
    "Authorizer",
    "BatchProcessor",
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
    "Mux",
    "MuxDirectUploadWeb",
    "MuxWeb",
    "NotFound",
    "ObjectNotFound",
    "Output",
    "Processor",
    "Profile",
    "Rindle",
    "RindleError",
    "ScanVerdict",
    "Scanner",
    "SessionExpired",
    "Storage",
    "StorageError",
    "Streaming",
    "StreamingError",
    "TokenExpired",
    "UnsupportedMediaType",
    "UploadIncomplete",
    "UploadRejected",
    "UploadUnsupported",
    "ValidationError",
    "Variant",
    "Web",
]
