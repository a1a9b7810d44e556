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
from ..formatting import large
from ..i18n import t
from ..planning.memory import GPUS, GiB, MemoryPlan
from ..planning.sharding import GATHERED


#: Resolution of every saved PNG: twice a screen's 100 dpi, sharp on a high-density display.
FIGURE_DPI = 200


def _save(fig, path: str | os.PathLike[str] | None) -> None:
    """Save ``fig`` to ``path`` (if given) at :data:`FIGURE_DPI`, its folder created."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        savefig_checked(fig, path, dpi=FIGURE_DPI)


def loss_points(log_history: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of the training-loss entries of a trainer log history."""
    pts = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    return [s for s, _ in pts], [v for _, v in pts]


def log_loss_axis(ax) -> None:
    """Put a loss axis on a log scale, labelled in plain numbers (2, 3, 5, not 10^0.3)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(plt.FuncFormatter(
        lambda v, _: f"{v:g}" if f"{v:.1g}"[0] in "25" else ""))


def plot_loss(log_history: list[dict[str, Any]], path: str | os.PathLike[str] | None = None,
              title: str | None = None):
    """Plot the training loss against the step, on a log scale; save it to ``path`` if given.

    A loss falls fast at first and slowly later; on a linear axis the first steps flatten
    everything after them, on a log axis the later fall stays visible.

    Args:
        log_history: ``trainer.state.log_history`` or the content of ``log.json``.
        title: the figure's title (default: "Training loss (assistant tokens only)", in the
            edition's language, :mod:`ift_tutorial.i18n`); ``""`` for none. A book page
            numbers its figures in the caption, never in the title.

    Returns:
        The matplotlib figure.
    """
    steps, losses = loss_points(log_history)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(steps, losses, marker=".", markersize=4, linewidth=1)
    if losses and min(losses) > 0:
        log_loss_axis(ax)
    ax.set_xlabel(t("optimizer step"))
    ax.set_ylabel(t("cross-entropy loss"))
    title = t("Training loss (assistant tokens only)") if title is None else title
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_before_after(by_task_before: dict[str, float], by_task_after: dict[str, float],
                      path: str | os.PathLike[str] | None = None):
    """Bar chart of exact match per task, before and after tuning, each bar labelled.

    A score of zero has no bar to see: it gets a marker on the axis and its "0 %" label,
    so that "nothing right before tuning" reads as a result, not as a missing bar.
    """
    keys = [k for k in by_task_after if "/" not in k and not k.startswith("lang:")]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for shift, scores, label, colour in ((-0.2, by_task_before, t("before"), "#9aa5b1"),
                                         (0.2, by_task_after, t("after"), "#2f6db5")):
        xs = [i + shift for i in range(len(keys))]
        values = [100 * (scores.get(k) or 0) for k in keys]
        ax.bar(xs, values, 0.4, label=label, color=colour)
        _label_bars(ax, xs, values, colour)
    ax.set_xticks(list(range(len(keys))), keys)
    ax.set_ylabel(t("held-out exact match (%)"))
    ax.set_ylim(0, 108)
    ax.legend(loc="upper left")
    fig.tight_layout()
    _save(fig, path)
    return fig


def _label_bars(ax, xs: list[float], values: list[float], colour: str, fmt=None) -> None:
    """Write each bar's value above it; a zero bar gets a marker on the axis too."""
    fmt = fmt or (lambda v: f"{v:.0f} %")
    for x, v in zip(xs, values):
        if v == 0:
            ax.plot([x], [0], marker="^", color=colour, markersize=8, clip_on=False, zorder=3)
        ax.annotate(fmt(v), (x, v), xytext=(0, 3), textcoords="offset points", ha="center",
                    va="bottom", fontsize=9)


