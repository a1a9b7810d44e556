"""Tasks whose answers a program can check: the prompts, references and reward of RL.

As in nanochat's ``tasks/``, one object per task holds what reinforcement learning needs and
nothing of its own about correctness: the verdict is the evaluation's. A task reads its
prompts (each with the reference answer), rewards an answer with the evaluation module's
``reward()`` and measures a model with the evaluation module's own function, so that the
number the reward pushes up is the number the evaluation reports.

* ``exact_match``: the tiny world's questions (``data/tasks/``), scored by
  :mod:`ift_tutorial.evaluation.exact_match`: the exact answer, then end-of-turn;
* ``gsm8k``: word problems in GSM8K's format, asked zero-shot, scored by
  :mod:`ift_tutorial.evaluation.gsm8k` (the last number of the answer).

:func:`trl_reward` turns a task's ``reward()`` into the function TRL's ``GRPOTrainer`` calls.
TRL decodes each completion without its special tokens, so the text alone cannot tell an
answer that ended its turn from one cut at ``max_completion_length``; the token ids TRL also
passes can, and that is what ``stopped`` is read from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ExperimentConfig
from ..errors import DataError, UserFacingError
from ..evaluation import exact_match, gsm8k
from ..instructions.sources import HubSource, seeded_subset, source_name
from ..jsonl import read_jsonl_objects
from ..paths import resolve_path
from ..settings import GRPOSettings

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Prompt:
    """One question of a verifiable task: what the model is asked and what counts as right."""

    messages: Conversation  # the conversation up to the user's turn
    reference: str  # the answer the verdict compares with ("17"; GSM8K: the final number)
    key: str  # what identifies the question (a sum "9+5", or the problem text)
    item: Any = field(default=None, compare=False)  # the task's own record, for its evaluation


@dataclass(frozen=True)
class VerifiableTask:
    """A task: how its prompts are read, how an answer is rewarded, how a model is measured."""

    name: str
    read: Callable[[str | HubSource, str | None], tuple[list[Prompt], list[str]]]
    reward: Callable[[str, str, bool], float]  # (answer, reference, stopped) -> 0.0 or 1.0
    # (model, tokenizer, prompts, config) -> (accuracy, the evaluation's per-prompt rows)
    evaluate: Callable[..., tuple[float, list[dict[str, Any]]]]


# --- the tiny world's questions: exact match -------------------------------------------------


def _check_task_row(row: dict[str, Any]) -> tuple[Conversation, str]:
    """The prompt and the reference of a task row; ValueError('field: what') when malformed."""
    msgs = row.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2:
        raise ValueError("messages: expected a list of messages ending in the assistant's answer")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}]: each message needs a role (system/user/assistant) "
                             "and a string content")
    if msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise ValueError("messages: expected a user question, then the assistant's answer")
    if not msgs[-2]["content"].strip():
        raise ValueError(f"messages[{len(msgs) - 2}].content: the prompt is empty")
    if not msgs[-1]["content"].strip():
        raise ValueError(f"messages[{len(msgs) - 1}].content: the reference answer is empty: "
                         "nothing could earn the reward")
    return msgs[:-1], msgs[-1]["content"]


def read_task_prompts(source: str | HubSource, task: str | None) -> tuple[list[Prompt], list[str]]:
    """The questions of a task file (``data/tasks/*.jsonl``), only those of ``task`` if given.

    Raises:
        DataError: naming the file, the line and the field of the first bad row (an empty
            prompt, an empty reference), or saying that no row is of ``task``.
    """
    if isinstance(source, HubSource):
        raise UserFacingError(f"grpo: the exact_match reward reads a task file, not the hub "
                              f"source {source.label()}")
    path = resolve_path(source)
    prompts, kinds = [], set()
    for lineno, row in read_jsonl_objects(path, empty="the file holds no prompts"):
        try:
            messages, reference = _check_task_row(row)
        except ValueError as err:
            name, message = str(err).split(": ", 1)
            raise DataError(str(path), message, line=lineno, field=name) from None
        kinds.add(str(row.get("task")))
        if task is None or row.get("task") == task:
            key = str(row.get("key") or messages[-1]["content"])
            prompts.append(Prompt(messages, reference, key, row))
    notes = [f"read {source_name(source)}"]
    if task is not None:
        if not prompts:
            raise DataError(str(path), f"no row of task '{task}' (grpo.task); the file's tasks: "
                            f"{sorted(kinds)}", field="task")
        notes.append(f"kept the {len(prompts)} prompts of task '{task}'")
    return prompts, notes


def evaluate_task_prompts(model: Any, tokenizer: Any, prompts: Sequence[Prompt],
                          config: ExperimentConfig) -> tuple[float, list[dict]]:
    """Exact match of greedy answers (:func:`ift_tutorial.evaluation.exact_match.evaluate_exact_match`),
    at the config's ``training.max_new_tokens``, as the evaluation after SFT measures it."""
    t = config.training
    report = exact_match.evaluate_exact_match(model, tokenizer, [p.item for p in prompts],
                                              t.max_new_tokens, t.eval_batch_size)
    return report["exact_match"], report["predictions"]


# --- GSM8K ---------------------------------------------------------------------------------


def read_gsm8k_prompts(source: str | HubSource, task: str | None) -> tuple[list[Prompt], list[str]]:
    """GSM8K problems as zero-shot prompts (:func:`ift_tutorial.evaluation.gsm8k.gsm8k_prompt`)."""
    if task is not None:
        raise UserFacingError(f"grpo.task: {task!r} selects rows of a task file; the gsm8k "
                              "reward reads GSM8K problems: set grpo.task to null")
    problems, notes = gsm8k.read_gsm8k_set(source)
    prompts = [Prompt([{"role": "user", "content": gsm8k.gsm8k_prompt(p.question, p.lang)}],
                      p.target, p.question, p) for p in problems]
    return prompts, notes


def evaluate_gsm8k_prompts(model: Any, tokenizer: Any, prompts: Sequence[Prompt],
                           config: ExperimentConfig) -> tuple[float, list[dict]]:
    """Flexible accuracy of greedy answers (:func:`ift_tutorial.evaluation.gsm8k.evaluate_gsm8k`),
    at the config's ``data.eval_gsm8k_max_new_tokens``."""
    report = gsm8k.evaluate_gsm8k(model, tokenizer, [p.item for p in prompts],
                                  config.data.eval_gsm8k_max_new_tokens,
                                  config.training.eval_batch_size)
    return report["flexible_acc"], report["results"]


TASKS = {
    "exact_match": VerifiableTask("exact_match", read_task_prompts, exact_match.reward,
                                  evaluate_task_prompts),
    "gsm8k": VerifiableTask("gsm8k", read_gsm8k_prompts, gsm8k.reward, evaluate_gsm8k_prompts),
}


def get_task(settings: GRPOSettings) -> VerifiableTask:
    """The task that ``grpo.reward`` names."""
    if settings.reward not in TASKS:
        raise UserFacingError(f"grpo.reward: {settings.reward!r} is not a verifiable reward; "
                              f"choose from {', '.join(TASKS)}")
    return TASKS[settings.reward]


def read_prompts(settings: GRPOSettings, which: str) -> tuple[list[Prompt], list[str]]:
    """The ``train`` or ``eval`` prompts of a ``grpo`` section (eval capped by
    ``max_eval_examples``, a seeded subset), with notes of what was read and kept."""
    source = getattr(settings, which)
    if source is None:
        raise UserFacingError(f"grpo.{which}: no {which} prompts given")
    prompts, notes = get_task(settings).read(source, settings.task)
    if which == "eval" and settings.max_eval_examples is not None \
            and settings.max_eval_examples < len(prompts):
        notes.append(f"{settings.max_eval_examples} of {len(prompts)} prompts "
                     f"(seeded subset, seed {settings.seed})")
        prompts = seeded_subset(prompts, settings.max_eval_examples, settings.seed)
    return prompts, notes


def overlap(train: Sequence[Prompt], heldout: Sequence[Prompt]) -> int:
    """How many held-out prompts ask a question (a key) that is also among the train prompts."""
    keys = {p.key for p in train}
    return sum(p.key in keys for p in heldout)


# --- the reward as TRL calls it ------------------------------------------------------------


def trl_reward(task: VerifiableTask, stop_ids: Sequence[int],
               record: Callable[[list[dict[str, Any]]], None] | None = None
               ) -> Callable[..., list[float]]:
    """The task's reward with the signature of a ``GRPOTrainer`` reward function.

    TRL calls it with the batch's ``prompts``, ``completions`` (decoded, special tokens
    removed; for chat prompts a one-message list each), ``completion_ids`` (the generated
    ids, up to and including the first stop token) and each dataset column as a list: here
    ``reference``. An answer counts as ``stopped`` when its last id is a stop token.

    Args:
        task: the verifiable task whose ``reward()`` decides.
        stop_ids: EOS and the end-of-turn token (:func:`ift_tutorial.inference.generation.stop_token_ids`).
        record: called with each batch's rows (prompt, answer, stopped, reward), in order.

    Returns:
        A function named after the task (TRL logs ``rewards/<name>/mean``).
    """
    stops = set(stop_ids)

    def reward(prompts: list, completions: list, completion_ids: list[list[int]],
               reference: list[str], **kwargs: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        stopped = [bool(ids) and ids[-1] in stops for ids in completion_ids]
        rewards = [task.reward(text.strip(), ref, stop)
                   for text, stop, ref in zip(texts, stopped, reference)]
        if record is not None:
            record([{"prompt": p[-1]["content"] if isinstance(p, list) else p, "answer": text,
                     "stopped": stop, "reward": r}
                    for p, text, stop, r in zip(prompts, texts, stopped, rewards)])
        return rewards

    reward.__name__ = task.name
    return reward


def trl_rows(prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
    """Rows of TRL's prompt-only conversational format: ``prompt`` and our ``reference``."""
    return [{"prompt": p.messages, "reference": p.reference} for p in prompts]
