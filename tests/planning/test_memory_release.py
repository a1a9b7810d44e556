"""After ``train`` returns (or fails), nothing keeps the trainer or the 4-bit model alive.

On a T4 the 4-bit 7B model holds about 5 GB: a notebook that trains, then evaluates
or merges, needs that memory back. Weak references tell whether anything still holds
the objects once the garbage collector has run.
"""

from __future__ import annotations

import gc
import json
import weakref

import pytest
import torch
from helpers import small_train_file, tiny_config

import ift_tutorial.training.trainer as training


class Watch:
    """Weak references to what train builds; ``fail`` makes its training step run out of memory."""

    def __init__(self) -> None:
        self.refs: dict[str, weakref.ref] = {}
        self.fail = False

    def alive(self) -> list[str]:
        gc.collect()
        return sorted(name for name, ref in self.refs.items() if ref() is not None)


@pytest.fixture()
def watch(monkeypatch) -> Watch:
    """Watches the base model, the trainer and its PEFT model as train makes them."""
    watch = Watch()
    refs = watch.refs
    load_model, build_trainer = training.load_model, training.build_trainer

    def load(*args, **kwargs):
        model = load_model(*args, **kwargs)
        refs["4-bit base model"] = weakref.ref(model)
        return model

    def build(*args, **kwargs):
        trainer = build_trainer(*args, **kwargs)
        refs["trainer"], refs["PEFT model"] = weakref.ref(trainer), weakref.ref(trainer.model)
        if watch.fail:
            trainer.train = _out_of_memory  # an instance attribute: no reference back to the trainer
        return trainer

    monkeypatch.setattr(training, "load_model", load)
    monkeypatch.setattr(training, "build_trainer", build)
    return watch


def _out_of_memory(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory (simulated)")


def _config(tmp_path):
    """Two steps of the tiny preset on its first 16 conversations."""
    train = small_train_file(tmp_path / "train.jsonl", 16)
    return tiny_config(f"data.train={train}", "data.max_eval_examples=4", "training.max_steps=2",
                       "training.per_device_train_batch_size=8", "training.save_steps=2",
                       "training.logging_steps=1", "training.num_threads=1", "training.max_new_tokens=4")


WATCHED = {"4-bit base model", "trainer", "PEFT model"}


def test_nothing_holds_the_model_after_train_returns(tmp_path, watch):
    metrics = training.train(_config(tmp_path), tmp_path / "out", evaluate=True)
    assert metrics["steps"] == 2 and set(watch.refs) == WATCHED
    # (the adapter folder stops generation where the template ends a turn: EOS for tiny)
    assert json.loads((tmp_path / "out/adapter/generation_config.json").read_text())["eos_token_id"] == 2
    assert watch.alive() == []


def test_nothing_holds_the_model_after_train_fails(tmp_path, watch):
    """A notebook keeps the last traceback (sys.last_traceback); it must not keep the model."""
    watch.fail = True
    with pytest.raises(torch.OutOfMemoryError) as failure:
        training.train(_config(tmp_path), tmp_path / "out", evaluate=False)
    assert failure.tb is not None  # the traceback is still held here, as in a notebook
    assert set(watch.refs) == WATCHED
    assert watch.alive() == []
