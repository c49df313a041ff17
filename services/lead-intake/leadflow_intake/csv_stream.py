"""A CSV upload read as it arrives: never the whole file in memory.

Bytes are decoded incrementally (UTF-8, with or without BOM; the delimiter, ``,`` ``;``
or tab, is the one the header row uses most), cut at the last record
boundary (a newline outside quotes) and parsed by :mod:`csv`; a multipart body is
unwrapped part by part on the way. Rows are numbered as records of the file (the header
is row 1), so a rejected row's number is the one a spreadsheet shows.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from leadflow_intake.csv_columns import lead_field_of
from leadflow_intake.errors import PayloadTooLarge
from leadflow_shared.errors import InvalidInput

# A record this long means an unclosed quote swallowing the file, not a lead.
MAX_RECORD_CHARS = 1 << 20

Row = tuple[int, dict[str, str]]


def _complete_end(text: str) -> int:
    """Index just past the last newline that ends a record (even number of quotes
    before it); 0 when ``text`` holds no complete record yet."""
    quotes = text.count('"')
    end = len(text)
    while (newline := text.rfind("\n", 0, end)) >= 0:
        if (quotes - text.count('"', newline)) % 2 == 0:
            return newline + 1
        end = newline
    return 0


DELIMITERS = (",", ";", "\t")


def sniff_delimiter(header: str) -> str:
    """The delimiter the header row uses most, outside quotes (``,`` on a tie)."""
    outside = "".join(header.split('"')[::2])
    return max(DELIMITERS, key=lambda d: (outside.count(d), d == ","))


@dataclass
class CsvReader:
    """Turns decoded text, fed in pieces, into numbered rows keyed by lead field (or by
    what ``column_of`` maps a header to; ``required`` must be among them)."""

    column_of: Callable[[str], str] = lead_field_of
    required: str = "email"
    required_hint: str = "an email column (email, Email Address, E-mail …)"
    columns: list[str] | None = None
    delimiter: str = ","
    number: int = 1
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8-sig")("strict")
    )
    _pending: str = ""

    def feed(self, data: bytes, *, final: bool = False) -> list[Row]:
        try:
            text = self._pending + self._decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise InvalidInput.field(
                "file", f"must be UTF-8 encoded CSV (undecodable bytes after row {self.number})"
            ) from exc
        cut = len(text) if final else _complete_end(text)
        self._pending = text[cut:]
        if len(self._pending) > MAX_RECORD_CHARS:
            raise InvalidInput.field(
                "file", f"row {self.number + 1} is longer than 1 MiB; is a quote left open?"
            )
        return self._parse(text[:cut]) if cut else []

    def _parse(self, text: str) -> list[Row]:
        if self.columns is None:
            self.delimiter = sniff_delimiter(text.split("\n", 1)[0])
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        rows: list[Row] = []
        try:
            for record in reader:
                if self.columns is None:
                    self._set_header(record)
                    continue
                self.number += 1
                values = {
                    name: value
                    for name, value in zip(self.columns, record, strict=False)
                    if name and value
                }
                if values:  # a blank line still counts as a row of the file
                    rows.append((self.number, values))
        except csv.Error as exc:
            raise InvalidInput.field("file", f"not valid CSV at row {self.number}: {exc}") from exc
        return rows

    def _set_header(self, record: list[str]) -> None:
        self.columns = [self.column_of(name) for name in record]
        if self.required not in self.columns:
            raise InvalidInput.field(
                "file",
                f"the header row must name {self.required_hint}, separated by , ; or tab",
            )


async def csv_rows(
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    batch_rows: int,
    reader: CsvReader | None = None,
) -> AsyncIterator[list[Row]]:
    """Rows of the CSV in ``chunks``, in batches of about ``batch_rows``.

    Raises :class:`PayloadTooLarge` past ``max_bytes``, ``InvalidInput`` for a file that is
    not UTF-8 CSV with an email column.
    """
    reader = reader or CsvReader()
    received = 0
    batch: list[Row] = []
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(f"the file is larger than {max_bytes} bytes; split it")
        batch.extend(reader.feed(chunk))
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    batch.extend(reader.feed(b"", final=True))
    if reader.columns is None:
        raise InvalidInput.field("file", "the file is empty; expected a header row")
    if batch:
        yield batch


class MultipartFile:
    """The part named ``file`` of a ``multipart/form-data`` body, streamed."""

    def __init__(self, content_type: str, field_name: str = "file") -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidInput.field("content-type", "multipart/form-data needs a boundary")
        self.field_name = field_name.encode()
        self.filename: str | None = None
        self._found = False
        self._inside = False
        self._out: list[bytes] = []
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    async def chunks(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for piece in body:
                self._parser.write(piece)
                if self._out:
                    yield b"".join(self._out)
                    self._out.clear()
            self._parser.finalize()
        except MultipartParseError as exc:  # a malformed body is the client's problem
            raise InvalidInput.field("file", f"malformed multipart body: {exc}") from exc
        if not self._found:
            raise InvalidInput.field("file", "the multipart body has no part named file")

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._inside = not self._found and options.get(b"name") == self.field_name
        if self._inside:
            self._found = True
            filename = options.get(b"filename")
            self.filename = filename.decode(errors="replace")[:300] if filename else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self._out.append(data[start:end])

    def _part_end(self) -> None:
        self._inside = False
