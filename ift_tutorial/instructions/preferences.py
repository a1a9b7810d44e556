"""Preference data: a prompt, a chosen answer and a rejected one (chapter 9).

A preference record is TRL's standard prompt/chosen/rejected, best in its
*conversational* form, where each field is a list of messages::

    {"prompt": [{"role": "user", "content": "What is 7 + 5?"}],
     "chosen": [{"role": "assistant", "content": "12"}],
     "rejected": [{"role": "assistant", "content": "13"}]}

Accepted as well, and normalised into that form: plain strings (a user prompt, an
assistant answer), a system turn before the prompt (a ``system`` field or a first
system message), chosen/rejected conversations that repeat the prompt's turns before
the answer (the form of ``HuggingFaceH4/ultrafeedback_binarized``), and chosen/rejected
transcripts with no prompt field, ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``, whose turns
before the last answer are the prompt (the form of ``Anthropic/hh-rlhf``).

The files are read like instruction data (:mod:`ift_tutorial.instructions.reading`:
JSONL, JSON, CSV, Parquet, or a hub source with its fixture offline), and bad records
get the same clear errors, naming the file, the line and the field: an empty prompt or
answer, a role out of place, or a pair whose chosen and rejected answers are the same
(it would teach nothing). In a hub dataset, whose rows are not yours to fix, such pairs
are filtered instead, and the report counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from ..paths import display_path
from .dataset import _collected
from .formats import ROLES, Conversation, _Invalid, _text, _turns
from .reading import _read, _Source, is_local
from .sources import HubSource, read_hub_rows

#: The fields of a preference record.
PREFERENCE_FIELDS = ("prompt", "chosen", "rejected", "system", "id")
#: Fields kept beside a pair and otherwise ignored: what the tiny world's pairs say about themselves.
METADATA_FIELDS = ("id", "task", "lang", "key", "answer", "rejected_kind")
_ROLES = {r: r for r in ROLES}


@dataclass
class PreferenceReport:
    """What was read, what was kept, and what was filtered out and why."""

    path: str
    n_read: int  # records read
    n_kept: int  # pairs kept
    filtered: dict[str, int] = field(default_factory=dict)  # reason -> how many dropped
    ignored_fields: list[str] = field(default_factory=list)  # unknown fields (a hub source)
    notes: list[str] = field(default_factory=list)  # a hub source: hub or fixture, sample

    def __str__(self) -> str:
        lines = [f"{display_path(self.path)}: {self.n_read} preference pairs read, {self.n_kept} kept"]
        lines += [f"  source: {note}" for note in self.notes]
        lines += [f"  filtered, {reason.replace('_', ' ')}: {n}" for reason, n in self.filtered.items()]
        if not self.filtered:
            lines.append("  filtered: none")
        if self.ignored_fields:
            lines.append(f"  ignored fields: {', '.join(self.ignored_fields)}")
        return "\n".join(lines)


class _SameAnswer(_Invalid):
    """The chosen and the rejected answer are the same text."""


def _prompt(value: Any, system: str | None, strict: bool) -> Conversation:
    """The prompt as messages: an optional system turn, then user/assistant turns ending on user."""
    if isinstance(value, str) or value is None:
        turns = [{"role": "user", "content": _text(value, "prompt")}]
    else:
        turns = _turns(value, "prompt", "role", "content", _ROLES, strict)
    if system is not None:
        if turns[0]["role"] == "system":
            raise _Invalid("a 'system' field and a system turn: keep one", "system")
        turns.insert(0, {"role": "system", "content": system})
    if turns[-1]["role"] != "user":
        raise _Invalid(f"the prompt must end with a user turn, got {turns[-1]['role']!r}",
                       f"prompt[{len(turns) - 1}].role")
    return turns


def _answer(value: Any, name: str, prompt: Conversation, strict: bool) -> Conversation:
    """An answer as assistant messages; the prompt's turns in front of it are dropped."""
    if isinstance(value, str) or value is None:
        return [{"role": "assistant", "content": _text(value, name)}]
    turns = _turns(value, name, "role", "content", _ROLES, strict)
    for prefix in (prompt, [t for t in prompt if t["role"] != "system"]):
        if len(turns) > len(prefix) and turns[:len(prefix)] == prefix:  # ultrafeedback's form
            turns = turns[len(prefix):]
            break
    if not turns or any(t["role"] != "assistant" for t in turns):
        raise _Invalid("expected the assistant's answer (after the prompt's turns, if repeated)",
                       name)
    return turns


