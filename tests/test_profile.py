"""Profiles are checked when the class is created, with messages naming the option."""

from __future__ import annotations

import pytest

from rindle import ConfigurationError, Delivery, Profile, Variant


def test_a_good_profile() -> None:
    class AvatarProfile(Profile):
        storage = "local"
        allow_mime = ["image/PNG", "image/jpeg"]
        variants = {"thumb": Variant(width=64, height=64)}

    assert AvatarProfile.name == "avatar"
    assert AvatarProfile.allow_mime == ("image/png", "image/jpeg")
    assert "png" in AvatarProfile.allow_extensions and "jpg" in AvatarProfile.allow_extensions


@pytest.mark.parametrize("attrs,needle", [
    ({"variants": {"sq": Variant(mode="crop", width=10)}}, "needs both width and height"),
    ({"variants": {"sq": Variant(mode="fill")}}, "needs both width and height"),
    ({"variants": {"sq": Variant()}}, "give width, height or both"),
    ({"variants": {"sq": Variant(width=10, quality=0)}}, "quality"),
    ({"variants": {"sq": Variant(width=10, format="bmp")}}, "format"),
    ({"variants": {"sq": Variant(width=10, mode="stretch")}}, "mode"),
    ({"variants": {"Bad Name": Variant(width=10)}}, "variant name"),
    ({"variants": {"x": {"width": 10}}}, "must be a Variant"),
    ({"allow_mime": []}, "allow_mime is empty"),
    ({"allow_mime": ["image/*"]}, "not a full type"),
    ({"max_bytes": 0}, "max_bytes"),
    ({"max_pixels": -1}, "max_pixels"),
    ({"name": "Has Spaces"}, "name must be"),
    ({"delivery": Delivery(signed_url_ttl_seconds=0)}, "signed_url_ttl_seconds"),
    ({"delivery": {"public": True}}, "delivery must be"),
])
def test_wrong_definitions_fail_at_class_creation(attrs: dict[str, object], needle: str) -> None:
    base: dict[str, object] = {"storage": "local", "allow_mime": ["image/png"]}
    base.update(attrs)
    with pytest.raises(ConfigurationError) as err:
        type("BadProfile", (Profile,), base)
    assert needle in err.value.message
    assert "BadProfile" in err.value.message


def test_digest_is_stable_and_tracks_the_recipe() -> None:
    a = Variant(mode="fit", width=128, height=128)
    assert a.digest == Variant(mode="fit", width=128, height=128).digest
    assert a.digest != Variant(mode="fit", width=128, height=129).digest
    assert a.digest != Variant(mode="fill", width=128, height=128).digest
    assert len(a.digest) == 64


def test_profiles_are_not_instantiated() -> None:
    class P(Profile):
        allow_mime = ["image/png"]

    with pytest.raises(TypeError):
        P()
