"""Evaluating an instruction-tuned model: greedy answers, exact match and perplexity.

Two measurements, before and after tuning:

* **Exact match** on held-out verifiable questions (``data/tasks/heldout.jsonl``):
  the model answers greedily through the chat template, and an answer counts only
  if it equals the reference after whitespace normalisation
  (:func:`ift_tutorial.tasks.normalize_answer`). The model must also *stop*:
  ``"Zandor Zandor"`` is wrong.
* **Perplexity** on held-out instruction conversations, counting the assistant's
  tokens only (the same tokens that get a loss in training): ``exp`` of the mean
  negative log-likelihood per answer token.

:func:`generate_responses` is the one decoding function of the project: the chat
command, the book and the evaluation all answer through it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from . import rehearsal
from .config import ExperimentConfig
from .devices import to_model_device
from .loading import disable_cpu_weight_repacking, load_model, load_tokenizer
from .paths import resolve_path
from .tasks import is_exact_match as _is_exact_match
from .tasks import read_tasks

Conversation = list[dict[str, str]]


# --- loading -----------------------------------------------------------------------


def load_for_inference(
    config: ExperimentConfig, adapter: str | os.PathLike[str] | None = None
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The 4-bit base model (as in training), with a LoRA adapter on top if given.

    Args:
        config: the experiment config; its ``model`` section says what to load.
        adapter: a PEFT adapter folder (``adapter_config.json`` + safetensors), or None
            for the base model alone.

    Returns:
        ``(model, tokenizer)``, the model in eval mode.
    """
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model)
    if adapter is not None:
        from peft import PeftModel

        path = resolve_path(adapter)
        if not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{path} is not a PEFT adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(path), is_trainable=False)
    model.eval()
    return model, tokenizer


# --- generation --------------------------------------------------------------------


