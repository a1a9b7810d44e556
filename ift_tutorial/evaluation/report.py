"""The book's before/after table of a run's metrics, and the lm-evaluation-harness command
that scores the same base model and adapter on the full IFEval and GSM8K.
"""

from __future__ import annotations

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
