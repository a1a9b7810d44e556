"""What tuning may take away, for chapter 11: general ability and refusals, before and after.

At tiny scale the numbers are measured on the spot (a second on a CPU): the base model and
the shipped adapter (``data/adapters/tiny-sft``), on the config's multiple-choice set. A 7B
preset's training run measured them already, before and after (``metrics.json`` of
chapter 7's run, with intervals and paired tests); they are read back, not decoded again.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import ExperimentConfig, scale
from ..evaluation.runner import merge_part, multiple_choice_report, refusal_report
from ..evaluation.statistics import summary

#: The metrics.json keys (without _before/_after) of what tuning may take away.
KEYS = ("mc_acc", "refusal_rate", "over_refusal_rate")
SHIPPED_ADAPTER = "data/adapters/tiny-sft"


def tuning_costs(config: ExperimentConfig) -> dict[str, Any]:
    """``<key>_before``/``_after`` (with ``_interval`` and ``_paired``) for :data:`KEYS`.

    Tiny: measured now with the shipped adapter, switched off for the base model. A 7B
    preset: read from chapter 7's run folder (the error says how to get it if missing).
    """
    if scale(config) == "tiny":
        from ..inference.generation import load_for_inference

        model, tokenizer = load_for_inference(config, SHIPPED_ADAPTER)
        with model.disable_adapter():
            before = _reports(model, tokenizer, config)
        return summary(before, _reports(model, tokenizer, config), KEYS)
    from .colab import find_run_adapter

    run = find_run_adapter(f"ch07-{config.name}", config=config).parent
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in metrics.items() if k.startswith(KEYS)}


def _reports(model: Any, tokenizer: Any, config: ExperimentConfig) -> dict[str, Any]:
    """The multiple-choice and refusal parts of an evaluation, merged as evaluate_model does."""
    report: dict[str, Any] = {}
    for part in (multiple_choice_report(model, tokenizer, config),
                 refusal_report(model, tokenizer, config)):
        merge_part(report, part)
    return report
