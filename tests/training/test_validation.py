"""Validation loss during training: SFTTrainer's eval_dataset, logged, and harmless to training."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from helpers import small_train_file, tiny_config

from ift_tutorial.training.validation import (KeepRandomState, validation_args,
                                              validation_losses, validation_set)

torch.set_num_threads(1)


def test_off_without_steps_or_held_out_conversations():
    assert validation_args(tiny_config("training.eval_steps=null")) == {"eval_strategy": "no"}
    assert validation_set(tiny_config("data.eval_perplexity=null")) is None
    on = validation_args(tiny_config("training.eval_steps=7"))
    assert on["eval_strategy"] == "steps" and on["eval_steps"] == 7 and on["eval_on_start"]
    assert on["prediction_loss_only"]


def test_sft_config_validates_only_when_asked(tmp_path):
    from ift_tutorial.planning.hardware import detect_precision
    from ift_tutorial.training.trainer import sft_config

    config, precision = tiny_config(), detect_precision()
    assert sft_config(config, tmp_path, precision).eval_strategy.value == "no"
    on = sft_config(config, tmp_path, precision, validate=True)
    assert on.eval_strategy.value == "steps" and on.eval_on_start
    assert on.eval_steps == config.training.eval_steps == 50


def test_validation_set_is_a_seeded_capped_subset():
    full = validation_set(tiny_config("training.eval_examples=null"))
    assert len(full) == 180
    a = validation_set(tiny_config("training.eval_examples=20"))
    b = validation_set(tiny_config("training.eval_examples=20", "data.max_eval_examples=5"))
    assert len(a) == 20 and len(b) == 5
    assert a["messages"] == validation_set(tiny_config("training.eval_examples=20"))["messages"]


def test_keep_random_state_puts_the_state_back():
    class Flags:
        should_evaluate = True

    keep = KeepRandomState()
    keep.on_step_end(None, None, Flags())  # the Trainer is about to evaluate
    drawn = (torch.rand(3), random.random(), np.random.rand())  # what an evaluation draws
    keep.on_evaluate(None, None, Flags())
    again = (torch.rand(3), random.random(), np.random.rand())
    expected = drawn  # training goes on as if the evaluation had drawn nothing
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]


def test_resumed_evaluation_keeps_the_later_loss():
    log = [{"step": 0, "eval_loss": 3.0}, {"step": 4, "eval_loss": 2.0},
           {"step": 4, "eval_loss": 2.5}, {"step": 5, "loss": 1.0}]
    assert validation_losses(log) == [{"step": 0, "loss": 3.0}, {"step": 4, "loss": 2.5}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 4 steps with and without validation (every 2 steps, on 8 conversations)."""
    from ift_tutorial.training.trainer import train

    folder = tmp_path_factory.mktemp("validation")
    data = small_train_file(folder / "train.jsonl", 64)
    out = {}
    for name, steps in (("off", "null"), ("on", "2")):
        config = tiny_config(f"data.train={data}", "training.max_steps=4",
                             "training.per_device_train_batch_size=8",
                             "training.logging_steps=1", "training.num_threads=1",
                             f"training.eval_steps={steps}", "training.eval_examples=8")
        metrics = train(config, folder / name, evaluate=False)
        log = json.loads((folder / name / "log.json").read_text(encoding="utf-8"))
        saved = json.loads((folder / name / "metrics.json").read_text(encoding="utf-8"))
        out[name] = {"metrics": metrics, "log": log, "saved": saved}
    return out


def test_validation_is_logged_and_recorded(runs):
    on = runs["on"]
    assert [v["step"] for v in on["saved"]["validation_loss"]] == [0, 2, 4]
    assert all(v["loss"] > 0 for v in on["saved"]["validation_loss"])
    assert on["saved"]["validation_loss"] == on["metrics"]["validation_loss"]
    assert runs["off"]["saved"]["validation_loss"] == []


def test_validation_leaves_training_as_it_was(runs):
    # After an evaluation under no_grad the 4-bit layers still pass gradients (the CPU
    # repacking guard), and the random state is put back: the same losses and weights.
    def losses(run):
        return [e["loss"] for e in run["log"] if "loss" in e]

    assert losses(runs["on"]) == losses(runs["off"])
    assert losses(runs["on"])[-1] < losses(runs["on"])[0]
    assert runs["on"]["saved"]["adapter_sha256"] == runs["off"]["saved"]["adapter_sha256"]


def test_plot_validation(runs):
    import matplotlib.pyplot as plt

    from ift_tutorial.book.plots_validation import plot_validation

    fig = plot_validation(runs["on"]["log"])
    assert len(fig.axes[0].get_lines()) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="eval_steps"):
        plot_validation(runs["off"]["log"])


def test_a_rehearsal_measures_validation_after_a_step_too(monkeypatch):
    from ift_tutorial.config import load_config

    monkeypatch.setenv("IFT_REHEARSAL", "1")
    config = load_config("qwen2.5-7b")  # eval_steps 30 in the preset, 3 steps in a rehearsal
    assert config.training.eval_steps == config.training.max_steps == 3
    assert validation_args(config)["eval_steps"] == 3
