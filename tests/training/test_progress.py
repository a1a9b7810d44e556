"""Progress bars are live where someone watches, and one summary line where nobody does."""

from __future__ import annotations

import io

import datasets
import pytest
import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.utils import logging as hf_logging

from ift_tutorial.training import progress
from ift_tutorial.errors import UserFacingError
from transformers.utils.notebook import NotebookProgressCallback

from ift_tutorial.training.progress import (QUIET_ENV, LiveBar, SummaryLine, live_progress,
                                           quiet_library_progress, replace_progress, run_lines,
                                           summary_line, use_summary_line)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(QUIET_ENV, raising=False)
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: False)
    return monkeypatch


def test_the_environment_variable_decides_first(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Tty())
    monkeypatch.setenv(QUIET_ENV, "1")
    assert live_progress() is False
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv(QUIET_ENV, "0")
    assert live_progress() is True
    monkeypatch.setenv(QUIET_ENV, "maybe")
    with pytest.raises(UserFacingError, match="IFT_QUIET_PROGRESS='maybe'"):
        live_progress()


def test_without_it_a_terminal_or_a_kernel_is_live_and_a_pipe_is_quiet(no_env):
    no_env.setattr("sys.stderr", _Tty())
    assert live_progress() is True
    no_env.setattr("sys.stderr", io.StringIO())  # a file, a pipe, a CI log
    assert live_progress() is False
    no_env.setattr(progress, "in_jupyter_kernel", lambda: True)  # Jupyter, Colab
    assert live_progress() is True


def test_pytest_itself_is_not_a_jupyter_kernel():
    assert progress.in_jupyter_kernel() is False


@pytest.fixture
def library_bars():
    """Restore the libraries' bars after a test turned them off."""
    yield
    datasets.enable_progress_bars()
    hf_logging.enable_progress_bar()


def test_quiet_mode_turns_library_bars_off_and_map_prints_nothing(monkeypatch, capfd, library_bars):
    # an earlier test in this process may have run quiet mode (CI's stderr is a pipe)
    datasets.enable_progress_bars()
    monkeypatch.setenv(QUIET_ENV, "0")
    assert quiet_library_progress() is False and datasets.is_progress_bar_enabled()
    monkeypatch.setenv(QUIET_ENV, "1")
    assert quiet_library_progress() is True
    assert not datasets.is_progress_bar_enabled() and not hf_logging.is_progress_bar_enabled()
    capfd.readouterr()
    datasets.Dataset.from_dict({"x": list(range(50))}).map(lambda r: {"y": r["x"] + 1})
    out = capfd.readouterr()
    assert "Map" not in out.err + out.out and "it/s" not in out.err + out.out


def test_summary_line_reads_like_a_sentence():
    assert summary_line(0, 400, 400, 114.2, 3.412, 0.1234) == (
        "training: 400 steps in 1 min 54 s, loss 3.41 → 0.123")
    assert summary_line(400, 420, 420, 6.14, None, None) == "training: steps 401–420 of 420 in 6.1 s"
    assert summary_line(420, 420, 420, 0.2, None, None).startswith(
        "training: no steps (already at step 420 of 420)")


def test_run_lines_say_each_phase_once_from_the_metrics():
    metrics = {"train_read": 4900, "train_examples": 4870, "data_filtered": {"too_long": 30},
               "max_length": 512, "exact_match_before": 0.0, "n_exact_match": 180,
               "answer_perplexity_before": 1_032_065.9, "skipped": ["gsm8k: data.eval_gsm8k is null"],
               "steps": 400, "max_steps": 400, "resumed_from_step": 0, "train_seconds": 148.2,
               "first_loss": 2.3104, "final_loss": 0.4211,
               "exact_match_after": 0.7389, "answer_perplexity_after": 1.6016}
    assert run_lines(metrics) == [
        "data: 4,900 conversations read, 4,870 kept (30 longer than 512 tokens)",
        "before tuning: exact match 0 % (180 questions), answer-token perplexity 1.0 M; "
        "not measured: gsm8k",
        "training: 400 steps in 2 min 28 s, loss 2.31 → 0.421",
        "after tuning: exact match 74 % (180 questions), answer-token perplexity 1.60",
    ]
    no_eval = {k: metrics[k] for k in ("train_examples", "steps", "train_seconds")}
    assert run_lines(no_eval) == ["data: 4,870 conversations read, 4,870 kept",
                                  "training: 400 steps in 2 min 28 s"]


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(4, 1)

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.w(x).squeeze(-1), y)}


def _trainer(tmp_path) -> Trainer:
    data = [{"x": torch.randn(4), "y": torch.tensor(1.0)} for _ in range(16)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=4,
                             logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                             disable_tqdm=False)
    return Trainer(model=_Tiny(), args=args, train_dataset=data)


def test_quiet_trainer_prints_one_line_instead_of_a_bar(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(QUIET_ENV, "1")
    trainer = _trainer(tmp_path)
    assert use_summary_line(trainer) is True
    callbacks = trainer.callback_handler.callbacks
    assert not any(isinstance(c, (ProgressCallback, NotebookProgressCallback, LiveBar))
                   for c in callbacks)
    assert sum(isinstance(c, SummaryLine) for c in callbacks) == 1
    capfd.readouterr()
    trainer.train()
    out = capfd.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("training: 5 steps in "), out.out
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 5 and lines[0].endswith(
        f"loss {progress.number(losses[0])} → {progress.number(losses[-1])}")
    assert "it/s" not in out.err and "{'loss'" not in out.out


def test_live_trainer_shows_one_bar_of_its_own(tmp_path, monkeypatch, capfd):
    """Live, the Trainer's bar (and in Jupyter its HTML table of losses) gives way to one bar."""
    monkeypatch.setenv(QUIET_ENV, "0")
    trainer = _trainer(tmp_path)
    trainer.add_callback(NotebookProgressCallback)  # what the Trainer adds inside Jupyter
    assert replace_progress(trainer, summary=False) is True
    callbacks = trainer.callback_handler.callbacks
    assert not any(isinstance(c, (ProgressCallback, NotebookProgressCallback, SummaryLine))
                   for c in callbacks)
    assert sum(isinstance(c, LiveBar) for c in callbacks) == 1
    capfd.readouterr()
    trainer.train()
    out = capfd.readouterr()
    bar = next(c for c in callbacks if isinstance(c, LiveBar))
    assert bar.shown == 5 and bar.bar is None  # counted every step, then closed
    assert out.err.count("\rtraining:") >= 1 and out.out == "" and "{'loss'" not in out.err
