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
from ift_tutorial.training.progress import (QUIET_ENV, SummaryLine, live_progress, quiet_library_progress,
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
        "trained steps 1-400 of 400 in 1 min 54 s, loss 3.41 -> 0.123")
    assert summary_line(400, 420, 420, 6.14, None, None) == "trained steps 401-420 of 420 in 6.1 s"
    assert summary_line(420, 420, 420, 0.2, None, None).startswith("trained no steps of 420")


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
    assert not any(isinstance(c, ProgressCallback) for c in callbacks)
    assert sum(isinstance(c, SummaryLine) for c in callbacks) == 1
    capfd.readouterr()
    trainer.train()
    out = capfd.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trained steps 1-5 of 5 in "), out.out
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 5 and lines[0].endswith(
        f"loss {progress.number(losses[0])} -> {progress.number(losses[-1])}")
    assert "it/s" not in out.err and "{'loss'" not in out.out


def test_live_trainer_keeps_its_bar(tmp_path, monkeypatch):
    monkeypatch.setenv(QUIET_ENV, "0")
    trainer = _trainer(tmp_path)
    assert use_summary_line(trainer) is False
    assert any(isinstance(c, ProgressCallback) for c in trainer.callback_handler.callbacks)
