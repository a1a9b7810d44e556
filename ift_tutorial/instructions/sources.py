"""Where a data set comes from: a local file, or a hub dataset with a local fixture.

A config names each data set (``data.train``, ``data.eval_perplexity``, ``data.eval_ifeval``,
``data.eval_gsm8k``) either by a file path or by a *hub source*, a mapping::

    train:
      hub: CohereLabs/aya_dataset          # the dataset id on the Hugging Face hub
      revision: f9ea04583f02a8f86404ff6c58bf75fe637df8a2   # a commit: the same rows every time
      split: train
      columns: {prompt: inputs, completion: targets}        # loader field <- dataset column
      where: {language_code: [eng, zho]}                    # keep rows whose column has one of these
      sample: 1200                                          # then a seeded random subset
      seed: 0
      fixture: ../data/fixtures/aya_train.jsonl             # same columns, made by this project
      licence: Apache-2.0

Rows are read, filtered by ``where`` (every condition must hold), sampled (``sample``
rows drawn with ``seed``, kept in dataset order), and renamed by ``columns`` into the
fields of a format the reader knows (for instructions: ``prompt``/``completion``,
``instruction``/``output``, ``messages``, ``conversations``). Columns that are not
mapped stay in the record, so the reader reports them as ignored fields.

**Offline.** With ``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1`` set, or ``offline: true``
on the source (a rehearsal, ``IFT_REHEARSAL=1``, sets it), nothing is downloaded: the ``fixture`` file is read
instead, through the same filter, sample and mapping, and the notes of the data report
say so. Tests and CI always run this way.

Example:
    >>> source = hub_source({"hub": "openai/gsm8k", "config": "main", "split": "test",
    ...                      "revision": "cc7b047b6e5bb11b4f1af84efc572db110a51b3c"}, "data.eval_gsm8k")
    >>> source.label()
    'openai/gsm8k (main) @cc7b047, split test'
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DataError, RecordError, UserFacingError
from ..jsonl import read_jsonl_objects
from ..paths import display_path, resolve_path

T = TypeVar("T")

#: Environment variables that turn the hub off (as the ``huggingface_hub`` and ``datasets`` read them).
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")


class SourceError(UserFacingError):
    """A hub source in a config is malformed; the message names the key."""


@dataclass
class HubSource:
    """A data set on the Hugging Face hub, read through a column mapping (see the module doc)."""

    hub: str  # dataset id, e.g. "CohereLabs/aya_dataset"
    split: str = "train"
    config: str | None = None  # the dataset's configuration ("main" for GSM8K), if it has several
    revision: str | None = None  # a commit sha: the rows cannot change under you
    columns: dict[str, str] = field(default_factory=dict)  # loader field -> dataset column
    where: dict[str, Any] = field(default_factory=dict)  # column -> value or list of values kept
    sample: int | None = None  # rows drawn at random (seeded) after the filter; None: all
    seed: int = 0
    fixture: str | None = None  # a local JSONL with the same columns: read offline and in rehearsal
    offline: bool = False  # read the fixture, never the hub (a rehearsal sets it)
    licence: str | None = None  # what the data may be used for (recorded in the presets)

    def label(self) -> str:
        """``CohereLabs/aya_dataset @f9ea045, split train``: how reports name the source."""
        name = self.hub + (f" ({self.config})" if self.config else "")
        return name + (f" @{self.revision[:7]}" if self.revision else "") + f", split {self.split}"


def hub_source(value: Mapping[str, Any], key: str) -> HubSource:
    """Validate a config mapping into a :class:`HubSource`.

    Args:
        value: the mapping from the YAML file (its ``fixture`` already resolved).
        key: where it stands in the config (``data.train``), for error messages.

    Raises:
        SourceError: an unknown key, a missing ``hub``, or a value of the wrong type.
    """
    known = [f.name for f in dataclasses.fields(HubSource)]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise SourceError(f"{key}: unknown key(s) {unknown} in a hub source; known keys: {known}")
    if not isinstance(value.get("hub"), str) or "/" not in value["hub"]:
        raise SourceError(f"{key}.hub: expected a hub dataset id such as 'openai/gsm8k', "
                          f"got {value.get('hub')!r}")
    for name in ("split", "config", "revision", "fixture", "licence"):
        if name in value and value[name] is not None and not isinstance(value[name], str):
            raise SourceError(f"{key}.{name}: expected a string, got {value[name]!r}")
    columns = value.get("columns") or {}
    if not isinstance(columns, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise SourceError(f"{key}.columns: expected a mapping of loader field to dataset column "
                          f"(e.g. {{prompt: inputs}}), got {columns!r}")
    if len(set(columns.values())) != len(columns):
        raise SourceError(f"{key}.columns: a dataset column is mapped twice: {dict(columns)}")
    where = value.get("where") or {}
    if not isinstance(where, Mapping):
        raise SourceError(f"{key}.where: expected a mapping of column to value(s), got {where!r}")
    for column, wanted in where.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise SourceError(f"{key}.where.{column}: expected a value or a list of values, "
                              f"got {wanted!r}")
    if not isinstance(value.get("offline", False), bool):
        raise SourceError(f"{key}.offline: expected true or false, got {value['offline']!r}")
    for name in ("sample", "seed"):
        n = value.get(name)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)
                              or (name == "sample" and n < 1)):
            raise SourceError(f"{key}.{name}: expected a {'positive ' if name == 'sample' else ''}"
                              f"integer, got {n!r}")
    return HubSource(**{**value, "columns": dict(columns), "where": dict(where),
                        "seed": value.get("seed") or 0})


def parse_source(value: Any, key: str) -> str | HubSource | None:
    """A config value as a data source: None, a path or hub id (str), or a :class:`HubSource`."""
    if value is None or isinstance(value, (str, HubSource)):
        return value
    if isinstance(value, Mapping):
        return hub_source(value, key)
    raise SourceError(f"{key}: expected a file path or a hub source mapping (hub: ...), "
                      f"got {type(value).__name__} {value!r}")


def parse_sources(value: Any, key: str) -> list[str | HubSource] | None:
    """A config value that may hold several sources (a list), as a list; None stays None."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [parse_source(v, f"{key}[{i}]" if isinstance(value, list) else key)
            for i, v in enumerate(items)]


