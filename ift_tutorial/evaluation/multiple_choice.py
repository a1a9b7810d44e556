"""Multiple-choice questions scored by likelihood: general ability before and after tuning.

Tuning can erode what a model could do before (forgetting). A multiple-choice set measures
knowledge without asking the model to answer in any format: for each question, the model
scores every option as a continuation of the prompt, and picks the one it finds most
likely (the sum of the log-probabilities of its tokens), as lm-evaluation-harness scores
MMLU. Nothing is generated, so a base model that has never seen a chat template takes the
test as well as the tuned one, and the same prompts serve both. (Scoring the letter a
model *writes* would also measure whether it answers in the expected format, which is
what tuning changes most; that would confound forgetting with formatting.)

Two formats (``data.eval_multiple_choice_format``):

* ``letters``: MMLU's prompt, the question and its options labelled A-D, then
  ``Answer:``; the options scored are the letters. For models that can read a list of
  options (the 7B presets).
* ``cloze``: the question alone, each option's own text scored as its continuation. For
  models that cannot (the tiny model, whose questions are statements cut before their
  answer).

Items are read from a JSONL file or a hub source (its fixture offline) with MMLU's columns,
``question``, ``choices`` (a list), ``answer`` (the index of the right option, or its
letter) and ``subject``, plus an optional ``lang`` (``en`` when absent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ..errors import DataError, UserFacingError
from ..instructions.sources import HubSource, read_fixture, read_hub_rows
from ..loading import disable_cpu_weight_repacking
from ..paths import display_path, resolve_path
from ..planning.ledger import charge, eval_batch_bytes
from ..training.devices import to_model_device
from .perplexity import _decoder_and_head

#: The record fields a hub source's columns may be mapped onto.
MC_FIELDS = ("question", "choices", "answer", "subject", "lang")
FORMATS = ("letters", "cloze")
LETTERS = "ABCDEFGHIJ"
#: MMLU's prompt (lm-evaluation-harness's), and the same in Chinese.
HEADERS = {"en": "The following are multiple choice questions (with answers) about {subject}.\n\n",
           "zh": "以下是关于{subject}的单项选择题（附答案）。\n\n"}
ANSWER_CUE = {"en": "Answer:", "zh": "答案："}


@dataclass
class ChoiceItem:
    """One question with its options; ``answer`` is the index of the right option."""

    question: str
    choices: list[str]
    answer: int
    subject: str = ""
    lang: str = "en"


def item_from_dict(row: dict[str, Any]) -> ChoiceItem:
    """A :class:`ChoiceItem` from a record; ValueError ``"field: message"`` when invalid."""
    question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question: expected a non-empty string")
    if not isinstance(choices, list) or len(choices) < 2 or len(choices) > len(LETTERS) \
            or not all(isinstance(c, str) and c.strip() for c in choices):
        raise ValueError(f"choices: expected a list of 2 to {len(LETTERS)} non-empty strings")
    if isinstance(answer, str) and len(answer) == 1 and answer in LETTERS:
        answer = LETTERS.index(answer)
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise ValueError(f"answer: expected the index (0 to {len(choices) - 1}) or the letter "
                         f"of the right choice, got {answer!r}")
    lang = row.get("lang") or "en"
    return ChoiceItem(question, list(choices), answer, str(row.get("subject") or ""), str(lang))


def read_choice_set(source: str | HubSource) -> tuple[list[ChoiceItem], list[str]]:
    """The questions of a file or hub source (its fixture offline), and notes on the source."""
    if isinstance(source, HubSource):
        rows = read_hub_rows(source, MC_FIELDS)
        records, notes, error = rows.records, rows.notes, rows.error
    else:
        path = resolve_path(source)
        records, notes = read_fixture(path), [f"read {display_path(path)}"]

        def error(where: int, message: str, field: str | None = None) -> DataError:
            return DataError(path, message, line=where, field=field)
    items = []
    for where, row in records:
        try:
            items.append(item_from_dict(row))
        except ValueError as err:
            field, message = str(err).split(": ", 1)
            raise error(where, message, field) from None
    return items, notes


def prompt_and_options(item: ChoiceItem, format: str) -> tuple[str, list[str]]:
    """The text the options continue, and the options as scored, in ``format``.

    Example:
        >>> item = ChoiceItem("2 + 2 =", ["3", "4"], 1, "arithmetic")
        >>> prompt_and_options(item, "letters")[1], prompt_and_options(item, "cloze")[1]
        ([' A', ' B'], [' 3', ' 4'])
    """
    if format == "letters":
        lang = item.lang if item.lang in HEADERS else "en"
        subject = item.subject.replace("_", " ")
        lines = [f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices)]
        prompt = (HEADERS[lang].format(subject=subject) if subject else "") + \
            "\n".join([item.question.strip(), *lines, ANSWER_CUE[lang]])
        return prompt, [f" {LETTERS[i]}" for i in range(len(item.choices))]
    if format == "cloze":
        # A word follows the question after a space (as lm-evaluation-harness joins them);
        # a question that ends in one already, as the tiny world's do, keeps it.
        prompt, gap = item.question.rstrip(), item.question[len(item.question.rstrip()):] or " "
        return prompt, [gap + c for c in item.choices]
    raise UserFacingError(f"data.eval_multiple_choice_format: {format!r} is not one of "
                          f"{', '.join(FORMATS)}")


def option_tokens(tokenizer: PreTrainedTokenizerBase, prompt: str,
                  option: str) -> tuple[list[int], list[int]]:
    """Token ids of the prompt, and of the option as it continues the prompt.

    The two are tokenized together, so the option's tokens are those the model would
    write after the prompt; the prompt's own tokens are those of the prompt alone.
    """
    context = tokenizer(prompt).input_ids
    whole = tokenizer(prompt + option).input_ids
    if whole[:len(context)] != context or len(whole) == len(context):
        whole = context + tokenizer(option, add_special_tokens=False).input_ids
    return context, whole[len(context):]


def fitting(items: Sequence[ChoiceItem], tokenizer: PreTrainedTokenizerBase, format: str,
            max_length: int | None, notes: list[str]) -> list[ChoiceItem]:
    """The items whose prompt and longest option fit ``max_length`` tokens (the rest counted)."""
    if max_length is None:
        return list(items)
    kept = []
    for item in items:
        prompt, options = prompt_and_options(item, format)
        pairs = [option_tokens(tokenizer, prompt, o) for o in options]
        if max(len(c) + len(o) for c, o in pairs) <= max_length:
            kept.append(item)
    if len(kept) < len(items):
        notes.append(f"left out {len(items) - len(kept)} of {len(items)} questions longer than "
                     f"{max_length} tokens")
    return kept


def _option_logprobs(model: torch.nn.Module, rows: list[tuple[list[int], list[int]]],
                     pad: int) -> list[float]:
    """Summed log-probability of each row's option tokens given its prompt.

    Args:
        rows: (prompt ids, option ids); one right-padded batch (B, T) runs through the
            body once, and the head only on the positions that predict an option token.
    """
    body, head = _decoder_and_head(model)
    seqs = [c + o for c, o in rows]
    width = max(len(s) for s in seqs)
    batch = to_model_device({
        "input_ids": torch.tensor([s + [pad] * (width - len(s)) for s in seqs]),
        "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])},
        model)
    hidden = body(**batch).last_hidden_state  # (B, T, H)
    # The state at position t predicts token t + 1: the option's tokens from the last
    # prompt position on.
    where = [(b, len(c) - 1 + k) for b, (c, o) in enumerate(rows) for k in range(len(o))]
    states = hidden[[b for b, _ in where], [t for _, t in where]]  # (N, H)
    targets = torch.tensor([t for _, o in rows for t in o], device=states.device)  # (N,)
    logprobs = torch.log_softmax(head(states).float(), dim=-1)  # (N, V)
    picked = logprobs.gather(1, targets[:, None])[:, 0].tolist()  # (N,)
    sums, start = [], 0
    for _, o in rows:
        sums.append(sum(picked[start:start + len(o)]))
        start += len(o)
    return sums


@torch.no_grad()
def evaluate_multiple_choice(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                             items: Sequence[ChoiceItem], format: str = "letters",
                             batch_size: int = 16) -> dict[str, Any]:
    """Accuracy on multiple-choice questions, each option scored by its log-likelihood.

    Returns:
        ``accuracy``, ``by_lang`` (language -> accuracy), ``n``, ``results`` (per
        question: the prompt, the options' log-probabilities, the pick, the answer,
        ``correct``) and ``outcomes`` (1 or 0 per question, in the items' order).
    """
    if not items:
        raise ValueError("no multiple-choice questions to score")
    was_training = model.training
    model.eval()
    disable_cpu_weight_repacking(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows, owner, prompts = [], [], []
    for i, item in enumerate(items):
        prompt, options = prompt_and_options(item, format)
        prompts.append(prompt)
        for option in options:
            rows.append(option_tokens(tokenizer, prompt, option))
            owner.append(i)
    scores: list[float] = []
    try:
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            width = max(len(c) + len(o) for c, o in part)
            charge(model, f"multiple-choice batch of {len(part)}", lambda tag: eval_batch_bytes(
                tag.arch, len(part), width, sum(len(o) for _, o in part), tag.compute_bytes))
            scores += _option_logprobs(model, part, pad)
    finally:
        model.train(was_training)
    per_item: dict[int, list[float]] = defaultdict(list)
    for i, score in zip(owner, scores):
        per_item[i].append(score)
    results, by_lang = [], defaultdict(list)
    for i, item in enumerate(items):
        options = per_item[i]
        pick = max(range(len(options)), key=options.__getitem__)
        results.append({"prompt": prompts[i], "choices": item.choices, "logprobs": options,
                        "pick": pick, "answer": item.answer, "correct": pick == item.answer,
                        "subject": item.subject, "lang": item.lang})
        by_lang[item.lang].append(pick == item.answer)
    outcomes = [int(r["correct"]) for r in results]
    return {"accuracy": sum(outcomes) / len(outcomes),
            "by_lang": {lang: sum(v) / len(v) for lang, v in sorted(by_lang.items())},
            "n": len(items), "results": results, "outcomes": outcomes}
