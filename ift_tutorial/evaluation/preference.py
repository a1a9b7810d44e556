"""Measuring preference tuning on held-out pairs (chapter 9).

For each pair the model scores the chosen and the rejected answer by their
log-probability (:func:`~ift_tutorial.training.dpo_loss.sequence_logps`, answer tokens
only). From those, before and after DPO:

* **reward margin**: DPO's implicit reward of the chosen answer minus the rejected one's,
  β · ((log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))). The reference is
  the SFT model, so before DPO the policy *is* the reference and every margin is 0;
* **preference accuracy**: how often that margin is positive, the pair ranked the right
  way by DPO's rewards (TRL logs it as ``rewards/accuracies``); 0 before DPO, where every
  reward is 0;
* **likelihood accuracy**: how often the model simply makes the chosen answer more likely
  than the rejected one, its own ranking without a reference;
* the mean **log-probabilities** of the chosen and of the rejected answers.

Besides the pairs, did DPO keep what SFT taught? Exact match on the tiny world's
held-out questions (:mod:`ift_tutorial.evaluation.exact_match`) and how often an answer
is in the language it was asked in (:func:`in_asked_language`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ..training.dpo_loss import dpo_margins, sequence_logps

_HAN = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile("[A-Za-z]+")


def tokenize_pair(tokenizer: Any, pair: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """Prompt, chosen and rejected token ids, cut where TRL's ``DPOTrainer`` cuts them.

    The answer starts where the tokens of the prompt (with the generation prompt) and of
    the prompt followed by the answer first differ; it runs to the end of the rendered
    conversation, end-of-turn token included.
    """
    def ids(messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
        return list(tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                  tokenize=True, return_dict=True)["input_ids"])

    prompt = ids(pair["prompt"], add_generation_prompt=True)
    chosen, rejected = ids(pair["prompt"] + pair["chosen"]), ids(pair["prompt"] + pair["rejected"])
    n = 0
    while n < len(prompt) and n < min(len(chosen), len(rejected)) and \
            prompt[n] == chosen[n] == rejected[n]:
        n += 1
    return prompt[:n], chosen[n:], rejected[n:]


def _batch(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded (prompt + answer) sequences with their masks, each (B, T)."""
    width = max(len(p) + len(a) for p, a in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    completion = torch.zeros_like(input_ids)
    for i, (p, a) in enumerate(sequences):
        input_ids[i, :len(p) + len(a)] = torch.tensor(p + a)
        attention[i, :len(p) + len(a)] = 1
        completion[i, len(p):len(p) + len(a)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion}


@torch.no_grad()
def answer_logps(model: torch.nn.Module, tokenizer: Any, pairs: Sequence[dict[str, Any]],
                 batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each pair's chosen and rejected answer, each (N,).

    The model is put in eval mode (no dropout); its 4-bit layers were loaded with the CPU
    repacking off (:func:`ift_tutorial.loading.load_model`), so training can follow.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chosen, rejected = [], []
    for start in range(0, len(pairs), batch_size):
        cut = [tokenize_pair(tokenizer, p) for p in pairs[start:start + batch_size]]
        batch = _batch([(p, c) for p, c, _ in cut] + [(p, r) for p, _, r in cut],
                       tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        logps = sequence_logps(model, **batch).float().cpu()  # (2B,): chosen, then rejected
        chosen.append(logps[:len(cut)])
        rejected.append(logps[len(cut):])
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def preference_metrics(policy: tuple[torch.Tensor, torch.Tensor], reference: tuple[torch.Tensor, torch.Tensor],
                       beta: float, pairs: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Preference accuracy, reward margin and mean log-probabilities of held-out pairs.

    Args:
        policy: (chosen, rejected) log-probabilities under the model measured, each (N,).
        reference: the same under the reference (the SFT model).
        beta: DPO's β, which scales the rewards.
        pairs: the pairs, for the accuracy per ``rejected_kind`` (when they say it).

    Returns:
        ``preference_accuracy`` (reward margin > 0), ``likelihood_accuracy`` (chosen more
        likely), ``reward_margin``, ``chosen_logps``, ``rejected_logps`` (means), ``n``,
        ``accuracy_by_kind`` (preference accuracy per kind of rejected answer) and
        ``outcomes`` (both accuracies' 0 or 1 per pair, in order, for the intervals and
        paired tests of :mod:`ift_tutorial.evaluation.statistics`).
    """
    (pc, pr), (rc, rr) = policy, reference
    margins = dpo_margins(pc, pr, rc, rr, beta)  # (N,)
    prefers = (margins > 0).float()  # (N,)
    likelier = (pc > pr).float()  # (N,)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for pair, ok in zip(pairs or [], prefers.tolist()):
        if pair.get("rejected_kind"):
            by_kind[pair["rejected_kind"]].append(ok)
    return {
        "preference_accuracy": prefers.mean().item(),
        "likelihood_accuracy": likelier.mean().item(),
        "reward_margin": margins.mean().item(),
        "chosen_logps": pc.mean().item(),
        "rejected_logps": pr.mean().item(),
        "n": len(pc),
        "accuracy_by_kind": {k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
        "outcomes": {"preference_accuracy": [int(x) for x in prefers.tolist()],
                     "likelihood_accuracy": [int(x) for x in likelier.tolist()]},
    }


def in_asked_language(answer: str, lang: str, names: Iterable[str] = ()) -> bool:
    """Is ``answer`` in the language ``lang`` ("en" or "zh") it was asked in?

    The tiny world's answers are names and numbers, which belong to neither language
    ("Zandor", "17"): they are taken out first (``names``: the world's made-up words), and
    what is left must hold no word of the other language, Han characters in an English
    answer, Latin words in a Chinese one. A bare name or number is in either language.
    (IFEval's language checker, :func:`~ift_tutorial.evaluation.ifeval.text.detect_language`,
    reads a made-up name alone as Polish or Slovene: it needs real sentences.)

    Example:
        >>> in_asked_language("Zandor", "zh", ["Zandor"]), in_asked_language("Bora lives in Zandor.", "zh", ["Bora", "Zandor"])
        (True, False)
    """
    rest = " ".join(w for w in re.split(r"(\s+)", answer) if w.strip(".,。，") not in set(names))
    if lang == "en":
        return _HAN.search(rest) is None
    return _LATIN_WORD.search(rest) is None


def language_outcomes(predictions: Sequence[dict[str, Any]], names: Iterable[str]) -> list[int]:
    """1 or 0 per prediction that says its language (``lang``): in the asked language or not."""
    names = set(names)
    return [int(in_asked_language(p["prediction"], p["lang"], names))
            for p in predictions if p.get("lang")]


def language_rate(predictions: Sequence[dict[str, Any]], names: Iterable[str]) -> float:
    """The fraction of predictions (``prediction`` and ``lang`` fields) in the asked language."""
    outcomes = language_outcomes(predictions, names)
    return sum(outcomes) / len(outcomes) if outcomes else float("nan")