_TRANSCRIPT_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def _transcript(value: Any, name: str) -> Conversation:
    """A ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcript as messages."""
    parts = _TRANSCRIPT_TURN.split(value)  # ["", "Human", text, "Assistant", text, ...]
    if parts[0].strip() or len(parts) < 5:
        raise _Invalid("expected a transcript of '\\n\\nHuman: ' and '\\n\\nAssistant: ' turns",
                       name)
    return [{"role": "user" if who == "Human" else "assistant",
             "content": _text(said.strip(), f"{name}[{i}].content")}
            for i, (who, said) in enumerate(zip(parts[1::2], parts[2::2]))]


def _split_transcripts(record: dict[str, Any]) -> dict[str, Any]:
    """A record of two transcripts (no prompt field) as prompt, chosen and rejected."""
    chosen, rejected = (_transcript(record[k], k) for k in ("chosen", "rejected"))
    if chosen[:-1] != rejected[:-1]:
        raise _Invalid("the chosen and rejected transcripts differ before their last turn",
                       "rejected")
    return {**record, "prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]}


def normalize_pair(record: Any, strict: bool = True, ignored: set[str] | None = None) -> dict[str, Any]:
    """One record as ``{"prompt", "chosen", "rejected"}`` lists of messages, plus its metadata.

    Raises:
        _Invalid: naming the field of the first problem (the caller adds file and line).
    """
    if not isinstance(record, dict):
        raise _Invalid(f"expected an object with fields, got {type(record).__name__}")
    record = {k: v for k, v in record.items() if v is not None}
    if "prompt" not in record and all(isinstance(record.get(k), str) and
                                      record[k].startswith("\n\nHuman:") for k in ("chosen", "rejected")):
        record = _split_transcripts(record)
    for name in ("prompt", "chosen", "rejected"):
        if name not in record:
            raise _Invalid(f"missing field '{name}' of a preference pair; the record has "
                           f"{sorted(record)}", name)
    unknown = sorted(set(record) - set(PREFERENCE_FIELDS) - set(METADATA_FIELDS))
    if unknown and strict:
        raise _Invalid(f"unknown field(s) {unknown}; allowed: "
                       f"{list(PREFERENCE_FIELDS + METADATA_FIELDS[1:])}", unknown[0])
    if ignored is not None:
        ignored.update(unknown)
    prompt = _prompt(record["prompt"], _text(record.get("system"), "system", optional=True), strict)
    chosen = _answer(record["chosen"], "chosen", prompt, strict)
    rejected = _answer(record["rejected"], "rejected", prompt, strict)
    if [m["content"].strip() for m in chosen] == [m["content"].strip() for m in rejected]:
        raise _SameAnswer("chosen and rejected are the same answer: the pair teaches nothing",
                          "rejected")
    meta = {k: record[k] for k in METADATA_FIELDS if k in record}
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **meta}


def _source(path_or_id: str | HubSource, split: str) -> _Source:
    if isinstance(path_or_id, HubSource):
        rows = read_hub_rows(path_or_id, PREFERENCE_FIELDS)
        return _Source(rows.path, rows.unit, list(rows.records), [], rows.notes)
    return _read(path_or_id, split)


def load_preferences(path_or_id: str | HubSource, split: str = "train",
                     strict: bool | None = None,
                     max_examples: int | None = None) -> tuple[list[dict[str, Any]], PreferenceReport]:
    """Read a preference file (or hub source) into conversational pairs, and report on it.

    Args:
        path_or_id: a ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a hub id, or a
            :class:`~ift_tutorial.instructions.sources.HubSource` (its fixture offline).
        split: the split of a bare hub id.
        strict: every bad record is an error (default for files), or bad pairs are filtered
            and counted and unknown fields ignored (default for hub datasets).
        max_examples: keep the first N pairs (None: all); the report counts the rest.

    Raises:
        DataError: naming the file, the line or record, and the field of the first problem.

    Example:
        >>> pairs, report = load_preferences("data/preferences/heldout.jsonl")
        >>> pairs[0]["chosen"][0]["role"], report.n_kept
        ('assistant', 540)
    """
    src = _source(path_or_id, split)
    if strict is None:
        strict = is_local(path_or_id)
    errors, pairs, ignored = list(src.errors), [], set()
    filtered: dict[str, int] = {}
    for where, record in src.records:
        try:
            pairs.append(normalize_pair(record, strict, ignored))
        except _Invalid as bad:
            if strict:
                errors.append(src.error(where, bad.message, bad.field))
            else:
                reason = "same answer" if isinstance(bad, _SameAnswer) else "invalid record"
                filtered[reason] = filtered.get(reason, 0) + 1
    if errors:
        raise _collected(src.path, errors)
    if not pairs:
        raise DataError(src.path, "no valid preference pairs")
    if max_examples is not None and len(pairs) > max_examples:
        filtered["over max_examples"] = len(pairs) - max_examples
        pairs = pairs[:max_examples]
    report = PreferenceReport(src.path, len(src.records), len(pairs), filtered, sorted(ignored),
                              list(src.notes))
    return pairs, report
