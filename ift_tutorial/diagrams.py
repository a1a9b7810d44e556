"""Diagrams of the book, drawn with matplotlib so that they build offline and can be changed.

Teaching code: nothing in the training pipeline imports this module. Each public
function draws one figure and returns the ``matplotlib.figure.Figure``; the chapters
call them, and the edition's language (see :mod:`ift_tutorial.notebook`) picks the
labels where a diagram has words.

The primitives below (:func:`box`, :func:`arrow`, :func:`canvas`) keep every diagram in
the same visual style: rounded boxes, thin arrows, one colour per kind of thing.
"""

from __future__ import annotations

from typing import Any

#: One colour per kind of thing, shared by every diagram.
COLOURS: dict[str, str] = {
    "input": "#dbe9f6",      # tokens, activations coming in
    "weight": "#e8e8e8",     # frozen weights
    "trainable": "#fde2c4",  # LoRA adapters, anything that gets gradients
    "op": "#e3f1df",         # operations (matmul, softmax, norm)
    "output": "#f3dcef",     # results
    "quantised": "#d9d2ec",  # 4-bit storage
}


def canvas(width: float = 8.0, height: float = 4.0) -> tuple[Any, Any]:
    """A figure with one axis in data units 0..width x 0..height, no ticks or frame."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax: Any, x: float, y: float, w: float, h: float, text: str, kind: str = "op",
        fontsize: float = 10) -> tuple[float, float]:
    """A rounded box with its lower-left corner at (x, y); returns its centre."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLOURS.get(kind, kind), edgecolor="#444444",
                                linewidth=1.0))
    cx, cy = x + w / 2, y + h / 2
    ax.text(cx, cy, text, ha="center", va="center", fontsize=fontsize)
    return cx, cy


def arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], text: str = "",
          fontsize: float = 9) -> None:
    """An arrow from ``start`` to ``end``, with an optional label at its middle."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color="#444444", linewidth=1.0,
                                shrinkA=2, shrinkB=2))
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=fontsize, color="#333333")
