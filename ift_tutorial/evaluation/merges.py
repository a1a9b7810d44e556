"""What a merge ships, measured: the 4-bit model with its adapter against the two merges.

The adapter was trained on top of NF4(W). Merging it into the original 16-bit W
(:func:`ift_tutorial.inference.merging.merge_adapter`, the default) gives ``W + s·BA``, a
model that differs from the evaluated one by the quantisation error W - NF4(W); merging
into NF4(W) (``merge_into="nf4"``) gives the evaluated model itself, in 16 bits.
:func:`compare_merges` evaluates both on the same held-out items as the 4-bit model, and
:func:`merge_table` sets them side by side with a paired test against the 4-bit model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, scale

#: The evaluation sets the comparison leaves out (the tiny model scores near zero on them).
OTHER_SETS = ("eval_ifeval", "eval_gsm8k", "eval_multiple_choice", "eval_refusal")


def compare_merges(config: ExperimentConfig, adapter: str | os.PathLike[str],
                   folder: str | os.PathLike[str], four_bit: dict[str, Any],
                   max_examples: int = 60) -> dict[str, dict[str, Any] | None]:
    """Merge ``adapter`` into W and into NF4(W) and evaluate both in fp32.

    Args:
        four_bit: the 4-bit model's report on the same sets (the reference).
        folder: where the merged models go (``merge-original``, ``merge-nf4``).

    Returns:
        ``{"4-bit": four_bit, "original": report, "nf4": report}``; the merged reports are
        None at 7B, where two 16-bit models do not fit the presets' GPU.
    """
    if scale(config) == "7b":
        return {"4-bit": four_bit, "original": None, "nf4": None}
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM

    from ..inference.merging import merge_adapter
    from ..loading import load_tokenizer
    from .runner import evaluate_model

    # held-out exact match and answer-token perplexity: what the tiny model measures well
    others = {k: None for k in OTHER_SETS if hasattr(config.data, k)}
    data = dataclasses.replace(config.data, max_eval_examples=max_examples, **others)
    short = dataclasses.replace(config, data=data)
    tokenizer = load_tokenizer(config.model)
    reports: dict[str, dict[str, Any] | None] = {"4-bit": four_bit}
    for target in ("original", "nf4"):
        merged = merge_adapter(config, adapter, Path(folder) / f"merge-{target}",
                               merge_into=target)
        model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
        reports[target] = evaluate_model(model, tokenizer, short)
    return reports


#: Row labels of :func:`merge_table`.
LABELS = {"4-bit": "4-bit base + adapter (evaluated)", "original": "merged into W",
          "nf4": "merged into NF4(W)"}


def merge_table(reports: dict[str, dict[str, Any] | None]):
    """The reports of :func:`compare_merges` as a page table: exact match with its
    interval, answer-token perplexity, and each merge's paired test against the 4-bit model."""
    from ..book.tables import format_cell, table
    from ..i18n import t
    from .statistics import format_paired, intervals, paired_tests

    reference = reports["4-bit"]
    rows = []
    for key, report in reports.items():
        if report is None:
            rows.append({"model": t(LABELS[key])})
            continue
        span = intervals(report, "x").get("exact_match_x_interval")
        value = report.get("exact_match")
        test = paired_tests(reference, report).get("exact_match_paired") \
            if key != "4-bit" else None
        rows.append({"model": t(LABELS[key]),
                     "match": format_cell((value, *span) if span else value,
                                          "percent_interval"),
                     "perplexity": format_cell(report.get("answer_perplexity"), "number"),
                     "paired": format_paired(test) if test else "–"})
    return table(rows, columns={"model": "model", "match": "exact match",
                                "perplexity": "answer-token perplexity",
                                "paired": "change, paired test"})
