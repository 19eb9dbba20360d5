"""Profile, Variant and Delivery: the declarative media policy an adopter writes once per use."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigurationError
from .upload.sniff import extensions_for

if TYPE_CHECKING:
    from .delivery.authorizer import Authorizer
    from .delivery.streaming.base import StreamingProvider
    from .processing.scanner import Scanner

_MODES = ("fit", "fill", "crop")
_FORMATS = (None, "jpeg", "png", "webp", "avif")
_GRAVITIES = ("centre", "north", "south", "east", "west", "north-east", "north-west",
              "south-east", "south-west", "attention", "entropy")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class Variant:
    """One derived rendition: how to build it from the original.

    ``mode`` is ``fit`` (inside the box, aspect kept), ``fill`` (cover the box, then crop to
    it) or ``crop`` (exactly the box, cut with ``gravity``). ``format`` ``None`` keeps a web
    format close to the original's. Changing any option changes ``digest``, which marks
    variants built from the old recipe stale.
    """

    width: int | None = None
    height: int | None = None
    mode: str = "fit"
    format: str | None = None
    quality: int = 80
    gravity: str = "centre"
    kind: str = "image"
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        """Raise ConfigurationError naming the bad option; ``where`` says which variant."""
        if self.kind != "image":
            return  # other kinds are validated by their processor when registered
        if self.mode not in _MODES:
            raise ConfigurationError(f"{where}: mode must be one of {', '.join(_MODES)}, "
                                     f"not {self.mode!r}", code="invalid_variant")
        for dim in ("width", "height"):
            v = getattr(self, dim)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not
                                  0 < v <= 16384):
                raise ConfigurationError(f"{where}: {dim} must be an integer in 1..16384",
                                         code="invalid_variant")
        if self.mode in ("fill", "crop") and (self.width is None or self.height is None):
            raise ConfigurationError(
                f"{where}: mode {self.mode!r} needs both width and height", code="invalid_variant"
            )
        if self.width is None and self.height is None:
            raise ConfigurationError(f"{where}: give width, height or both",
                                     code="invalid_variant")
        if self.format not in _FORMATS:
            raise ConfigurationError(
                f"{where}: format must be one of jpeg, png, webp, avif (or None), "
                f"not {self.format!r}", code="invalid_variant")
        if not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ConfigurationError(f"{where}: quality must be an integer in 1..100",
                                     code="invalid_variant")
        if self.gravity not in _GRAVITIES:
            raise ConfigurationError(f"{where}: gravity must be one of {', '.join(_GRAVITIES)}",
                                     code="invalid_variant")

    @property
    def digest(self) -> str:
        """A stable hash of the recipe: equal options give equal digests across processes."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_INGEST = ("server_push", "direct_upload")
_PLAYBACK = ("signed", "public")


@dataclass(frozen=True)
class Streaming:
    """Stream a video through a provider (Mux) as HLS; playback is signed by default.

    ``ingest``: ``server_push`` sends the provider a short-lived signed URL of ``source``
    once Rindle has it (``source_variant``, e.g. ``"web_720p"``, when that rendition is
    ready; ``None``: the original once it is promoted), so the progressive renditions
    stay the fallback; ``direct_upload`` has the browser upload straight to the provider
    (no copy in Rindle's storage). ``playback_policy``: ``signed`` (tokens expiring after
    ``playback_ttl_seconds``, else the delivery's TTL) or ``public``. ``provider`` names
    an entry of ``Rindle(streaming=...)`` (``"mux"`` is made from the environment when
    none is given), or is the provider itself (``provider=Mux(token_id, token_secret,
    ...)``), for credentials that belong to this profile.
    """

    provider: str | StreamingProvider = "mux"
    ingest: str = "server_push"
    playback_policy: str = "signed"
    source_variant: str | None = "web_720p"
    source_url_ttl_seconds: int = 3600
    playback_ttl_seconds: int | None = None

    @property
    def provider_name(self) -> str:
        """The provider's name: what rows and webhook URLs (``/webhooks/{name}``) use."""
        return self.provider if isinstance(self.provider, str) else self.provider.name

    def validate(self, where: str, variants: dict[str, Variant]) -> None:
        if not isinstance(self.provider, str) and not isinstance(
                getattr(self.provider, "name", None), str):
            raise ConfigurationError(f"{where}: streaming.provider must be a name or a "
                                     "StreamingProvider (e.g. Mux(...))", code="invalid_profile")
        if self.ingest not in _INGEST:
            raise ConfigurationError(f"{where}: streaming.ingest must be one of "
                                     f"{', '.join(_INGEST)}", code="invalid_profile")
        if self.playback_policy not in _PLAYBACK:
            raise ConfigurationError(f"{where}: streaming.playback_policy must be signed or "
                                     "public", code="invalid_profile")
        if (self.ingest == "server_push" and self.source_variant is not None
                and self.source_variant not in variants):
            raise ConfigurationError(
                f"{where}: streaming.source_variant {self.source_variant!r} is not one of the "
                "profile's variants (None sends the original)", code="invalid_profile")
        for name in ("source_url_ttl_seconds", "playback_ttl_seconds"):
            ttl = getattr(self, name)
            if ttl is not None and (not isinstance(ttl, int) or not 60 <= ttl <= 7 * 86400):
                raise ConfigurationError(f"{where}: streaming.{name} must be 60..604800 "
                                         "seconds", code="invalid_profile")