def offline_reason(source: HubSource | None = None) -> str | None:
    """Why nothing may be downloaded now (``"HF_HUB_OFFLINE=1"``, ``offline: true`` on the
    source), or None."""
    for name in OFFLINE_ENV:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"{name}={os.environ[name].strip()}"
    if source is not None and source.offline:
        return "offline: true (a rehearsal reads fixtures)"
    return None


def source_name(source: str | HubSource) -> str:
    """How a report names a source: the hub label, or the file without machine prefixes."""
    return source.label() if isinstance(source, HubSource) else display_path(resolve_path(source))


# --- reading rows ------------------------------------------------------------------------


@dataclass
class Rows:
    """Records read from a source, each with where it came from."""

    path: str  # what errors name: the fixture file, or the hub label
    unit: str  # "line" (1-based, a fixture file) or "record" (0-based row of the split)
    records: list[tuple[int, dict[str, Any]]]
    notes: list[str]  # what was read, from where, and what the filter and sample kept

    def error(self, where: int, message: str, field: str | None = None) -> DataError:
        """A DataError naming this source and the line or record."""
        if self.unit == "line":
            return DataError(self.path, message, line=where, field=field)
        return RecordError(self.path, message, record=where, field=field)


def read_fixture(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSONL fixture."""
    return read_jsonl_objects(path, missing="fixture file not found",
                              empty="the fixture holds no rows")


def _download(source: HubSource) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """The split's rows from the hub (or the local ``datasets`` cache) and its column names."""
    import datasets

    try:
        ds = datasets.load_dataset(source.hub, source.config, split=source.split,
                                   revision=source.revision)
    except Exception as err:  # not found, offline, gated, bad split: all the user's to fix
        raise DataError(source.label(), f"could not load the hub dataset: "
                        f"{type(err).__name__}: {err}") from None
    return list(enumerate(ds)), list(ds.column_names)


def read_hub_rows(source: HubSource, fields: Sequence[str]) -> Rows:
    """Read a hub source's rows (or its fixture, offline), filter, sample and map them.

    Args:
        source: the hub source.
        fields: the record fields the reader knows; ``columns`` may map only onto these.

    Returns:
        :class:`Rows` whose records carry the mapped fields (and the unmapped columns).

    Raises:
        DataError: offline without a fixture; a ``columns`` field the reader does not
            know; a ``columns`` or ``where`` column the data does not have (named).

    Example:
        >>> source = hub_source({"hub": "openai/gsm8k", "config": "main", "split": "test",
        ...                      "fixture": "data/gsm8k/fixture.jsonl", "sample": 4}, "eval")
        >>> rows = read_hub_rows(source, ["question", "answer", "lang"])  # offline in the tests
        >>> len(rows.records), rows.notes[0].split(":")[0]
        (4, 'HF_HUB_OFFLINE=1')
    """
    reason = offline_reason(source)
    if reason:
        if not source.fixture:
            raise DataError(source.label(), f"offline ({reason}) and this hub source has no "
                            "fixture to read instead; add 'fixture: FILE.jsonl' with the same "
                            "columns, or unset the variable to download")
        path, unit = str(resolve_path(source.fixture)), "line"
        records = read_fixture(path)
        columns = sorted({k for _, r in records for k in r})
        notes = [f"{reason}: read the local fixture {display_path(path)} instead of "
                 f"{source.label()} ({len(records)} rows)"]
    else:
        path, unit = source.label(), "record"
        records, columns = _download(source)
        notes = [f"read {source.label()} from the hub ({len(records)} rows)"]
    rows = Rows(path, unit, records, notes)
    for column in source.where:
        if column not in columns:
            raise DataError(path, f"where: no column '{column}' in the data; its columns: "
                            f"{columns}", field=column)
    for name, column in source.columns.items():
        if name not in fields:
            raise DataError(path, f"columns: '{name}' is not a field this data can be mapped to; "
                            f"fields: {list(fields)}", field=name)
        if column not in columns:
            raise DataError(path, f"columns: {name} <- '{column}': no column '{column}' in the "
                            f"data; its columns: {columns}", field=column)
    rows.records = _filter(rows, source)
    rows.records = _sample(rows, source)
    renamed = {column: name for name, column in source.columns.items()}
    rows.records = [(w, {**{k: v for k, v in r.items() if k not in renamed and k not in source.columns},
                         **{renamed[k]: v for k, v in r.items() if k in renamed}})
                    for w, r in rows.records]
    return rows


def _filter(rows: Rows, source: HubSource) -> list[tuple[int, dict[str, Any]]]:
    if not source.where:
        return rows.records
    wanted = {c: set(v if isinstance(v, list) else [v]) for c, v in source.where.items()}
    kept = [(w, r) for w, r in rows.records if all(r.get(c) in vs for c, vs in wanted.items())]
    conditions = " and ".join(f"{c} in {sorted(map(str, vs))}" for c, vs in wanted.items())
    rows.notes.append(f"where {conditions}: {len(kept)} of {len(rows.records)} rows kept, "
                      f"{len(rows.records) - len(kept)} left out")
    if not kept:
        raise DataError(rows.path, f"no row passes the filter where {conditions}")
    return kept


def _sample(rows: Rows, source: HubSource) -> list[tuple[int, dict[str, Any]]]:
    if source.sample is None:
        return rows.records
    if source.sample >= len(rows.records):
        rows.notes.append(f"sample {source.sample}: all {len(rows.records)} rows kept "
                          "(fewer than asked)")
        return rows.records
    picked = seeded_subset(rows.records, source.sample, source.seed)
    rows.notes.append(f"sample: {len(picked)} of {len(rows.records)} rows (seed {source.seed})")
    return picked


def seeded_subset(items: Sequence[T], n: int | None, seed: int = 0) -> list[T]:
    """``n`` items drawn at random with ``seed``, in their original order (all if n is None).

    Example:
        >>> seeded_subset(list(range(10)), 3, seed=0)
        [0, 6, 9]
    """
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def fixture_path(source: HubSource) -> Path | None:
    """The fixture file of a source, resolved, or None."""
    return resolve_path(source.fixture) if source.fixture else None
