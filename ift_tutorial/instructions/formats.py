"""Instruction data: read, validate, normalise and filter conversations (chapter 5).

Instruction datasets come in a handful of shapes. This module reads the common ones
from JSONL, JSON, CSV and Parquet files (or a hub dataset id) and turns every record
into one shape, a *conversation*: a list of messages

    [{"role": "system", "content": "..."},      # optional, first only
     {"role": "user", "content": "..."},
     {"role": "assistant", "content": "..."}, ...]

Formats (detected from the first record, or forced with ``format=``):

- ``messages``: ``{"messages": [{"role": ..., "content": ...}, ...]}``
- ``alpaca``: ``{"instruction", "input" (optional), "output", "system" (optional)}``
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]}``
  (``user`` and ``assistant`` are accepted as speakers too)
- ``prompt_completion``: ``{"prompt": str, "completion": str}``, or TRL's
  conversational form where both are lists of messages

Bad input is an error that names the file, the line (1-based; the CSV header is
line 1) or, for JSON and Parquet files, the record (0-based index), and the field.
Nothing is dropped silently: duplicates and over-long examples are counted in a
:class:`DataReport` together with where they were.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError, UserFacingError
from .paths import display_path, resolve_path
from .sources import HubSource, read_hub_rows

Message = dict[str, str]
Conversation = list[Message]

#: Record formats, in the order their detection rules are tried.
FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion")
ROLES = ("system", "user", "assistant")
#: File types by suffix.
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
            ".parquet": "parquet"}
#: ShareGPT speaker names and the role each one becomes.
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user",
                  "gpt": "assistant", "assistant": "assistant"}
#: Fields every format allows besides its own: an identifier, ignored.
METADATA_FIELDS = ("id",)
#: How many problems an error message lists (all are counted).
MAX_ERRORS_SHOWN = 10
#: How many dropped examples a report names per reason.
MAX_EXAMPLES_SHOWN = 5

# Fields of each format: (required, optional).
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "messages": (("messages",), ()),
    "sharegpt": (("conversations",), ("system",)),
    "alpaca": (("instruction", "output"), ("input", "system")),
    "prompt_completion": (("prompt", "completion"), ("system",)),
}


# --- errors --------------------------------------------------------------------


class RecordError(DataError):
    """A problem in a record of a file without lines (JSON, Parquet, a hub dataset).

    Says ``record N (0-based)`` where :class:`DataError` says ``line N``.
    """

    def __init__(self, path: str, message: str, record: int, field: str | None = None):
        super().__init__(path, message, line=None, field=field)
        self.record = record
        where = f"{display_path(self.path)}, record {record} (0-based)"
        where += f", field '{field}'" if field else ""
        self.args = (f"{where}: {message}",)


class DataValidationError(DataError):
    """Several records are invalid. ``problems`` holds each one's :class:`DataError`.

    The first line of the message is the first problem (file, line, field); the
    following lines list the next ones, up to :data:`MAX_ERRORS_SHOWN`.
    """

    def __init__(self, path: str, problems: list[DataError]):
        first = problems[0]
        super().__init__(path, "", line=first.line, field=first.field)
        self.problems = problems
        shown = problems[1:MAX_ERRORS_SHOWN]
        lines = [str(first), f"{len(problems)} invalid records in {display_path(path)}; "
                 + (f"the first {len(shown) + 1}:" if len(problems) > MAX_ERRORS_SHOWN
                    else "all of them:")]
        lines += [f"  {p}" for p in problems[:MAX_ERRORS_SHOWN]]
        self.args = ("\n".join(lines),)


class _Invalid(Exception):
    """A record-level problem; the caller adds the file and the location."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


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


# --- reading files -------------------------------------------------------------


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


#: Fields a hub source's ``columns`` may map onto: those of every format, and ``id``.
CONVERSATION_FIELDS = tuple(dict.fromkeys(
    name for required, optional in _FIELDS.values() for name in (*required, *optional)
)) + METADATA_FIELDS


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


# --- one record to one conversation ----------------------------------------------


def detect_format(record: Any) -> str | None:
    """The format a record looks like, from its field names; None if none fits."""
    if not isinstance(record, dict):
        return None
    keys = {k for k, v in record.items() if v is not None}
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys:
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion"
    return None


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    """A non-empty string; None for an absent optional field (empty counts as absent)."""
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise _Invalid("missing or null", field)
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {type(value).__name__}: {value!r:.60}", field)
    if not value.strip():
        raise _Invalid("empty content (only whitespace)" if value else "empty content", field)
    return value


