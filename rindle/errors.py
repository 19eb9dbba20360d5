"""Rindle's exceptions: each carries a stable machine-readable ``code`` and an HTTP status."""

from __future__ import annotations

from typing import Any


class RindleError(Exception):
    """Base of every error Rindle raises on purpose.

    ``code`` is stable across releases, so callers and clients can branch on it;
    ``message`` says what went wrong and, where possible, what to do next. Messages never
    contain a signed URL, token, session URI or key.
    """

    code: str = "rindle_error"
    status_code: int = 500
    #: Whether running the same job again may succeed (a storage hiccup) or not (a corrupt file).
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body the router sends: ``{"error": {"code", "message"}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        safe = {k: v for k, v in self.details.items() if isinstance(v, (str, int, float, bool))}
        if safe:
            body["details"] = safe
        return {"error": body}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigurationError(RindleError):
    """A profile, storage or runtime is defined wrongly; raised at definition time."""

    code = "configuration_error"
    status_code = 500


class NotFound(RindleError):
    """The asset, variant, session or attachment does not exist."""

    code = "not_found"
    status_code = 404


class InvalidTransition(RindleError):
    """A state change that the state machine forbids, or that another actor made first."""

    code = "invalid_transition"
    status_code = 409

    def __init__(self, entity: str, entity_id: str, from_state: str, to_state: str,
                 *, actual: str | None = None) -> None:
        if actual is not None and actual != from_state:
            msg = (f"{entity} {entity_id} cannot move {from_state} -> {to_state}: "
                   f"it is {actual} now (another actor moved it first)")
        else:
            msg = f"{entity} {entity_id} cannot move {from_state} -> {to_state}"
        super().__init__(msg, entity=entity, from_state=from_state, to_state=to_state)
        self.entity = entity
        self.entity_id = entity_id
        self.from_state = from_state
        self.to_state = to_state
        self.actual = actual


class ValidationError(RindleError):
    """The request is malformed: a missing field, a wrong type, a bad part list."""

    code = "validation_error"
    status_code = 422


class UploadRejected(RindleError):
    """An upload is refused by the profile's policy (type, size, name)."""

    code = "upload_rejected"
    status_code = 422


class FileTooLarge(UploadRejected):
    """The declared or actual size exceeds the profile's ``max_bytes``."""

    code = "max_bytes_exceeded"
    status_code = 413


class UnsupportedMediaType(UploadRejected):
    """The declared or sniffed type is not in the profile's allowlist."""

    code = "mime_not_allowed"
    status_code = 415


class UploadIncomplete(RindleError):
    """Completion was asked for but the object is missing or has the wrong size."""

    code = "upload_incomplete"
    status_code = 409


class SessionExpired(RindleError):
    """The upload session's time ran out; start a new upload."""

    code = "session_expired"
    status_code = 410


class UploadUnsupported(RindleError):
    """The profile's storage cannot honour the requested upload flow."""

    code = "upload_unsupported"
    status_code = 400


class DeliveryUnsupported(RindleError):
    """The profile's storage cannot honour the requested delivery."""

    code = "delivery_unsupported"
    status_code = 400


class InvalidToken(RindleError):
    """A signed token is tampered with, made with an unknown key, or for another purpose."""

    code = "invalid_token"
    status_code = 403


class TokenExpired(InvalidToken):
    """A signed token is genuine but its time has passed."""

    code = "token_expired"
    status_code = 403


class Forbidden(RindleError):
    """The Authorizer refused the action."""

    code = "forbidden"
    status_code = 403


class StorageError(RindleError):
    """The storage backend failed; the operation can be retried."""

    code = "storage_error"
    status_code = 502
    retryable = True


class ObjectNotFound(StorageError):
    """The storage backend has no object under the key."""

    code = "object_not_found"
    status_code = 404


__all__ = [
    "ConfigurationError",
    "DeliveryUnsupported",
    "FileTooLarge",
    "Forbidden",
    "InvalidToken",
    "InvalidTransition",
    "NotFound",
    "ObjectNotFound",
    "RindleError",
    "SessionExpired",
    "StorageError",
    "TokenExpired",
    "UnsupportedMediaType",
    "UploadIncomplete",
    "UploadRejected",
    "UploadUnsupported",
    "ValidationError",
]
