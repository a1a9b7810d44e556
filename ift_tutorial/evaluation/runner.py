"""Evaluating an instruction-tuned model: greedy answers, exact match, IFEval, GSM8K, perplexity.

Four measurements, before and after tuning, each on a held-out set named in the config's
``data`` section (a set that is null is skipped, and the report says so):

* **Exact match** on held-out verifiable questions (``data/tasks/heldout.jsonl``):
  the model answers greedily through the chat template, and an answer counts only
  if it equals the reference after whitespace normalisation
  (:func:`ift_tutorial.tasks.normalize_answer`). The model must also *stop*:
  ``"Zandor Zandor"`` is wrong.
* **Verifiable instruction following** (IFEval's format, :mod:`ift_tutorial.ifeval`):
  does the answer do what the prompt says? Prompt- and instruction-level accuracy,
  strict and loose, over one or more prompt sets (``data.eval_ifeval``).
* **Grade-school maths** (GSM8K's format, :mod:`ift_tutorial.gsm8k`), zero-shot through
  the chat template: flexible accuracy (the last number, the headline) and strict
  (``#### N``).
* **Answer-token perplexity** on held-out conversations, counting the assistant's
  tokens only (the same tokens that get a loss in training): ``exp`` of the mean
  negative log-likelihood per answer token. The report calls it ``answer_perplexity``.

Decoding is greedy, with the ``max_new_tokens`` of each set, and stops on EOS and the
chat template's end-of-turn token; the same settings serve the base and the tuned
model (the report's ``decoding``).

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
from .paths import display_path, resolve_path
from .sources import HubSource, parse_sources, read_hub_rows, seeded_subset, source_name
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


def load_perplexity_conversations(path: str | HubSource, limit: int | None = None
                                  ) -> list[Conversation]:
    """Held-out conversations (any format or hub source the data loader reads), at most ``limit``."""
    return read_perplexity_set(path, limit)[0]


def read_perplexity_set(source: str | HubSource, limit: int | None = None
                        ) -> tuple[list[Conversation], list[str]]:
    """Held-out conversations (the first ``limit``) and notes on where they came from."""
    from .instruction_data import _load

    loaded = _load(source if isinstance(source, HubSource) else str(resolve_path(source)),
                   "auto", "train", None, False)
    convs = loaded.conversations[:limit] if limit else loaded.conversations
    notes = loaded.source.notes or [f"read {display_path(loaded.source.path)}"]
    return convs, notes + ([f"first {len(convs)} of {len(loaded.conversations)} conversations"]
                           if len(convs) < len(loaded.conversations) else [])


# --- reading the IFEval and GSM8K sets of a config -----------------------------------------

#: Fields a hub source's ``columns`` may map onto, for each kind of evaluation set.
IFEVAL_FIELDS = ("key", "prompt", "instruction_id_list", "kwargs", "lang")
GSM8K_FIELDS = ("question", "answer", "lang")


def read_ifeval_set(source: str | HubSource) -> tuple[list[Any], list[str]]:
    """IFEval prompts from a file or a hub source (its fixture offline), and notes.

    Raises:
        DataError: naming the file or hub source, the line or record and the field.
    """
    from .ifeval import IFEvalPrompt, InstructionError, read_ifeval_prompts

    if not isinstance(source, HubSource):
        return read_ifeval_prompts(source), [f"read {display_path(resolve_path(source))}"]
    rows = read_hub_rows(source, IFEVAL_FIELDS)
    prompts = []
    for where, row in rows.records:
        try:
            prompts.append(IFEvalPrompt.from_dict(row))
        except InstructionError as err:
            raise rows.error(where, str(err).removeprefix(f"{err.field}: "), err.field) from None
    return prompts, rows.notes


def read_gsm8k_set(source: str | HubSource) -> tuple[list[Any], list[str]]:
    """GSM8K problems from a file or a hub source (its fixture offline), and notes."""
    from .gsm8k import problem_from_dict, read_gsm8k

    if not isinstance(source, HubSource):
        return read_gsm8k(source), [f"read {display_path(resolve_path(source))}"]
    rows = read_hub_rows(source, GSM8K_FIELDS)
    problems = []
    for where, row in rows.records:
        try:
            problems.append(problem_from_dict(row))
        except ValueError as err:
            field, message = str(err).split(": ", 1)
            raise rows.error(where, message, field) from None
    return problems, rows.notes


def _fitting(items: Sequence[Any], texts: Sequence[str], model: torch.nn.Module,
             tokenizer: PreTrainedTokenizerBase, max_new_tokens: int, what: str,
             notes: list[str]) -> list[Any]:
    """The items whose prompt (through the chat template) and answer fit the model's context.

    A prompt that does not fit is no test of the model; the ones left out are counted in
    ``notes``. (Only the tiny model, with 256 positions, has any: its small vocabulary
    spends two to three tokens on a Chinese character.)
    """
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not context:
        return list(items)
    lengths = [len(tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                                 add_generation_prompt=True, return_dict=True)
                   ["input_ids"]) for t in texts]
    kept = [item for item, n in zip(items, lengths) if n + max_new_tokens <= context]
    if len(kept) < len(items):
        notes.append(f"left out {len(items) - len(kept)} of {len(items)} {what} longer than the "
                     f"model's context ({context} tokens, {max_new_tokens} of them for the answer)")
    return kept


def _subset(items: Sequence[Any], size: int | None, cap: int | None, seed: int,
            what: str, notes: list[str]) -> list[Any]:
    """A seeded subset of at most ``size`` (and ``cap``) items, noted when smaller than the set."""
    n = min((x for x in (size, cap) if x is not None), default=None)
    picked = seeded_subset(items, n, seed)
    if len(picked) < len(items):
        notes.append(f"{len(picked)} of {len(items)} {what} (seeded subset, seed {seed})")
    return picked


# --- the whole evaluation of a config ---------------------------------------------------


#: The headline numbers of a report: training's metrics.json holds each with _before and _after.
SUMMARY_KEYS = (
    "exact_match", "exact_match_by_task",
    "ifeval_prompt_level_strict_acc", "ifeval_prompt_level_loose_acc",
    "ifeval_inst_level_strict_acc", "ifeval_inst_level_loose_acc", "ifeval_by_set", "ifeval_by_lang",
    "gsm8k_flexible_acc", "gsm8k_strict_acc", "gsm8k_by_lang",
    "answer_perplexity",
)
#: Per-example outputs of a report (kept out of summaries; saved by evaluate_config and train).
DETAIL_KEYS = ("predictions", "ifeval_results", "gsm8k_results")


def decoding_settings(config: ExperimentConfig, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """How every answer is generated: greedy, ``max_new_tokens`` per set, the stop tokens."""
    data, tr = config.data, config.training
    stops = stop_token_ids(tokenizer)
    return {"greedy": True, "stop_tokens": tokenizer.convert_ids_to_tokens(stops),
            "max_new_tokens": {
                "exact_match": tr.max_new_tokens,
                "ifeval": rehearsal.cap_max_new_tokens(config, data.eval_ifeval_max_new_tokens),
                "gsm8k": rehearsal.cap_max_new_tokens(config, data.eval_gsm8k_max_new_tokens)},
            "batch_size": tr.eval_batch_size}


def evaluate_model(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, config: ExperimentConfig
) -> dict[str, Any]:
    """Exact match, IFEval, GSM8K and answer-token perplexity of ``model`` on the config's sets.

    A set whose source is null in the config is skipped, and ``skipped`` says so. Every
    set is capped by ``data.max_eval_examples``; the IFEval and GSM8K sets also by their
    own sizes (a seeded subset, ``data.eval_seed``).

    Returns:
        ``exact_match``, ``exact_match_by_task``, ``n_exact_match``; the four IFEval
        accuracies as ``ifeval_prompt_level_strict_acc`` ... ``ifeval_inst_level_loose_acc``
        (all prompt sets together), ``ifeval_by_set``, ``ifeval_by_lang``, ``n_ifeval``;
        ``gsm8k_flexible_acc`` (the headline), ``gsm8k_strict_acc``, ``gsm8k_by_lang``,
        ``n_gsm8k``; ``answer_perplexity`` (assistant tokens only), ``answer_tokens``,
        ``n_perplexity``; ``decoding``, ``data_sources`` (per set: what was read, and
        whether a hub set was replaced by its local fixture), ``skipped``; and the
        per-example :data:`DETAIL_KEYS`.

    Example:
        >>> from ift_tutorial import evaluate_model, load_config, load_model, load_tokenizer
        >>> config = load_config("tiny", ["data.max_eval_examples=20"])
        >>> model, tokenizer = load_model(config.model), load_tokenizer(config.model)
        >>> report = evaluate_model(model, tokenizer, config)
        >>> report["n_exact_match"], report["n_ifeval"], report["n_gsm8k"], report["n_perplexity"]
        (20, 16, 12, 20)
    """
    data, tr, cap = config.data, config.training, config.data.max_eval_examples
    decoding = decoding_settings(config, tokenizer)
    report: dict[str, Any] = {"decoding": decoding, "data_sources": {}, "skipped": []}
    if data.eval_exact_match:
        examples = read_tasks(data.eval_exact_match)[: cap or None]
        em = evaluate_exact_match(model, tokenizer, examples, tr.max_new_tokens, tr.eval_batch_size)
        report.update(exact_match=em["exact_match"], exact_match_by_task=em["by_task"],
                      n_exact_match=em["n"], predictions=em["predictions"])
        report["data_sources"]["exact_match"] = [f"read {display_path(data.eval_exact_match)}"]
    else:
        report["exact_match"] = None
        report["skipped"].append("exact_match: data.eval_exact_match is null")
    if data.eval_ifeval:
        part = _ifeval_part(model, tokenizer, config, decoding["max_new_tokens"]["ifeval"])
        report["data_sources"]["ifeval"] = part.pop("sources")
        report.update(part)
    else:
        report["ifeval_prompt_level_strict_acc"] = None
        report["skipped"].append("ifeval: data.eval_ifeval is null")
    if data.eval_gsm8k:
        from .gsm8k import gsm8k_prompt

        problems, notes = read_gsm8k_set(data.eval_gsm8k)
        problems = _fitting(problems, [gsm8k_prompt(p.question, p.lang) for p in problems], model,
                            tokenizer, decoding["max_new_tokens"]["gsm8k"], "problems", notes)
        problems = _subset(problems, data.eval_gsm8k_examples, cap, data.eval_seed, "problems", notes)
        g = evaluate_gsm8k(model, tokenizer, problems, decoding["max_new_tokens"]["gsm8k"],
                           tr.eval_batch_size)
        report.update(gsm8k_flexible_acc=g["flexible_acc"], gsm8k_strict_acc=g["strict_acc"],
                      gsm8k_by_lang=g["by_lang"], n_gsm8k=g["num_problems"],
                      gsm8k_results=g["results"])
        report["data_sources"]["gsm8k"] = notes
    else:
        report["gsm8k_flexible_acc"] = None
        report["skipped"].append("gsm8k: data.eval_gsm8k is null")
    if data.eval_perplexity:
        convs, notes = read_perplexity_set(data.eval_perplexity, cap)
        ppl = perplexity(model, tokenizer, convs, batch_size=tr.eval_batch_size,
                         max_length=config.model.max_length)
        report.update(answer_perplexity=ppl["perplexity"], answer_nll=ppl["nll"],
                      answer_tokens=ppl["tokens"], n_perplexity=ppl["n"])
        report["data_sources"]["answer_perplexity"] = notes
    else:
        report["answer_perplexity"] = None
        report["skipped"].append("answer_perplexity: data.eval_perplexity is null")
    return report


def _ifeval_part(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                 config: ExperimentConfig, max_new_tokens: int) -> dict[str, Any]:
    """IFEval over every prompt set of the config: answered in one pass, scored per set and together."""
    from .ifeval import score_ifeval

    data = config.data
    sets, prompts, names, sources = [], [], [], {}
    for source in parse_sources(data.eval_ifeval, "data.eval_ifeval"):
        found, notes = read_ifeval_set(source)
        found = _fitting(found, [p.prompt for p in found], model, tokenizer, max_new_tokens,
                         "prompts", notes)
        found = _subset(found, data.eval_ifeval_examples, data.max_eval_examples, data.eval_seed,
                        "prompts", notes)
        name = source_name(source)
        sets.append((name, len(prompts), len(prompts) + len(found)))
        prompts += found
        names += [name] * len(found)
        sources[name] = notes
    report = evaluate_ifeval(model, tokenizer, prompts, max_new_tokens, config.training.eval_batch_size)
    responses = [r["response"] for r in report["results"]]
    accuracies = ("prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc",
                  "inst_level_loose_acc")
    by_set = {}
    for name, lo, hi in sets:
        part = score_ifeval(prompts[lo:hi], responses[lo:hi])
        by_set[name] = {k: part[k] for k in accuracies} | {"num_prompts": part["num_prompts"]}
    results = [r | {"set": name, "prompt": p.prompt}
               for r, name, p in zip(report["results"], names, prompts)]
    return {f"ifeval_{k}": report[k] for k in accuracies} | {
        "ifeval_by_set": by_set, "ifeval_by_lang": report["by_lang"], "n_ifeval": len(prompts),
        "ifeval_results": results, "sources": sources}


def evaluate_config(
    config: ExperimentConfig, adapter: str | None = None, output: str | None = None
) -> dict[str, Any]:
    """``ift-tutorial evaluate``: load the base (and adapter), evaluate, optionally save JSON.

    Returns:
        The report of :func:`evaluate_model` without the per-example outputs
        (:data:`DETAIL_KEYS`: those go to ``output`` only).

    Example:
        >>> from ift_tutorial import evaluate_config, load_config
        >>> config = load_config("tiny", ["data.max_eval_examples=20"])
        >>> report = evaluate_config(config, adapter="data/adapters/tiny-sft")
        >>> report["exact_match"] > 0.5
        True
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
    for key in DETAIL_KEYS:
        report.pop(key, None)
    return report