@dataclass(frozen=True)
class Delivery:
    """How an asset's URLs are made: private and signed by default.

    ``streaming``: also stream videos through a provider (see ``Streaming``).
    """

    public: bool = False
    signed_url_ttl_seconds: int | None = None
    authorizer: Authorizer | None = None
    disposition: str = "inline"
    streaming: Streaming | None = None

    def validate(self, where: str) -> None:
        ttl = self.signed_url_ttl_seconds
        if ttl is not None and (not isinstance(ttl, int) or not 1 <= ttl <= 7 * 24 * 3600):
            raise ConfigurationError(
                f"{where}: delivery.signed_url_ttl_seconds must be 1..604800 seconds",
                code="invalid_profile")
        if self.disposition not in ("inline", "attachment"):
            raise ConfigurationError(f"{where}: delivery.disposition must be inline or attachment",
                                     code="invalid_profile")


def _snake(name: str) -> str:
    name = re.sub(r"Profile$", "", name) or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: The resumable flows a browser may use for a large file, as ``large_uploads`` names them.
LARGE_UPLOAD_FLOWS = ("tus", "multipart")


class Profile:
    """A media policy. Subclass it and set class attributes; it is checked when defined.

    Example::

        class AvatarProfile(Profile):
            name = "avatar"
            storage = "local"
            allow_mime = ["image/png", "image/jpeg"]
            max_bytes = 8 * 1024 * 1024
            variants = {"thumb": Variant(width=128, height=128)}

    ``name`` is stored on every row, so keep it stable (it defaults to the class name in
    snake case without the ``Profile`` suffix). ``allow_extensions`` defaults to the usual
    extensions of ``allow_mime``.
    """

    name: ClassVar[str]
    storage: ClassVar[str] = "default"
    allow_mime: ClassVar[tuple[str, ...] | list[str]] = ()
    allow_extensions: ClassVar[tuple[str, ...] | list[str] | None] = None
    max_bytes: ClassVar[int] = 10 * 1024 * 1024
    max_pixels: ClassVar[int | None] = 50_000_000
    #: The longest video or audio accepted (seconds, from ffprobe); ``None``: no limit.
    max_duration_seconds: ClassVar[float | None] = None
    variants: ClassVar[dict[str, Variant]] = {}
    delivery: ClassVar[Delivery] = Delivery()
    scanner: ClassVar[Scanner | None] = None
    upload_ttl_seconds: ClassVar[int | None] = None
    #: The flows browsers use for this profile's files over the runtime's
    #: ``multipart_threshold``, in order (``"tus"``, ``"multipart"``); ``None``: the runtime's
    #: ``large_uploads``. Hero images may prefer S3 multipart (parts go straight to the
    #: bucket) while lesson videos prefer tus (an upload survives a reloaded tab).
    large_uploads: ClassVar[tuple[str, ...] | list[str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = _snake(cls.__name__)
        where = f"profile {cls.__name__}"
        if not isinstance(cls.name, str) or not _NAME.match(cls.name):
            raise ConfigurationError(
                f"{where}: name must be lower-case letters, digits, '_' or '-' "
                f"(1-100 chars), got {cls.name!r}", code="invalid_profile")
        if not isinstance(cls.storage, str) or not cls.storage:
            raise ConfigurationError(f"{where}: storage must name a storage given to Rindle",
                                     code="invalid_profile")
        mimes = tuple(m.lower() for m in cls.allow_mime)
        if not mimes:
            raise ConfigurationError(f"{where}: allow_mime is empty; list the accepted types, "
                                     "e.g. ['image/jpeg', 'image/png']", code="invalid_profile")
        for m in mimes:
            if "/" not in m or "*" in m:
                raise ConfigurationError(f"{where}: allow_mime entry {m!r} is not a full type",
                                         code="invalid_profile")
        cls.allow_mime = mimes
        if cls.allow_extensions is None:
            exts: list[str] = []
            for m in mimes:
                exts.extend(e for e in extensions_for(m) if e not in exts)
            cls.allow_extensions = tuple(exts)
        else:
            cls.allow_extensions = tuple(e.lower().lstrip(".") for e in cls.allow_extensions)
        if not isinstance(cls.max_bytes, int) or cls.max_bytes <= 0:
            raise ConfigurationError(f"{where}: max_bytes must be a positive integer",
                                     code="invalid_profile")
        if cls.max_pixels is not None and (not isinstance(cls.max_pixels, int)
                                           or cls.max_pixels <= 0):
            raise ConfigurationError(f"{where}: max_pixels must be a positive integer or None",
                                     code="invalid_profile")
        limit = cls.max_duration_seconds
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float)
                                  or limit <= 0):
            raise ConfigurationError(f"{where}: max_duration_seconds must be a positive "
                                     "number of seconds or None", code="invalid_profile")
        if not isinstance(cls.variants, dict):
            raise ConfigurationError(f"{where}: variants must be a dict of name -> Variant",
                                     code="invalid_profile")
        for vname, variant in cls.variants.items():
            if not isinstance(vname, str) or not _NAME.match(vname):
                raise ConfigurationError(f"{where}: variant name {vname!r} must be lower-case "
                                         "letters, digits, '_' or '-'", code="invalid_variant")
            if not isinstance(variant, Variant):
                raise ConfigurationError(f"{where}: variants[{vname!r}] must be a Variant",
                                         code="invalid_variant")
            variant.validate(f"{where}, variant {vname!r}")
        if not isinstance(cls.delivery, Delivery):
            raise ConfigurationError(f"{where}: delivery must be a Delivery(...)",
                                     code="invalid_profile")
        cls.delivery.validate(where)
        if cls.delivery.streaming is not None:
            if not isinstance(cls.delivery.streaming, Streaming):
                raise ConfigurationError(f"{where}: delivery.streaming must be a "
                                         "Streaming(...)", code="invalid_profile")
            cls.delivery.streaming.validate(where, cls.variants)
        ttl = cls.upload_ttl_seconds
        if ttl is not None and (not isinstance(ttl, int) or ttl <= 0):
            raise ConfigurationError(f"{where}: upload_ttl_seconds must be positive",
                                     code="invalid_profile")
        if cls.large_uploads is not None:
            flows = cls.large_uploads
            if (isinstance(flows, str) or not flows
                    or not set(flows) <= set(LARGE_UPLOAD_FLOWS)):
                raise ConfigurationError(f"{where}: large_uploads must order some of "
                                         f"{', '.join(LARGE_UPLOAD_FLOWS)}, got {flows!r}",
                                         code="invalid_profile")
            cls.large_uploads = tuple(flows)

    def __init__(self) -> None:
        raise TypeError("profiles are used as classes: pass AvatarProfile, not AvatarProfile()")

    @classmethod
    def variant(cls, name: str) -> Variant:
        """The variant called ``name``; ConfigurationError when the profile has none."""
        try:
            return cls.variants[name]
        except KeyError:
            raise ConfigurationError(f"profile {cls.name!r} has no variant {name!r}",
                                     code="unknown_variant") from None
