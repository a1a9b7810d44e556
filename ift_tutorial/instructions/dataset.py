"""Instruction data sets: load a whole file, filter it, and report what was kept (chapter 5).

:func:`load_conversations` reads a file (or hub dataset) and normalises every record
into a conversation; :func:`prepare_dataset` also drops exact duplicates and, with a
tokenizer, conversations longer than ``max_length`` tokens, and returns a
``datasets.Dataset`` with one column ``messages``; :func:`check_data` is the same
check without the dataset (``ift-tutorial check-data``). With
:class:`~ift_tutorial.instructions.contamination.DataChecks` they also drop near
duplicates and check the data against evaluation sets (13-gram overlap).

Bad input is an error that names the file, the line (1-based; the CSV header is
line 1) or, for JSON and Parquet files, the record (0-based index), and the field.
Nothing is dropped silently: duplicates and over-long examples are counted in a
:class:`DataReport` together with where they were.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import DataError, UserFacingError
from ..paths import display_path
from .contamination import DataChecks, data_checks, find_overlaps, near_duplicates
from .formats import FORMATS, Conversation, _Invalid, _normalize_record, detect_format
from .reading import _read, _Source, is_local
from .sources import HubSource

#: How many problems an error message lists (all are counted).
MAX_ERRORS_SHOWN = 10
#: How many dropped examples a report names per reason.
MAX_EXAMPLES_SHOWN = 5


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
            :class:`~ift_tutorial.instructions.sources.HubSource` (its fixture when offline).
        format: ``auto`` (detected from the first record) or one of
            :data:`~ift_tutorial.instructions.formats.FORMATS`.
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
    # the first near duplicates dropped: {"dropped": place, "kept": place, "jaccard": 0.86}
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    # per evaluation set: items, items sharing a 13-gram, an example (contamination.Overlap)
    contamination: list[dict[str, Any]] = field(default_factory=list)
    decontaminate: str | None = None  # "drop" or "report" the rows involved; None: not checked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def overlap_counts(self) -> dict[str, int]:
        """Evaluation items that share a 13-gram with the data, per set (its config keys)."""
        return {o["name"]: o["n_overlapping"] for o in self.contamination}

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
        return "\n".join(lines + self._check_lines())

    def _check_lines(self) -> list[str]:
        unit = "line" if self.unit == "line" else "record"
        lines = [f"  near duplicate: {unit} {d['dropped']} is like {unit} {d['kept']} "
                 f"(Jaccard {d['jaccard']:.2f})" for d in self.near_duplicates[:1]]
        if self.decontaminate is not None:
            action = "dropped" if self.decontaminate == "drop" else "reported, kept"
            lines.append(f"  overlap with the evaluation sets (13-grams; training rows {action}):")
        for o in self.contamination:
            lines.append(f"    {o['name']} ({o['source']}): {o['n_overlapping']} of "
                         f"{o['n_items']} items")
            if o["example"]:
                e = o["example"]
                lines.append(f"      e.g. item {e['item']}: \"{e['shared']}\" also in {unit} "
                             f"{e['train']}")
        return lines


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


def _filter(loaded: _Loaded, tokenizer: Any, max_length: int | None, deduplicate: bool,
            checks: DataChecks | None = None) -> tuple[list[Conversation], DataReport]:
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
    if checks is not None:
        kept, kept_where = _check(kept, kept_where, checks, report, drop)
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


def _check(kept: list[Conversation], kept_where: list[int], checks: DataChecks,
           report: DataReport, drop: Any) -> tuple[list[Conversation], list[int]]:
    """Near duplicates, then overlap with the evaluation sets; both counted in ``report``."""
    gone: set[int] = set()
    if checks.near_duplicate_threshold is not None:
        for d in near_duplicates(kept, checks.near_duplicate_threshold):
            drop("near_duplicate", kept_where[d.dropped])
            gone.add(d.dropped)
            if len(report.near_duplicates) < MAX_EXAMPLES_SHOWN:
                report.near_duplicates.append({"dropped": kept_where[d.dropped],
                                               "kept": kept_where[d.kept], "jaccard": d.jaccard})
    left = [i for i in range(len(kept)) if i not in gone]
    if checks.eval_sets:
        overlaps, involved = find_overlaps([kept[i] for i in left], checks.eval_sets)
        for o in overlaps:
            if o.example:  # an index among the rows checked -> the line or record
                o.example["train"] = kept_where[left[o.example["train"]]]
        report.contamination = [asdict(o) for o in overlaps]
        report.decontaminate = checks.decontaminate
        if checks.decontaminate == "drop":
            for j in sorted(involved):
                drop("contaminated", kept_where[left[j]])
            left = [i for j, i in enumerate(left) if j not in involved]
    return [kept[i] for i in left], [kept_where[i] for i in left]


def prepare_dataset(path_or_id: str | HubSource, tokenizer: Any = None,
                    max_length: int | None = None, deduplicate: bool = True,
                    format: str = "auto", split: str = "train",
                    system_prompt: str | None = None, strict: bool | None = None,
                    checks: DataChecks | None = None):
    """Load, validate and filter instruction data into a ``datasets.Dataset``.

    Args:
        tokenizer: with ``max_length``, drop (and count) conversations whose chat
            template rendering is longer than ``max_length`` tokens.
        deduplicate: drop (and count) exact duplicate conversations, keeping the first.
        checks: drop (and count) near duplicates and check against evaluation sets
            (:func:`~ift_tutorial.instructions.contamination.data_checks` of a config).
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
    kept, report = _filter(loaded, tokenizer, max_length, deduplicate, checks)
    return datasets.Dataset.from_dict({"messages": kept}), report


