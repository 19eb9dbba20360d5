"""Checksums a client declares for its upload, and what checks them.

A client that hashes the file before sending it (as Active Storage's direct uploads do)
declares ``sha256:<base64>`` or ``md5:<base64>``. The checksum is signed into the presigned
PUT (S3 then refuses any other bytes), Rindle's own upload route checks it while the body
streams, and promotion compares it with the checksum of what it promoted. It stands beside
staging keys, never instead of them: a store that ignores the header (moto, some
S3-compatible services) is still covered by the comparison at promotion.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from ..errors import UploadRejected, ValidationError

#: Digest sizes in bytes, and the header that carries each to S3.
_ALGORITHMS = {"sha256": (32, "x-amz-checksum-sha256"), "md5": (16, "Content-MD5")}


@dataclass(frozen=True)
class Checksum:
    """One declared checksum: its algorithm and raw digest."""

    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, value: str) -> Checksum:
        """``sha256:<base64>`` or ``md5:<base64>``; ``invalid_checksum`` otherwise."""
        algorithm, sep, encoded = (value or "").partition(":")
        spec = _ALGORITHMS.get(algorithm.lower())
        try:
            digest = base64.b64decode(encoded, validate=True) if sep else b""
        except (binascii.Error, ValueError):
            digest = b""
        if spec is None or len(digest) != spec[0]:
            raise ValidationError(
                "checksum must be 'sha256:<base64 of the 32-byte digest>' or "
                "'md5:<base64 of the 16-byte digest>'", code="invalid_checksum")
        return cls(algorithm.lower(), digest)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.b64}"

    @property
    def b64(self) -> str:
        return base64.b64encode(self.digest).decode("ascii")

    @property
    def header(self) -> tuple[str, str]:
        """The request header that carries it (S3's names; Rindle's route takes the same)."""
        return _ALGORITHMS[self.algorithm][1], self.b64

    def matches(self, promoted: str | None) -> bool | None:
        """Whether a stored object's checksum (``sha256:<hex>``, or ``etag:<hex>`` whose
        single-part ETag is the MD5) is this one; ``None`` when it can't be told."""
        kind, _, value = (promoted or "").partition(":")
        if kind == self.algorithm:
            return value == self.digest.hex()
        if kind == "etag" and self.algorithm == "md5" and "-" not in value:
            return value == self.digest.hex()
        return None


class ChecksumMismatch(UploadRejected):
    """The bytes are not those whose checksum the client declared."""

    code = "checksum_mismatch"


class Hashing:
    """Passes chunks through while hashing them with the checksum's algorithm."""

    def __init__(self, chunks: AsyncIterable[bytes], checksum: Checksum) -> None:
        self._chunks = chunks
        self._checksum = checksum
        self._hash = hashlib.new(checksum.algorithm)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self._hash.update(chunk)
            yield chunk

    def check(self) -> None:
        """``ChecksumMismatch`` unless what went through hashes to the declared checksum."""
        if self._hash.digest() != self._checksum.digest:
            raise ChecksumMismatch(
                f"the body does not match the declared {self._checksum.algorithm} checksum; "
                "nothing was kept (send the file again)")


__all__ = ["Checksum", "ChecksumMismatch", "Hashing"]
