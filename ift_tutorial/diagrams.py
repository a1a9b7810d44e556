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


def _shape(*dims: object) -> str:
    """``(4, 8)`` -> ``"4 × 8"``; symbols stay symbols (``"L × d_k"``)."""
    return " × ".join(str(d) for d in dims)


def attention_flow(L: object = "L", S: object = "S", d_model: object = "d_model",
                   d_k: object = "d_k", d_v: object = "d_v", cross: bool = False):
    """The data flow of one attention head, with the shape of every tensor (chapters 2, 3).

    The input ``X`` (``L × d_model``) is projected to queries; the keys and values come
    from ``X`` too (self-attention, ``S = L``) or from a context ``C`` (``cross=True``).
    The scores ``QKᵀ/√d_k`` are ``L × S``; masked and softmaxed row by row they weight
    the values into an ``L × d_v`` output. Pass numbers to draw a concrete case.

    Example:
        >>> fig = attention_flow(L=4, S=4, d_model=16, d_k=8, d_v=8)
        >>> any(t.get_text().endswith("4 × 8") for t in fig.axes[0].texts)
        True
    """
    fig, ax = canvas(11.0, 5.0)
    source = "C" if cross else "X"
    x_in = box(ax, 0.1, 3.3, 1.9, 1.0, f"X\n{_shape(L, d_model)}", "input")
    kv_in = box(ax, 0.1, 0.9, 1.9, 1.0, f"context C\n{_shape(S, 'd_c')}", "input") if cross else x_in
    rows = {"Q": 3.9, "K": 2.4, "V": 0.9}
    shapes = {"Q": _shape(L, d_k), "K": _shape(S, d_k), "V": _shape(S, d_v)}
    ends = {}
    for name, y in rows.items():
        w = box(ax, 2.6, y - 0.35, 1.1, 0.7, f"$W_{name}$", "weight")
        arrow(ax, (2.0, x_in[1] if name == "Q" else kv_in[1]), (2.6, w[1]))
        ends[name] = box(ax, 4.2, y - 0.4, 1.5, 0.8, f"{name} = {source if name != 'Q' else 'X'}$W_{name}$\n"
                         f"{shapes[name]}", "input")
        arrow(ax, (3.7, w[1]), (4.2, ends[name][1]))
    scores = box(ax, 6.3, 2.7, 2.0, 1.0, f"scores $QK^\\top/\\sqrt{{d_k}}$\n{_shape(L, S)}", "op")
    arrow(ax, (5.7, ends["Q"][1]), (6.3, scores[1] + 0.3))
    arrow(ax, (5.7, ends["K"][1]), (6.3, scores[1] - 0.3))
    weights = box(ax, 8.8, 2.7, 2.0, 1.0, f"weights: mask,\nsoftmax per row\n{_shape(L, S)}", "op")
    arrow(ax, (8.3, scores[1]), (8.8, weights[1]))
    out = box(ax, 8.8, 0.5, 2.0, 1.0, f"weights · V\n{_shape(L, d_v)}", "output")
    arrow(ax, (weights[0], 2.7), (out[0], 1.5))
    arrow(ax, (5.7, ends["V"][1]), (8.8, out[1]))
    kind = "cross-attention: K and V from another sequence" if cross else "self-attention: Q, K, V from X"
    ax.text(5.5, 4.85, kind, ha="center", va="center", fontsize=11)
    return fig


def encoder_decoder_vs_decoder_only():
    """Where the answer's tokens get the input from, in the two Transformer layouts (chapter 3).

    Left: an encoder reads the source with bidirectional self-attention; every decoder
    block cross-attends to its output. Right: a decoder-only model reads prompt and
    answer as one sequence, and causal self-attention does the job of cross-attention.

    Example:
        >>> fig = encoder_decoder_vs_decoder_only()
        >>> [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("Decoder-only")]
        ['Decoder-only (Qwen2.5, Llama, Mistral)']
    """
    fig, ax = canvas(11.0, 5.6)
    # Left: encoder-decoder.
    ax.text(2.75, 5.35, "Encoder–decoder (T5, Whisper)", ha="center", fontsize=11, weight="bold")
    src = box(ax, 0.2, 0.3, 2.2, 0.7, "source tokens $x_1 \\dots x_S$", "input", fontsize=9)
    enc = box(ax, 0.2, 1.6, 2.2, 1.3, "encoder × N\nbidirectional\nself-attention, MLP", "op", fontsize=9)
    arrow(ax, (src[0], 1.0), (enc[0], 1.6))
    mem = box(ax, 0.2, 3.6, 2.2, 0.7, "encoder output (S × d)", "output", fontsize=9)
    arrow(ax, (enc[0], 2.9), (mem[0], 3.6))
    tgt = box(ax, 3.1, 0.3, 2.3, 0.7, "target so far $y_1 \\dots y_t$", "input", fontsize=9)
    dec = box(ax, 3.1, 1.6, 2.3, 2.0, "decoder × N\ncausal self-attention\ncross-attention\n"
              "(Q from target,\nK, V from encoder)\nMLP", "op", fontsize=9)
    arrow(ax, (tgt[0], 1.0), (dec[0], 1.6))
    arrow(ax, (2.4, mem[1]), (3.1, 3.0))
    ax.text(2.95, 3.75, "K, V", fontsize=9, color="#333333")
    nxt = box(ax, 3.1, 4.3, 2.3, 0.6, "next target token", "output", fontsize=9)
    arrow(ax, (dec[0], 3.6), (nxt[0], 4.3))
    ax.plot([5.75, 5.75], [0.2, 5.4], color="#999999", linewidth=0.8, linestyle=":")
    # Right: decoder-only.
    ax.text(8.4, 5.35, "Decoder-only (Qwen2.5, Llama, Mistral)", ha="center", fontsize=11, weight="bold")
    seq = box(ax, 6.2, 0.3, 4.4, 0.7, "one sequence: prompt tokens | answer tokens", "input", fontsize=9)
    stack = box(ax, 6.9, 1.6, 3.0, 2.0, "decoder × N\ncausal self-attention\n"
                "(answer rows look back\nat prompt columns)\nMLP", "op", fontsize=9)
    arrow(ax, (stack[0], 1.0), (stack[0], 1.6))
    out = box(ax, 6.9, 4.3, 3.0, 0.6, "next token at every position", "output", fontsize=9)
    arrow(ax, (stack[0], 3.6), (out[0], 4.3))
    return fig
