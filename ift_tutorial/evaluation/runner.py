"""Evaluating an instruction-tuned model: the whole evaluation of a config, before and after tuning.

Four measurements, before and after tuning, each on a held-out set named in the config's
``data`` section (a set that is null is skipped, and the report says so):

* **Exact match** on held-out verifiable questions (``data/tasks/heldout.jsonl``,
  :mod:`ift_tutorial.evaluation.exact_match`):
  the model answers greedily through the chat template, and an answer counts only
  if it equals the reference after whitespace normalisation
  (:func:`ift_tutorial.tinyworld.tasks.normalize_answer`). The model must also *stop*:
  ``"Zandor Zandor"`` is wrong.
* **Verifiable instruction following** (IFEval's format, :mod:`ift_tutorial.evaluation.ifeval`):
  does the answer do what the prompt says? Prompt- and instruction-level accuracy,
  strict and loose, over one or more prompt sets (``data.eval_ifeval``).
* **Grade-school maths** (GSM8K's format, :mod:`ift_tutorial.evaluation.gsm8k`), zero-shot through
  the chat template: flexible accuracy (the last number, the headline) and strict
  (``#### N``).
* **Answer-token perplexity** on held-out conversations (:mod:`ift_tutorial.evaluation.perplexity`),
  counting the assistant's tokens only (the same tokens that get a loss in training): ``exp``
  of the mean negative log-likelihood per answer token. The report calls it ``answer_perplexity``.
* **General ability** (forgetting; :mod:`ift_tutorial.evaluation.multiple_choice`): multiple-choice
  questions scored by the likelihood of each option, ``mc_acc`` (``data.eval_multiple_choice``).
* **Refusals** (:mod:`ift_tutorial.evaluation.refusal`): the share of harmful requests refused,
  ``refusal_rate``, and of harmless look-alikes, ``over_refusal_rate`` (``data.eval_refusal``).

Decoding is greedy, with the ``max_new_tokens`` of each set, and stops on EOS and the
chat template's end-of-turn token; the same settings serve the base and the tuned
model (the report's ``decoding``).

:func:`ift_tutorial.inference.generation.generate_responses` is the one decoding function
of the project: the chat command, the book and the evaluation all answer through it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ..config import ExperimentConfig
from ..inference.generation import load_for_inference, stop_token_ids
from ..instructions.sources import parse_sources, seeded_subset, source_name
from ..paths import display_path
from ..tinyworld.tasks import read_tasks
from .exact_match import evaluate_exact_match
from .gsm8k import evaluate_gsm8k, gsm8k_prompt, read_gsm8k_set
from .ifeval.scoring import evaluate_ifeval, read_ifeval_set, score_ifeval
from .multiple_choice import evaluate_multiple_choice, fitting, read_choice_set
from .perplexity import perplexity, read_perplexity_set


# --- fitting the model's context, seeded subsets ------------------------------------------


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
    "mc_acc", "mc_by_lang", "refusal_rate", "over_refusal_rate", "refusal_by_lang",
)
#: Per-example outputs of a report (kept out of summaries; saved by evaluate_config and train).
#: ``outcomes``: 1 or 0 per item of each accuracy, in the suite's fixed order, so that before
#: and after pair up item by item (:mod:`ift_tutorial.evaluation.statistics`).
DETAIL_KEYS = ("predictions", "ifeval_results", "gsm8k_results", "outcomes", "outcome_groups",
               "mc_results", "refusal_results")


def decoding_settings(config: ExperimentConfig, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """How every answer is generated: greedy, ``max_new_tokens`` per set, the stop tokens."""
    data, tr = config.data, config.training
    stops = stop_token_ids(tokenizer)
    return {"greedy": True, "stop_tokens": tokenizer.convert_ids_to_tokens(stops),
            "max_new_tokens": {
                "exact_match": tr.max_new_tokens,
                "ifeval": data.eval_ifeval_max_new_tokens,
                "gsm8k": data.eval_gsm8k_max_new_tokens,
                **({"refusal": data.eval_refusal_max_new_tokens} if data.eval_refusal else {})},
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
    report: dict[str, Any] = {"decoding": decoding, "data_sources": {}, "skipped": [],
                              "outcomes": {}, "outcome_groups": {}}
    if data.eval_exact_match:
        examples = read_tasks(data.eval_exact_match)[: cap or None]
        em = evaluate_exact_match(model, tokenizer, examples, tr.max_new_tokens, tr.eval_batch_size)
        report.update(exact_match=em["exact_match"], exact_match_by_task=em["by_task"],
                      n_exact_match=em["n"], predictions=em["predictions"])
        report["outcomes"].update(em["outcomes"])
        report["data_sources"]["exact_match"] = [f"read {display_path(data.eval_exact_match)}"]
    else:
        report["exact_match"] = None
        report["skipped"].append("exact_match: data.eval_exact_match is null")
    if data.eval_ifeval:
        part = _ifeval_part(model, tokenizer, config, decoding["max_new_tokens"]["ifeval"])
        report["data_sources"]["ifeval"] = part.pop("sources")
        report["outcomes"].update(part.pop("outcomes"))
        report["outcome_groups"].update(part.pop("outcome_groups"))
        report.update(part)
    else:
        report["ifeval_prompt_level_strict_acc"] = None
        report["skipped"].append("ifeval: data.eval_ifeval is null")
    if data.eval_gsm8k:
        problems, notes = read_gsm8k_set(data.eval_gsm8k)
        problems = _fitting(problems, [gsm8k_prompt(p.question, p.lang) for p in problems], model,
                            tokenizer, decoding["max_new_tokens"]["gsm8k"], "problems", notes)
        problems = _subset(problems, data.eval_gsm8k_examples, cap, data.eval_seed, "problems", notes)
        g = evaluate_gsm8k(model, tokenizer, problems, decoding["max_new_tokens"]["gsm8k"],
                           tr.eval_batch_size)
        report.update(gsm8k_flexible_acc=g["flexible_acc"], gsm8k_strict_acc=g["strict_acc"],
                      gsm8k_by_lang=g["by_lang"], n_gsm8k=g["num_problems"],
                      gsm8k_results=g["results"])
        report["outcomes"].update(g["outcomes"])
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
    for part in (multiple_choice_report(model, tokenizer, config),
                 refusal_report(model, tokenizer, config)):
        merge_part(report, part)
    return report


def merge_part(report: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Merge a suite's ``part`` (e.g. :func:`multiple_choice_report`) into ``report``: its
    ``skipped``, ``outcomes`` and ``data_sources`` join the report's, its scores are added."""
    part = dict(part)
    report.setdefault("skipped", []).extend(part.pop("skipped", []))
    report.setdefault("outcomes", {}).update(part.pop("outcomes", {}))
    report.setdefault("data_sources", {}).update(part.pop("data_sources", {}))
    report.update(part)
    return report


