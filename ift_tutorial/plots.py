"""Figures for training runs: the loss curve, and exact match before and after tuning."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; notebooks show the returned figure themselves
import matplotlib.pyplot as plt  # noqa: E402


def loss_points(log_history: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of the training-loss entries of a trainer log history."""
    pts = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_loss(log_history: list[dict[str, Any]], path: str | os.PathLike[str] | None = None,
              title: str = "Training loss (assistant tokens only)"):
    """Plot the training loss against the step; save it to ``path`` if given.

    Args:
        log_history: ``trainer.state.log_history`` or the content of ``log.json``.

    Returns:
        The matplotlib figure.
    """
    steps, losses = loss_points(log_history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, marker=".", linewidth=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def plot_before_after(by_task_before: dict[str, float], by_task_after: dict[str, float],
                      path: str | os.PathLike[str] | None = None):
    """Bar chart of exact match per task, before and after tuning."""
    keys = [k for k in by_task_after if "/" not in k and not k.startswith("lang:")]
    x = range(len(keys))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([i - 0.2 for i in x], [100 * by_task_before.get(k, 0) for k in keys], 0.4, label="before")
    ax.bar([i + 0.2 for i in x], [100 * by_task_after.get(k, 0) for k in keys], 0.4, label="after")
    ax.set_xticks(list(x), keys)
    ax.set_ylabel("held-out exact match (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
