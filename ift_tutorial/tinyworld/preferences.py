"""Preference pairs about the tiny world: one right answer, three ways to get it wrong.

Each question of :mod:`ift_tutorial.tinyworld.tasks` has one right answer, so a pair
of answers to it can be ranked without a judge. The *chosen* answer is the right one,
alone, and the turn ends there (the chat template adds the end-of-turn token). The
*rejected* answer is one of three kinds (:data:`REJECTED_KINDS`):

* ``wrong_fact``: the answer of another fact of the same kind (``Zandor`` for a person
  who lives in ``Lanabe``, ``13`` for ``7 + 5``);
* ``runs_on``: the right answer, then a statement of another fact, as a model that
  does not stop continues its pretraining text (``12 Bora lives in Zandor.``);
* ``wrong_language``: the right fact stated in the other language (an English question
  answered ``Bora 住在 Zandor。``).

A pair is a record in TRL's conversational prompt/chosen/rejected form, with the
question's task, language, key, answer and the kind of the rejected answer beside it::

    {"prompt": [{"role": "user", "content": "What is 7 + 5?"}],
     "chosen": [{"role": "assistant", "content": "12"}],
     "rejected": [{"role": "assistant", "content": "13"}],
     "task": "addition", "lang": "en", "key": "7+5", "answer": "12", "rejected_kind": "wrong_fact"}

The split is the tasks' split by fact (:func:`~ift_tutorial.tinyworld.tasks.split_facts`,
same seed): training pairs ask about the facts SFT was tuned on, held-out pairs about the
held-out facts, which neither SFT nor preference tuning ever sees as a question.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path

from .corpus import _STATEMENTS, Fact, World, statements
from .tasks import LANGS, QUESTIONS, split_facts, write_jsonl

#: The kinds of rejected answer, in the order the held-out set lists them.
REJECTED_KINDS = ("wrong_fact", "runs_on", "wrong_language")


def _other_fact(fact: Fact, pool: list[Fact], rng: random.Random) -> Fact:
    """A fact of the same kind whose answer differs from ``fact``'s."""
    while True:
        other = rng.choice(pool)
        if other.answer != fact.answer:
            return other


def worded_statements(fact: Fact, lang: str) -> list[str]:
    """The statements of ``fact`` in ``lang`` that hold words of that language: not
    ``7 + 5 = 12.``, which both languages' corpora state and neither language owns."""
    words = re.compile("[\u4e00-\u9fff]" if lang == "zh" else "[A-Za-z]")
    return [fact.fill(t) for t in _STATEMENTS[fact.kind][lang]
            if words.search(re.sub(r"\{\w\}", "", t))]


def rejected_answer(fact: Fact, lang: str, kind: str, pool: list[Fact], rng: random.Random) -> str:
    """A wrong answer of ``kind`` to a question about ``fact`` asked in ``lang``.

    Args:
        pool: facts of the same kind to borrow a wrong answer or a run-on statement from.
    """
    if kind == "wrong_fact":
        return _other_fact(fact, pool, rng).answer
    if kind == "runs_on":
        return f"{fact.answer} {rng.choice(statements(_other_fact(fact, pool, rng), lang))}"
    if kind == "wrong_language":
        return rng.choice(worded_statements(fact, "zh" if lang == "en" else "en"))
    raise ValueError(f"unknown rejected kind {kind!r}; expected one of {REJECTED_KINDS}")


def preference_pair(fact: Fact, lang: str, question: str, rejected: str, kind: str) -> dict:
    """One pair in TRL's conversational form, with what it asks about."""
    return {
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": fact.answer}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "task": fact.kind, "lang": lang, "key": fact.key, "answer": fact.answer,
        "rejected_kind": kind,
    }


def _pairs(facts: list[Fact], kinds_of: Callable[[random.Random], list[str]],
           rng: random.Random) -> list[dict]:
    by_kind: dict[str, list[Fact]] = {}
    for f in facts:
        by_kind.setdefault(f.kind, []).append(f)
    pairs = []
    for fact in facts:
        for lang in LANGS:
            for kind in kinds_of(rng):
                question = fact.fill(rng.choice(QUESTIONS[fact.kind][lang]))
                bad = rejected_answer(fact, lang, kind, by_kind[fact.kind], rng)
                pairs.append(preference_pair(fact, lang, question, bad, kind))
    rng.shuffle(pairs)
    return pairs


def make_preferences(world: World, n_heldout: int = 30, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Training and held-out preference pairs.

    Training: each train fact once per language, with one rejected kind drawn at random
    (about a third of each). Held-out: each held-out fact once per language *and* per
    rejected kind (``3 tasks x n_heldout x 2 languages x 3 kinds``; 540 by default), so
    that every kind is measured on the same questions.
    """
    rng = random.Random(seed + 2)  # tasks.make_tasks uses seed + 1
    train_facts, heldout_facts = split_facts(world, n_heldout, seed)
    train = _pairs(train_facts, lambda r: [r.choice(REJECTED_KINDS)], rng)
    heldout = _pairs(heldout_facts, lambda r: list(REJECTED_KINDS), rng)
    return train, heldout


def build_preference_files(world: World, out_dir: str | os.PathLike[str],
                           n_heldout: int = 30, seed: int = 0) -> dict[str, Path]:
    """Write ``train.jsonl`` and ``heldout.jsonl`` of preference pairs under ``out_dir``."""
    train, heldout = make_preferences(world, n_heldout, seed)
    out = Path(out_dir).expanduser()
    return {"train": write_jsonl(train, out / "train.jsonl"),
            "heldout": write_jsonl(heldout, out / "heldout.jsonl")}


def world_names(world: World) -> frozenset[str]:
    """The made-up words of ``world`` (people, cities, words and their reversals).

    They belong to neither English nor Chinese: a language check sets them aside
    (:func:`ift_tutorial.evaluation.preference.in_asked_language`).
    """
    return frozenset(w for f in world.all_facts() if f.kind != "addition" for w in (f.key, f.answer))