def _check_fields(record: Any, fmt: str, strict: bool, ignored: set[str]) -> dict[str, Any]:
    """Check the record's field names against its format; drop null fields."""
    if not isinstance(record, dict):
        raise _Invalid(f"expected an object with fields, got {type(record).__name__}")
    required, optional = _FIELDS[fmt]
    allowed = (*required, *optional, *METADATA_FIELDS)
    record = {k: v for k, v in record.items() if v is not None}
    for name in required:
        if name not in record:
            raise _Invalid(f"missing field '{name}' required by the {fmt} format; the record "
                           f"has {sorted(record)}", name)
    unknown = sorted(set(record) - set(allowed))
    if unknown and strict:
        raise _Invalid(f"unknown field(s) {unknown} for the {fmt} format; allowed: "
                       f"{list(allowed)}", unknown[0])
    ignored.update(unknown)
    return record


def _turns(value: Any, field: str, role_key: str, content_key: str,
           role_map: dict[str, str], strict: bool) -> Conversation:
    """A list of turns (messages or ShareGPT) as messages, field by field checked."""
    if not isinstance(value, list):
        raise _Invalid(f"expected a list of turns, got {type(value).__name__}", field)
    if not value:
        raise _Invalid("no turns", field)
    conv = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise _Invalid(f"expected an object with '{role_key}' and '{content_key}', got "
                           f"{type(turn).__name__}", where)
        turn = {k: v for k, v in turn.items() if v is not None}
        unknown = sorted(set(turn) - {role_key, content_key})
        if unknown and strict:
            raise _Invalid(f"unknown field(s) {unknown}; allowed: ['{role_key}', "
                           f"'{content_key}']", f"{where}.{unknown[0]}")
        if role_key not in turn:
            raise _Invalid("missing", f"{where}.{role_key}")
        role = turn[role_key]
        if not isinstance(role, str) or role not in role_map:
            raise _Invalid(f"unknown role {role!r}; allowed: {list(role_map)}",
                           f"{where}.{role_key}")
        content = _text(turn.get(content_key), f"{where}.{content_key}")
        conv.append({"role": role_map[role], "content": content})
    return conv


def _check_turn_order(conv: Conversation, field: str, role_key: str = "role") -> None:
    """Raise unless: optional system first, then user/assistant alternating, ending on assistant.

    ``field`` and ``role_key`` only name the place in error messages.
    """
    start = 1 if conv and conv[0]["role"] == "system" else 0
    for i, msg in enumerate(conv[start:], start=start):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if msg["role"] != expected:
            why = ("a system turn is only allowed first" if msg["role"] == "system"
                   else "user and assistant turns must alternate, starting with user")
            raise _Invalid(f"turn {i} is {msg['role']!r}, expected {expected!r}: {why}",
                           f"{field}[{i}].{role_key}")
    if not any(m["role"] == "assistant" for m in conv):
        raise _Invalid("the conversation has no assistant turn: nothing to learn from", field)
    if conv[-1]["role"] != "assistant":
        raise _Invalid("the conversation ends with a user turn that has no answer",
                       f"{field}[{len(conv) - 1}].{role_key}")


