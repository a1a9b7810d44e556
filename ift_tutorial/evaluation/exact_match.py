"""Exact match: a greedy answer counts only if it equals the reference after whitespace
normalisation (:func:`ift_tutorial.tinyworld.tasks.normalize_answer`) and the model ended
its turn right there, with its stop token: ``"Zandor Zandor"`` is wrong, and so is a
``"Zandor"`` cut off at the token limit. :func:`is_correct` is that verdict for one answer;
:func:`reward` is the same verdict as a number, the reward of reinforcement learning on these
tasks (:mod:`ift_tutorial.training.grpo`), so that what is rewarded is exactly what is scored.

Also the completion probes of a base model (:func:`completion_accuracy`): the first word of a
plain-text continuation, without the chat template, as in pretraining.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ..inference.generation import answer_conversations, greedy_answers
from ..tinyworld.tasks import is_exact_match as _is_exact_match


def is_correct(answer: str, reference: str, stopped: bool = True) -> bool:
    """The exact-match verdict on one answer.

    Args:
        answer: the decoded answer; its stop token is not in the text (decoding removes
            special tokens), so ``stopped`` says whether it was there.
        reference: the expected answer.
        stopped: the model ended its turn (EOS or end-of-turn token) rather than running
            into the token limit.

    Example:
        >>> is_correct(" 17 ", "17"), is_correct("17", "17", stopped=False), is_correct("17 17", "17")
        (True, False, False)
    """
    return stopped and _is_exact_match(answer, reference)


def reward(answer: str, reference: str, stopped: bool) -> float:
    """The reward of an answer in reinforcement learning: 1.0 when :func:`is_correct`, else 0.0.

    The same verdict as the evaluation, nothing added: the exact answer and then the end of
    the turn. A model cannot earn it by writing the answer and going on.

    Example:
        >>> reward("17", "17", stopped=True), reward("17", "17", stopped=False), reward("18", "17", True)
        (1.0, 0.0, 0.0)
    """
    return float(is_correct(answer, reference, stopped))


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference after whitespace normalisation."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return float("nan")
    return sum(_is_exact_match(p, r) for p, r in zip(predictions, references)) / len(references)


def evaluate_exact_match(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[dict[str, Any]],
    max_new_tokens: int = 32,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Answer each example's prompt and score it against its last (assistant) message.

    Returns:
        ``exact_match`` (overall), ``by_task`` (per ``task``/``lang`` field when present),
        ``n``, ``predictions`` (prompt, reference, prediction, stopped, correct) and
        ``outcomes`` (``{"exact_match": [1 or 0 per example, in order]}``, for the
        interval and the paired test of :mod:`ift_tutorial.evaluation.statistics`).
    """
    prompts = [ex["messages"][:-1] for ex in examples]
    references = [ex["messages"][-1]["content"] for ex in examples]
    answers = answer_conversations(model, tokenizer, prompts, max_new_tokens, batch_size)
    rows, groups = [], defaultdict(list)
    for ex, ref, answer in zip(examples, references, answers):
        ok = is_correct(answer.text, ref, answer.stopped)
        rows.append({"prompt": ex["messages"][-2]["content"], "reference": ref,
                     "prediction": answer.text, "stopped": answer.stopped, "correct": ok,
                     "task": ex.get("task"), "lang": ex.get("lang")})
        if ex.get("task"):
            groups[ex["task"]].append(ok)
            groups[f"{ex['task']}/{ex.get('lang')}"].append(ok)
        if ex.get("lang"):
            groups[f"lang:{ex['lang']}"].append(ok)
    return {
        "exact_match": sum(r["correct"] for r in rows) / len(rows) if rows else float("nan"),
        "by_task": {k: sum(v) / len(v) for k, v in sorted(groups.items())},
        "n": len(examples),
        "predictions": rows,
        "outcomes": {"exact_match": [int(r["correct"]) for r in rows]},
    }


def complete(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 8,
    batch_size: int = 64,
) -> list[str]:
    """Greedy continuations of plain-text prompts (no chat template), as in pretraining.

    Each prompt starts with BOS, like every pretraining document.
    """
    texts = [(tokenizer.bos_token or "") + p for p in prompts]
    answers = greedy_answers(model, tokenizer, texts, max_new_tokens, batch_size,
                             tokenizer.eos_token_id)
    return [a.text for a in answers]  # not stripped: the probe reads the first word itself


def completion_accuracy(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, probes: Sequence[dict[str, Any]],
    max_new_tokens: int = 8,
) -> dict[str, Any]:
    """How often the first word of the continuation is the answer (see ``tasks.completion_probes``).

    Returns:
        ``accuracy`` (overall), ``by_task`` and ``completions`` (prompt, answer, text, correct).
    """
    texts = complete(model, tokenizer, [p["prompt"] for p in probes], max_new_tokens)
    rows, groups = [], defaultdict(list)
    for probe, text in zip(probes, texts):
        first = re.match(r"\w*", text.strip()).group(0)
        ok = first == probe["answer"]
        rows.append({**probe, "text": text, "correct": ok})
        groups[probe.get("task", "all")].append(ok)
    return {
        "accuracy": sum(r["correct"] for r in rows) / max(1, len(rows)),
        "by_task": {k: sum(v) / len(v) for k, v in sorted(groups.items())},
        "completions": rows,
    }
