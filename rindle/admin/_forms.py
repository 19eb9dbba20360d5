"""Reading the console's form posts with the standard library.

Starlette's ``request.form()`` needs python-multipart, which Rindle core does not depend on
(only the demo uses it); the console's forms are small and always urlencoded, so
``urllib.parse.parse_qs`` reads them, with a limit on the body and on the number of fields.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from ..errors import ValidationError

#: The console's largest form is a few hundred bytes; anything near this is not one of ours.
FORM_LIMIT = 16 * 1024
MAX_FIELDS = 32
_FORM_TYPE = "application/x-www-form-urlencoded"


def _too_large() -> ValidationError:
    return ValidationError(f"the form is larger than {FORM_LIMIT} bytes", code="body_too_large",
                           limit=FORM_LIMIT)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body's fields (the first value of each); no fields for an empty
    body; ``ValidationError`` for another type, a body over ``FORM_LIMIT`` or more than
    ``MAX_FIELDS`` fields."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if kind != _FORM_TYPE:
        if length.strip() in ("", "0") and "transfer-encoding" not in request.headers:
            return {}  # no body: the CSRF check refuses it for want of a token
        raise ValidationError(f"send the form as {_FORM_TYPE}", code="validation_error")
    if length.isdigit() and int(length) > FORM_LIMIT:
        raise _too_large()  # refused before a byte is read
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_LIMIT:
            raise _too_large()
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                          max_num_fields=MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the form is not valid urlencoded UTF-8 (or has too many "
                              "fields)", code="validation_error") from None
    return {name: values[0] for name, values in fields.items() if values}


__all__ = ["FORM_LIMIT", "read_form"]
