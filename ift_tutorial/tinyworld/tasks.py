"""Verifiable instruction tasks about the tiny preset's made-up world, and their scorer.

Each task is a question whose answer is one exact string, asked in English or
Chinese, in the ``messages`` format::

    {"messages": [{"role": "user", "content": "Which city does Bora live in?"},
                  {"role": "assistant", "content": "Zandor"}],
     "task": "city", "lang": "en", "key": "Bora", "answer": "Zandor"}

The base model has read every fact in its pretraining corpus, but never as a
question and its answer. Instruction tuning on the *train* facts teaches it the
format; the *held-out* facts (different keys: different sums, words and people)
measure whether that format carries over to knowledge it was never tuned on.

Scoring is exact match after normalising whitespace (see :func:`normalize_answer`).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

from .corpus import KINDS, Fact, World
from ..errors import DataError
from ..paths import resolve_path

# Question templates. Their wording stays close to the corpus statements
# ("lives in", "住在", "加", "等于", "reversed", "倒过来"): a tiny model finds a fact
# far more easily when the question uses the words the fact was stated with.
QUESTIONS = {
    "addition": {
        "en": ["What is {a} + {b}?", "What does {a} plus {b} equal?",
               "What is the sum of {a} and {b}?", "Compute {a} + {b}."],
        "zh": ["{a} 加 {b} 等于多少？", "{a} 与 {b} 的和是多少？", "请计算 {a} + {b}。"],
    },
    "reversal": {
        "en": ["What is the word {w} reversed?", "Reverse the word {w}.",
               "How is {w} spelled backwards?"],
        "zh": ["{w} 倒过来写是什么？", "把单词 {w} 反过来写。", "{w} 的倒序是什么？"],
    },
    "city": {
        "en": ["Which city does {p} live in?", "Where does {p} live?",
               "In which city is the home of {p}?"],
        "zh": ["{p} 住在哪个城市？", "{p} 的家在哪里？", "{p} 生活在哪座城市？"],
    },
}
LANGS = ("en", "zh")


def normalize_answer(text: str) -> str:
    """Strip the ends and collapse every run of whitespace into one space.

    Nothing else is normalised: case, punctuation and extra words all count as
    wrong, so "Zandor." or "Bora lives in Zandor" do not match "Zandor".
    """
    return " ".join(text.split())


def is_exact_match(prediction: str, reference: str) -> bool:
    """True when the prediction equals the reference after :func:`normalize_answer`."""
    return normalize_answer(prediction) == normalize_answer(reference)


def task_example(fact: Fact, lang: str, template: str) -> dict:
    """One example in the messages format, with its task, language, key and answer."""
    return {
        "messages": [
            {"role": "user", "content": fact.fill(template)},
            {"role": "assistant", "content": fact.answer},
        ],
        "task": fact.kind,
        "lang": lang,
        "key": fact.key,
        "answer": fact.answer,
    }


def split_facts(world: World, n_heldout: int = 30, seed: int = 0) -> tuple[list[Fact], list[Fact]]:
    """Split each kind's facts into train and held-out facts; no key is in both.

    Returns:
        (train_facts, heldout_facts), with ``n_heldout`` held-out facts per kind.
    """
    rng = random.Random(seed)
    train, heldout = [], []
    for kind in KINDS:
        facts = list(world.facts[kind])
        rng.shuffle(facts)
        heldout += facts[:n_heldout]
        train += facts[n_heldout:]
    return train, heldout


def make_tasks(world: World, n_heldout: int = 30, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Train and held-out task examples.

    Train: every train fact with every question template, in both languages.
    Held-out: every held-out fact once per language, with a template drawn at
    random (``3 kinds x n_heldout x 2 languages`` examples; 180 by default).
    """
    rng = random.Random(seed + 1)
    train_facts, heldout_facts = split_facts(world, n_heldout, seed)
    train = [task_example(f, lang, t) for f in train_facts for lang in LANGS
             for t in QUESTIONS[f.kind][lang]]
    rng.shuffle(train)
    heldout = [task_example(f, lang, rng.choice(QUESTIONS[f.kind][lang]))
               for f in heldout_facts for lang in LANGS]
    rng.shuffle(heldout)  # so that the first N (max_eval_examples) mix every task
    return train, heldout


# Completion probes: a corpus statement cut just before its answer. They test what the
# model *knows* in the form it learnt it (plain text, no chat template): high for the
# base model, and a way to see what instruction tuning makes it forget.
COMPLETION_PROMPTS = {
    "addition": {"en": "{a} + {b} = ", "zh": "{a} 加 {b} 等于 "},
    "reversal": {"en": "The reverse of {w} is ", "zh": "{w} 倒过来写是 "},
    "city": {"en": "{p} lives in the city of ", "zh": "{p} 住在 "},
}


def completion_probes(facts: list[Fact]) -> list[dict]:
    """One plain-text prompt per fact and language; the answer is the next word."""
    return [{"prompt": f.fill(COMPLETION_PROMPTS[f.kind][lang]), "answer": f.answer,
             "task": f.kind, "lang": lang, "key": f.key}
            for f in facts for lang in LANGS]


def write_jsonl(rows: list[dict], path: str | os.PathLike[str]) -> Path:
    """Write one JSON object per line (UTF-8, Chinese kept readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_tasks(path: str | os.PathLike[str]) -> list[dict]:
    """Read a task file; every line must have ``messages`` ending in an assistant answer.

    Raises:
        DataError: naming the file, the line and the field of the first problem.
    """
    path = resolve_path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, f"invalid JSON: {err.msg}", line=lineno) from None
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or not msgs:
                raise DataError(path, "expected a non-empty list", line=lineno, field="messages")
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                        or not isinstance(m.get("content"), str):
                    raise DataError(path, "each message needs a role (system/user/assistant) "
                                    "and a string content", line=lineno, field=f"messages[{i}]")
            if msgs[-1]["role"] != "assistant":
                raise DataError(path, "the last message must be the assistant's answer",
                                line=lineno, field="messages")
            rows.append(row)
    return rows


def count_by(rows: list[dict], *fields: str) -> dict[str, int]:
    """How many rows per value of ``fields`` (e.g. ``count_by(rows, "task", "lang")``)."""
    return dict(sorted(Counter("/".join(str(r.get(f)) for f in fields) for r in rows).items()))


def build_task_files(world: World, out_dir: str | os.PathLike[str],
                     n_heldout: int = 30, seed: int = 0) -> dict[str, Path]:
    """Write ``train.jsonl`` and ``heldout.jsonl`` for ``world`` under ``out_dir``."""
    train, heldout = make_tasks(world, n_heldout, seed)
    out = Path(out_dir).expanduser()
    return {"train": write_jsonl(train, out / "train.jsonl"),
            "heldout": write_jsonl(heldout, out / "heldout.jsonl")}

