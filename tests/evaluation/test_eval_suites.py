"""IFEval and GSM8K through a real model: the tiny preset answers, the scorers score."""

from __future__ import annotations

import torch
from helpers import tiny_config

from ift_tutorial.evaluation.gsm8k import evaluate_gsm8k, read_gsm8k, score_gsm8k
from ift_tutorial.evaluation.ifeval.scoring import evaluate_ifeval, read_ifeval_prompts, score_ifeval
from ift_tutorial.inference.generation import load_for_inference

torch.set_num_threads(1)


def test_ifeval_and_gsm8k_score_the_models_own_answers():
    model, tok = load_for_inference(tiny_config())
    prompts = [p for p in read_ifeval_prompts() if p.key in (1000, 1001, 2000, 2001)]
    report = evaluate_ifeval(model, tok, prompts, max_new_tokens=8, batch_size=4)
    responses = [r["response"] for r in report["results"]]
    assert [r["key"] for r in report["results"]] == [1000, 1001, 2000, 2001]
    assert all(isinstance(r, str) for r in responses)
    again = score_ifeval(prompts, responses)  # the same scorer as score-ifeval
    assert report["prompt_level_loose_acc"] == again["prompt_level_loose_acc"]
    assert set(report["by_lang"]) == {"en", "zh"}

    problems = read_gsm8k()[:2] + read_gsm8k()[15:17]
    report = evaluate_gsm8k(model, tok, problems, max_new_tokens=8, batch_size=4)
    assert [r["question"] for r in report["results"]] == [p.question for p in problems]
    again = score_gsm8k(problems, [r["response"] for r in report["results"]])
    assert (report["flexible_acc"], report["strict_acc"]) == (again["flexible_acc"],
                                                              again["strict_acc"])