def _ifeval_part(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                 config: ExperimentConfig, max_new_tokens: int) -> dict[str, Any]:
    """IFEval over every prompt set of the config: answered in one pass, scored per set and together."""
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
        "ifeval_results": results, "sources": sources, "outcomes": report["outcomes"],
        "outcome_groups": report["outcome_groups"]}


def multiple_choice_report(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                           config: ExperimentConfig) -> dict[str, Any]:
    """General ability: the config's multiple-choice sets, scored by likelihood.

    Returns:
        ``mc_acc``, ``mc_by_lang``, ``n_mc``, ``mc_results``, ``outcomes`` and
        ``data_sources``; or ``mc_acc`` None and ``skipped`` when the config has no set.
    """
    data = config.data
    if not data.eval_multiple_choice:
        return {"mc_acc": None, "mc_by_lang": None,
                "skipped": ["multiple_choice: data.eval_multiple_choice is null"]}
    items, notes = [], []
    for source in parse_sources(data.eval_multiple_choice, "data.eval_multiple_choice"):
        found, found_notes = read_choice_set(source)
        found = fitting(found, tokenizer, data.eval_multiple_choice_format,
                        config.model.max_length, found_notes)
        items += _subset(found, data.eval_multiple_choice_examples, data.max_eval_examples,
                         data.eval_seed, "questions", found_notes)
        notes += found_notes
    mc = evaluate_multiple_choice(model, tokenizer, items, data.eval_multiple_choice_format,
                                  config.training.eval_batch_size)
    return {"mc_acc": mc["accuracy"], "mc_by_lang": mc["by_lang"], "n_mc": mc["n"],
            "mc_results": mc["results"], "outcomes": {"mc_acc": mc["outcomes"]},
            "data_sources": {"multiple_choice": notes}}


def refusal_report(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                   config: ExperimentConfig) -> dict[str, Any]:
    """Refusals of the config's probe set: harmful requests and harmless look-alikes.

    Returns:
        ``refusal_rate``, ``over_refusal_rate``, ``refusal_by_lang``, ``n_refusal``,
        ``refusal_results``, ``outcomes`` and ``data_sources``; or ``refusal_rate`` None
        and ``skipped`` when the config has no probe set.
    """
    from .refusal import evaluate_refusal, read_probes

    data = config.data
    if not data.eval_refusal:
        return {"refusal_rate": None, "over_refusal_rate": None, "refusal_by_lang": None,
                "skipped": ["refusal: data.eval_refusal is null"]}
    probes, notes = read_probes(data.eval_refusal)
    probes = _subset(probes, None, data.max_eval_examples, data.eval_seed, "probes", notes)
    r = evaluate_refusal(model, tokenizer, probes, data.eval_refusal_max_new_tokens,
                         config.training.eval_batch_size)
    return {"refusal_rate": r["refusal_rate"], "over_refusal_rate": r["over_refusal_rate"],
            "refusal_by_lang": r["by_lang"], "n_refusal": r["n"],
            "refusal_results": r["results"], "outcomes": r["outcomes"],
            "data_sources": {"refusal": notes}}


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
    report = {"config": config.name, "adapter": adapter, **config.marker(), **report}
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    for key in DETAIL_KEYS:
        report.pop(key, None)
    return report
