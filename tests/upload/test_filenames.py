"""Client filenames reduced to something safe to show and to save under."""

from __future__ import annotations

import random
import unicodedata

import pytest

from rindle.upload.filenames import extension_of, sanitize_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("C:\\Users\\me\\Pictures\\cat.JPG", "cat.JPG"),
        ("a\x00b\x07c.png", "abc.png"),
        ("report\u202egnp.exe", "reportgnp.exe"),  # RTL override would display "reportexe.png"
        ("zero\u200bwidth\ufeff.txt", "zerowidth.txt"),
        ("café 写真.jpg", "café 写真.jpg"),
        ("Привет мир.png", "Привет мир.png"),
        ('a<b>c:d"e|f?g*h.gif', "abcdefgh.gif"),
        ("  my \t photo\n  final .jpg", "my photo final.jpg"),
        ("holiday.jpg...", "holiday.jpg"),
        ("..hidden.txt", "hidden.txt"),
        ("archive.tar.gz", "archive.tar.gz"),
        ("notes", "notes"),
        ("version 1. final", "version 1. final"),  # " final" is not an extension
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "upload"),
        ("", "upload"),
        (".", "upload"),
        ("..", "upload"),
        ("../..", "upload"),
        ("dir/", "upload"),
        ("\x00\x01\x02", "upload"),
        ("   ", "upload"),
        ("???.jpg", "upload.jpg"),  # the stem was all junk; the type is still worth keeping
        ("\u202e.png", "upload.png"),
        ("<>.", "upload"),
    ],
)
def test_sanitize_filename_falls_back(name: str | None, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_custom_fallback() -> None:
    assert sanitize_filename("***.mp4", fallback="video") == "video.mp4"
    assert sanitize_filename(None, fallback="file") == "file"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Only dots before the word: a hidden file's name, not a nameless file with a type.
        ("...png", "png"),
        (".bashrc", "bashrc"),
        (". .env", "env"),
    ],
)
def test_leading_dots_are_stripped_and_the_word_kept(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Prn.pdf", "_Prn.pdf"),
        ("aux", "_aux"),
        ("NUL.tar.gz", "_NUL.tar.gz"),
        ("com1.jpg", "_com1.jpg"),
        ("LPT9", "_LPT9"),
        ("CON .txt", "_CON.txt"),
        ("console.txt", "console.txt"),
        ("COM10.txt", "COM10.txt"),
        ("icon.png", "icon.png"),
    ],
)
def test_windows_device_names_get_a_prefix(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_truncation_keeps_the_extension() -> None:
    result = sanitize_filename("x" * 500 + ".jpeg")
    assert len(result) == 200
    assert result == "x" * 195 + ".jpeg"
    assert sanitize_filename("abcdef.png", max_length=8) == "abcd.png"


def test_truncation_does_not_leave_trailing_dots_or_spaces() -> None:
    assert sanitize_filename("abc   def.png", max_length=8) == "abc.png"
    assert sanitize_filename("ab...cdef.png", max_length=9) == "ab.png"


def test_truncation_that_produces_a_device_name_is_prefixed() -> None:
    assert sanitize_filename("CONSOLE.txt", max_length=7) == "_CO.txt"


def test_extension_longer_than_the_limit_is_cut_with_the_name() -> None:
    assert sanitize_filename("a.abcdefghij", max_length=5) == "a.abc"
    assert len(sanitize_filename("photo.jpeg", max_length=3)) == 3


def test_max_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_length"):
        sanitize_filename("a.txt", max_length=0)


def test_nfc_normalization() -> None:
    decomposed = "cafe\u0301.jpg"
    result = sanitize_filename(decomposed)
    assert result == "caf\u00e9.jpg"
    assert unicodedata.is_normalized("NFC", result)


def test_random_names_always_come_out_safe() -> None:
    rng = random.Random(3)
    alphabet = 'abc.xyz /\\:<>|?*"\x00\x1f\u202e\u200b\ufeff\t\n é写' + "\ud800"
    for _ in range(2000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        result = sanitize_filename(name, max_length=20)
        assert 0 < len(result) <= 20
        assert not set(result) & set('/\\<>:"|?*')
        assert all(unicodedata.category(c) not in {"Cc", "Cf", "Cs"} for c in result)
        assert result == result.strip(". ")
        assert result not in {".", ".."}
        assert "  " not in result
        result.encode("utf-8")  # lone surrogates would fail here


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.JPG", "jpg"),
        ("archive.tar.gz", "gz"),
        (".bashrc", ""),
        ("...png", ""),
        ("README", ""),
        ("trailing.", ""),
        ("dir.d/file", ""),
        ("C:\\dir\\clip.MP4", "mp4"),
        ("a.b c", ""),
        ("", ""),
    ],
)
def test_extension_of(name: str, expected: str) -> None:
    assert extension_of(name) == expected


def test_sanitized_name_keeps_the_extension_extension_of_sees() -> None:
    for name in ("x" * 300 + ".webp", "???.heic", "my  clip.MOV"):
        assert extension_of(sanitize_filename(name)) == extension_of(name)
