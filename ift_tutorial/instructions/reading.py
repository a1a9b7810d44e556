"""Reading instruction data files: JSONL, JSON, CSV, Parquet, or a hub dataset (chapter 5).

Each reader returns the raw records of one file with where each one came from, a
:class:`_Source`: the line (1-based; the CSV header is line 1) for JSONL and CSV files,
the record (0-based index) for JSON and Parquet files and hub datasets. Records that
cannot even be parsed (a bad JSON line, a CSV row with the wrong number of cells) are
collected as errors, not raised one by one, so that one run lists them all. What the
records mean is :mod:`ift_tutorial.instructions.formats`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, RecordError
from ..paths import resolve_path
from .formats import CONVERSATION_FIELDS, _Invalid
from .sources import HubSource, read_hub_rows

#: File types by suffix.
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
            ".parquet": "parquet"}


@dataclass
class _Source:
    """Records read from one file or hub dataset, with where each one came from."""

    path: str  # as the user wrote it: error messages name it
    unit: str  # "line" (1-based) or "record" (0-based)
    records: list[tuple[int, Any]]  # (line or record index, raw record)
    errors: list[DataError]  # records that could not even be parsed (bad JSON lines)
    notes: list[str] = field(default_factory=list)  # a hub source: where the rows came from

    def error(self, where: int, message: str, field: str | None = None) -> DataError:
        if self.unit == "line":
            return DataError(self.path, message, line=where, field=field)
        return RecordError(self.path, message, record=where, field=field)


def _decode(data: bytes, path: str) -> str:
    """UTF-8 text of a file (a leading byte-order mark is allowed), else a DataError."""
    if not data.strip():
        raise DataError(path, "the file is empty")
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # BOM written by some editors
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise DataError(
            path, f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}; "
            "save the file as UTF-8", line=line) from None


def _read_jsonl(text: str, path: str) -> _Source:
    src = _Source(path, "line", [], [])
    # split on "\n" only: str.splitlines() would also split on U+2028 inside strings
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue  # blank lines separate nothing and hold no example
        try:
            src.records.append((lineno, json.loads(line)))
        except json.JSONDecodeError as err:
            src.errors.append(src.error(lineno, f"invalid JSON: {err.msg} (column {err.colno})"))
    return src


def _read_json(text: str, path: str) -> _Source:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})",
                        line=err.lineno) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        what = f"an object with keys {sorted(data)}" if isinstance(data, dict) else \
            type(data).__name__
        raise DataError(path, f'expected a list of records or {{"data": [...]}}, got {what}')
    return _Source(path, "record", list(enumerate(data)), [])


#: CSV columns that hold a JSON list (CSV cells are strings).
_JSON_COLUMNS = ("messages", "conversations")


def _read_csv(text: str, path: str) -> _Source:
    src = _Source(path, "line", [], [])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise DataError(path, f"the header must name each column once, got {header}", line=1)
    prev_end = reader.line_num
    for row in reader:
        lineno, prev_end = prev_end + 1, reader.line_num  # a quoted cell may span lines
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            src.errors.append(src.error(
                lineno, f"the row has {len(row)} cells, the header has {len(header)}"))
            continue
        record: dict[str, Any] = dict(zip(header, row))
        try:
            for col in _JSON_COLUMNS:
                if col in record and record[col].strip():
                    try:
                        record[col] = json.loads(record[col])
                    except json.JSONDecodeError as err:
                        raise _Invalid(f"invalid JSON in the cell: {err.msg} "
                                       f"(column {err.colno})", col) from None
        except _Invalid as bad:
            src.errors.append(src.error(lineno, bad.message, bad.field))
            continue
        src.records.append((lineno, record))
    if not src.records and not src.errors:
        raise DataError(path, "no rows after the header")
    return src


def _read_parquet(file: Path, path: str) -> _Source:
    import pyarrow.parquet as pq  # imported here: only Parquet files need it

    try:
        rows = pq.read_table(file).to_pylist()
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(path, f"cannot read the Parquet file: {err}") from None
    return _Source(path, "record", list(enumerate(rows)), [])


def _read_hub(source: HubSource) -> _Source:
    """A hub dataset through its column mapping; its local fixture when offline (sources.py)."""
    rows = read_hub_rows(source, CONVERSATION_FIELDS)
    return _Source(rows.path, rows.unit, list(rows.records), [], rows.notes)


def is_local(path_or_id: str | HubSource) -> bool:
    """True when ``path_or_id`` is a file path rather than a hub dataset id or hub source."""
    if isinstance(path_or_id, HubSource):
        return False
    s = str(path_or_id)
    return (s.startswith((".", "/", "~", "data/")) or Path(s).suffix.lower() in SUFFIXES
            or resolve_path(s).exists())


def _read(path_or_id: str | HubSource, split: str) -> _Source:
    if isinstance(path_or_id, HubSource):
        return _read_hub(path_or_id)
    path = str(path_or_id)
    if not is_local(path):
        return _read_hub(HubSource(hub=path, split=split))  # a bare id: no mapping, no fixture
    file = resolve_path(path)
    if not file.is_file():
        raise DataError(path, "file not found" if not file.exists() else "not a file")
    kind = SUFFIXES.get(file.suffix.lower())
    if kind is None:
        raise DataError(path, f"unsupported file type {file.suffix or '(no extension)'!r}; "
                        f"use one of {', '.join(SUFFIXES)}")
    if kind == "parquet":
        src = _read_parquet(file, path)
    else:
        text = _decode(file.read_bytes(), path)
        src = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv}[kind](text, path)
    if not src.records and not src.errors:
        raise DataError(path, "no records")
    return src
