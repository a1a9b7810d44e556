"""Contamination and near duplicates: the training data against the evaluation sets (chapter 5).

Two checks run on the training conversations before training, and both are counted in
the :class:`~ift_tutorial.instructions.dataset.DataReport`:

- **Overlap with an evaluation set** (:func:`find_overlaps`). An evaluation item is
  *contaminated* when it shares a 13-gram (13 consecutive normalised words) with a
  training conversation, the test GPT-3 and most decontamination reports since use. An
  item shorter than 13 words cannot share a 13-gram; it counts when its whole text is
  a whole training conversation. Every set the config names is read in full (not only
  the seeded subset an evaluation scores): every ``data.eval_*`` set (exact match,
  perplexity, IFEval, GSM8K, multiple choice, refusals), ``dpo.eval`` and ``grpo.eval``
  (:func:`config_eval_sets`). The training rows involved are dropped
  (``data.decontaminate: drop``, the default) or only reported (``report``).
- **Near duplicates** (:func:`near_duplicates`): two conversations whose word 5-shingles
  have a Jaccard similarity of at least ``data.near_duplicate_threshold``. MinHash
  signatures and locality-sensitive hashing (``datasketch``) find the candidate pairs
  without comparing every pair; each candidate's exact Jaccard decides. The later
  conversation of a pair is dropped, the first kept.

Example:
    >>> words("Der  Hund, the DOG!")
    ['der', 'hund', 'the', 'dog']
    >>> words("Bora 住在哪个城市？")
    ['bora', '住', '在', '哪', '个', '城', '市']
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserFacingError
from ..paths import display_path, resolve_path
from .formats import Conversation
from .reading import SUFFIXES, _read
from .sources import HubSource, read_hub_rows, source_name

#: Words per n-gram of the overlap check.
NGRAM = 13
#: Words per shingle of the near-duplicate check.
SHINGLE = 5
#: MinHash permutations: more find pairs near the threshold more reliably, and cost time.
NUM_PERM = 128
#: What ``data.decontaminate`` may say.
MODES = ("drop", "report")

# Scripts written without spaces between words: each character is one token.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_PUNCTUATION = string.punctuation + "、。，！？；：「」『』“”‘’（）《》【】…—·"


def words(text: str) -> list[str]:
    """Normalised words of ``text``: the tokens both checks count.

    Unicode NFKC (full-width ``？`` becomes ``?``), lower case, split on whitespace, and
    punctuation stripped from each word's ends. Chinese and Japanese are written without
    spaces, so whitespace would make a whole Chinese sentence one "word" and a 13-gram
    would span thirteen sentences; each of their characters is a token instead. A
    13-gram of characters is a shorter stretch of text than 13 English words, but long
    enough that two independently written texts rarely share one.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    tokens = (t.strip(_PUNCTUATION) for t in _TOKEN.findall(text))
    return [t for t in tokens if t]


def _grams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def conversation_words(conversation: Conversation) -> list[str]:
    """The normalised words of every turn's content, in order (roles left out)."""
    return [w for turn in conversation for w in words(turn["content"])]


# --- the evaluation sets of a config --------------------------------------------------

#: Record fields that hold an evaluation item's text, in reading order.
TEXT_FIELDS = ("messages", "conversations", "system", "instruction", "input", "prompt",
               "question", "choices", "output", "completion", "response", "answer", "chosen",
               "rejected")


