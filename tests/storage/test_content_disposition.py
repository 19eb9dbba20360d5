"""content_disposition() builds header values that are correct, portable and injection-proof."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from rindle.storage.content_disposition import content_disposition


def _params(value: str) -> dict[str, str]:
    _, *params = value.split("; ")
    return dict(p.split("=", 1) for p in params)


def test_no_filename_gives_the_bare_type() -> None:
    assert content_disposition("inline", None) == "inline"
    assert content_disposition("attachment", None) == "attachment"
    assert content_disposition("attachment", "") == "attachment"
    assert content_disposition("attachment", "\r\n") == "attachment"


def test_plain_ascii_name_has_no_extended_parameter() -> None:
    assert content_disposition("attachment", "report-2024.pdf") == (
        'attachment; filename="report-2024.pdf"'
    )
    assert content_disposition("inline", "holiday photo.jpg") == (
        'inline; filename="holiday photo.jpg"'
    )


def test_unicode_name() -> None:
    value = content_disposition("attachment", "café 写真.jpg")
    assert value == (
        "attachment; filename=\"caf_ __.jpg\"; filename*=UTF-8''caf%C3%A9%20%E5%86%99%E7%9C%9F.jpg"
    )
    value.encode("ascii")  # header values must be plain ASCII
    encoded = _params(value)["filename*"].removeprefix("UTF-8''")
    assert unquote(encoded, encoding="utf-8") == "café 写真.jpg"


def test_quotes_backslashes_and_percent_stay_out_of_the_fallback() -> None:
    value = content_disposition("attachment", 'a"b\\c%41.txt')
    params = _params(value)
    assert params["filename"] == '"a_b_c_41.txt"'
    assert params["filename*"] == "UTF-8''a%22b%5Cc%2541.txt"


def test_crlf_injection_is_neutralised() -> None:
    value = content_disposition("attachment", 'evil.txt"\r\nSet-Cookie: a=b\r\n\tx')
    assert "\r" not in value and "\n" not in value and "\t" not in value
    params = _params(value)
    assert params["filename"] == '"evil.txt_Set-Cookie: a=bx"'
    assert "%0D" not in params["filename*"] and "%0A" not in params["filename*"]
    assert value.count('"') == 2


def test_rfc5987_attr_chars_are_not_encoded_but_others_are() -> None:
    value = content_disposition("inline", "ü!#$&+-.^_`|~ /;=,'()*")
    encoded = _params(value)["filename*"]
    assert encoded == "UTF-8''%C3%BC!#$&+-.^_`|~%20%2F%3B%3D%2C%27%28%29%2A"


def test_lone_surrogate_does_not_crash() -> None:
    value = content_disposition("attachment", "x\udcff.bin")
    value.encode("ascii")


def test_inline_and_attachment_differ_only_in_type() -> None:
    inline = content_disposition("inline", "café.png")
    attachment = content_disposition("attachment", "café.png")
    assert inline.startswith("inline; ")
    assert attachment.startswith("attachment; ")
    assert inline.removeprefix("inline") == attachment.removeprefix("attachment")


@pytest.mark.parametrize("disposition", ["form-data", "Inline", "", "attachment; x=y"])
def test_invalid_disposition(disposition: str) -> None:
    with pytest.raises(ValueError):
        content_disposition(disposition, "a.txt")
    with pytest.raises(ValueError):
        content_disposition(disposition, None)
