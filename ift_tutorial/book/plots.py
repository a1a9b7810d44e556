"""Figures for training runs: the loss curve, and exact match before and after tuning;
and a memory plan, component by component (chapters 6 and 10).

Every label goes through :func:`ift_tutorial.i18n.t`: the same call draws English labels in
the English edition and Chinese ones in the Chinese edition.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .fonts import family_with_cjk, savefig_checked
from ..i18n import t
from ..planning.memory import GPUS, GiB, MemoryPlan
from ..planning.sharding import GATHERED


def loss_points(log_history: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of the training-loss entries of a trainer log history."""
    pts = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_loss(log_history: list[dict[str, Any]], path: str | os.PathLike[str] | None = None,
              title: str | None = None):
    """Plot the training loss against the step; save it to ``path`` if given.

    Args:
        log_history: ``trainer.state.log_history`` or the content of ``log.json``.
        title: the figure's title (default: "Training loss (assistant tokens only)", in the
            edition's language, :mod:`ift_tutorial.i18n`).

    Returns:
        The matplotlib figure.
    """
    steps, losses = loss_points(log_history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, marker=".", linewidth=1)
    ax.set_xlabel(t("optimizer step"))
    ax.set_ylabel(t("cross-entropy loss"))
    ax.set_title(t("Training loss (assistant tokens only)") if title is None else title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        savefig_checked(fig, path, dpi=120)
    return fig


def plot_before_after(by_task_before: dict[str, float], by_task_after: dict[str, float],
                      path: str | os.PathLike[str] | None = None):
    """Bar chart of exact match per task, before and after tuning."""
    keys = [k for k in by_task_after if "/" not in k and not k.startswith("lang:")]
    x = range(len(keys))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([i - 0.2 for i in x], [100 * by_task_before.get(k, 0) for k in keys], 0.4, label=t("before"))
    ax.bar([i + 0.2 for i in x], [100 * by_task_after.get(k, 0) for k in keys], 0.4, label=t("after"))
    ax.set_xticks(list(x), keys)
    ax.set_ylabel(t("held-out exact match (%)"))
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        savefig_checked(fig, path, dpi=120)
    return fig


def plot_metrics_before_after(table, path: str | os.PathLike[str] | None = None):
    """One panel per metric of a before/after table (:func:`ift_tutorial.evaluation.report.before_after_table`).

    Accuracies are drawn in percent on a 0-100 axis; perplexity on a log axis, since a
    base model's can be orders of magnitude above the tuned one's. Rows of a table that
    are per task or per language are left out (Figure 8.1 draws those).
    """
    rows = [r for r in table.index if ":" not in r]
    fig, axes = plt.subplots(1, len(rows), figsize=(1.9 * len(rows) + 0.6, 3.0), squeeze=False)
    for ax, row in zip(axes[0], rows):
        before, after = table.loc[row, "before"], table.loc[row, "after"]
        is_ppl = "perplexity" in row
        values = [before, after] if is_ppl else [100 * before, 100 * after]
        ax.bar([t("before"), t("after")], values, color=["#9aa5b1", "#2f6db5"])
        if is_ppl:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 100)
        ax.set_title(t(row).replace("IFEval ", "IFEval\n").replace("GSM8K ", "GSM8K\n")
                     .replace("answer-token ", "answer-token\n"), fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0][0].set_ylabel(t("% (perplexity: value)"), fontsize=8)
    fig.tight_layout()
    if path is not None:
        savefig_checked(fig, path, dpi=120)
    return fig


# --- Chapter 5: what a training example looks like to the loss --------------------------


