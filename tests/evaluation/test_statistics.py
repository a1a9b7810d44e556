"""Intervals and paired tests, checked against published values and exact enumeration."""

from __future__ import annotations

import itertools
import math

import pytest

from ift_tutorial.evaluation.statistics import (binomial_two_sided, bootstrap_interval,
                                                format_paired, intervals, mcnemar_test,
                                                paired_bootstrap, paired_tests, summary,
                                                wilson_interval)


@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (8, 10, 0.4902, 0.9433),
])
def test_wilson_matches_published_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_is_the_set_of_proportions_a_score_test_accepts():
    # Wilson's interval inverts the z test with the null's variance: p is inside when
    # |k/n - p| <= 1.96 sqrt(p(1-p)/n). Check that definition on a fine grid.
    k, n, z = 8, 10, 1.959963984540054
    accepted = [p / 10000 for p in range(1, 10000)
                if abs(k / n - p / 10000) <= z * math.sqrt(p / 10000 * (1 - p / 10000) / n)]
    low, high = wilson_interval(k, n)
    assert min(accepted) == pytest.approx(low, abs=1e-4)
    assert max(accepted) == pytest.approx(high, abs=1e-4)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError, match="successes 11"):
        wilson_interval(11, 10)


def _enumerated_p(b: int, c: int) -> float:
    """Two-sided p of McNemar's exact test by listing every way the b + c changed items
    could have gone (each a fair coin under no change): the share at least as lopsided."""
    n = b + c
    extreme = abs(b - c)
    outcomes = list(itertools.product((0, 1), repeat=n))
    return sum(abs(2 * sum(o) - n) >= extreme for o in outcomes) / len(outcomes)


@pytest.mark.parametrize("b, c", [(1, 2), (0, 5), (7, 1), (3, 3), (10, 2), (0, 0)])
def test_mcnemar_equals_exact_enumeration(b, c):
    before = [0] * b + [1] * c + [1] * 4 + [0] * 3
    after = [1] * b + [0] * c + [1] * 4 + [0] * 3
    result = mcnemar_test(before, after)
    assert (result["improved"], result["worsened"], result["n"]) == (b, c, b + c + 7)
    assert result["p_value"] == pytest.approx(_enumerated_p(b, c) if b + c else 1.0)
    assert result["difference"] == pytest.approx((b - c) / (b + c + 7))


def test_mcnemar_known_values():
    assert binomial_two_sided(1, 3) == 1.0  # b = 1, c = 2
    assert binomial_two_sided(0, 6) == pytest.approx(2 / 64)  # 0.03125
    with pytest.raises(ValueError, match="different lengths"):
        mcnemar_test([0, 1], [1])


def test_bootstrap_is_seeded_and_covers_the_mean():
    outcomes = [1] * 30 + [0] * 10
    first, again = bootstrap_interval(outcomes, seed=3), bootstrap_interval(outcomes, seed=3)
    assert first == again
    low, high = first
    assert low < 0.75 < high
    # close to Wilson's for independent items
    assert (low, high) == pytest.approx(wilson_interval(30, 40), abs=0.06)


