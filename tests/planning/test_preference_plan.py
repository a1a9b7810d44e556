"""The memory of a DPO step: SFT's at twice the sequences, plus the reference's share."""

from __future__ import annotations

from ift_tutorial.config import load_config
from ift_tutorial.planning.memory import plan_for_config
from ift_tutorial.planning.preference import REFERENCE_ADAPTER, REFERENCE_PASS, plan_dpo


def test_dpo_adds_the_reference_pass_and_adapter_not_a_model():
    cfg = load_config("qwen2.5-7b")
    plan = plan_dpo(cfg, gpu="t4")
    d = cfg.dpo
    sft_like = plan_for_config(cfg, seq_len=d.max_length,
                               batch_size=2 * d.per_device_train_batch_size, gpu="t4")
    extra = {REFERENCE_ADAPTER, REFERENCE_PASS}
    assert {k: v for k, v in plan.components.items() if k not in extra} == sft_like.components
    assert plan.components[REFERENCE_ADAPTER] == plan.components["LoRA parameters"]
    assert 0 < plan.components[REFERENCE_PASS] < plan.components["activations"]
    # what a separately loaded reference would hold: the base's own weights
    base = sum(v for k, v in plan.components.items()
               if k.startswith(("base weights", "quantisation constants", "16-bit parts")))
    assert plan.settings["separate_reference_bytes"] == base
    assert plan.fits("t4") and not plan.fits("t4", margin=base / 2**30)


def test_the_pair_doubles_the_sequences():
    one = plan_dpo(load_config("qwen2.5-7b", ["dpo.per_device_train_batch_size=1"]))
    two = plan_dpo(load_config("qwen2.5-7b", ["dpo.per_device_train_batch_size=2"]))
    assert one.settings["batch_size"] == 2 and two.settings["batch_size"] == 4
    assert two.components["activations"] == 2 * one.components["activations"]
