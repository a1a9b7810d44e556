"""Figures for reinforcement learning with a verifiable reward (chapter 9): the reward curve.

Labels go through :func:`ift_tutorial.i18n.t`, so each edition draws its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .fonts import savefig_checked
from ..i18n import t


def reward_points(log_history: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """``(steps, mean rewards)`` of a GRPO trainer's log history (its ``reward`` entries).

    Example:
        >>> reward_points([{"step": 1, "reward": 0.25}, {"step": 1, "loss": 0.0},
        ...                {"step": 2, "reward": 0.5}])
        ([1, 2], [0.25, 0.5])
    """
    pts = [(e["step"], e["reward"]) for e in log_history if "reward" in e and "step" in e]
    return [s for s, _ in pts], [v for _, v in pts]


def moving_average(values: list[float], window: int) -> list[float]:
    """The mean of each value and up to ``window - 1`` before it.

    Example:
        >>> moving_average([0.0, 1.0, 0.5, 0.5], 2)
        [0.0, 0.5, 0.75, 0.5]
    """
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def plot_reward(log_history: list[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                window: int = 5, baseline: float | None = None):
    """The mean reward of each step's sampled answers, and its moving average.

    Args:
        log_history: ``trainer.state.log_history`` of a GRPO run, or its ``log.json``.
        path: save the figure there if given.
        window: steps in the moving average (the per-step mean of a few prompts is noisy).
        baseline: a dashed line at this value (for example the held-out exact match before).

    Returns:
        The matplotlib figure.
    """
    steps, rewards = reward_points(log_history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, rewards, marker=".", linewidth=0.8, alpha=0.5, label=t("per step"))
    if len(rewards) >= window:
        ax.plot(steps, moving_average(rewards, window), linewidth=2,
                label=t("moving average of {n} steps", n=window))
    if baseline is not None:
        ax.axhline(baseline, linestyle="--", color="grey", linewidth=1,
                   label=t("held-out exact match before"))
    ax.set_xlabel(t("optimizer step"))
    ax.set_ylabel(t("mean reward of the sampled answers"))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(t("GRPO: reward during training"))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        savefig_checked(fig, path)
    return fig
