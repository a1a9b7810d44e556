"""Two decoder blocks side by side: Llama's pre-norm block and OLMo 2's (chapter 4).

Teaching code, drawn with the primitives of :mod:`ift_tutorial.book.diagrams` in the same
style. The two columns are drawn from :data:`BLOCKS`, the order in which a vector meets
each part of a block, and the norms are drawn in their own colour, so that the one
thing that differs, where the RMSNorms sit, stands out. What each column says is what
:mod:`ift_tutorial.scratch.llama` and :mod:`ift_tutorial.scratch.olmo2` compute (the
tests compare both with ``transformers``).
"""

from __future__ import annotations

from typing import Any

from ..i18n import t
from .diagrams import _add_node, _line, arrow, box, canvas

#: The colour of a norm in this figure (the other boxes keep the house colours).
NORM_COLOUR = "#fff1b8"
#: Names of code, the same in both editions.
NAMES = ("RMSNorm", "SwiGLU MLP")

#: Per block: title, its update rule, and the two sublayers, each as the two boxes a
#: vector passes through before the residual addition, bottom to top ("norm" or "op").
BLOCKS: dict[str, tuple[str, str, tuple[tuple[tuple[str, str], ...], ...]]] = {
    "llama": (
        "Llama 3.1, Qwen2.5 (pre-norm)",
        "x ← x + f(RMSNorm(x))",
        ((("norm", "RMSNorm"), ("op", "causal attention\nRoPE on q, k")),
         (("norm", "RMSNorm"), ("op", "SwiGLU MLP"))),
    ),
    "olmo2": (
        "OLMo 2 (norm after each sublayer)",
        "x ← x + RMSNorm(f(x))",
        ((("op", "causal attention\nQK-norm, then RoPE"), ("norm", "RMSNorm")),
         (("op", "SwiGLU MLP"), ("norm", "RMSNorm"))),
    ),
}


def _column(ax: Any, cx: float, name: str, width: float = 3.3) -> None:
    """One block, bottom to top: input, two residual steps, output; title above."""
    title, rule, sublayers = BLOCKS[name]
    left, h = cx - width / 2, 0.6
    box(ax, left, 0.2, width, 0.5, t("residual stream x"), "input")
    below, y = 0.7, 1.0
    xr = left - 0.3  # where the residual bypass runs
    for steps in sublayers:
        branch = (below + y) / 2
        for kind, text in steps:
            arrow(ax, (cx, below), (cx, y))
            label = text if text in NAMES else t(text)
            box(ax, left, y, width, h, label, NORM_COLOUR if kind == "norm" else "op", fontsize=9.5)
            below, y = y + h, y + h + 0.3
        add_y = below + 0.35
        arrow(ax, (cx, below), (cx, add_y - 0.17))
        _add_node(ax, (cx, add_y))
        _line(ax, [(cx, branch), (xr, branch), (xr, add_y)])
        arrow(ax, (xr, add_y), (cx - 0.17, add_y))
        below, y = add_y + 0.17, add_y + 0.5
    arrow(ax, (cx, below), (cx, y))
    box(ax, left, y, width, 0.5, t("to the next block"), "output")
    ax.text(cx, y + 1.05, t(title), ha="center", fontsize=11, fontweight="bold")
    ax.text(cx, y + 0.7, rule, ha="center", fontsize=10, color="#333333")


def llama_and_olmo2_blocks() -> Any:
    """Llama's block beside OLMo 2's: the same parts, the norms in other places.

    Left: pre-norm (Llama, Qwen2.5), each sublayer reads a normalised copy of the
    stream. Right: OLMo 2 normalises what each sublayer returns before adding it, and
    normalises queries and keys (QK-norm) inside attention. Neither normalises the
    residual stream itself.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = llama_and_olmo2_blocks()
        >>> [t.get_text() for t in fig.axes[0].texts].count("RMSNorm")
        4
    """
    fig, ax = canvas(9.0, 7.7)
    _column(ax, 2.35, "llama")
    _column(ax, 6.65, "olmo2")
    ax.plot([4.5, 4.5], [0.2, 7.6], color="#999999", linewidth=0.8, linestyle=":")
    fig.tight_layout()
    return fig
