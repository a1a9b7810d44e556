"""The GPU-memory ledger: a rehearsal charges the real 7B model's bytes against a T4."""

from __future__ import annotations

import dataclasses
import gc

import pytest

from ift_tutorial.config import load_config
from ift_tutorial.inference.generation import generate_cli, load_for_inference
from ift_tutorial.loading import load_model
from ift_tutorial.planning import ledger as ledger_module
from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.planning.ledger import (GPUMemoryError, Ledger, eval_batch_bytes, generation_bytes,
                                          model_bytes, training_step_bytes)
from ift_tutorial.planning.memory import GiB, gpu_memory_gb, plan_for_config
from ift_tutorial.rehearsal import preset as edge

QWEN = architecture_config("Qwen/Qwen2.5-7B")


@pytest.fixture
def rehearse(monkeypatch):
    monkeypatch.setenv(edge.ENV, "1")
    monkeypatch.setattr(edge, "_ANNOUNCED", {"qwen2.5-7b"})  # no banner
    monkeypatch.setattr(ledger_module, "_LEDGERS", {})  # a fresh ledger per test


def test_the_planner_terms_of_a_7b_model_on_a_t4():
    four_bit = model_bytes(QWEN)
    assert 5.0 * GiB < four_bit < 5.6 * GiB  # Qwen2.5-7B in NF4: ~5.2 GiB with its 16-bit parts
    assert model_bytes(QWEN, load_in_4bit=False) > 14 * GiB  # one 16-bit copy alone fills a T4
    # a whole batch's logits (8 x 1,024 x 152,064 in fp32, twice) against one slice of 512
    whole = eval_batch_bytes(QWEN, 8, 1024, chunk=8 * 1024)
    assert whole > 10 * GiB > 2 * GiB > eval_batch_bytes(QWEN, 8, 1024, chunk=512)
    # the KV cache of 8 answers of 1,024 tokens: 2 x 28 layers x 4 heads x 128 x 2 bytes a token
    assert generation_bytes(QWEN, 8, 704, 320) > 2 * 28 * 4 * 128 * 2 * 8 * 1024
    step = training_step_bytes(load_config("qwen2.5-7b"), "t4")
    plan = plan_for_config(load_config("qwen2.5-7b"), gpu="t4")
    assert 0 < step < plan.total_bytes and plan.fits("t4")
    assert gpu_memory_gb("t4") == 14.75


def test_the_ledger_lists_what_does_not_fit():
    ledger = Ledger("t4")
    a, b, c = object.__new__(type("M", (), {})), object.__new__(type("M", (), {})), None
    ledger.add_model(a, "first", 6 * GiB)
    ledger.add_model(b, "second", 6 * GiB)
    with pytest.raises(GPUMemoryError, match=r"T4 \(14.75 GiB usable\).*first: 6.00 GiB \(resident\); "
                                             r"second: 6.00 GiB \(resident\); a step: 3.00 GiB"):
        ledger.charge("a step", 3 * GiB)
    del b  # released: it no longer counts
    gc.collect()
    ledger.charge("a step", 3 * GiB)
    assert [name for name, _ in ledger.resident()] == ["first"] and c is None


def test_rehearsal_refuses_chapter_8s_old_flow_and_passes_the_fixed_one(rehearse):
    """Chapter 8 used to hold the tuned model, the merged model reloaded in 4 bits, and a third
    copy loaded by generate_cli: three 4-bit Qwen2.5-7B models, more than a T4 holds."""
    config = load_config("qwen2.5-7b")
    assert config.rehearsal and config.model.ledger_gpu == "t4"
    model, tokenizer = load_for_inference(config)
    merged = load_model(dataclasses.replace(config.model, load_from=config.model.load_from)).eval()
    with pytest.raises(GPUMemoryError, match=r"loading Qwen/Qwen2.5-7B \(4-bit\).*"
                                             r"Qwen/Qwen2.5-7B \(4-bit\): 5.\d\d GiB \(resident\); "
                                             r"Qwen/Qwen2.5-7B \(4-bit\): 5.\d\d GiB \(resident\)"):
        generate_cli(config, None, ["Hi"], max_new_tokens=2)
    del merged  # the fixed chapter releases the merged model ...
    gc.collect()
    # ... and answers with the model it holds
    [block] = generate_cli(config, None, ["Hi"], max_new_tokens=2, loaded=(model, tokenizer))
    assert block.startswith("> Hi\n")
    ledger = ledger_module.ledger_for("t4")
    assert ledger.peak_bytes <= ledger.usable_bytes
    assert any(e["what"].startswith("generation") for e in ledger.events)


def test_a_rehearsed_training_step_is_charged(rehearse, tmp_path):
    from ift_tutorial.training.trainer import train

    config = load_config("qwen2.5-7b", ["training.max_steps=1"])
    train(config, tmp_path / "run", evaluate=False)
    ledger = ledger_module.ledger_for("t4")
    steps = [e for e in ledger.events if e["what"].startswith("training step")]
    assert steps and steps[0]["bytes"] == training_step_bytes(config, "t4")
    assert ledger.peak_bytes <= ledger.usable_bytes
