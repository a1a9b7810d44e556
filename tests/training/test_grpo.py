"""GRPO from the shipped SFT adapter: the reward is the evaluation's verdict, the advantages are
TRL's, a step moves every LoRA weight (the bitsandbytes guard holds), and a run records,
resumes and refuses like ``train``."""

from __future__ import annotations

import json

import bitsandbytes as bnb
import bitsandbytes.nn.modules as bnb_modules
import pytest
import torch
from helpers import tiny_config

from ift_tutorial.evaluation import exact_match, gsm8k
from ift_tutorial.paths import DATA_DIR
from ift_tutorial.training.verifiable import TASKS, Prompt, overlap, read_prompts, trl_reward

torch.set_num_threads(1)
ADAPTER = DATA_DIR / "adapters" / "tiny-sft"
#: Two prompts of four answers per step: a few seconds a step on one thread.
SMALL = ("grpo.per_device_train_batch_size=8", "grpo.num_generations=4", "grpo.logging_steps=1",
         "grpo.save_steps=1", "grpo.max_eval_examples=8", "grpo.max_completion_length=8",
         "training.num_threads=1")


def _config(*overrides: str):
    return tiny_config(*SMALL, *overrides)


@pytest.fixture(scope="module")
def loaded():
    from ift_tutorial.training.adapter_runs import load_trainable_adapter

    return load_trainable_adapter(tiny_config(), ADAPTER)


# --- the reward is the evaluation's verdict -------------------------------------------------


def test_reward_equals_the_evaluations_verdict_on_real_answers(loaded):
    """The shipped adapter's greedy answers to the 60 held-out sums: right and wrong ones."""
    model, tok = loaded
    prompts, _ = read_prompts(tiny_config().grpo, "eval")
    report = exact_match.evaluate_exact_match(model, tok, [p.item for p in prompts], 16, 64)
    rows = report["predictions"]
    assert 0 < report["exact_match"] < 1  # both kinds of answer are there
    for row in rows:
        assert exact_match.reward(row["prediction"], row["reference"], row["stopped"]) \
            == float(row["correct"])
    # Through TRL's call: the answer's tokens, then its stop token (as generate leaves them).
    stops = [tok.eos_token_id]
    reward = trl_reward(TASKS["exact_match"], stops)
    ids = [tok(r["prediction"], add_special_tokens=False)["input_ids"] + stops for r in rows]
    got = reward(prompts=[p.messages for p in prompts], completion_ids=ids,
                 completions=[[{"role": "assistant", "content": r["prediction"]}] for r in rows],
                 reference=[r["reference"] for r in rows])
    assert got == [float(r["correct"]) for r in rows]
    assert reward.__name__ == "exact_match"


def test_an_exact_answer_without_end_of_turn_earns_nothing(loaded):
    _, tok = loaded
    reward = trl_reward(TASKS["exact_match"], [tok.eos_token_id])
    ids = tok("17", add_special_tokens=False)["input_ids"]
    texts = [[{"role": "assistant", "content": "17"}]] * 3
    got = reward(prompts=[[]] * 3, completions=texts, reference=["17"] * 3,
                 completion_ids=[ids + [tok.eos_token_id], ids, ids + ids])  # stop, cut, cut
    assert got == [1.0, 0.0, 0.0]
    assert exact_match.is_correct("17", "17", stopped=False) is False


def test_gsm8k_reward_is_its_flexible_score():
    problems = gsm8k.read_gsm8k()[:4]
    answers = [f"so the answer is {p.target}." for p in problems[:2]] + ["no idea", "#### 1\n2"]
    report = gsm8k.score_gsm8k(problems, answers)
    assert [gsm8k.reward(a, p.target) for a, p in zip(answers, problems)] == \
        [float(r["flexible_correct"]) for r in report["results"]] == [1.0, 1.0, 0.0, 0.0]


def test_held_out_sums_are_not_train_prompts():
    settings = tiny_config().grpo
    train, _ = read_prompts(settings, "train")
    held, notes = read_prompts(settings, "eval")
    assert len(held) == 60 and len(train) == 2590
    assert {p.item["task"] for p in train + held} == {"addition"}
    assert overlap(train, held) == 0
    assert overlap(train, train[:5]) == 5  # the check does find shared keys
    assert notes[-1] == "kept the 60 prompts of task 'addition'"


# --- advantages -----------------------------------------------------------------------------


