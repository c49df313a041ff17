from __future__ import annotations

import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError

from leadflow_intake.emails import Email

CASES = [
    "Ann@Example.COM",
    " BO@x.io",
    "a..b@x.io",
    ".a@x.io",
    "a@localhost",
    "a@x.test",
    "John <j@x.io>",
    "nope",
    "a@-x.io",
    "a@x.io.",
    "ü@x.io",
    "a@bücher.de",
    "a+b@x.io",
    "a@x.invalid",
    "a@123.45",
]


def _outcome(adapter: TypeAdapter[str], value: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        return f"error: {exc.errors()[0]['msg']}"


@pytest.mark.parametrize("value", CASES)
def test_fast_email_check_agrees_with_emailstr(value: str) -> None:
    assert _outcome(TypeAdapter(Email), value) == _outcome(TypeAdapter(EmailStr), value)
