"""What gradient checkpointing keeps and what it recomputes (chapter 6).

A forward pass leaves every decoder block's intermediate activations in memory until the
backward pass has used them. Gradient checkpointing (``model.gradient_checkpointing_enable()``,
the ``gradient_checkpointing`` setting of the configs) keeps only each block's input, the
*checkpoint*; the backward pass runs each block's forward again from its input, last block
first, and then its backward. Memory: the block inputs plus one block's activations instead
of all of them; compute: about one extra forward pass per step.
:func:`ift_tutorial.planning.memory.plan_memory` counts both cases; :func:`checkpointing_diagram`
draws them, with the planner's numbers when the chapter passes them.

Labels are English and go through :func:`ift_tutorial.i18n.t`, as in
:mod:`ift_tutorial.book.diagrams`.
"""

from __future__ import annotations

from typing import Any

from ..formatting import size
from ..i18n import t
from .diagrams import arrow, box, canvas

#: Colour of an activation by what happens to it.
STATES: dict[str, str] = {
    "stored": "#4c72b0",      # kept in memory for the backward pass
    "discarded": "#ffffff",   # freed after the forward pass (dashed outline)
    "recomputed": "#f0a04b",  # computed again in the backward pass
}
#: Legend text of each state.
STATE_LABELS: dict[str, str] = {
    "stored": "stored for the backward pass",
    "discarded": "discarded after the forward pass",
    "recomputed": "recomputed in the backward pass",
}
_CELL = 0.34  # side of one activation's square
_INSIDE = 3  # activations drawn inside a block (norm, attention, MLP)
_STEP = 1.95  # width of one block with its input


def _cell(ax: Any, x: float, y: float, state: str) -> None:
    """One activation: a square filled by its state (dashed when discarded)."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), _CELL, _CELL, facecolor=STATES[state],
                           edgecolor="#888888" if state == "discarded" else "#333333",
                           linestyle="--" if state == "discarded" else "-", linewidth=1.0))


def _row(ax: Any, y: float, n_blocks: int, inside: list[str]) -> None:
    """Block inputs (always stored) and the blocks with their inside activations' states."""
    x = 0.2
    for i in range(n_blocks):
        _cell(ax, x, y + 0.33, "stored")  # the block's input
        box(ax, x + 0.45, y, 1.4, 1.0, "", "op")
        ax.text(x + 1.15, y + 1.12, t("block {i}", i=i + 1), ha="center", fontsize=10)
        for k in range(_INSIDE):
            _cell(ax, x + 0.55 + k * 0.43, y + 0.33, inside[i])
        x += _STEP
    box(ax, x, y + 0.2, 0.7, 0.6, t("loss"), "output")


def checkpointing_diagram(n_blocks: int = 4, kept_without: float | None = None,
                          kept_with: float | None = None) -> Any:
    """Two rows of the same forward pass: without checkpointing every activation is kept;
    with it only the block inputs are, and the backward pass recomputes one block at a time
    (drawn while it recomputes block ``n_blocks - 1``, the last one already done).

    Args:
        n_blocks: decoder blocks drawn.
        kept_without, kept_with: bytes of activations in memory without and with
            checkpointing (from the memory planner), written beside the rows when given.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = checkpointing_diagram(kept_without=2**30, kept_with=2**28)
        >>> any("1 GiB" in text.get_text() for text in fig.axes[0].texts)
        True
    """
    from matplotlib.patches import Patch

    width = 0.2 + _STEP * n_blocks + 0.7
    fig, ax = canvas(width + 0.2, 5.6)
    arrow(ax, (0.2, 5.3), (width, 5.3))
    ax.text(0.2, 5.38, t("forward pass"), fontsize=10, va="bottom")
    notes = [(t("without gradient checkpointing"), kept_without,
              t("every activation stays until the backward pass needs it")),
             (t("with gradient checkpointing"), kept_with,
              t("only block inputs stay; each block is recomputed from its input: "
                "one extra forward pass"))]
    recomputing = max(n_blocks - 2, 0)
    insides = [["stored"] * n_blocks,
               ["recomputed" if i == recomputing else "discarded" for i in range(n_blocks)]]
    for (title, kept, note), inside, y in zip(notes, insides, (3.3, 0.9)):
        ax.text(0.2, y + 1.55, title, fontsize=10.5, fontweight="bold")
        if kept is not None:
            note += " · " + t("{size} of activations", size=size(kept))
        ax.text(0.2, y - 0.28, note, fontsize=9.5, color="#444444", va="top")
        _row(ax, y, n_blocks, inside)
    arrow(ax, (width, 0.1), (0.2, 0.1))
    ax.text(width, 0.18, t("backward pass, last block first"), fontsize=10, ha="right",
            va="bottom")
    handles = [Patch(facecolor=STATES[s], edgecolor="#333333",
                     linestyle="--" if s == "discarded" else "-", label=t(STATE_LABELS[s]))
               for s in STATES]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9.5, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
