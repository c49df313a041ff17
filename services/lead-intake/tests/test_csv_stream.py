"""The CSV reader gives the same rows however the bytes are cut into pieces."""

from __future__ import annotations

import pytest

from leadflow_intake.csv_stream import CsvReader
from leadflow_shared.errors import InvalidInput

CSV = (
    "\ufeffE-Mail;First Name;Notes;Company Name\r\n"
    'ann@x.io;Änne;"said ""hi""; then\r\nleft";Acme\r\n'
    "\r\n"
    'bob@x.io;Bøb;"";\r\n'
    "cy@x.io;Cy;plain;Cx"
).encode()
EXPECTED = [
    (
        2,
        {
            "email": "ann@x.io",
            "first_name": "Änne",
            "Notes": 'said "hi"; then\r\nleft',
            "company": "Acme",
        },
    ),
    (4, {"email": "bob@x.io", "first_name": "Bøb"}),
    (5, {"email": "cy@x.io", "first_name": "Cy", "Notes": "plain", "company": "Cx"}),
]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, len(CSV)])
def test_rows_do_not_depend_on_how_the_bytes_arrive(piece: int) -> None:
    reader = CsvReader()
    rows = []
    for start in range(0, len(CSV), piece):
        rows.extend(reader.feed(CSV[start : start + piece]))
    rows.extend(reader.feed(b"", final=True))
    assert rows == EXPECTED


def test_an_unclosed_quote_is_refused_instead_of_buffering_the_file() -> None:
    reader = CsvReader()
    reader.feed(b'email,notes\na@x.io,"never closed\n')
    with pytest.raises(InvalidInput, match="quote"):
        for _ in range(20):
            reader.feed(b"x" * 100_000 + b"\n")
