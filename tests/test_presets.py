"""The Web and AudioWeb presets: what a subclass gets, and what each opt-in adds."""

from __future__ import annotations

from rindle import AudioWeb, Variant, Web
from rindle.upload import sniff


def test_web_is_720p_and_a_poster_with_opt_ins() -> None:
    class Lesson(Web):
        storage = "media"

    class Full(Web):
        storage = "media"
        with_480p = True
        with_scrub_strip = True

    assert {n: (v.kind, v.format) for n, v in Lesson.variants.items()} == {
        "web_720p": ("video", "web_720p"), "poster": ("video", "poster")}
    assert set(Full.variants) == {"web_720p", "poster", "web_480p", "scrub_strip"}
    assert Lesson.name == "lesson" and Web.variants.keys() == {"web_720p", "poster"}


def test_a_subclass_keeps_its_own_variants_and_the_flags_still_add() -> None:
    class Course(Web):
        storage = "media"
        with_480p = True
        variants = {"teaser": Variant(kind="video", format="web_480p", options={"x": 1})}

    assert set(Course.variants) == {"teaser", "web_480p"}


def test_audio_web_is_m4a_and_a_waveform_with_opt_ins() -> None:
    class Episode(AudioWeb):
        storage = "media"

    class Loud(AudioWeb):
        storage = "media"
        with_mp3 = True
        normalize = True

    assert set(Episode.variants) == {"m4a_128k", "waveform"}
    assert set(Loud.variants) == {"m4a_128k", "mp3_128k", "waveform"}
    assert Loud.variants["m4a_128k"].options == {"normalize": True}
    assert Loud.variants["mp3_128k"].options == {"normalize": True}
    assert Loud.variants["waveform"].options == {}
    assert Episode.max_pixels is None


def test_the_allowed_types_are_what_sniffing_calls_those_files() -> None:
    for preset, kind in ((Web, "video"), (AudioWeb, "audio")):
        for mime in preset.allow_mime:
            assert sniff.kind_for(mime) == kind, mime
            assert set(sniff.extensions_for(mime)) & set(preset.allow_extensions or ())