def display_token(text: str) -> str:
    """A token's text made visible: spaces as ``␣``, newlines as ``⏎``, tabs as ``⇥``."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def plot_label_mask(tokens: list[str], labels: list[int], title: str | None = None,
                    per_row: int = 10, path: str | os.PathLike[str] | None = None):
    """One training example as a row of token boxes: grey where the label is -100, coloured
    where the token is a target of the loss.

    Args:
        tokens: the text of each token, in order (``len(tokens) == len(labels)``).
        labels: the label of each token: -100 (ignored by the cross-entropy) or a token id.
        title: the start of the figure's title (default: "Which tokens carry the loss", in
            the edition's language); the counts are added after it.
        per_row: boxes per line of the figure.

    Returns:
        The matplotlib figure (one text artist per token, in order).
    """
    if len(tokens) != len(labels):
        raise ValueError(f"{len(tokens)} tokens but {len(labels)} labels")
    n_rows = max(1, -(-len(tokens) // per_row))
    fig, ax = plt.subplots(figsize=(per_row * 0.95, 0.7 * n_rows + 0.9))
    mono = family_with_cjk("monospace")  # Chinese tokens drawn from the CJK font
    for i, (tok, lab) in enumerate(zip(tokens, labels)):
        row, col = divmod(i, per_row)
        kept = lab != -100
        ax.text(col + 0.5, -row, display_token(tok), ha="center", va="center", fontsize=10,
                family=mono, color="black" if kept else "dimgray",
                bbox=dict(boxstyle="round,pad=0.3", linewidth=0.8,
                          facecolor="#f4a261" if kept else "#e9ecef",
                          edgecolor="#bc6c25" if kept else "#adb5bd"))
    ax.set_xlim(0, per_row)
    ax.set_ylim(-n_rows + 0.4, 0.6)
    ax.axis("off")
    n_kept = sum(lab != -100 for lab in labels)
    title = t("Which tokens carry the loss") if title is None else title
    ax.set_title(t("{title}: {kept} of {total} tokens have a label (orange), the others are "
                   "-100 (grey)", title=title, kept=n_kept, total=len(labels)), fontsize=10)
    fig.tight_layout()
    if path is not None:
        savefig_checked(fig, path, dpi=120)
    return fig


def plot_token_lengths(lengths: dict[str, list[int]], max_length: int | None = None, bins: int = 30,
                       path: str | os.PathLike[str] | None = None):
    """Histograms of tokens per conversation, one panel per dataset, with the length limit.

    Args:
        lengths: dataset name -> token count of each conversation (chat template included).
        max_length: drawn as a dashed line; the panel title counts the conversations above it.

    Returns:
        The matplotlib figure (one axes per dataset, in the order of ``lengths``).
    """
    fig, axes = plt.subplots(1, len(lengths), figsize=(5 * len(lengths), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], lengths.items()):
        ax.hist(values, bins=bins, color="#457b9d")
        title = t("{name}: {n} conversations", name=name, n=len(values))
        if max_length is not None:
            ax.axvline(max_length, color="#e63946", linestyle="--", label=f"max_length = {max_length}")
            over = sum(v > max_length for v in values)
            title = t("{name}: {n} conversations, {over} over the limit", name=name,
                      n=len(values), over=over)
            ax.legend(fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(t("tokens per conversation"))
        ax.set_ylabel(t("conversations"))
    fig.tight_layout()
    if path is not None:
        savefig_checked(fig, path, dpi=120)
    return fig


def plot_plan(plans: dict[str, MemoryPlan], gpu: str | None = "t4", ax=None):
    """Stacked bars of one or more plans (label -> plan), with a GPU's memory as a line.

    The legend names the components in the edition's language (:mod:`ift_tutorial.i18n`).
    Components stack in the order of the plan that has the most of them; the 16-bit parts
    that a sharded strategy gathers whole (:data:`~ift_tutorial.planning.sharding.GATHERED`)
    are drawn hatched in the colour of the 16-bit parts, and every other component keeps its
    colour from plan to plan.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    labels = list(plans)
    by_size = sorted(plans.values(), key=lambda p: -len(p.components))
    names = list(dict.fromkeys(k for p in by_size for k in p.components))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = dict(zip([n for n in names if n != GATHERED], cycle * len(names)))
    bottom = [0.0] * len(labels)
    for name in names:
        vals = [plans[l].components.get(name, 0) / GiB for l in labels]
        style = {"color": colours.get(name)}
        if name == GATHERED:
            kept = "16-bit parts (embeddings, head, norms, biases)"
            style = {"color": colours.get(kept, cycle[0]), "hatch": "///", "edgecolor": "white"}
        ax.bar(labels, vals, bottom=bottom, label=t(name), **style)
        bottom = [b + v for b, v in zip(bottom, vals)]
    if gpu:
        ax.axhline(GPUS[gpu], color="k", ls="--", lw=1)
        ax.text(len(labels) - 0.5, GPUS[gpu], f"{gpu.upper()} ({GPUS[gpu]:.0f} GiB)",
                ha="right", va="bottom")
    ax.set_ylabel("GiB")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def show_figure(fig, dpi: int = 110):
    """The figure as a PNG for Jupyter to display; the figure is closed afterwards.

    Closing it keeps the inline backend from drawing it a second time, and a training
    loop that makes many figures from leaking them. Put ``show_figure(fig)`` last in a cell.
    Chinese text without a CJK font gives one clear warning (:mod:`ift_tutorial.book.fonts`).

    Returns:
        An ``IPython.display.Image`` (its ``data`` holds the PNG bytes).
    """
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    savefig_checked(fig, buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Image(data=buffer.getvalue(), format="png")
