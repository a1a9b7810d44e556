"""DPO on the tiny world: a short run ranks held-out pairs, saves the trained adapter only,
records what shaped it, resumes; and the package's loss equals TRL's on the same batch."""

from __future__ import annotations

import json
import math

import bitsandbytes.nn.modules as bnb_modules
import pytest
from helpers import tiny_config

from ift_tutorial.evaluation.preference import answer_logps
from ift_tutorial.evaluation.statistics import binomial_two_sided, wilson_interval
from ift_tutorial.inference.generation import load_for_inference
from ift_tutorial.instructions.preferences import load_preferences
from ift_tutorial.training.dpo import loss_check, train_dpo
from ift_tutorial.training.run_config import RunConfigMismatch

ADAPTER = "data/adapters/tiny-sft"
SHORT = ("dpo.max_steps=8", "dpo.save_steps=4", "dpo.max_eval_examples=60",
         "data.max_eval_examples=24", "training.num_threads=1")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Eight steps after an evaluation in eval/no_grad mode, on a CPU that bitsandbytes takes
    for one with AVX512-BF16: without the package's guard its 4-bit layers would repack
    and pass no gradient (FINDINGS 1), and DPO would leave every margin at 0."""
    out = tmp_path_factory.mktemp("dpo")
    cfg = tiny_config(*SHORT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
        return out, cfg, train_dpo(cfg, ADAPTER, out)


def test_a_short_run_raises_held_out_preference_accuracy(short_run):
    out, cfg, m = short_run
    assert m["preference_accuracy_before"] == 0 == m["reward_margin_before"]  # policy = reference
    assert m["preference_accuracy_after"] > 0.5 and m["reward_margin_after"] > 0
    assert m["rejected_logps_after"] < m["rejected_logps_before"]
    assert m["steps"] == 8 and m["n_pairs"] == 60 and m["n_exact_match"] == 24
    # every accuracy has its Wilson interval; every change McNemar's test on the same items
    sizes = {"preference_accuracy": 60, "likelihood_accuracy": 60, "exact_match": 24,
             "language": 24}
    for key, n in sizes.items():
        for when in ("before", "after"):
            hits = round(m[f"{key}_{when}"] * n)
            assert m[f"{key}_{when}_interval"] == pytest.approx(wilson_interval(hits, n))
        test = m[f"{key}_paired"]
        assert test["test"] == "McNemar" and test["n"] == n
        assert test["improved"] - test["worsened"] == round(
            n * (m[f"{key}_after"] - m[f"{key}_before"]))
    gained = m["preference_accuracy_paired"]  # before DPO no pair is ranked: none can worsen
    assert gained["worsened"] == 0
    assert gained["improved"] == round(60 * m["preference_accuracy_after"])
    assert gained["p_value"] == binomial_two_sided(gained["improved"], gained["improved"]) < 1e-6
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(m))
    record = json.loads((out / "run_config.json").read_text(encoding="utf-8"))["fingerprint"]
    assert record["dpo.beta"] == cfg.dpo.beta and len(record["adapter (sha256)"]) == 16
    assert "dpo.max_steps" not in record


def test_the_saved_adapter_is_the_trained_one(short_run):
    out, cfg, m = short_run
    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    model, tokenizer = load_for_inference(cfg, adapter)
    pairs, _ = load_preferences(cfg.dpo.eval, max_examples=60)
    chosen, rejected = answer_logps(model, tokenizer, pairs)
    assert math.isclose(chosen.mean().item(), m["chosen_logps_after"], abs_tol=1e-3)
    assert math.isclose(rejected.mean().item(), m["rejected_logps_after"], abs_tol=1e-3)


def test_a_resume_with_another_beta_is_refused(short_run):
    out, _, _ = short_run
    with pytest.raises(RunConfigMismatch, match="dpo.beta"):
        train_dpo(tiny_config(*SHORT, "dpo.beta=0.2", "dpo.max_steps=10"), ADAPTER, out,
                  evaluate=False)


def test_a_longer_run_resumes_from_the_last_checkpoint(short_run):
    out, _, _ = short_run
    m = train_dpo(tiny_config(*SHORT, "dpo.max_steps=10"), ADAPTER, out, evaluate=False)
    assert m["resumed_from_step"] == 8 and m["steps"] == 10


def test_the_packages_dpo_loss_equals_trls_on_the_same_batch():
    cfg = tiny_config("dpo.per_device_train_batch_size=8", "training.num_threads=1")
    pairs, _ = load_preferences(cfg.dpo.train, max_examples=16)
    check = loss_check(cfg, ADAPTER, pairs, steps=1)
    assert check["difference"] < 1e-5
    assert not math.isclose(check["trl"], math.log(2), abs_tol=1e-3)  # the policy moved