# --- the book's before/after table ---------------------------------------------------------


#: Rows of the before/after table: (label, metrics.json key without _before/_after).
TABLE_ROWS = (
    ("exact match", "exact_match"),
    ("IFEval prompt-level strict", "ifeval_prompt_level_strict_acc"),
    ("IFEval prompt-level loose", "ifeval_prompt_level_loose_acc"),
    ("IFEval instruction-level strict", "ifeval_inst_level_strict_acc"),
    ("IFEval instruction-level loose", "ifeval_inst_level_loose_acc"),
    ("GSM8K flexible", "gsm8k_flexible_acc"),
    ("GSM8K strict", "gsm8k_strict_acc"),
    ("answer-token perplexity", "answer_perplexity"),
)


def before_after_table(metrics: dict[str, Any]):
    """A pandas DataFrame of a training ``metrics.json`` (or the same keys measured live).

    Rows: exact match (overall, per task, per language), the four IFEval accuracies,
    GSM8K flexible and strict, answer-token perplexity; a measurement that was skipped
    (None before and after) has no row. Columns ``before``, ``after`` and ``change``.
    """
    import pandas as pd

    rows: dict[str, tuple[Any, Any]] = {}
    for label, key in TABLE_ROWS:
        pair = (metrics.get(f"{key}_before"), metrics.get(f"{key}_after"))
        if pair != (None, None):
            rows[label] = pair
        if key != "exact_match":
            continue
        before_tasks = metrics.get("exact_match_by_task_before") or {}
        after_tasks = metrics.get("exact_match_by_task_after") or {}
        keys = sorted(set(before_tasks) | set(after_tasks))
        for k in [k for k in keys if "/" not in k and not k.startswith("lang:")] + \
                 [k for k in keys if k.startswith("lang:")]:
            rows[f"exact match: {k.removeprefix('lang:')}"] = (before_tasks.get(k), after_tasks.get(k))
    df = pd.DataFrame.from_dict(rows, orient="index", columns=["before", "after"], dtype=float)
    df["change"] = df["after"] - df["before"]
    return df