def _strings(value: Any) -> list[str]:
    """The texts in a field: a string, or the contents of a list of turns."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):  # a turn: {"role", "content"} or ShareGPT's {"from", "value"}
        text = value.get("content", value.get("value"))
        return [text] if isinstance(text, str) else []
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def record_text(record: Mapping[str, Any]) -> str:
    """An evaluation item's text: its conversation's turns, else its text fields in order.

    Example:
        >>> record_text({"question": "What is 2 + 2?", "answer": "#### 4", "lang": "en"})
        'What is 2 + 2?\\n#### 4'
    """
    for key in ("messages", "conversations"):  # the task files repeat the answer in "answer"
        if key in record:
            return "\n".join(_strings(record[key]))
    return "\n".join(s for key in TEXT_FIELDS if key in record for s in _strings(record[key]))


@dataclass
class EvalSet:
    """One evaluation set: the config keys that name it, where it is read from, its items."""

    name: str  # e.g. "data.eval_exact_match, grpo.eval"
    source: str  # the file or hub label, for people
    texts: list[str]  # one text per item


def read_eval_set(source: str | HubSource, name: str) -> EvalSet:
    """Every item of an evaluation set (a file, or a hub source: its fixture offline)."""
    if isinstance(source, HubSource):
        rows = read_hub_rows(source, tuple(source.columns) or TEXT_FIELDS)
        records, label = [r for _, r in rows.records], source.label()
    else:
        records = [r for _, r in _read(str(resolve_path(source)), "train").records]
        label = display_path(resolve_path(source))
    texts = [record_text(r) for r in records if isinstance(r, Mapping)]
    return EvalSet(name, label, texts)


def _data_sources(value: Any) -> list[str | HubSource]:
    """The data sets in a setting's value: hub sources and data files (not "letters")."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, HubSource)
            or (isinstance(v, str) and Path(v).suffix.lower() in SUFFIXES)]


def config_eval_sets(config: Any) -> list[EvalSet]:
    """The evaluation sets an :class:`~ift_tutorial.config.ExperimentConfig` names.

    Every ``data.eval_*`` setting that holds a data file or hub source (a list gives
    ``data.eval_ifeval[0]``, ...), then ``dpo.eval`` and ``grpo.eval``. A file or hub
    source named by several keys (the tiny preset scores exact match and perplexity on
    one file) is read once and reported under all its keys.
    """
    keyed: list[tuple[str, str | HubSource]] = []
    for f in fields(config.data):
        found = _data_sources(getattr(config.data, f.name)) if f.name.startswith("eval_") else []
        keyed += [(f"data.{f.name}" + (f"[{i}]" if len(found) > 1 else ""), source)
                  for i, source in enumerate(found)]
    for section in ("dpo", "grpo"):
        found = _data_sources(getattr(getattr(config, section, None), "eval", None))
        keyed += [(f"{section}.eval", source) for source in found]
    by_source: dict[str, tuple[list[str], str | HubSource]] = {}
    for key, source in keyed:
        by_source.setdefault(source_name(source), ([], source))[0].append(key)
    return [read_eval_set(source, ", ".join(keys)) for keys, source in by_source.values()]


# --- n-gram overlap -------------------------------------------------------------------


@dataclass
class Overlap:
    """How much of one evaluation set the training data contains."""

    name: str  # the config keys of the set
    source: str  # the file or hub label
    n_items: int  # items read
    n_short: int  # items under ``n`` words: compared whole
    n_overlapping: int  # items that share an n-gram (or, short, all of their text)
    example: dict[str, Any] | None = None  # the first: item, shared text, training index


