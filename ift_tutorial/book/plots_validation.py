"""Figures of loss curves side by side (chapter 7): training against validation loss, and a
hand-written training loop against ``SFTTrainer``.

Labels go through :func:`ift_tutorial.i18n.t`, so each edition draws its own.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt

from .plots import _save, log_loss_axis, loss_points
from .tables import label as table_label
from ..i18n import t


def validation_points(log_history: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of the validation entries (``eval_loss``) of a trainer log history.

    Example:
        >>> validation_points([{"step": 0, "eval_loss": 2.0}, {"step": 1, "loss": 1.5}])
        ([0], [2.0])
    """
    pts = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_loss_curves(curves: dict[str, tuple[list[int], list[float]]], title: str | None = None,
                     path: str | os.PathLike[str] | None = None, markers: bool = True):
    """Several loss curves on one log-scaled axis, one line each.

    Args:
        curves: English label -> ``(steps, losses)``; a label with a Chinese entry is
            translated for the edition, others (names such as ``SFTTrainer``) stay as written.
        title: the figure's title (translated); None for none. A book page numbers its
            figures in the caption, never in the title.
        path: save the figure there (PNG) if given.
        markers: mark every point (off for curves with a point at every step).

    Returns:
        The matplotlib figure.
    """
    fig, ax = plt.subplots(figsize=(7, 3.8))
    styles = ["-", "--", ":", "-."]
    lowest = min((min(v) for _, v in curves.values() if v), default=1.0)
    for i, (label, (steps, losses)) in enumerate(curves.items()):
        ax.plot(steps, losses, styles[i % len(styles)], marker="o" if markers else None,
                markersize=3, linewidth=1.3, label=table_label(label))
    if lowest > 0:
        log_loss_axis(ax)
    ax.set_xlabel(t("optimizer step"))
    ax.set_ylabel(t("cross-entropy loss"))
    if title:
        ax.set_title(t(title))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_validation(log_history: list[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                    title: str | None = None):
    """The training loss and the validation loss of one run, against the optimizer step.

    Args:
        log_history: ``trainer.state.log_history`` or the content of ``log.json``; the
            validation losses are its ``eval_loss`` entries
            (:mod:`ift_tutorial.training.validation`).

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: the log holds no validation loss (``training.eval_steps`` was not set).
    """
    held_out = validation_points(log_history)
    if not held_out[0]:
        raise ValueError("no validation loss in this log: train with training.eval_steps set")
    return plot_loss_curves({
        "training loss (the batches it learns from)": loss_points(log_history),
        "validation loss (held-out conversations)": held_out,
    }, title=title, path=path)
