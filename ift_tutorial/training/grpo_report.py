"""What a GRPO run reports: its summary lines, and its held-out accuracy with its uncertainty.

The held-out questions are answered greedily before and after GRPO, the *same* questions
both times. Each accuracy gets its 95 % Wilson interval, and the change a paired test
(McNemar's exact test, :mod:`ift_tutorial.evaluation.statistics`): only the questions
that turned from wrong to right, or from right to wrong, carry evidence.
"""

from __future__ import annotations

from typing import Any

from .progress import summary_line
from ..evaluation.statistics import intervals, paired_test
from ..formatting import number, percent

#: What a held-out accuracy is called, per reward (``grpo.reward``).
METRIC_NAMES = {"exact_match": "exact match", "gsm8k": "GSM8K flexible"}

#: The key of the held-out accuracy in ``metrics.json`` (``heldout_accuracy_before``, ...).
HELDOUT = "heldout_accuracy"


def verdict(row: dict[str, Any]) -> bool:
    """Whether an evaluation row (exact match's, or GSM8K's) counts as right."""
    return bool(row["correct"] if "correct" in row else row.get("flexible_correct"))


def heldout_statistics(before: list[dict[str, Any]], after: list[dict[str, Any]]
                       ) -> dict[str, Any]:
    """The held-out accuracy's intervals and its paired test, from the evaluation's rows.

    Returns:
        ``heldout_accuracy_before_interval`` and ``..._after_interval`` (``[low, high]``,
        Wilson 95 %) and ``heldout_accuracy_paired`` (McNemar: ``improved`` questions
        wrong before and right after, ``worsened`` the other way, ``p_value``).

    Example:
        >>> rows = lambda *ok: [{"correct": bool(x)} for x in ok]
        >>> got = heldout_statistics(rows(0, 0, 1, 1), rows(1, 1, 0, 1))
        >>> got["heldout_accuracy_paired"]["improved"], got["heldout_accuracy_paired"]["p_value"]
        (2, 1.0)
    """
    outcomes = [[int(verdict(r)) for r in rows] for rows in (before, after)]
    spans = [intervals({"outcomes": {HELDOUT: o}}, when)
             for o, when in zip(outcomes, ("before", "after"))]
    return spans[0] | spans[1] | {f"{HELDOUT}_paired": paired_test(*outcomes)}


def data_line(metrics: dict[str, Any]) -> str:
    """``data: 2,590 train prompts (task addition), 60 held out (none among them)``.

    Example:
        >>> data_line({"train_prompts": 2590, "task": "addition", "eval_prompts": 60,
        ...            "heldout_in_train": 0})
        'data: 2,590 train prompts (task addition), 60 held out (none among the train prompts)'
    """
    task = f" (task {metrics['task']})" if metrics.get("task") else ""
    line = f"data: {metrics['train_prompts']:,} train prompts{task}"
    if metrics.get("eval_prompts"):
        shared = metrics.get("heldout_in_train") or 0
        among = "none" if not shared else f"{shared:,}"
        line += f", {metrics['eval_prompts']:,} held out ({among} among the train prompts)"
    return line


def accuracy_line(metrics: dict[str, Any], when: str) -> str:
    """``before GRPO: exact match 62 % (60 held-out questions)``.

    Example:
        >>> accuracy_line({"reward": "exact_match", "heldout_accuracy_after": 0.7,
        ...                "eval_prompts": 60}, "after")
        'after GRPO: exact match 70 % (60 held-out questions)'
    """
    name = METRIC_NAMES.get(metrics.get("reward"), "accuracy")
    return (f"{when} GRPO: {name} {percent(metrics[f'heldout_accuracy_{when}'])} "
            f"({metrics.get('eval_prompts')} held-out questions)")


def training_line(metrics: dict[str, Any]) -> str:
    """``training: 40 steps in 52 s, mean reward 0.38 → 0.56`` (first and last logged).

    Example:
        >>> training_line({"steps": 40, "max_steps": 40, "train_seconds": 52.0,
        ...                "reward_curve": [{"step": 1, "reward": 0.375},
        ...                                 {"step": 40, "reward": 0.5625}]})
        'training: 40 steps in 52 s, mean reward 0.375 → 0.562'
    """
    line = summary_line(metrics.get("resumed_from_step") or 0, metrics["steps"],
                        metrics.get("max_steps") or metrics["steps"],
                        metrics.get("train_seconds") or 0.0, None, None)
    curve = metrics.get("reward_curve") or []
    if curve:
        line += f", mean reward {number(curve[0]['reward'])} → {number(curve[-1]['reward'])}"
    return line


def grpo_lines(metrics: dict[str, Any]) -> list[str]:
    """Every summary line of a finished run, in the order a run prints them."""
    lines = [data_line(metrics)]
    if metrics.get("heldout_accuracy_before") is not None:
        lines.append(accuracy_line(metrics, "before"))
    lines.append(training_line(metrics))
    if metrics.get("heldout_accuracy_after") is not None:
        lines.append(accuracy_line(metrics, "after"))
    return lines