#: Tokens that close an assistant turn in common chat templates (ChatML, Llama 3, Gemma, Phi):
#: also stop tokens when the template has no generation markers to read the end of a turn from.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def end_of_turn_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that closes an assistant turn in the tokenizer's chat template.

    Read from the template itself: the last trained token of an assistant turn (inside
    its ``{% generation %}`` block, trailing whitespace skipped), if it is a special
    token. That is ``<|im_end|>`` for ChatML, EOS for the ``[INST]`` format; None when
    the template has no generation markers.

    Example:
        >>> from ift_tutorial.config import load_config
        >>> from ift_tutorial.loading import load_tokenizer
        >>> tok = load_tokenizer(load_config("tiny").model)
        >>> end_of_turn_token_id(tok) == tok.eos_token_id
        True
    """
    from trl.chat_template_utils import has_generation_markers

    if not tokenizer.chat_template or not has_generation_markers(tokenizer.chat_template):
        return None
    turn = [{"role": "user", "content": "1 + 1"}, {"role": "assistant", "content": "2"},
            {"role": "user", "content": "2 + 2"}]  # a next turn: the end must belong to the first
    out = tokenizer.apply_chat_template(turn, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    special = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
    trained = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    for token_id in reversed(trained):
        if tokenizer.decode([token_id]).strip():
            return token_id if token_id in special else None
    return None


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """EOS, the chat template's end-of-turn token, and known end-of-turn tokens in the vocabulary.

    A base Qwen2.5 tokenizer's EOS is ``<|endoftext|>``, but its ChatML template closes
    an assistant turn with ``<|im_end|>``, which is what tuning teaches the model to emit:
    generation must stop on either.

    Returns:
        Token ids, EOS first, without repeats.
    """
    ids = [tokenizer.eos_token_id]
    end_of_turn = end_of_turn_token_id(tokenizer)
    if end_of_turn is not None and end_of_turn not in ids:
        ids.append(end_of_turn)
    added = tokenizer.get_added_vocab()
    ids += [added[t] for t in END_OF_TURN_TOKENS if t in added and added[t] not in ids]
    return ids


@torch.no_grad()
def greedy_continuations(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
    eos_token_id: int | list[int],
) -> list[str]:
    """Greedy continuations of fully formatted texts (special tokens already written).

    Texts are padded on the *left*, so that in a batch every prompt ends at the same
    position and new tokens line up.

    Returns:
        The new text of each prompt, special tokens removed (not stripped).
    """
    was_training = model.training
    model.eval()
    # An eval pass must not switch bitsandbytes to its CPU inference layout, whose
    # kernel has no gradient: training after this call would silently stop learning.
    disable_cpu_weight_repacking(model)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs: list[str] = []
    try:
        for start in range(0, len(texts), batch_size):
            # The texts already hold BOS; add_special_tokens=False avoids a second one.
            enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt",
                            padding=True, add_special_tokens=False)
            enc = to_model_device(enc, model)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )  # (B, prompt_len + new_len)
            new_tokens = out[:, enc["input_ids"].shape[1]:]
            outputs += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


def generate_responses(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    max_new_tokens: int = 32,
    batch_size: int = 32,
) -> list[str]:
    """Greedy answers to each conversation, through the tokenizer's chat template.

    Each conversation ends with a user turn; the template adds the assistant header
    (``add_generation_prompt=True``) and the model continues from there until it emits
    EOS (or the template's end-of-turn token) or reaches ``max_new_tokens``.

    Args:
        conversations: lists of ``{"role", "content"}`` messages.
        max_new_tokens: at most this many generated tokens per answer.
        batch_size: conversations decoded together.

    Returns:
        One answer string per conversation, special tokens removed, ends stripped.
    """
    prompts = [tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
               for c in conversations]
    answers = greedy_continuations(model, tokenizer, prompts, max_new_tokens, batch_size,
                                   stop_token_ids(tokenizer))
    return [a.strip() for a in answers]


# --- exact match -------------------------------------------------------------------


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
        ``n`` and ``predictions`` (prompt, reference, prediction, correct).
    """
    prompts = [ex["messages"][:-1] for ex in examples]
    references = [ex["messages"][-1]["content"] for ex in examples]
    predictions = generate_responses(model, tokenizer, prompts, max_new_tokens, batch_size)
    rows, groups = [], defaultdict(list)
    for ex, ref, pred in zip(examples, references, predictions):
        ok = _is_exact_match(pred, ref)
        rows.append({"prompt": ex["messages"][-2]["content"], "reference": ref,
                     "prediction": pred, "correct": ok,
                     "task": ex.get("task"), "lang": ex.get("lang")})
        if ex.get("task"):
            groups[ex["task"]].append(ok)
            groups[f"{ex['task']}/{ex.get('lang')}"].append(ok)
        if ex.get("lang"):
            groups[f"lang:{ex['lang']}"].append(ok)
    return {
        "exact_match": exact_match(predictions, references),
        "by_task": {k: sum(v) / len(v) for k, v in sorted(groups.items())},
        "n": len(examples),
        "predictions": rows,
    }


# --- verifiable instruction following (IFEval) and grade-school maths (GSM8K) ----------


def evaluate_ifeval(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    max_new_tokens: int = 256,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Answer each IFEval prompt as one user turn, greedily, and score the answers.

    Args:
        prompts: :class:`ift_tutorial.ifeval.IFEvalPrompt` objects, e.g. from
            :func:`ift_tutorial.ifeval.read_ifeval_prompts`.

    Returns:
        :func:`ift_tutorial.ifeval.score_ifeval`'s report; each of its ``results`` also
        holds the ``response``.
    """
    from .ifeval import score_ifeval

    convs = [[{"role": "user", "content": p.prompt}] for p in prompts]
    responses = generate_responses(model, tokenizer, convs, max_new_tokens, batch_size)
    report = score_ifeval(prompts, responses)
    for result, response in zip(report["results"], responses):
        result["response"] = response
    return report


def evaluate_gsm8k(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Any],
    max_new_tokens: int = 256,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Answer each GSM8K problem zero-shot (:func:`ift_tutorial.gsm8k.gsm8k_prompt`),
    greedily, and score flexible and strict.

    Args:
        problems: :class:`ift_tutorial.gsm8k.GSM8KProblem` objects, e.g. from
            :func:`ift_tutorial.gsm8k.read_gsm8k`.

    Returns:
        :func:`ift_tutorial.gsm8k.score_gsm8k`'s report; each of its ``results`` also
        holds the ``question`` and the ``response``.
    """
    from .gsm8k import gsm8k_prompt, score_gsm8k

    convs = [[{"role": "user", "content": gsm8k_prompt(p.question, p.lang)}] for p in problems]
    responses = generate_responses(model, tokenizer, convs, max_new_tokens, batch_size)
    report = score_gsm8k(problems, responses)
    for result, problem, response in zip(report["results"], problems, responses):
        result.update(question=problem.question, response=response)
    return report


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
    return greedy_continuations(model, tokenizer, texts, max_new_tokens, batch_size,
                                tokenizer.eos_token_id)


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


# --- perplexity --------------------------------------------------------------------


def _assistant_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A chat template with generation markers: the tokenizer's own, else TRL's training one."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if tokenizer.chat_template and has_generation_markers(tokenizer.chat_template):
        return None  # use the tokenizer's own
    return get_training_chat_template(tokenizer)


def assistant_labels(
    tokenizer: PreTrainedTokenizerBase, conversation: Conversation, max_length: int | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and labels that are -100 except on assistant tokens.

    The assistant tokens are the ones inside the template's ``{% generation %}`` blocks,
    EOS included: exactly the tokens that training puts a loss on.

    Returns:
        ``(input_ids, labels)``, both of length <= ``max_length``.
    """
    out = tokenizer.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
        chat_template=_assistant_template(tokenizer),
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    return ids, [t if m else -100 for t, m in zip(ids, mask)]


@torch.no_grad()
def perplexity(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    batch_size: int = 16,
    max_length: int | None = 256,
) -> dict[str, float]:
    """Perplexity of the assistant turns: ``exp(total NLL / number of assistant tokens)``.

    Returns:
        ``perplexity``, ``nll`` (mean per token), ``tokens`` counted, ``n`` conversations.
    """
    was_training = model.training
    model.eval()
    disable_cpu_weight_repacking(model)
    total_nll, total_tokens = 0.0, 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    try:
        for start in range(0, len(conversations), batch_size):
            pairs = [assistant_labels(tokenizer, list(c), max_length)
                     for c in conversations[start:start + batch_size]]
            width = max(len(ids) for ids, _ in pairs)
            # Right padding: positions match those seen in training; padded labels are -100.
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in pairs])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in pairs])
            attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in pairs])
            inputs = to_model_device({"input_ids": input_ids, "attention_mask": attention}, model)
            logits = model(**inputs).logits
            # Token t predicts token t+1: shift logits left, labels right.
            logits = logits[:, :-1].float()  # (B, T-1, V)
            targets = labels[:, 1:].to(logits.device)  # (B, T-1)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                ignore_index=-100, reduction="sum",
            )
            total_nll += nll.item()
            total_tokens += int((targets != -100).sum())
    finally:
        model.train(was_training)
    if total_tokens == 0:
        raise ValueError("no assistant tokens to score: do the conversations have assistant turns?")
    mean = total_nll / total_tokens
    return {"perplexity": math.exp(mean), "nll": mean, "tokens": total_tokens, "n": len(conversations)}


def load_perplexity_conversations(path: str, limit: int | None = None) -> list[Conversation]:
    """Held-out instruction conversations (any format the data loader reads), at most ``limit``."""
    from .instruction_data import load_conversations

    convs = load_conversations(str(resolve_path(path)), strict=False)
    return convs[:limit] if limit else convs


# --- the whole evaluation of a config ---------------------------------------------------


def evaluate_model(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, config: ExperimentConfig
) -> dict[str, Any]:
    """Exact match and perplexity of ``model`` on the config's held-out sets.

    A set whose path is null in the config is skipped, and the report says so.
    """
    data, tr = config.data, config.training
    report: dict[str, Any] = {}
    if data.eval_exact_match:
        examples = read_tasks(data.eval_exact_match)[: data.max_eval_examples or None]
        em = evaluate_exact_match(model, tokenizer, examples, tr.max_new_tokens, tr.eval_batch_size)
        report.update(exact_match=em["exact_match"], exact_match_by_task=em["by_task"],
                      n_exact_match=em["n"], predictions=em["predictions"])
    else:
        report["exact_match"] = None
        report["skipped"] = ["exact_match: data.eval_exact_match is null"]
    if data.eval_perplexity:
        convs = load_perplexity_conversations(data.eval_perplexity, data.max_eval_examples)
        ppl = perplexity(model, tokenizer, convs, batch_size=tr.eval_batch_size,
                         max_length=config.model.max_length)
        report.update(perplexity=ppl["perplexity"], perplexity_tokens=ppl["tokens"],
                      n_perplexity=ppl["n"])
    else:
        report["perplexity"] = None
        report.setdefault("skipped", []).append("perplexity: data.eval_perplexity is null")
    return report


def evaluate_config(
    config: ExperimentConfig, adapter: str | None = None, output: str | None = None
) -> dict[str, Any]:
    """``ift-tutorial evaluate``: load the base (and adapter), evaluate, optionally save JSON.

    Returns:
        The report without the per-example predictions (those go to ``output`` only).
    """
    if config.training.num_threads:
        torch.set_num_threads(config.training.num_threads)
    model, tokenizer = load_for_inference(config, adapter)
    report = evaluate_model(model, tokenizer, config)
    report = {"config": config.name, "adapter": adapter, **rehearsal.marker(config), **report}
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    report.pop("predictions", None)
    return report


# --- the book's before/after table ---------------------------------------------------------


def before_after_table(metrics: dict[str, Any]):
    """A pandas DataFrame: rows exact match (overall and per task) and perplexity;
    columns ``before``, ``after`` and ``change``. ``metrics`` is a training ``metrics.json``.
    """
    import pandas as pd

    rows = {"exact match": (metrics.get("exact_match_before"), metrics.get("exact_match_after"))}
    before_tasks = metrics.get("exact_match_by_task_before") or {}
    after_tasks = metrics.get("exact_match_by_task_after") or {}
    for key in sorted(set(before_tasks) | set(after_tasks)):
        if "/" not in key and not key.startswith("lang:"):
            rows[f"exact match: {key}"] = (before_tasks.get(key), after_tasks.get(key))
    for key in sorted(set(before_tasks) | set(after_tasks)):
        if key.startswith("lang:"):
            rows[f"exact match: {key[5:]}"] = (before_tasks.get(key), after_tasks.get(key))
    rows["perplexity"] = (metrics.get("perplexity_before"), metrics.get("perplexity_after"))
    df = pd.DataFrame.from_dict(rows, orient="index", columns=["before", "after"])
    df["change"] = df["after"] - df["before"]
    return df
