"""Tables and the figure of chapter 9 (preference tuning): pairs, before and after, log-probabilities.

Labels are written in English and translated by the edition (:func:`ift_tutorial.i18n.t`,
:func:`ift_tutorial.book.tables.label`), so the chapter's code cells stay the same in both.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..i18n import t
from .tables import Table, table

#: The rejected kinds of the tiny world's pairs, as the tables and the figure name them.
KIND_LABELS = {"wrong_fact": "wrong fact", "runs_on": "runs on", "wrong_language": "wrong language"}


def example_pairs(pairs: Sequence[dict[str, Any]], n: int = 3) -> Table:
    """One pair of each kind of rejected answer (or the first ``n`` pairs when they have no
    kind): the question, the chosen and the rejected answer."""
    seen, rows = set(), []
    for p in pairs:
        kind = p.get("rejected_kind")
        if (kind is None and len(rows) >= n) or (kind is not None and kind in seen):
            continue
        seen.add(kind)
        rows.append({"kind": KIND_LABELS.get(kind, "—"), "question": p["prompt"][-1]["content"],
                     "chosen": p["chosen"][-1]["content"], "rejected": p["rejected"][-1]["content"]})
    return table(rows, columns={"kind": "kind of rejected answer", "question": "question",
                                "chosen": "chosen", "rejected": "rejected"},
                 styles={"kind": "label"})


#: (English row label, metrics key, number style) of the before/after table.
ROWS = (
    ("preference accuracy", "preference_accuracy", "percent"),
    ("reward margin", "reward_margin", "number"),
    ("log-probability of the chosen answers", "chosen_logps", "number"),
    ("log-probability of the rejected answers", "rejected_logps", "number"),
    ("likelihood accuracy", "likelihood_accuracy", "percent"),
    ("exact match", "exact_match", "percent"),
    ("answers in the asked language", "language", "percent"),
)


def before_after(metrics: dict[str, Any]) -> Table:
    """A DPO run's held-out numbers before and after, one row per measure.

    An accuracy shows its 95 % interval where the run measured one
    (``<key>_<when>_interval``), and the change its paired test on the same pairs or
    questions (``<key>_paired``: the change in points and McNemar's p).
    """
    from ..evaluation.statistics import format_paired
    from .tables import format_cell, label

    rows = []
    for name, key, style in ROWS:
        if style == "percent":
            style = "percent_interval"  # a plain number (no interval measured) stays "76 %"
        rows.append({"metric": label(name), **{
            when: format_cell(_value(metrics, f"{key}_{when}"), style)
            for when in ("before", "after")},
            "paired": format_paired(metrics.get(f"{key}_paired")) or "–"})
    columns = {"metric": "metric", "before": "before DPO", "after": "after DPO"}
    if any(k.endswith("_paired") for k in metrics):
        columns["paired"] = "change, paired test"
    return table(rows, columns=columns)


def _value(metrics: dict[str, Any], key: str) -> Any:
    """``metrics[key]``, as ``(value, low, high)`` when ``<key>_interval`` is there too."""
    value, interval = metrics.get(key), metrics.get(f"{key}_interval")
    return (value, *interval) if value is not None and interval else value


def logp_changes(pairs_file: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Mean change of the log-probability (after − before) of the chosen and of the rejected
    answers, per kind of rejected answer, from a DPO run's ``pairs.jsonl``."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(pairs_file, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            kind = row.get("rejected_kind") or "all"
            for side in ("chosen", "rejected"):
                sums[kind][side].append(row[f"{side}_logp_after"] - row[f"{side}_logp_before"])
    return {kind: {side: sum(v) / len(v) for side, v in sides.items()} for kind, sides in sums.items()}


def plot_logp_changes(changes: dict[str, dict[str, float]]):
    """Grouped bars: for each kind of rejected answer, how far DPO moved the log-probability
    of the chosen and of the rejected answers (0: where the SFT model had them)."""
    import matplotlib.pyplot as plt
    import numpy as np

    kinds = list(changes)
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    sides = ((-0.2, "chosen", t("chosen answer"), "tab:green"),
             (0.2, "rejected", t("rejected answer"), "tab:red"))
    for offset, side, label, colour in sides:
        ax.bar(x + offset, [changes[k][side] for k in kinds], width=0.4, color=colour,
               label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [t(KIND_LABELS.get(k, k)) for k in kinds])
    ax.set_xlabel(t("kind of rejected answer"))
    ax.set_ylabel(t("change in log-probability"))
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
