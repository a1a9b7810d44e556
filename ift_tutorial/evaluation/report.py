"""The book's before/after table of a run's metrics, a fresh run's scores next to the shipped
adapter's (:func:`compare_with_shipped`), and the lm-evaluation-harness command that scores
the same base model and adapter on the full IFEval and GSM8K.
"""

from __future__ import annotations

import json
import os
from typing import Any

from transformers import PreTrainedTokenizerBase

from ..config import ExperimentConfig
from ..inference.generation import end_of_turn_token_id
from ..paths import display_path


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
    ("general knowledge, multiple choice", "mc_acc"),
    ("harmful requests refused", "refusal_rate"),
    ("harmless requests refused", "over_refusal_rate"),
)


def before_after_values(metrics: dict[str, Any]):
    """The numbers of a training ``metrics.json`` (or the same keys measured live), before and
    after tuning: a pandas DataFrame with columns ``before`` and ``after``.

    Rows: exact match (overall, per task, per language), the four IFEval accuracies,
    GSM8K flexible and strict, answer-token perplexity; a measurement that was skipped
    (None before and after) has no row.
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
    return pd.DataFrame.from_dict(rows, orient="index", columns=["before", "after"], dtype=float)


def _with_interval(metrics: dict[str, Any], key: str, when: str) -> Any:
    """A score, with its interval when the evaluation gave one (``<key>_<when>_interval``)."""
    value, interval = metrics.get(f"{key}_{when}"), metrics.get(f"{key}_{when}_interval")
    return (value, *interval) if value is not None and interval else value


def before_after_table(metrics: dict[str, Any]):
    """The before/after table of a page (:func:`ift_tutorial.book.tables.table`).

    The rows of :func:`before_after_values`, labels in the edition's language; accuracies
    as percentages (with the interval where the metrics give one:
    ``<key>_before_interval = [low, high]``), the perplexity as its two values, never
    as a difference; a score measured on one side only says so. Where the metrics hold
    paired tests (``<key>_paired``, :mod:`ift_tutorial.evaluation.statistics`), a third
    column gives the change on the same items in points and its p-value.

    Example:
        >>> tab = before_after_table({"exact_match_before": 0.0, "exact_match_after": 0.756,
        ...                           "answer_perplexity_before": 1032067.4,
        ...                           "answer_perplexity_after": 1.5934})
        >>> tab.column("before"), tab.column("after")
        (['0 %', '1.0 M'], ['76 %', '1.59'])
    """
    from ..book.tables import format_cell, table
    from ..i18n import t
    from .statistics import format_paired

    keys = dict(TABLE_ROWS)
    by_task = [metrics.get(f"exact_match_by_task_{w}") or {} for w in ("before", "after")]
    rows = []
    for label in before_after_values(metrics).index:
        key = keys.get(label)
        if key == "answer_perplexity":  # two values, never their difference
            rows.append({"metric": t(label),
                         **{w: format_cell(metrics.get(f"{key}_{w}"), "perplexity")
                            for w in ("before", "after")}, "paired": "–"})
            continue
        if key is None:  # a task ("city") or a language ("lang:zh") of exact match
            task = label.removeprefix("exact match: ")
            task = task if task in by_task[0] or task in by_task[1] else f"lang:{task}"
            pair = [scores.get(task) for scores in by_task]
            label = f"{t('exact match')}: {task.removeprefix('lang:')}"
        else:
            pair, label = [_with_interval(metrics, key, w) for w in ("before", "after")], t(label)
        rows.append({"metric": label, "before": format_cell(pair[0], "percent_interval"),
                     "after": format_cell(pair[1], "percent_interval"),
                     "paired": format_paired(metrics.get(f"{key}_paired")) or "–"})
    columns = {"metric": "metric", "before": "before", "after": "after"}
    if any(k.endswith("_paired") for k in metrics):
        columns["paired"] = "change, paired test"
    return table(rows, columns=columns)


#: Rows of :func:`compare_with_shipped` besides exact match: (label, metrics.json key without
#: _after, the key of its number of items).
SHIPPED_ROWS = (
    ("IFEval prompt-level strict", "ifeval_prompt_level_strict_acc", "n_ifeval"),
    ("GSM8K flexible", "gsm8k_flexible_acc", "n_gsm8k"),
)


class UnlikeShippedRun(AssertionError):
    """A run's scores are further from the shipped run's than the tolerance allows."""


def shipped_metrics(preset: str = "tiny") -> dict[str, Any]:
    """The ``metrics.json`` of the adapter shipped for ``preset`` (``data/adapters/<preset>-sft``)."""
    from ..paths import DATA_DIR

    path = DATA_DIR / "adapters" / f"{preset}-sft" / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no adapter is shipped for the {preset!r} preset ({display_path(path)})")
    return json.loads(path.read_text(encoding="utf-8"))


def compare_with_shipped(metrics: dict[str, Any], tolerance_points: float = 3.0,
                         task_tolerance_points: float = 10.0, perplexity_tolerance: float = 0.02,
                         shipped: dict[str, Any] | None = None, check: bool = True):
    """A fresh run's scores after tuning next to those of the adapter shipped for its preset.

    The same config and seed trained on another CPU is not bit-identical: its kernels add in
    another order, and 400 steps carry the difference on. For the tiny preset, seed 0 on
    three instruction sets (AVX-512, AVX2, none) gave exact match 73.9-75.6 %, per task
    within 8.3 points of the shipped run, perplexity within 0.9 %; seeds 1-4 gave 54-66 %,
    a task 22-33 points lower, perplexity 5-23 % higher. The defaults sit between the two:
    overall exact match within 3 points (the seed-0 runs differ by 1.7 at most).

    Rows: exact match (within ``tolerance_points`` percentage points), per task and per
    language (``task_tolerance_points``); IFEval prompt-level strict and GSM8K flexible
    (``tolerance_points``, or one item of the set where that is more: one of 16 prompts is
    6.25 points); answer-token perplexity (``perplexity_tolerance``, relative). A score that
    neither run measured has no row.

    Args:
        metrics: a run's ``metrics.json`` (what :func:`ift_tutorial.training.trainer.train` returns).
        shipped: the metrics to compare with; by default :func:`shipped_metrics` of the run's preset.
        check: raise :class:`UnlikeShippedRun`, with the rows out of tolerance, if there are any.

    Returns:
        A pandas DataFrame, one row per score: ``shipped``, ``this run``, ``difference``
        (points; for the perplexity, relative), ``tolerance`` and ``within``.

    Example:
        >>> table = compare_with_shipped(shipped_metrics("tiny"))
        >>> bool(table["within"].all()), float(table.loc["exact match", "difference"])
        (True, 0.0)
    """
    import pandas as pd

    shipped = shipped if shipped is not None else shipped_metrics(metrics.get("config", "tiny"))
    if metrics.get("config") != shipped.get("config"):
        raise ValueError(f"a run of {metrics.get('config')!r} compared with one of "
                         f"{shipped.get('config')!r}")
    rows: dict[str, dict[str, Any]] = {}

    def add(label: str, mine: Any, theirs: Any, tolerance: float, relative: bool = False) -> None:
        if mine is None and theirs is None:
            return
        diff = None
        if mine is not None and theirs is not None:
            diff = mine / theirs - 1 if relative else 100 * (mine - theirs)
        rows[label] = {"shipped": theirs, "this run": mine, "difference": diff,
                       "tolerance": tolerance,
                       "within": diff is not None and abs(diff) <= tolerance + 1e-9}

    add("exact match", metrics.get("exact_match_after"), shipped.get("exact_match_after"),
        tolerance_points)
    tasks = metrics.get("exact_match_by_task_after") or {}
    for task, theirs in (shipped.get("exact_match_by_task_after") or {}).items():
        if "/" not in task:  # a task, or a language; not both (30 questions: one is 3.3 points)
            add(f"exact match: {task.removeprefix('lang:')}", tasks.get(task), theirs,
                task_tolerance_points)
    for label, key, n_key in SHIPPED_ROWS:
        n = metrics.get(n_key) or shipped.get(n_key)
        add(label, metrics.get(f"{key}_after"), shipped.get(f"{key}_after"),
            max(tolerance_points, 100 / n if n else 0.0))
    add("answer-token perplexity", metrics.get("answer_perplexity_after"),
        shipped.get("answer_perplexity_after"), perplexity_tolerance, relative=True)
    table = pd.DataFrame.from_dict(rows, orient="index")
    if check and not table["within"].all():
        raise UnlikeShippedRun("scores unlike the shipped run's (difference in points; perplexity: "
                               f"relative):\n{table[~table['within']].to_string()}")
    return table


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


# --- the model maker's own Instruct model, a reference point (7B presets) ------------------


def reference_settings(settings: Any) -> Any | None:
    """The ``model`` settings of the maker's Instruct model (``model.instruct_reference``), or
    None when the preset names none (the tiny model has no Instruct version).

    It loads in 4 bits like the base, with its own tokenizer and chat template: it is
    scored as its maker ships it. A rehearsal loads its stand-in
    (``instruct_reference_load_from``) under the base's name and template, which the
    stand-in was built for.
    """
    import dataclasses

    if not settings.instruct_reference:
        return None
    stand_in = settings.instruct_reference_load_from
    return dataclasses.replace(
        settings, name_or_path=settings.name_or_path if stand_in else settings.instruct_reference,
        load_from=stand_in, revision=None if not stand_in else settings.revision,
        chat_template=settings.chat_template if stand_in else None,
        instruct_reference=None, instruct_reference_load_from=None)


def evaluate_instruct_reference(config: ExperimentConfig, output_dir: str | os.PathLike[str]
                                ) -> dict[str, Any] | None:
    """The maker's Instruct model through the same evaluation as the tuned model, or None.

    Same sets, same seeded subsets and the same greedy decoding
    (:func:`ift_tutorial.evaluation.runner.evaluate_model`), so its per-item outcomes pair
    with the tuned model's. The report (outcomes included) is saved as
    ``output_dir/reference.json`` and read back by a later call for the same model: at 7B
    the evaluation decodes for some ten minutes on a T4.
    """
    from pathlib import Path

    settings = reference_settings(config.model)
    if settings is None:
        return None
    path = Path(output_dir) / "reference.json"
    wanted = {"model": config.model.instruct_reference, **config.marker()}
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if all(saved.get(k) == v for k, v in wanted.items()) and \
                bool(saved.get("rehearsal")) == config.rehearsal:
            return saved
    import dataclasses

    import torch

    from ..inference.generation import load_for_inference
    from .runner import evaluate_model

    reference_config = dataclasses.replace(config, model=settings)
    model, tokenizer = load_for_inference(reference_config)
    report = {**wanted, **evaluate_model(model, tokenizer, reference_config)}
    del model  # one 4-bit 7B model less on the GPU
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    return report


def reference_table(tuned: dict[str, Any], reference: dict[str, Any] | None):
    """The tuned model next to the maker's Instruct model: each accuracy with its interval,
    and the paired test of the difference on the same items (reference minus tuned).

    ``reference`` None (no Instruct model for this base) leaves its columns explained.
    """
    from ..book.tables import format_cell, table
    from ..i18n import t
    from .statistics import format_paired, intervals, paired_tests

    ref = reference or {}
    spans = intervals(tuned, "tuned") | intervals(ref, "reference")
    tests = paired_tests(tuned, ref)
    rows = []
    for label, key in TABLE_ROWS:
        if key == "answer_perplexity" or tuned.get(key) is None:
            continue
        cells = [(tuned.get(key), spans.get(f"{key}_tuned_interval")),
                 (ref.get(key), spans.get(f"{key}_reference_interval"))]
        cells = [(v, *span) if v is not None and span else v for v, span in cells]
        rows.append({"metric": t(label), "tuned": format_cell(cells[0], "percent_interval"),
                     "reference": (format_cell(cells[1], "percent_interval")
                                   if reference else None),
                     "paired": format_paired(tests.get(f"{key}_paired")) if reference else None})
    return table(rows, columns={"metric": "metric", "tuned": "tuned model",
                                "reference": "maker's Instruct model",
                                "paired": "difference, paired test"},
                 missing="no Instruct model of this base")