def test_cluster_bootstrap_is_wider_when_items_move_together():
    # 10 prompts of 3 instructions each: all followed or none (perfectly correlated)
    outcomes = [1] * 15 + [0] * 15
    groups = [i // 3 for i in range(30)]
    low, high = bootstrap_interval(outcomes, groups)
    w_low, w_high = wilson_interval(15, 30)
    assert high - low > w_high - w_low


def test_paired_bootstrap_sign_flip_p_is_exact():
    # 6 groups changed, all up by one item: the permutation test's p is 2 / 2^6
    before = [0] * 6 + [1] * 4
    after = [1] * 6 + [1] * 4
    result = paired_bootstrap(before, after, groups=list(range(10)))
    assert result["p_value"] == pytest.approx(2 / 64)
    assert result["difference"] == pytest.approx(0.6)
    assert result["low"] <= 0.6 <= result["high"]


def test_reports_become_metrics_entries():
    before = {"outcomes": {"exact_match": [0, 0, 1, 1], "ifeval_inst_level_strict_acc":
                           [0, 1, 0]},
              "outcome_groups": {"ifeval_inst_level_strict_acc": [0, 0, 1]}}
    after = {"outcomes": {"exact_match": [1, 1, 0, 1], "ifeval_inst_level_strict_acc":
                          [1, 1, 1]},
             "outcome_groups": {"ifeval_inst_level_strict_acc": [0, 0, 1]}}
    got = intervals(after, "after")
    assert got["exact_match_after_interval"] == pytest.approx(list(wilson_interval(3, 4)))
    tests = paired_tests(before, after)
    assert tests["exact_match_paired"]["test"] == "McNemar"
    assert tests["ifeval_inst_level_strict_acc_paired"]["test"] == "paired bootstrap"
    metrics = summary(before | {"exact_match": 0.5}, after | {"exact_match": 0.75},
                      ["exact_match"])
    assert metrics["exact_match_before"] == 0.5 and "exact_match_before_interval" in metrics
    assert format_paired(tests["exact_match_paired"]) == "+25 points, p = 1"


# --- the suites' outcomes, the shipped run, the presets' notes --------------------------


def test_suites_report_outcomes_in_item_order():
    from ift_tutorial.evaluation.gsm8k import GSM8KProblem, score_gsm8k
    from ift_tutorial.evaluation.ifeval.scoring import IFEvalPrompt, score_ifeval

    problems = [GSM8KProblem("2+2?", "#### 4", "4"), GSM8KProblem("3+3?", "#### 6", "6")]
    g = score_gsm8k(problems, ["It is 4.", "#### 6\nor 5"])
    assert g["outcomes"] == {"gsm8k_flexible_acc": [1, 0], "gsm8k_strict_acc": [0, 1]}
    prompts = [IFEvalPrompt(1, "No commas, in quotes.", ["punctuation:no_comma",
                                                         "startend:quotation"], [{}, {}]),
               IFEvalPrompt(2, "No commas.", ["punctuation:no_comma"], [{}])]
    r = score_ifeval(prompts, ['"a, b"', "ab"])
    assert r["outcomes"]["ifeval_prompt_level_strict_acc"] == [0, 1]
    assert r["outcomes"]["ifeval_inst_level_strict_acc"] == [0, 1, 1]
    assert r["outcome_groups"]["ifeval_inst_level_strict_acc"] == [0, 0, 1]
    assert sum(r["outcomes"]["ifeval_inst_level_strict_acc"]) / 3 == r["inst_level_strict_acc"]


def test_the_shipped_metrics_carry_the_intervals_of_their_stored_answers():
    import json

    from ift_tutorial.evaluation.stored import stored_reports
    from ift_tutorial.paths import DATA_DIR

    folder = DATA_DIR / "adapters" / "tiny-sft"
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    before, after = stored_reports(folder)
    expected = intervals(before, "before") | intervals(after, "after") | paired_tests(before,
                                                                                     after)
    assert len(expected) == 3 * 7  # 7 accuracies: two intervals and a test each
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key
    for key, outcomes in after["outcomes"].items():  # the outcomes are the scores' items
        assert sum(outcomes) / len(outcomes) == pytest.approx(metrics[f"{key}_after"])


@pytest.mark.parametrize("preset", ["qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"])
def test_the_presets_notes_on_subset_size_agree_with_wilson(preset):
    import re

    from ift_tutorial.config import load_config
    from ift_tutorial.paths import resolve_path

    config = load_config(preset)
    text = resolve_path(f"configs/{preset}.yaml").read_text(encoding="utf-8")
    note = re.search(r"interval of a score\n# near 50 % on (\d+) problems is about \+-(\d+) "
                     r"points \((\d+) IFEval prompts: \+-(\d+)\)", text)
    assert note, "the note on the subsets' intervals is missing"
    n_gsm8k, gsm8k_half, n_ifeval, ifeval_half = map(int, note.groups())
    n_sets = len(config.data.eval_ifeval) if isinstance(config.data.eval_ifeval, list) else 1
    assert n_gsm8k == config.data.eval_gsm8k_examples
    assert n_ifeval == n_sets * config.data.eval_ifeval_examples
    for n, half in [(n_gsm8k, gsm8k_half), (n_ifeval, ifeval_half)]:
        low, high = wilson_interval(n // 2, n)
        assert round(100 * (high - low) / 2) == half


def test_a_rehearsal_stands_in_for_the_instruct_reference(monkeypatch):
    from ift_tutorial.config import load_config
    from ift_tutorial.evaluation.report import reference_settings

    real = reference_settings(load_config("qwen2.5-7b").model)
    assert real.name_or_path == "Qwen/Qwen2.5-7B-Instruct" and real.chat_template is None
    assert real.load_from is None
    assert reference_settings(load_config("tiny").model) is None
    monkeypatch.setenv("IFT_REHEARSAL", "1")
    rehearsed = load_config("qwen2.5-7b")
    stand_in = reference_settings(rehearsed.model)
    assert stand_in.load_from == rehearsed.model.load_from  # local: no download