def plot_metrics_before_after(values, path: str | os.PathLike[str] | None = None,
                              per_row: int = 4):
    """One panel per metric, before and after tuning, in a grid of ``per_row`` columns.

    Args:
        values: :func:`ift_tutorial.evaluation.report.before_after_values` (a DataFrame
            with columns ``before`` and ``after``), or a run's metrics (a dict).

    Accuracies are drawn in percent on a 0-100 axis, each bar labelled (a zero gets a
    marker); perplexity on a log axis, since a base model's can be orders of magnitude
    above the tuned one's. Rows per task or per language are left out.
    """
    import math

    from ..evaluation.report import before_after_values

    table = before_after_values(values) if isinstance(values, dict) else values
    rows = [r for r in table.index if ":" not in r]
    n_cols = min(per_row, len(rows))
    n_rows = math.ceil(len(rows) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols + 0.4, 2.9 * n_rows),
                             squeeze=False)
    colours = ["#9aa5b1", "#2f6db5"]
    for ax, row in zip(axes.flat, rows):
        before, after = table.loc[row, "before"], table.loc[row, "after"]
        is_ppl = "perplexity" in row
        shown = [before, after] if is_ppl else [100 * before, 100 * after]
        shown = [0.0 if v != v else v for v in shown]  # NaN: not measured on that side
        ax.bar([0, 1], shown, color=colours, width=0.6)
        ax.set_xticks([0, 1], [t("before"), t("after")])
        for x, v, c in zip([0, 1], shown, colours):
            _label_bars(ax, [x], [v], c, fmt=large if is_ppl else None)
        if is_ppl:
            ax.set_yscale("log")
            ax.set_ylim(top=max(shown) * 20)
        else:
            ax.set_ylim(0, 115)
        ax.set_title(t(row).replace("IFEval ", "IFEval\n").replace("GSM8K ", "GSM8K\n")
                     .replace("answer-token ", "answer-token\n"), fontsize=10)
        ax.grid(axis="x", visible=False)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    for row_axes in axes:
        row_axes[0].set_ylabel(t("% (perplexity: value)"), fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_run_scores(metrics: dict[str, Any], path: str | os.PathLike[str] | None = None):
    """A run's scores before and after: per task where it measured the tiny world's
    questions (:func:`plot_before_after`), else every measurement
    (:func:`plot_metrics_before_after`: IFEval, GSM8K, perplexity of a 7B preset)."""
    by_task = metrics.get("exact_match_by_task_after")
    if by_task:
        return plot_before_after(metrics.get("exact_match_by_task_before") or {}, by_task, path)
    return plot_metrics_before_after(metrics, path)


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
    _save(fig, path)
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
    _save(fig, path)
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
    ax.legend(fontsize=10, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def show_figure(fig):
    """The figure as SVG for Jupyter to display; the figure is closed afterwards.

    SVG stays sharp at any zoom and on any screen (text is drawn as outlines, so Chinese
    labels need no font on the reader's side). Closing the figure keeps the inline backend
    from drawing it a second time, and a loop that makes many figures from leaking them.
    Put ``show_figure(fig)`` last in a cell. Chinese text without a CJK font gives one
    clear warning (:mod:`ift_tutorial.book.fonts`).

    Returns:
        An ``IPython.display.SVG`` (its ``data`` holds the SVG text).
    """
    import io

    from IPython.display import SVG

    buffer = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": "ift-tutorial"}):
        savefig_checked(fig, buffer, format="svg", bbox_inches="tight",
                        metadata={"Date": None})  # the same figure gives the same bytes
    plt.close(fig)
    return SVG(data=buffer.getvalue().decode("utf-8"))


# --- Chapter 2: what the heads of a layer look at ----------------------------------------


def plot_attention_heads(weights, tokens: list[str], query: int | None = None,
                         n_heads: int = 6, per_row: int = 2, title: str = "last layer, head {h}"):
    """Heat maps of the attention weights of the first ``n_heads`` heads, in a grid.

    Args:
        weights: one layer's attention weights, ``(H, T, T)`` (rows: queries, columns: keys).
        tokens: the ``T`` tokens' text (spaces and newlines made visible).
        query: a query position to mark with a red line (the position that predicts).
        per_row: panels per row; two keep every token label readable at page width.
        title: each panel's title, with ``{h}`` for the head (translated by the edition).

    Returns:
        The matplotlib figure (tokens labelled on the outer panels only).
    """
    import math

    n = min(n_heads, len(weights))
    n_rows = math.ceil(n / per_row)
    size = min(4.6, 9.0 / per_row)
    fig, axes = plt.subplots(n_rows, per_row, figsize=(size * per_row + 0.8, size * n_rows),
                             squeeze=False)
    labels = [display_token(tok) for tok in tokens]
    mono = family_with_cjk("monospace")
    fontsize = 9 if len(tokens) <= 32 else 7.5
    for h, ax in enumerate(axes.flat):
        if h >= n:
            ax.axis("off")
            continue
        ax.imshow(weights[h], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        row, col = divmod(h, per_row)
        bottom = h + per_row >= n
        ax.set_xticks(range(len(labels)), labels if bottom else [], rotation=90,
                      fontsize=fontsize, family=mono)
        ax.set_yticks(range(len(labels)), labels if col == 0 else [], fontsize=fontsize,
                      family=mono)
        ax.set_title(t(title, h=h), fontsize=11)
        if query is not None:
            ax.axhline(query, color="r", lw=1)
        ax.grid(False)
    fig.tight_layout()
    return fig
