"""Multiple-choice questions about the tiny world: its general ability, before and after tuning.

Each question is a corpus statement cut before its answer, in the plain text the model
read in pretraining (the completion probes of :mod:`ift_tutorial.tinyworld.tasks`), with
four endings: the right one and three answers of other facts of the same kind. Scored
by which ending the model finds most likely (:mod:`ift_tutorial.evaluation.multiple_choice`,
``cloze`` format), they measure what the model knows, not whether it answers in a
format: the base model can take this test, and a tuned model that forgot takes it worse.

The questions are about the held-out facts, which tuning never asks about: what changes
on them is what tuning did to the model's general knowledge of its world.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from .corpus import KINDS, Fact, World
from .tasks import COMPLETION_PROMPTS, LANGS, split_facts, write_jsonl

#: Endings per question: the right one and this many minus one of other facts.
N_CHOICES = 4


def choice_questions(facts: list[Fact], seed: int = 0) -> list[dict]:
    """One four-way question per fact and language, in the columns of MMLU plus ``lang``.

    Returns:
        Rows with ``question`` (the statement up to its answer), ``choices`` (four
        endings), ``answer`` (the index of the right one), ``subject`` (the fact's kind)
        and ``lang``; the wrong endings are the answers of other facts of the same kind.
    """
    rng = random.Random(seed)
    rows = []
    for fact in facts:
        others = sorted({f.answer for f in facts if f.kind == fact.kind} - {fact.answer})
        choices = [fact.answer, *rng.sample(others, N_CHOICES - 1)]
        rng.shuffle(choices)
        for lang in LANGS:
            rows.append({"question": fact.fill(COMPLETION_PROMPTS[fact.kind][lang]),
                         "choices": choices, "answer": choices.index(fact.answer),
                         "subject": fact.kind, "lang": lang})
    return rows


def build_choice_file(world: World, path: str | os.PathLike[str], n_heldout: int = 30,
                      per_kind: int = 30, seed: int = 0) -> Path:
    """Write the questions about the first ``per_kind`` held-out facts of each kind."""
    _, heldout = split_facts(world, n_heldout, seed)
    facts = [f for kind in KINDS for f in [h for h in heldout if h.kind == kind][:per_kind]]
    return write_jsonl(choice_questions(facts, seed), path)
