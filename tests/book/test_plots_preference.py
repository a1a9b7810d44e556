"""Chapter 9's tables and figure: one pair per kind, before/after rows, log-probability bars."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

from ift_tutorial.book.plots_preference import (  # noqa: E402
    before_after, example_pairs, logp_changes, plot_logp_changes)
from ift_tutorial.instructions.preferences import load_preferences  # noqa: E402


def test_example_pairs_show_one_pair_of_each_kind():
    pairs, _ = load_preferences("data/preferences/heldout.jsonl")
    tab = example_pairs(pairs)
    assert sorted(tab.column("kind of rejected answer")) == ["runs on", "wrong fact", "wrong language"]
    no_kinds = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    assert len(example_pairs(no_kinds, n=2).frame) == 2


def test_before_after_and_the_figure_from_a_runs_files(tmp_path):
    metrics = {"preference_accuracy_before": 0.0, "preference_accuracy_after": 0.85,
               "reward_margin_before": 0.0, "reward_margin_after": 4.93}
    tab = before_after(metrics)
    assert tab.column("after DPO")[0] == "85 %" and tab.column("before DPO")[-1] != "0 %"
    metrics |= {"preference_accuracy_before_interval": [0.0, 0.06],
                "preference_accuracy_after_interval": [0.74, 0.92],
                "preference_accuracy_paired": {"test": "McNemar", "n": 60, "improved": 51,
                                               "worsened": 0, "difference": 0.85,
                                               "p_value": 2 * 0.5 ** 51}}
    tab = before_after(metrics)
    assert tab.column("after DPO")[0] == "85 % (74–92 %)"
    assert tab.column("change, paired test")[:2] == ["+85 points, p < 0.001", "–"]
    rows = [{"rejected_kind": kind, "chosen_logp_before": -1.0, "chosen_logp_after": -1.5,
             "rejected_logp_before": -5.0, "rejected_logp_after": -5.0 - i}
            for i, kind in enumerate(["wrong_fact", "runs_on", "runs_on"])]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    changes = logp_changes(path)
    assert changes == {"wrong_fact": {"chosen": -0.5, "rejected": 0.0},
                       "runs_on": {"chosen": -0.5, "rejected": -1.5}}
    fig = plot_logp_changes(changes)
    assert len(fig.axes[0].patches) == 4  # 2 kinds x (chosen, rejected)
