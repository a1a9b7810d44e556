"""A fresh run starts from an empty folder, is kept when it finishes, and is reused only when asked."""

from __future__ import annotations

import json

import pytest
from helpers import tiny_config

from ift_tutorial.training import finished_runs, trainer as training
from ift_tutorial.errors import UserFacingError
from ift_tutorial.training.progress import run_lines


@pytest.fixture
def fake_training(tmp_path, monkeypatch):
    """``training._train`` replaced by one that records its calls and writes a run folder."""
    monkeypatch.setenv("IFT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv(finished_runs.REUSE_ENV, raising=False)
    calls = []

    def fake(config, out, resume, evaluate, lock):
        metrics = {"steps": config.training.max_steps, "train_seconds": 12.5,
                   "first_loss": 2.5, "final_loss": 0.5}
        print("\n".join(run_lines(metrics)))  # what the real one prints, phase by phase
        calls.append((config.training.max_steps, resume, sorted(p.name for p in out.iterdir())))
        (out / "adapter").mkdir()
        (out / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(training, "_train", fake)
    return calls


def test_a_fresh_run_empties_the_folder_trains_from_zero_and_is_kept(tmp_path, fake_training):
    run = tmp_path / "run"
    (run / "checkpoint-400").mkdir(parents=True)
    (run / "old.txt").write_text("from an earlier run")
    config = tiny_config("training.max_steps=3")
    assert training.train(config, run, fresh=True)["steps"] == 3
    assert fake_training == [(3, "never", [".lock"])]  # only the held lock was left
    kept = finished_runs.store_dir() / finished_runs.run_key(config, evaluate=True)
    assert (kept / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert not (kept / ".lock").exists() and not list(kept.parent.glob("*.partial"))


def test_without_the_variable_every_fresh_run_trains(tmp_path, fake_training):
    config = tiny_config("training.max_steps=3")
    training.train(config, tmp_path / "a", fresh=True)
    training.train(config, tmp_path / "a", fresh=True)
    assert len(fake_training) == 2


def test_with_the_variable_the_same_recipe_is_copied_and_another_one_trains(
        tmp_path, fake_training, monkeypatch, capsys):
    config = tiny_config("training.max_steps=3")
    capsys.readouterr()
    training.train(config, tmp_path / "english", fresh=True)
    trained = capsys.readouterr().out
    monkeypatch.setenv(finished_runs.REUSE_ENV, "1")
    metrics = training.train(config, tmp_path / "chinese", fresh=True)
    assert len(fake_training) == 1 and metrics["steps"] == 3
    assert (tmp_path / "chinese" / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    copied = capsys.readouterr().out  # the same lines, nothing about the copy or the variable
    assert copied == trained == "training: 3 steps in 12 s, loss 2.50 → 0.500\n"
    training.train(config, tmp_path / "chinese", fresh=True, evaluate=False)  # another recipe
    training.train(tiny_config("training.max_steps=4"), tmp_path / "c4", fresh=True)
    assert [c[0] for c in fake_training] == [3, 3, 4]


def test_the_key_follows_the_code(monkeypatch):
    config = tiny_config()
    before = finished_runs.run_key(config, evaluate=True)
    monkeypatch.setattr(finished_runs, "package_fingerprint", lambda: "changed code")
    assert finished_runs.run_key(config, evaluate=True) != before


def test_a_bad_value_and_a_launcher_are_refused(tmp_path, fake_training, monkeypatch):
    monkeypatch.setenv(finished_runs.REUSE_ENV, "yes")
    with pytest.raises(UserFacingError, match="IFT_REUSE_RUNS='yes'"):
        training.train(tiny_config(), tmp_path / "r", fresh=True)
    monkeypatch.delenv(finished_runs.REUSE_ENV)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserFacingError, match="one process"):
        training.train(tiny_config(), tmp_path / "r", fresh=True)
    assert fake_training == []


def test_a_7b_run_is_not_kept(tmp_path, fake_training, monkeypatch):
    monkeypatch.setattr(finished_runs, "is_large_model", lambda name: True)
    training.train(tiny_config("training.max_steps=3"), tmp_path / "big", fresh=True)
    assert len(fake_training) == 1 and not finished_runs.store_dir().exists()
