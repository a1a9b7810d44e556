"""Preference metrics and the language check, by hand."""

from __future__ import annotations

import math

import torch

from ift_tutorial.evaluation.preference import (in_asked_language, language_outcomes,
                                                 language_rate, preference_metrics)
from ift_tutorial.training.dpo_loss import dpo_loss


def test_metrics_by_hand():
    pairs = [{"rejected_kind": "wrong_fact"}, {"rejected_kind": "runs_on"}]
    reference = (torch.tensor([-1.0, -2.0]), torch.tensor([-5.0, -3.0]))
    policy = (torch.tensor([-1.0, -2.5]), torch.tensor([-7.0, -2.0]))
    m = preference_metrics(policy, reference, beta=0.5, pairs=pairs)
    # margins: 0.5 * ((0) - (-2)) = 1.0 and 0.5 * ((-0.5) - (1)) = -0.75
    assert math.isclose(m["reward_margin"], (1.0 - 0.75) / 2)
    assert m["preference_accuracy"] == 0.5 and m["likelihood_accuracy"] == 0.5
    assert m["accuracy_by_kind"] == {"runs_on": 0.0, "wrong_fact": 1.0}
    assert math.isclose(m["chosen_logps"], -1.75) and m["n"] == 2
    # per pair, for the intervals and paired tests: margin > 0, and chosen more likely
    assert m["outcomes"] == {"preference_accuracy": [1, 0], "likelihood_accuracy": [1, 0]}
    before = preference_metrics(reference, reference, beta=0.5)
    assert before["preference_accuracy"] == 0 == before["reward_margin"]


def test_dpo_loss_by_hand():
    loss = dpo_loss(torch.tensor([-1.0]), torch.tensor([-7.0]), torch.tensor([-1.0]),
                    torch.tensor([-5.0]), beta=0.5)
    assert math.isclose(loss.item(), -math.log(1 / (1 + math.exp(-1.0))), rel_tol=1e-6)


def test_language_sets_the_worlds_names_aside():
    names = {"Bora", "Zandor", "lifa", "afil"}
    assert in_asked_language("Zandor", "zh", names) and in_asked_language("Zandor", "en", names)
    assert in_asked_language("17", "zh", names)
    assert not in_asked_language("Bora lives in Zandor.", "zh", names)
    assert not in_asked_language("lifa 倒过来写是 afil。", "en", names)
    assert in_asked_language("lifa 倒过来写是 afil。", "zh", names)
    assert in_asked_language("afil The reverse of lifa is afil.", "en", names)


def test_language_outcomes_one_per_prediction_that_says_its_language():
    rows = [{"prediction": "Zandor", "lang": "zh"},
            {"prediction": "Bora lives here.", "lang": "zh"},
            {"prediction": "17", "lang": None}, {"prediction": "17", "lang": "en"}]
    assert language_outcomes(rows, {"Zandor", "Bora"}) == [1, 0, 1]
    assert language_rate(rows, {"Zandor", "Bora"}) == 2 / 3