def _normalize_record(record: Any, fmt: str, strict: bool = True,
                      ignored: set[str] | None = None) -> Conversation:
    """One record of format ``fmt`` as a conversation (raises ``_Invalid`` if bad)."""
    ignored = set() if ignored is None else ignored
    rec = _check_fields(record, fmt, strict, ignored)
    system = _text(rec.get("system"), "system", optional=True)
    if fmt == "messages":
        conv = _turns(rec["messages"], "messages", "role", "content",
                      {r: r for r in ROLES}, strict)
        _check_turn_order(conv, "messages")
        return conv
    if fmt == "sharegpt":
        conv = _turns(rec["conversations"], "conversations", "from", "value",
                      SHAREGPT_ROLES, strict)
        _check_turn_order(conv, "conversations", "from")
    elif fmt == "alpaca":
        instruction = _text(rec["instruction"], "instruction")
        extra = _text(rec.get("input"), "input", optional=True)
        user = instruction if extra is None else f"{instruction}\n\n{extra}"
        conv = [{"role": "user", "content": user},
                {"role": "assistant", "content": _text(rec["output"], "output")}]
    elif fmt == "prompt_completion":
        prompt, completion = rec["prompt"], rec["completion"]
        if isinstance(prompt, list) or isinstance(completion, list):  # TRL conversational
            roles = {r: r for r in ROLES}
            conv = (_turns(prompt, "prompt", "role", "content", roles, strict)
                    + _turns(completion, "completion", "role", "content", roles, strict))
            _check_turn_order(conv, "prompt+completion")
        else:
            conv = [{"role": "user", "content": _text(prompt, "prompt")},
                    {"role": "assistant", "content": _text(completion, "completion")}]
    else:
        raise UserFacingError(f"unknown format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    if system is not None:
        if conv[0]["role"] == "system":
            raise _Invalid("a 'system' field and a system turn: keep one", "system")
        conv.insert(0, {"role": "system", "content": system})
    return conv


# --- loading a whole file ----------------------------------------------------------


@dataclass
class _Loaded:
    conversations: list[Conversation]
    where: list[int]  # line or record of each conversation
    source: _Source
    format: str
    n_system_added: int
    ignored_fields: list[str]


def _load(path_or_id: str | HubSource, format: str, split: str, system_prompt: str | None,
          strict: bool | None) -> _Loaded:
    if format != "auto" and format not in FORMATS:
        raise UserFacingError(f"unknown format {format!r}; choose from auto, {', '.join(FORMATS)}")
    src = _read(path_or_id, split)
    if strict is None:
        strict = is_local(path_or_id)  # a hub dataset's extra columns are not ours to fix
    fmt = format
    if fmt == "auto":
        first = next(((w, r) for w, r in src.records if isinstance(r, dict)), None)
        fmt = detect_format(first[1]) if first else None
        if fmt is None:
            if src.errors:  # nothing parsed: the parse errors say why
                raise _collected(src.path, src.errors)
            w, r = first if first else src.records[0]
            fields = sorted(r) if isinstance(r, dict) else type(r).__name__
            raise src.error(w, f"cannot tell the format from the fields {fields}: expected "
                            "'messages' (messages), 'conversations' (sharegpt), 'instruction' "
                            "and 'output' (alpaca) or 'prompt' and 'completion' "
                            "(prompt_completion); or pass the format explicitly")
    errors = list(src.errors)
    convs, where, ignored = [], [], set()
    n_system_added = 0
    for w, record in src.records:
        try:
            conv = _normalize_record(record, fmt, strict, ignored)
        except _Invalid as bad:
            looks = detect_format(record)
            hint = (f"; this record looks like {looks}, but the file's format is {fmt}"
                    if looks not in (None, fmt) else "")
            errors.append(src.error(w, bad.message + hint, bad.field))
            continue
        if system_prompt and conv[0]["role"] != "system":
            conv.insert(0, {"role": "system", "content": system_prompt})
            n_system_added += 1
        convs.append(conv)
        where.append(w)
    if errors:
        errors.sort(key=lambda e: e.line if e.line is not None else getattr(e, "record", 0))
        raise _collected(src.path, errors)
    return _Loaded(convs, where, src, fmt, n_system_added, sorted(ignored))


def _collected(path: str, errors: list[DataError]) -> DataError:
    return errors[0] if len(errors) == 1 else DataValidationError(path, errors)


def load_conversations(path_or_id: str | HubSource, format: str = "auto", split: str = "train",
                       system_prompt: str | None = None,
                       strict: bool | None = None) -> list[Conversation]:
    """Read a data file (or hub dataset) and return its records as conversations.

    Args:
        path_or_id: a ``.jsonl``/``.json``/``.csv``/``.parquet`` file (absolute, relative
            to the working directory or to the project root), a hub dataset id, or a
            :class:`~ift_tutorial.sources.HubSource` (its fixture when offline).
        format: ``auto`` (detected from the first record) or one of :data:`FORMATS`.
        split: the split to load when ``path_or_id`` is a hub id.
        system_prompt: added as the first turn of conversations that have no system turn.
        strict: unknown fields are an error (default for files) or ignored and
            reported (default for hub datasets, whose extra columns are not yours to fix).

    Raises:
        DataError: naming the file, the line or record, and the field of the first
            problem; with several problems, a :class:`DataValidationError` lists them.

    Example:
        >>> from ift_tutorial import load_conversations
        >>> conversations = load_conversations("data/instructions/examples/alpaca.json")
        >>> conversations[0][-1]["role"]
        'assistant'
    """
    return _load(path_or_id, format, split, system_prompt, strict).conversations


# --- filtering and the report ---------------------------------------------------


@dataclass
class DataReport:
    """What was read, what was kept, and what was filtered out and why."""

    path: str
    format: str
    n_read: int  # valid conversations read
    n_kept: int  # conversations kept after the filters
    filtered: dict[str, int] = field(default_factory=dict)  # reason -> how many dropped
    examples: dict[str, list[int]] = field(default_factory=dict)  # reason -> first few places
    unit: str = "line"  # "line" (1-based) or "record" (0-based): what the places count
    n_system_added: int = 0  # conversations given the system_prompt
    n_with_system: int = 0  # kept conversations that have a system turn
    max_length: int | None = None  # the token limit checked, if any
    token_lengths: dict[str, float] | None = None  # min/median/max of the kept, in tokens
    ignored_fields: list[str] = field(default_factory=list)  # non-strict: unknown fields
    notes: list[str] = field(default_factory=list)  # a hub source: hub or fixture, filter, sample

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"{display_path(self.path)}: {self.n_read} conversations read ({self.format} format), "
                 f"{self.n_kept} kept"]
        lines += [f"  source: {note}" for note in self.notes]
        if self.filtered:
            for reason, n in self.filtered.items():
                places = ", ".join(str(p) for p in self.examples.get(reason, []))
                more = ", ..." if n > len(self.examples.get(reason, [])) else ""
                unit = "line" if self.unit == "line" else "record"
                unit += "s" if len(self.examples.get(reason, [])) > 1 else ""
                unit += " (0-based)" if self.unit == "record" else ""
                label = (f"longer than {self.max_length} tokens" if reason == "too_long"
                         else reason.replace("_", " "))
                lines.append(f"  filtered, {label}: {n} ({unit} {places}{more})")
        else:
            lines.append("  filtered: none")
        lines.append(f"  kept with a system turn: {self.n_with_system}")
        if self.n_system_added:
            lines.append(f"  system prompt added to {self.n_system_added} conversations read")
        if self.token_lengths:
            t = self.token_lengths
            lines.append(f"  tokens per conversation: min {t['min']:.0f}, "
                         f"median {t['median']:.0f}, max {t['max']:.0f}")
        if self.ignored_fields:
            lines.append(f"  ignored fields: {', '.join(self.ignored_fields)}")
        return "\n".join(lines)