def find_overlaps(conversations: Sequence[Conversation], eval_sets: Iterable[EvalSet],
                  n: int = NGRAM) -> tuple[list[Overlap], dict[int, str]]:
    """Which evaluation items share an ``n``-gram with a training conversation.

    Args:
        conversations: the training conversations.
        eval_sets: the evaluation sets, e.g. from :func:`config_eval_sets`.
        n: words per n-gram.

    Returns:
        ``(overlaps, involved)``: one :class:`Overlap` per set, and the training
        conversations involved (index -> the name of the first set they touch).
    """
    first: dict[tuple[str, ...], int] = {}  # n-gram -> the first training index holding it
    whole: dict[tuple[str, ...], int] = {}  # a short conversation's words -> its index
    for i, conv in enumerate(conversations):
        tokens = conversation_words(conv)
        for gram in _grams(tokens, n):
            first.setdefault(gram, i)
        if len(tokens) < n:
            whole.setdefault(tuple(tokens), i)
    overlaps, involved = [], {}
    for es in eval_sets:
        found = Overlap(es.name, es.source, len(es.texts), 0, 0)
        for item, text in enumerate(es.texts):
            tokens = words(text)
            if len(tokens) < n:
                found.n_short += 1
                hits = [(tuple(tokens), whole[tuple(tokens)])] if tuple(tokens) in whole else []
            else:  # in the item's order: the example is the first shared stretch
                grams = (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
                hits = [(g, first[g]) for g in grams if g in first]
            if not hits:
                continue
            found.n_overlapping += 1
            for _, i in hits:
                involved.setdefault(i, es.name)
            if found.example is None:
                gram, i = hits[0]
                found.example = {"item": item, "shared": " ".join(gram), "train": i}
        overlaps.append(found)
    return overlaps, involved


# --- near duplicates ------------------------------------------------------------------


def shingles(tokens: Sequence[str], k: int = SHINGLE) -> set[str]:
    """The set of ``k``-word shingles (the whole text, if shorter than ``k`` words)."""
    if len(tokens) <= k:
        return {" ".join(tokens)}
    return {" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|: 1.0 for equal sets, 0.0 for disjoint ones."""
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass
class NearDuplicate:
    """A conversation dropped as nearly the same as an earlier, kept one."""

    dropped: int  # index of the later conversation
    kept: int  # index of the earlier one
    jaccard: float  # of their shingle sets


def near_duplicates(conversations: Sequence[Conversation], threshold: float,
                    num_perm: int = NUM_PERM, seed: int = 1) -> list[NearDuplicate]:
    """Conversations whose shingles overlap an earlier one's by at least ``threshold``.

    Each conversation's MinHash signature (``num_perm`` values) goes into an LSH index
    tuned to ``threshold``; a query returns the earlier conversations likely to be that
    similar, and their exact Jaccard decides. LSH can miss a pair just above the
    threshold (a false negative), never report one below it.

    Returns:
        One :class:`NearDuplicate` per conversation to drop, in order.
    """
    from datasketch import MinHash, MinHashLSH  # imported here: only this check needs it

    if not 0 < threshold <= 1:
        raise UserFacingError(f"near_duplicate_threshold must be in (0, 1], got {threshold}")
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sets = [shingles(conversation_words(conv)) for conv in conversations]
    # generator(): one set of permutations, copied for each signature
    signatures = MinHash.generator(([s.encode("utf-8") for s in shingled] for shingled in sets),
                                   num_perm=num_perm, seed=seed)
    found = []
    for i, signature in enumerate(signatures):
        scored = [(jaccard(sets[i], sets[j]), j) for j in lsh.query(signature)]
        best = max(((s, j) for s, j in scored if s >= threshold), default=None,
                   key=lambda sj: (sj[0], -sj[1]))
        if best is not None:
            found.append(NearDuplicate(i, best[1], round(best[0], 3)))
        else:  # only kept conversations are matched against
            lsh.insert(i, signature)
    return found


# --- the settings of a run ------------------------------------------------------------


@dataclass
class DataChecks:
    """What :func:`~ift_tutorial.instructions.dataset.prepare_dataset` checks beyond duplicates."""

    near_duplicate_threshold: float | None = None  # None: no near-duplicate filter
    eval_sets: list[EvalSet] = field(default_factory=list)  # checked for overlap
    decontaminate: str = "drop"  # "drop" or "report" the training rows that overlap

    def __post_init__(self) -> None:
        if self.decontaminate not in MODES:
            raise UserFacingError(f"data.decontaminate must be one of {', '.join(MODES)}, "
                                  f"got {self.decontaminate!r}")


def data_checks(config: Any) -> DataChecks:
    """The checks a config asks for: its threshold, its evaluation sets, its mode."""
    data = config.data
    return DataChecks(data.near_duplicate_threshold, config_eval_sets(config),
                      data.decontaminate)