def test_held_out_statistics_by_hand():
    from ift_tutorial.evaluation.statistics import binomial_two_sided, wilson_interval
    from ift_tutorial.training.grpo_report import heldout_statistics

    def rows(*ok):
        return [{"correct": bool(x)} for x in ok]

    got = heldout_statistics(rows(1, 0, 0, 1, 0, 0), rows(1, 1, 1, 0, 1, 1))
    test = got["heldout_accuracy_paired"]
    assert (test["test"], test["n"], test["improved"], test["worsened"]) == ("McNemar", 6, 4, 1)
    assert test["p_value"] == pytest.approx(2 * 6 / 32)  # 1 of 5 changes one way, two-sided
    assert test["p_value"] == binomial_two_sided(4, 5)
    assert got["heldout_accuracy_before_interval"] == pytest.approx(wilson_interval(2, 6))
    assert got["heldout_accuracy_after_interval"] == pytest.approx(wilson_interval(5, 6))
    gsm8k = [{"flexible_correct": x} for x in (True, False)]  # GSM8K's rows say it otherwise
    assert heldout_statistics(gsm8k, gsm8k)["heldout_accuracy_paired"]["p_value"] == 1.0
    with pytest.raises(ValueError, match="different lengths"):
        heldout_statistics(rows(1, 0), rows(1))


def test_group_advantages_by_hand():
    from ift_tutorial.training.grpo import group_advantages

    rewards = [1.0, 0.0, 0.0, 0.0]  # one right answer of four
    mean, std = 0.25, (3 * 0.25**2 + 0.75**2) ** 0.5 / 3**0.5  # Bessel: divide by G - 1
    expected = [(r - mean) / (std + 1e-4) for r in rewards]
    assert group_advantages(rewards, 4) == pytest.approx(expected, abs=1e-6)
    assert group_advantages([1.0] * 4 + [0.0] * 4, 4) == [0.0] * 8  # no signal in a group
    assert group_advantages(rewards, 4, scale=False) == pytest.approx([0.75, -0.25, -0.25, -0.25])


@pytest.fixture
def avx512bf16_cpu(monkeypatch) -> None:
    """bitsandbytes believes this CPU has AVX512-BF16: the repacking that breaks gradients is on
    unless the package's guard turns it off (FINDINGS §1; tests/training/test_cpu_repacking_guard.py)."""
    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    assert bnb.nn.Linear4bit(8, 8).support_avx512bf16_for_cpu


def test_one_step_moves_every_lora_weight_and_trl_agrees_on_advantages(tmp_path, avx512bf16_cpu):
    from ift_tutorial.planning.hardware import detect_precision
    from ift_tutorial.training.adapter_runs import load_trainable_adapter
    from ift_tutorial.training.grpo import RewardLog, build_grpo_trainer, group_advantages, grpo_config
    from ift_tutorial.training.verifiable import read_prompts as read

    cfg = _config("grpo.max_steps=1", "grpo.learning_rate=1e-3")
    model, tok = load_trainable_adapter(cfg, ADAPTER)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.support_avx512bf16_for_cpu is False for m in layers)  # the guard
    from safetensors.torch import load_file

    saved = load_file(ADAPTER / "adapter_model.safetensors")
    prompts, _ = read(cfg.grpo, "train")
    precision = detect_precision()
    log = RewardLog()
    trainer = build_grpo_trainer(cfg, model, tok, prompts, grpo_config(cfg, tmp_path, precision),
                                 precision, log)
    lora = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert len(lora) == len(saved) and all(p.dtype == torch.float32 for p in lora.values())
    for name, value in saved.items():  # TRL's bf16 cast undone: exactly the SFT weights
        match = [p for n, p in lora.items() if n.replace(".default", "").endswith(name.split(
            "base_model.model.", 1)[-1])]
        assert len(match) == 1 and torch.equal(match[0].detach(), value.float()), name
    start = {n: p.detach().clone() for n, p in lora.items()}
    trainer.train()

    unchanged = [n for n, p in lora.items() if torch.equal(p.detach(), start[n])]
    assert not unchanged, unchanged  # layer 0's adapters too: gradients crossed the 4-bit layers
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)
    [batch] = log.batches
    rewards = [r["reward"] for r in batch]
    assert rewards == list(trainer._logs["rewards"]["exact_match"])
    assert group_advantages(rewards, 4) == pytest.approx(list(trainer._logs["advantages"]), abs=1e-5)
    assert {r["prompt"] for r in batch[:4]} == {batch[0]["prompt"]}  # a group: one prompt


