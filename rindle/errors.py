"""Rindle's exceptions: each carries a stable machine-readable ``code`` and an HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: Every error code Rindle raises, with the one HTTP status it always has. The table in
#: docs/guides/errors.md mirrors it (a test keeps the two equal), so clients can branch on
#: the code and trust the status. A code missing here falls back to its class's status.
ERROR_CODES: Mapping[str, int] = MappingProxyType({
    # 400: the request itself is malformed or asks for something the storage can't do
    "invalid_json": 400,
    "invalid_tus_header": 400,
    "invalid_concat": 400,
    "tus_checksum_unsupported": 400,
    "tus_error": 400,
    "upload_unsupported": 400,
    "delivery_unsupported": 400,
    "webhook_signature_malformed": 400,
    "invalid_cursor": 400,
    # 401: a webhook whose signature does not prove it is the provider's
    # 403: a credential or the Authorizer says no
    "invalid_token": 403,
    "token_expired": 403,
    "webhook_signature_invalid": 401,
    "webhook_timestamp_stale": 401,
    "webhook_not_configured": 401,
    "forbidden": 403,
    "tus_final_upload": 403,
    # 405: a method the route does not take
    "method_not_allowed": 405,
    # 404: nothing by that name
    "not_found": 404,
    "session_not_found": 404,
    "unknown_profile": 404,
    "unknown_variant": 404,
    "variant_not_ready": 404,
    "streaming_not_ready": 404,
    "multipart_upload_not_found": 404,
    "object_not_found": 404,
    # 408: the client stopped sending
    "upload_timeout": 408,
    # 409: the row is in a state that does not allow it (someone else may have moved it)
    "invalid_transition": 409,
    "session_closed": 409,
    "session_already_completed": 409,
    "session_not_signable": 409,
    "upload_incomplete": 409,
    "object_missing": 409,
    "size_mismatch": 409,
    "asset_not_deliverable": 409,
    "offset_mismatch": 409,
    "processing_cancelled": 409,
    # 410: gone for good
    "session_expired": 410,
    "upload_lost": 410,
    # 413: too large
    "max_bytes_exceeded": 413,
    "declared_size_exceeded": 413,
    "body_too_large": 413,
    # 415: the wrong type
    "mime_not_allowed": 415,
    "content_type_mismatch": 415,
    "json_required": 415,
    "tus_content_type": 415,
    # 422: well-formed but refused by validation or the profile's policy
    "validation_error": 422,
    "missing_field": 422,
    "invalid_field": 422,
    "invalid_byte_size": 422,
    "byte_size_required": 422,
    "content_type_required": 422,
    "profile_required": 422,
    "key_mismatch": 422,
    "invalid_parts": 422,
    "invalid_part_number": 422,
    "invalid_part_size": 422,
    "invalid_owner": 422,
    "invalid_slot": 422,
    "invalid_limit": 422,
    "invalid_batch": 422,
    "invalid_format": 422,
    "invalid_storage_key": 422,
    "invalid_checksum": 422,
    "checksum_mismatch": 422,
    "upload_rejected": 422,
    "empty_file": 422,
    "extension_not_allowed": 422,
    "max_pixels_exceeded": 422,
    "image_decode_failed": 422,
    "image_format_unsupported": 422,
    "invalid_media": 422,
    # 423: someone else holds it right now
    "upload_locked": 423,
    # 460: tus's own code for a body that does not match its Upload-Checksum
    "tus_checksum_mismatch": 460,
    # 500: Rindle or the adopter's configuration is wrong; nothing the client can fix
    "rindle_error": 500,
    "batch_owner_failed": 500,
    "configuration_error": 500,
    "invalid_profile": 500,
    "invalid_variant": 500,
    "invalid_storage": 500,
    "invalid_queue": 500,
    "unknown_storage": 500,
    "duplicate_profile": 500,
    "storage_missing": 500,
    "storage_not_open": 500,
    "storage_root_missing": 500,
    "secret_keys_missing": 500,
    "secret_key_too_short": 500,
    "database_driver_missing": 500,
    "not_connected": 500,
    "image_processor_unavailable": 500,
    "image_encode_failed": 500,
    "invalid_output": 500,
    "processor_missing": 500,
    "transaction_in_child_task": 500,
    "ffmpeg_missing": 500,
    "ffmpeg_failed": 500,
    "streaming_not_configured": 500,
    "streaming_key_invalid": 500,
    "public_url_missing": 500,
    # 502/503: a service Rindle depends on failed or is down
    "storage_error": 502,
    "provider_error": 502,
    "provider_rejected": 502,
    "database_unreachable": 503,
    "database_pool_exhausted": 503,
    "unavailable": 503,
    "provider_unavailable": 503,
    # 504: a processing step ran out of time
    "processing_timeout": 504,
})


class RindleError(Exception):
    """Base of every error Rindle raises on purpose.

    ``code`` is stable across releases, so callers and clients can branch on it;
    ``message`` says what went wrong and, where possible, what to do next. Messages never
    contain a signed URL, token, session URI or key.
    """

    code: str = "rindle_error"
    #: The status of a code that ``ERROR_CODES`` does not list (an adopter's own code).
    default_status: int = 500
    #: Whether running the same job again may succeed (a storage hiccup) or not (a corrupt file).
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    @property
    def status_code(self) -> int:
        """The HTTP status the router answers with: the code's entry in ``ERROR_CODES``."""
        return ERROR_CODES.get(self.code, self.default_status)

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
    default_status = 500


class NotFound(RindleError):
    """The asset, variant, session or attachment does not exist."""

    code = "not_found"
    default_status = 404


class InvalidTransition(RindleError):
    """A state change that the state machine forbids, or that another actor made first."""

    code = "invalid_transition"
    default_status = 409

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
    default_status = 422


class UploadRejected(RindleError):
    """An upload is refused by the profile's policy (type, size, name)."""

    code = "upload_rejected"
    default_status = 422


class FileTooLarge(UploadRejected):
    """The declared or actual size exceeds the profile's ``max_bytes``."""

    code = "max_bytes_exceeded"
    default_status = 413


class UnsupportedMediaType(UploadRejected):
    """The declared or sniffed type is not in the profile's allowlist."""

    code = "mime_not_allowed"
    default_status = 415


class UploadIncomplete(RindleError):
    """Completion was asked for but the object is missing or has the wrong size."""

    code = "upload_incomplete"
    default_status = 409


class SessionExpired(RindleError):
    """The upload session's time ran out; start a new upload."""

    code = "session_expired"
    default_status = 410


class UploadUnsupported(RindleError):
    """The profile's storage cannot honour the requested upload flow."""

    code = "upload_unsupported"
    default_status = 400


class DeliveryUnsupported(RindleError):
    """The profile's storage cannot honour the requested delivery."""

    code = "delivery_unsupported"
    default_status = 400


class InvalidToken(RindleError):
    """A signed token is tampered with, made with an unknown key, or for another purpose."""

    code = "invalid_token"
    default_status = 403


class TokenExpired(InvalidToken):
    """A signed token is genuine but its time has passed."""

    code = "token_expired"
    default_status = 403


class Forbidden(RindleError):
    """The Authorizer refused the action."""

    code = "forbidden"
    default_status = 403


class StorageError(RindleError):
    """The storage backend failed; the operation can be retried."""

    code = "storage_error"
    default_status = 502
    retryable = True


class ObjectNotFound(StorageError):
    """The storage backend has no object under the key."""

    code = "object_not_found"
    default_status = 404


__all__ = [
    "ERROR_CODES",
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