def check_data(path: str | HubSource, format: str = "auto", tokenizer: Any = None,
               max_length: int | None = None, system_prompt: str | None = None,
               deduplicate: bool = True, strict: bool | None = None,
               checks: DataChecks | None = None) -> DataReport:
    """Validate a data file and report what training would keep.

    Args:
        path: a data file (or hub dataset id), as for :func:`load_conversations`.
        tokenizer, max_length: count (and report) conversations over ``max_length`` tokens.
        strict: fields the format does not use are an error (default for files), or
            ignored and listed in the report (``False``, as training reads a file).
        checks: near duplicates and evaluation-set overlap, as in :func:`prepare_dataset`.

    Raises:
        DataError: naming the file, the line and the field of the first problem.

    Example:
        >>> from ift_tutorial import check_data
        >>> report = check_data("data/instructions/train.jsonl")
        >>> report.n_kept > 200
        True
    """
    loaded = _load(path, format, "train", system_prompt, strict)
    return _filter(loaded, tokenizer, max_length, deduplicate, checks)[1]


def check_data_cli(args: Any) -> int:
    """``ift-tutorial check-data PATH [--format F] [--config C [--set K=V]] [--json]``.

    Prints the report and returns 0 when the file is valid; prints
    ``error: FILE, line N, field 'F': message`` to stderr and returns 2 when it is not
    (the CLI's status for every input a user can fix).
    With ``--config``, the preset's tokenizer counts examples over its ``max_length``,
    its ``data`` settings apply as in training, and the file is checked against the
    evaluation sets it names; without, only the near-duplicate filter's default applies.
    """
    from ..settings import DataSettings

    tokenizer, max_length, system_prompt, deduplicate = None, None, None, True
    cfg = None
    if args.config:
        from ..config import load_config
        from ..loading import load_tokenizer

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
    try:  # an evaluation set that cannot be read is the same kind of error
        checks = (data_checks(cfg) if cfg is not None
                  else DataChecks(DataSettings.near_duplicate_threshold))
        report = check_data(args.path, format=args.format, tokenizer=tokenizer,
                            max_length=max_length, system_prompt=system_prompt,
                            deduplicate=deduplicate, checks=checks,
                            strict=False if getattr(args, "ignore_extra_fields", False) else None)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report)
    return 0