# --- a run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Two steps (checkpoint each), then the same command to three: the second run resumes."""
    from ift_tutorial.training.grpo import grpo

    out = tmp_path_factory.mktemp("grpo") / "run"
    first = grpo(_config("grpo.max_steps=2"), ADAPTER, out, evaluate=False)
    second = grpo(_config("grpo.max_steps=3"), ADAPTER, out, evaluate=True)
    return {"first": first, "second": second, "out": out}


def test_resume_continues_and_metrics_are_written(resumed_run):
    first, m, out = resumed_run["first"], resumed_run["second"], resumed_run["out"]
    assert first["steps"] == 2 and first["resumed_from_step"] == 0
    assert m["steps"] == 3 and m["resumed_from_step"] == 2
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    assert [p["step"] for p in m["reward_curve"]] == [1, 2, 3]  # the log survives the resume
    assert all(0 <= p["reward"] <= 1 for p in m["reward_curve"])
    assert m["eval_prompts"] == 8 and m["heldout_in_train"] == 0
    for when in ("before", "after"):
        assert 0 <= m[f"heldout_accuracy_{when}"] <= 1
    answers = [json.loads(line) for line in (out / "heldout_answers.jsonl").read_text().splitlines()]
    assert len(answers) == 8
    assert sum(a["correct_before"] for a in answers) / 8 == m["heldout_accuracy_before"]
    fixed = sum(a["correct_after"] and not a["correct_before"] for a in answers)
    broken = sum(a["correct_before"] and not a["correct_after"] for a in answers)
    paired = m["heldout_accuracy_paired"]
    assert (paired["test"], paired["n"]) == ("McNemar", 8)
    assert (paired["improved"], paired["worsened"]) == (fixed, broken)
    assert fixed - broken == round(8 * (m["heldout_accuracy_after"] - m["heldout_accuracy_before"]))
    assert 0 < paired["p_value"] <= 1
    for when in ("before", "after"):  # a Wilson interval of 8 questions holds its accuracy
        low, high = m[f"heldout_accuracy_{when}_interval"]
        assert 0 <= low <= m[f"heldout_accuracy_{when}"] <= high <= 1 and high - low > 0.2
    assert len(m["sampled_rewards"]) == 1 and len(m["sampled_rewards"][0]) == 8  # this call's step
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "reward.png").stat().st_size > 1000
    record = json.loads((out / "run_config.json").read_text())["fingerprint"]
    assert record["grpo.num_generations"] == 4 and "grpo.max_steps" not in record
    assert len(record["adapter (sha256)"]) == 16


def test_the_example_group_is_consistent(resumed_run):
    from ift_tutorial.training.grpo import group_advantages

    ex = resumed_run["second"]["advantage_example"]
    share = resumed_run["second"]["same_reward_share"]
    assert 0 <= share <= 1
    if ex is None:  # every group of the step was all right or all wrong
        assert share == 1
        return
    assert len(ex["answers"]) == len(ex["rewards"]) == 4 and len(set(ex["rewards"])) == 2
    assert ex["mean"] == pytest.approx(sum(ex["rewards"]) / 4)
    assert ex["advantages"] == pytest.approx(group_advantages(ex["rewards"], 4))
    assert all(a > 0 for a, r in zip(ex["advantages"], ex["rewards"]) if r == 1)


def test_a_resume_with_other_settings_is_refused(resumed_run):
    from ift_tutorial.training.grpo import grpo
    from ift_tutorial.training.run_config import RunConfigMismatch

    with pytest.raises(RunConfigMismatch, match=r"grpo.temperature: 1.0 -> 0.5"):
        grpo(_config("grpo.max_steps=4", "grpo.temperature=0.5"), ADAPTER, resumed_run["out"],
             evaluate=False)


def test_a_run_with_the_starting_weights_measures_the_sft_number(loaded):
    """Before any step, the held-out accuracy is the SFT adapter's own, as its metrics recorded."""
    from ift_tutorial.training.grpo import _held_out

    cfg = tiny_config()
    prompts, _ = read_prompts(cfg.grpo, "eval")
    accuracy, _ = _held_out(cfg, *loaded, prompts)
    shipped = json.loads((ADAPTER / "metrics.json").read_text())
    assert accuracy == pytest.approx(shipped["exact_match_by_task_after"]["addition"])


def test_prompt_records_are_plain_data():
    p = Prompt([{"role": "user", "content": "What is 1 + 2?"}], "3", "1+2")
    assert p == Prompt([{"role": "user", "content": "What is 1 + 2?"}], "3", "1+2", item={"x": 1})