def lm_eval_command(config: ExperimentConfig, adapter: str | os.PathLike[str],
                    tokenizer: PreTrainedTokenizerBase, output: str = "runs/lm-eval") -> str:
    """The lm-evaluation-harness command that scores base + adapter with the tuned template.

    ``tokenizer=<adapter>`` loads the tokenizer saved with the adapter, whose chat template
    is the one tuning used; ``--apply_chat_template`` renders every prompt through it, and
    ``until`` stops on the template's end-of-turn token (the harness adds EOS itself).
    The base loads in bf16 (about 16 GB for a 7-8B model: an L4 or A100, not a free T4).

    Example:
        >>> from ift_tutorial.config import load_config
        >>> from ift_tutorial.loading import load_tokenizer
        >>> cfg = load_config("tiny")
        >>> print(lm_eval_command(cfg, "runs/tiny/adapter", load_tokenizer(cfg.model)))  # doctest: +ELLIPSIS
        lm_eval --model hf --model_args pretrained=...,peft=runs/tiny/adapter,tokenizer=runs/tiny/adapter,dtype=bfloat16 ...
    """
    base = config.model.name_or_path
    base = base if not os.path.isabs(base) else display_path(base)
    args = [f"pretrained={base}"] + ([f"revision={config.model.revision}"]
                                     if config.model.revision else [])
    args += [f"peft={adapter}", f"tokenizer={adapter}", "dtype=bfloat16"]
    end = end_of_turn_token_id(tokenizer)
    until = [] if end in (None, tokenizer.eos_token_id) else [tokenizer.convert_ids_to_tokens(end)]
    gen = ",".join([f"until={t}" for t in until] + ["do_sample=False"])
    return (f"lm_eval --model hf --model_args {','.join(args)} --apply_chat_template "
            f"--tasks ifeval,gsm8k --num_fewshot 0 --gen_kwargs '{gen}' "
            f"--batch_size 8 --seed 0 --output_path {output} --log_samples")
