"""Validation loss: the loss on held-out conversations, measured while training runs.

The training loss says how well the adapter fits the batches it learns from; it keeps
falling as long as there is anything left to memorise. The *validation* loss is the same
cross-entropy on the answer tokens of conversations the run never trains on (the config's
``data.eval_perplexity`` set). When it stops falling while the training loss still falls,
further steps fit the training set and nothing else: the run overfits.

``training.eval_steps`` switches it on: TRL's ``SFTTrainer`` evaluates its
``eval_dataset`` every that many steps and once before the first step
(``eval_strategy="steps"``, ``eval_on_start``); the losses land in the trainer's log
history as ``eval_loss`` and in ``metrics.json`` as ``validation_loss``.

Two things keep validation from changing the run it watches:

* the 4-bit layers must still pass gradients after an evaluation under ``no_grad``:
  :func:`ift_tutorial.loading.load_model` switches off the CPU repacking of bitsandbytes
  that would stop them (a silent bug on CPUs with AVX512-BF16);
* an evaluation draws random numbers (the data loader's seed): :class:`KeepRandomState`
  puts the random state back afterwards, so the same seed trains the same weights with
  validation on or off.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from ..config import ExperimentConfig


def validation_enabled(config: ExperimentConfig) -> bool:
    """True when the config asks for a validation loss and has held-out conversations."""
    return bool(config.training.eval_steps) and bool(config.data.eval_perplexity)


def validation_args(config: ExperimentConfig, validate: bool = True) -> dict[str, Any]:
    """The ``SFTConfig`` settings of the validation loss (``eval_strategy="no"`` when off:
    ``validate`` is False, or the config asks for none).

    The batch size is the training one: TRL builds the logits of a whole batch, (B, T, V),
    which for a 7B model's vocabulary is what limits the batch on a T4. Only the loss is
    kept (``prediction_loss_only``): gathering the logits of every batch would not fit.
    """
    if not (validate and validation_enabled(config)):
        return {"eval_strategy": "no"}
    t = config.training
    return {"eval_strategy": "steps", "eval_steps": t.eval_steps, "eval_on_start": True,
            "per_device_eval_batch_size": t.per_device_train_batch_size,
            "prediction_loss_only": True}


def validation_set(config: ExperimentConfig) -> Any:
    """The held-out conversations as a ``datasets.Dataset`` (column ``messages``), or None.

    ``training.eval_examples`` of ``data.eval_perplexity`` (a subset seeded with
    ``data.eval_seed``; all of them when None), at most ``data.max_eval_examples``.
    """
    if not validation_enabled(config):
        return None
    import datasets

    from ..evaluation.perplexity import read_perplexity_set
    from ..instructions.sources import seeded_subset

    limits = [n for n in (config.training.eval_examples, config.data.max_eval_examples) if n]
    conversations, _ = read_perplexity_set(config.data.eval_perplexity)
    chosen = seeded_subset(conversations, min(limits, default=None), config.data.eval_seed)
    return datasets.Dataset.from_dict({"messages": chosen})


class KeepRandomState(TrainerCallback):
    """Put the random state back after each evaluation: validation leaves training as it was.

    An evaluation starts a data loader, which draws its seed from torch's generator; without
    this, every later dropout mask and the next epoch's order would change with
    ``eval_steps``. The state is saved where the Trainer decides to evaluate (at the start,
    and at the end of a step) and restored when the evaluation has ended.
    """

    def __init__(self):
        self.saved: dict[str, Any] | None = None

    def _save(self) -> None:
        self.saved = {"python": random.getstate(), "numpy": np.random.get_state(),
                      "torch": torch.get_rng_state(),
                      "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if args.eval_on_start:
            self._save()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if control.should_evaluate:
            self._save()

    def on_evaluate(self, args, state, control, **kwargs):  # noqa: D102
        if self.saved is None:
            return
        random.setstate(self.saved["python"])
        np.random.set_state(self.saved["numpy"])
        torch.set_rng_state(self.saved["torch"])
        if self.saved["cuda"] is not None:
            torch.cuda.set_rng_state_all(self.saved["cuda"])
        self.saved = None


def validation_callbacks(eval_dataset: Any) -> list[TrainerCallback]:
    """The callbacks a run with a validation set needs (none without one)."""
    return [] if eval_dataset is None else [KeepRandomState()]


def validation_losses(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """``[{"step": s, "loss": l}, ...]`` from a trainer's log history, one per step.

    A resumed run evaluates again at the step it resumes from: the later entry is kept.

    Example:
        >>> validation_losses([{"step": 0, "eval_loss": 2.5}, {"step": 10, "loss": 1.0},
        ...                    {"step": 10, "eval_loss": 1.25}])
        [{'step': 0, 'loss': 2.5}, {'step': 10, 'loss': 1.25}]
    """
    by_step = {int(e["step"]): float(e["eval_loss"]) for e in log_history
               if "eval_loss" in e and "step" in e}
    return [{"step": s, "loss": by_step[s]} for s in sorted(by_step)]