def length_statistics(conversations: Iterable[Conversation], tokenizer: Any) -> list[int]:
    """Token count of each conversation under the tokenizer's chat template.

    The count is what the model sees in training: the whole conversation rendered by
    ``tokenizer.apply_chat_template`` (special tokens included), no generation prompt.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise UserFacingError("the tokenizer has no chat template: lengths under the chat "
                              "template cannot be counted")
    lengths = []
    for conv in conversations:
        ids = tokenizer.apply_chat_template(conv, tokenize=True, return_dict=True)["input_ids"]
        lengths.append(len(ids))
    return lengths


def _filter(loaded: _Loaded, tokenizer: Any, max_length: int | None,
            deduplicate: bool) -> tuple[list[Conversation], DataReport]:
    report = DataReport(path=loaded.source.path, format=loaded.format,
                        n_read=len(loaded.conversations), n_kept=0, unit=loaded.source.unit,
                        n_system_added=loaded.n_system_added, max_length=max_length,
                        ignored_fields=loaded.ignored_fields, notes=list(loaded.source.notes))

    def drop(reason: str, where: int) -> None:
        report.filtered[reason] = report.filtered.get(reason, 0) + 1
        shown = report.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES_SHOWN:
            shown.append(where)

    kept, kept_where, seen = [], [], set()
    for conv, where in zip(loaded.conversations, loaded.where):
        key = json.dumps(conv, ensure_ascii=False, sort_keys=True)
        if deduplicate and key in seen:
            drop("duplicate", where)
            continue
        seen.add(key)
        kept.append(conv)
        kept_where.append(where)
    if tokenizer is not None:
        lengths = length_statistics(kept, tokenizer)
        if max_length is not None:
            short = [i for i, n in enumerate(lengths) if n <= max_length]
            for i, n in enumerate(lengths):
                if n > max_length:
                    drop("too_long", kept_where[i])
            kept, lengths = [kept[i] for i in short], [lengths[i] for i in short]
        if lengths:
            report.token_lengths = {"min": min(lengths), "median": statistics.median(lengths),
                                    "max": max(lengths)}
    elif max_length is not None:
        raise UserFacingError("max_length needs a tokenizer to count tokens")
    report.n_kept = len(kept)
    report.n_with_system = sum(c[0]["role"] == "system" for c in kept)
    return kept, report


def prepare_dataset(path_or_id: str | HubSource, tokenizer: Any = None,
                    max_length: int | None = None, deduplicate: bool = True,
                    format: str = "auto", split: str = "train",
                    system_prompt: str | None = None, strict: bool | None = None):
    """Load, validate and filter instruction data into a ``datasets.Dataset``.

    Args:
        tokenizer: with ``max_length``, drop (and count) conversations whose chat
            template rendering is longer than ``max_length`` tokens.
        deduplicate: drop (and count) exact duplicate conversations, keeping the first.
        Others: as in :func:`load_conversations`.

    Returns:
        ``(dataset, report)``: a Dataset with one column ``messages`` (one conversation
        per row, the format TRL's ``SFTTrainer`` reads), and a :class:`DataReport`.

    Example:
        >>> from ift_tutorial import load_config, load_tokenizer, prepare_dataset
        >>> tokenizer = load_tokenizer(load_config("tiny").model)
        >>> dataset, report = prepare_dataset("data/tasks/heldout.jsonl", tokenizer, max_length=64,
        ...                                   strict=False)
        >>> len(dataset) == report.n_kept
        True
    """
    import datasets

    loaded = _load(path_or_id, format, split, system_prompt, strict)
    kept, report = _filter(loaded, tokenizer, max_length, deduplicate)
    return datasets.Dataset.from_dict({"messages": kept}), report


def check_data(path: str | HubSource, format: str = "auto", tokenizer: Any = None,
               max_length: int | None = None, system_prompt: str | None = None,
               deduplicate: bool = True, strict: bool | None = None) -> DataReport:
    """Validate a data file and report what training would keep.

    Args:
        path: a data file (or hub dataset id), as for :func:`load_conversations`.
        tokenizer, max_length: count (and report) conversations over ``max_length`` tokens.
        strict: fields the format does not use are an error (default for files), or
            ignored and listed in the report (``False``, as training reads a file).

    Raises:
        DataError: naming the file, the line and the field of the first problem.

    Example:
        >>> from ift_tutorial import check_data
        >>> report = check_data("data/instructions/train.jsonl")
        >>> report.n_kept > 200
        True
    """
    loaded = _load(path, format, "train", system_prompt, strict)
    return _filter(loaded, tokenizer, max_length, deduplicate)[1]


def check_data_cli(args: Any) -> int:
    """``ift-tutorial check-data PATH [--format F] [--config C [--set K=V]] [--json]``.

    Prints the report and returns 0 when the file is valid; prints
    ``error: FILE, line N, field 'F': message`` to stderr and returns 1 when it is not.
    With ``--config``, the preset's tokenizer counts examples over its ``max_length``
    and its ``data.system_prompt`` and ``data.deduplicate`` apply as in training.
    """
    tokenizer, max_length, system_prompt, deduplicate = None, None, None, True
    if args.config:
        from .config import load_config
        from .loading import load_tokenizer

        cfg = load_config(args.config, getattr(args, "overrides", None))
        try:
            tokenizer = load_tokenizer(cfg.model)
        except (OSError, ValueError) as err:  # folder missing, offline hub id, no tokenizer
            raise UserFacingError(
                f"--config {args.config}: cannot load the tokenizer of model "
                f"{cfg.model.name_or_path!r} to count long examples ({err}); run without "
                "--config to check the file alone") from None
        max_length, system_prompt = cfg.model.max_length, cfg.data.system_prompt
        deduplicate = cfg.data.deduplicate
    try:
        report = check_data(args.path, format=args.format, tokenizer=tokenizer,
                            max_length=max_length, system_prompt=system_prompt,
                            deduplicate=deduplicate,
                            strict=False if getattr(args, "ignore_extra_fields", False) else None)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report)
    return 0
