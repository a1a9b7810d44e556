"""Guards on a training run: stop early, with a reason, where going on would waste hours.

* :class:`NonFiniteLossGuard`: a loss of ``nan`` or ``inf`` never comes back on its own.
  Without this, a 7B run on a T4 would log ``nan`` for 45 minutes and save a broken adapter.
  Qwen2 in fp16 (cards without bf16, such as the T4) has upstream reports of overflow.
* :class:`LedgerGuard`: a run whose model is tracked by a GPU-memory ledger
  (``model.ledger_gpu``, set by a rehearsal) charges each step's real memory
  (:func:`ift_tutorial.planning.ledger.training_step_bytes`), and stops before a step that
  would not fit the target GPU.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..planning.ledger import charge, training_step_bytes


class NonFiniteLossError(UserFacingError):
    """The training loss became nan or inf; the message says what to try."""


class NonFiniteLossGuard(TrainerCallback):
    """Stop the run at the first logged loss (or gradient norm) that is not a finite number."""

    def __init__(self, config: ExperimentConfig):
        self.config = config

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any):
        logs = logs or {}
        bad = {k: logs[k] for k in ("loss", "grad_norm") if k in logs and not math.isfinite(logs[k])}
        if not bad:
            return
        t, m = self.config.training, self.config.model
        what = " and ".join(f"the {k.replace('_', ' ')} is {v}" for k, v in bad.items())
        raise NonFiniteLossError(
            f"{what} at step {state.global_step}: the run stopped, since it "
            "cannot recover and would only save a broken adapter. What to try: a lower learning "
            f"rate (training.learning_rate, now {t.learning_rate:g}); on a GPU without bf16 (a T4) "
            f"fp16 can overflow, so try model.compute_dtype=fp32 (now {m.compute_dtype}) or a GPU "
            "with bf16; check the data for empty or huge examples (ift-tutorial check-data).")


class LedgerGuard(TrainerCallback):
    """Charge every step's real GPU memory to the ledger of the tracked model."""

    def __init__(self, config: ExperimentConfig, model: Any):
        self.config, self.model = config, model
        self.step_bytes: int | None = None  # the same every step: planned once

    def _step_bytes(self, tag: Any) -> int:
        if self.step_bytes is None:
            self.step_bytes = training_step_bytes(self.config, tag.ledger.gpu)
        return self.step_bytes

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any):
        t = self.config.training
        charge(self.model, f"training step (batch {t.per_device_train_batch_size} x "
               f"{self.config.model.max_length} tokens)", self._step_bytes)


def guards(config: ExperimentConfig, model: Any) -> list[TrainerCallback]:
    """The guards of a run of ``config`` on ``model``."""
    return [NonFiniteLossGuard(config), LedgerGuard(config, model)]
