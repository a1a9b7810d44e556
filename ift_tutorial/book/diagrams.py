"""Diagrams of the book, drawn with matplotlib so that they build offline and can be changed.

Teaching code: nothing in the training pipeline imports this module. Each public
function draws one figure and returns the ``matplotlib.figure.Figure``; the chapters
call them, and every word of a diagram goes through :func:`ift_tutorial.i18n.t`, so the
same call draws English labels in the English edition and Chinese ones in the Chinese.

The primitives below (:func:`box`, :func:`arrow`, :func:`canvas`) keep every diagram in
the same visual style: rounded boxes, thin arrows, one colour per kind of thing.
"""

from __future__ import annotations

from typing import Any

from ..i18n import t

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
          fontsize: float = 9.5) -> None:
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
    kv_in = (box(ax, 0.1, 0.9, 1.9, 1.0, t("context C\n{shape}", shape=_shape(S, "d_c")), "input")
             if cross else x_in)
    rows = {"Q": 3.9, "K": 2.4, "V": 0.9}
    shapes = {"Q": _shape(L, d_k), "K": _shape(S, d_k), "V": _shape(S, d_v)}
    ends = {}
    for name, y in rows.items():
        w = box(ax, 2.6, y - 0.35, 1.1, 0.7, f"$W_{name}$", "weight")
        arrow(ax, (2.0, x_in[1] if name == "Q" else kv_in[1]), (2.6, w[1]))
        ends[name] = box(ax, 4.2, y - 0.4, 1.5, 0.8, f"{name} = {source if name != 'Q' else 'X'}$W_{name}$\n"
                         f"{shapes[name]}", "input")
        arrow(ax, (3.7, w[1]), (4.2, ends[name][1]))
    scores = box(ax, 6.3, 2.7, 2.0, 1.0, t("scores $QK^\\top/\\sqrt{{d_k}}$\n{shape}", shape=_shape(L, S)),
                 "op")
    arrow(ax, (5.7, ends["Q"][1]), (6.3, scores[1] + 0.3))
    arrow(ax, (5.7, ends["K"][1]), (6.3, scores[1] - 0.3))
    weights = box(ax, 8.8, 2.7, 2.0, 1.0, t("weights: mask,\nsoftmax per row\n{shape}",
                                            shape=_shape(L, S)), "op")
    arrow(ax, (8.3, scores[1]), (8.8, weights[1]))
    out = box(ax, 8.8, 0.5, 2.0, 1.0, t("weights · V\n{shape}", shape=_shape(L, d_v)), "output")
    arrow(ax, (weights[0], 2.7), (out[0], 1.5))
    arrow(ax, (5.7, ends["V"][1]), (8.8, out[1]))
    kind = (t("cross-attention: K and V from another sequence") if cross
            else t("self-attention: Q, K, V from X"))
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
    ax.text(2.75, 5.35, t("Encoder–decoder (T5, Whisper)"), ha="center", fontsize=11, weight="bold")
    src = box(ax, 0.2, 0.3, 2.2, 0.7, t("source tokens $x_1 \\dots x_S$"), "input", fontsize=9.5)
    enc = box(ax, 0.2, 1.6, 2.2, 1.3, t("encoder × N\nbidirectional\nself-attention, MLP"), "op", fontsize=9.5)
    arrow(ax, (src[0], 1.0), (enc[0], 1.6))
    mem = box(ax, 0.2, 3.6, 2.2, 0.7, t("encoder output (S × d)"), "output", fontsize=9.5)
    arrow(ax, (enc[0], 2.9), (mem[0], 3.6))
    tgt = box(ax, 3.1, 0.3, 2.3, 0.7, t("target so far $y_1 \\dots y_t$"), "input", fontsize=9.5)
    dec = box(ax, 3.1, 1.6, 2.3, 2.0, t("decoder × N\ncausal self-attention\ncross-attention\n"
                                        "(Q from target,\nK, V from encoder)\nMLP"), "op", fontsize=9.5)
    arrow(ax, (tgt[0], 1.0), (dec[0], 1.6))
    arrow(ax, (2.4, mem[1]), (3.1, 3.0))
    ax.text(2.95, 3.75, "K, V", fontsize=9.5, color="#333333")
    nxt = box(ax, 3.1, 4.3, 2.3, 0.6, t("next target token"), "output", fontsize=9.5)
    arrow(ax, (dec[0], 3.6), (nxt[0], 4.3))
    ax.plot([5.75, 5.75], [0.2, 5.4], color="#999999", linewidth=0.8, linestyle=":")
    # Right: decoder-only.
    ax.text(8.4, 5.35, t("Decoder-only (Qwen2.5, Llama, Mistral)"), ha="center", fontsize=11, weight="bold")
    seq = box(ax, 6.2, 0.3, 4.4, 0.7, t("one sequence: prompt tokens | answer tokens"), "input", fontsize=9.5)
    stack = box(ax, 6.9, 1.6, 3.0, 2.0, t("decoder × N\ncausal self-attention\n"
                                          "(answer rows look back\nat prompt columns)\nMLP"),
                "op", fontsize=9.5)
    arrow(ax, (stack[0], 1.0), (stack[0], 1.6))
    out = box(ax, 6.9, 4.3, 3.0, 0.6, t("next token at every position"), "output", fontsize=9.5)
    arrow(ax, (stack[0], 3.6), (out[0], 4.3))
    return fig


# --- Chapters 4 and 6: the Llama block, LoRA, QLoRA's storage and compute ------------


def _add_node(ax: Any, centre: tuple[float, float], text: str = "+", radius: float = 0.17) -> None:
    """A small circle with a sign in it: where two paths are added (or multiplied)."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle(centre, radius, facecolor="white", edgecolor="#444444", linewidth=1.0))
    ax.text(centre[0], centre[1], text, ha="center", va="center", fontsize=11)


def _line(ax: Any, points: list[tuple[float, float]], dashed: bool = False) -> None:
    """A plain polyline (the residual stream's bypass), no arrow head."""
    xs, ys = zip(*points)
    ax.plot(xs, ys, color="#444444", linewidth=1.0, linestyle="--" if dashed else "-")


def llama_block() -> Any:
    """The decoder of a Llama-style model, one block in detail (chapter 4).

    Left: the residual stream from token ids to logits, with the N repeated blocks
    framed; each block is two pre-norm residual steps. Right: what the attention and
    the SwiGLU MLP compute inside their boxes. Every box is drawn from data below, so
    the figure changes with the code.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = llama_block()
        >>> "RMSNorm" in {t.get_text() for t in fig.axes[0].texts}
        True
    """
    from matplotlib.patches import FancyBboxPatch

    fig, ax = canvas(11.0, 9.2)
    cx, w, h = 2.6, 3.2, 0.5
    left = cx - w / 2
    # the main path, bottom to top: (y, text, kind)
    box(ax, left, 0.15, w, h, t("token ids  (B, T)"), "input")
    box(ax, left, 0.95, w, h, t("embedding  (V × d)"), "weight")
    # the repeated block
    ax.add_patch(FancyBboxPatch((left - 0.55, 1.75), w + 1.1, 5.05,
                                boxstyle="round,pad=0.02,rounding_size=0.15",
                                facecolor="none", edgecolor="#888888", linestyle="--"))
    ax.text(left - 0.45, 6.55, t("× N decoder blocks"), fontsize=10, color="#555555")
    box(ax, left, 2.1, w, h, "RMSNorm", "op")
    box(ax, left, 2.95, w, h + 0.1, t("causal GQA attention\nwith RoPE on q, k"), "op", fontsize=9.5)
    _add_node(ax, (cx, 4.05))
    box(ax, left, 4.5, w, h, "RMSNorm", "op")
    box(ax, left, 5.35, w, h, "SwiGLU MLP", "op")
    _add_node(ax, (cx, 6.3))
    box(ax, left, 7.1, w, h, t("final RMSNorm"), "op")
    box(ax, left, 7.9, w, h, t("lm_head (d × V) → logits"), "output")
    for y0, y1 in [(0.65, 0.95), (1.45, 2.1), (2.6, 2.95), (3.55, 3.88), (4.22, 4.5),
                   (5.0, 5.35), (5.85, 6.13), (6.47, 7.1), (7.6, 7.9)]:
        arrow(ax, (cx, y0), (cx, y1))
    # residual bypasses: from the stream below each norm to the + above its sublayer
    xr = left - 0.3
    for y_from, y_to in [(1.8, 4.05), (4.3, 6.3)]:
        _line(ax, [(cx, y_from), (xr, y_from), (xr, y_to)])
        arrow(ax, (xr, y_to), (cx - 0.17, y_to))
    ax.text(xr - 0.1, 3.0, t("residual"), rotation=90, ha="right", va="center", fontsize=9.5,
            color="#555555")
    ax.text(xr - 0.1, 5.3, t("residual"), rotation=90, ha="right", va="center", fontsize=9.5,
            color="#555555")
    # detail of the attention (right, lower half)
    dx, dw = 5.3, 5.4
    ax.text(dx, 4.1, t("attention, per layer"), fontsize=10, fontweight="bold")
    box(ax, dx, 3.2, 1.6, 0.5, "q = W_q x", "weight", fontsize=9.5)
    box(ax, dx + 1.9, 3.2, 1.6, 0.5, "k = W_k x", "weight", fontsize=9.5)
    box(ax, dx + 3.8, 3.2, 1.6, 0.5, "v = W_v x", "weight", fontsize=9.5)
    box(ax, dx, 2.35, 3.5, 0.5, t("RoPE: rotate q and k by position"), "op", fontsize=9.5)
    box(ax, dx, 1.5, dw, 0.5, t("softmax(q kᵀ / √d_k + causal mask) v"), "op", fontsize=9.5)
    box(ax, dx, 0.65, dw, 0.5, t("o = W_o · (heads concatenated)"), "weight", fontsize=9.5)
    arrow(ax, (dx + 0.8, 3.2), (dx + 0.8, 2.85))
    arrow(ax, (dx + 2.7, 3.2), (dx + 2.7, 2.85))
    arrow(ax, (dx + 1.75, 2.35), (dx + 1.75, 2.0))
    arrow(ax, (dx + 4.6, 3.2), (dx + 4.6, 2.0))
    arrow(ax, (dx + dw / 2, 1.5), (dx + dw / 2, 1.15))
    ax.text(dx + dw, 0.25, t("k, v: fewer heads than q (grouped-query)"), ha="right", fontsize=9.5,
            color="#555555")
    # detail of the MLP (right, upper half)
    ax.text(dx, 8.3, t("SwiGLU MLP, per position"), fontsize=10, fontweight="bold")
    box(ax, dx, 7.4, 2.6, 0.5, "W_gate x  (d → d_ff)", "weight", fontsize=9.5)
    box(ax, dx + 2.8, 7.4, 2.6, 0.5, "W_up x  (d → d_ff)", "weight", fontsize=9.5)
    box(ax, dx, 6.55, 2.6, 0.5, "SiLU", "op", fontsize=9.5)
    _add_node(ax, (dx + 4.1, 5.95), "×")
    box(ax, dx + 1.4, 4.95, 2.6, 0.5, "W_down  (d_ff → d)", "weight", fontsize=9.5)
    arrow(ax, (dx + 1.3, 7.4), (dx + 1.3, 7.05))
    _line(ax, [(dx + 1.3, 6.55), (dx + 1.3, 5.95)])
    arrow(ax, (dx + 1.3, 5.95), (dx + 3.93, 5.95))
    arrow(ax, (dx + 4.1, 7.4), (dx + 4.1, 6.12))
    arrow(ax, (dx + 4.1, 5.78), (dx + 2.7, 5.45))
    # dotted links from the main boxes to their details
    _line(ax, [(left + w, 3.25), (dx - 0.1, 2.6)], dashed=True)
    _line(ax, [(left + w, 5.6), (dx - 0.1, 6.8)], dashed=True)
    fig.tight_layout()
    return fig


def lora_layer(r: int = 8, alpha: float = 16.0, in_features: int = 4096,
               out_features: int = 4096) -> Any:
    """A linear layer with LoRA: the frozen W beside the trainable A and B (chapter 6).

    Args:
        r, alpha: the adapter's rank and scaling numerator (the labels show α/r).
        in_features, out_features: the layer's sizes, for the parameter counts shown.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = lora_layer(r=16, alpha=32)
        >>> any("α/r = 2" in t.get_text() for t in fig.axes[0].texts)
        True
    """
    fig, ax = canvas(9.0, 6.2)
    frozen = in_features * out_features
    adapter = r * (in_features + out_features)
    box(ax, 2.9, 0.2, 3.2, 0.6, f"x   (in = {in_features:,})", "input")
    box(ax, 0.3, 2.2, 3.6, 1.6, t("W₀   (out × in)\nfrozen: {millions:.1f} M weights\nno gradient",
                                  millions=frozen / 1e6), "weight", fontsize=10)
    box(ax, 5.0, 1.6, 3.4, 0.6, t("A   (r × in),  r = {r},  random", r=r), "trainable", fontsize=10)
    box(ax, 5.0, 2.75, 3.4, 0.6, t("B   (out × r),  starts at 0"), "trainable", fontsize=10)
    box(ax, 5.0, 3.9, 3.4, 0.6, f"× s,  s = α/r = {alpha / r:g}", "op", fontsize=10)
    _add_node(ax, (4.5, 4.95))
    box(ax, 2.9, 5.45, 3.2, 0.6, "h = W₀x + s·BAx   (out)", "output", fontsize=10)
    arrow(ax, (4.5, 0.8), (2.1, 2.2))
    arrow(ax, (4.5, 0.8), (6.7, 1.6))
    arrow(ax, (6.7, 2.2), (6.7, 2.75))
    arrow(ax, (6.7, 3.35), (6.7, 3.9))
    arrow(ax, (2.1, 3.8), (4.33, 4.9))
    arrow(ax, (6.7, 4.5), (4.67, 4.9))
    arrow(ax, (4.5, 5.12), (4.5, 5.45))
    ax.text(6.7, 0.95, t("trainable: r·(in + out) = {thousands:.0f} k ({percent:.2g} % of W₀)",
                         thousands=adapter / 1e3, percent=100 * adapter / frozen),
            ha="center", fontsize=9.5, color="#555555")
    ax.text(0.3, 1.75, t("merge after training:\nW = W₀ + s·BA (one matmul)"), fontsize=9.5,
            color="#555555", va="top")
    fig.tight_layout()
    return fig


def qlora_dataflow(compute_dtype: str = "bf16") -> Any:
    """How QLoRA stores a frozen weight in 4 bits and computes with it in 16 (chapter 6).

    Left, in memory: NF4 codes (two per byte), one 8-bit absmax per block of 64
    weights, and, from double quantisation, one fp32 constant per 256 absmax values.
    Middle: for each matmul the layer is dequantised to the compute dtype; the
    multiplication itself is 16-bit, there is no 4-bit arithmetic. Right: the LoRA
    path in the same dtype, the only part that gets gradients.

    Args:
        compute_dtype: the label of the 16-bit compute dtype (bf16, or fp16 on a T4).

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = qlora_dataflow("fp16")
        >>> any("fp16" in t.get_text() for t in fig.axes[0].texts)
        True
    """
    fig, ax = canvas(12.0, 6.0)
    ax.text(0.2, 5.6, t("stored (the whole model, all the time)"), fontsize=10, fontweight="bold")
    box(ax, 0.2, 4.35, 3.6, 0.8, t("NF4 codes: 4 bits per weight\n(two per byte, uint8)"),
        "quantised", fontsize=9.5)
    box(ax, 0.2, 3.05, 3.6, 0.8, t("absmax: one per 64 weights\nstored in 8 bits (double quant)"),
        "quantised", fontsize=9.5)
    box(ax, 0.2, 1.75, 3.6, 0.8, t("fp32 scale + offset:\none per 256 absmax values"),
        "weight", fontsize=9.5)
    bits = 4 + 8 / 64 + 32 / (64 * 256)  # codes + 8-bit absmax + fp32 per 256 blocks
    ax.text(0.2, 1.2, t("≈ {bits:.2f} bits per weight in memory", bits=bits), fontsize=9.5, color="#555555")
    ax.text(4.6, 5.6, t("computed (one layer at a time, per matmul)"), fontsize=10, fontweight="bold")
    box(ax, 4.6, 3.5, 3.2, 1.0, t("dequantise:\nW = level[code] · absmax\n→ {dtype} copy",
                                  dtype=compute_dtype), "op", fontsize=9.5)
    box(ax, 4.6, 1.9, 3.2, 0.8, t("y = W x   ({dtype} matmul)", dtype=compute_dtype), "op",
        fontsize=9.5)
    box(ax, 4.6, 0.35, 3.2, 0.7, t("x   ({dtype} activations)", dtype=compute_dtype), "input",
        fontsize=9.5)
    arrow(ax, (3.8, 4.75), (4.6, 4.2))
    arrow(ax, (3.8, 3.45), (4.6, 3.9))
    _line(ax, [(3.8, 2.15), (4.2, 2.15), (4.2, 3.7)])
    arrow(ax, (4.2, 3.7), (4.6, 3.7))
    arrow(ax, (6.2, 3.5), (6.2, 2.7), t("temporary"))
    arrow(ax, (6.2, 1.05), (6.2, 1.9))
    box(ax, 8.7, 1.9, 3.1, 0.8, t("s · B A x\nLoRA in {dtype}, trainable", dtype=compute_dtype),
        "trainable", fontsize=9.5)
    _line(ax, [(6.2, 1.2), (10.25, 1.2)])
    arrow(ax, (10.25, 1.2), (10.25, 1.9))
    _add_node(ax, (9.3, 3.55))
    arrow(ax, (7.4, 2.7), (9.15, 3.45))
    arrow(ax, (10.25, 2.7), (9.45, 3.42))
    box(ax, 8.1, 4.4, 2.4, 0.6, f"h   ({compute_dtype})", "output", fontsize=9.5)
    arrow(ax, (9.3, 3.72), (9.3, 4.4))
    ax.text(0.2, 0.3, t("no 4-bit arithmetic: every multiply is\nin the 16-bit compute dtype; gradients\n"
                        "flow through W to x, never into W"), fontsize=9.5, color="#555555")
    fig.tight_layout()
    return fig


# --- Chapter 12: what each multi-GPU strategy keeps on every GPU ----------------------

#: The panels of :func:`ddp_vs_fsdp`: title, and the strategy of :data:`ift_tutorial.planning.sharding.SHARDING`.
STRATEGY_PANELS: tuple[tuple[str, str], ...] = (
    ("DDP", "ddp"), ("ZeRO-1", "zero1"), ("ZeRO-2", "zero2"), ("ZeRO-3 / FSDP2", "zero3"),
    ("FSDP1", "fsdp"),
)


def ddp_vs_fsdp(num_gpus: int = 4) -> Any:
    """What each of ``num_gpus`` GPUs holds under DDP, ZeRO-1, -2, -3 and FSDP (chapter 12).

    One panel per strategy, one column per GPU, one row per kind of state. Each box is that
    state's full size in a one-GPU run: filled whole, the GPU keeps all of it; filled in its
    k-th slice, GPU k keeps a 1/N shard; hatched, it is gathered whole during the step on
    top of the shard. FSDP1 wrapped per decoder layer keeps its root unit (embeddings and
    head) whole from the forward pass to the end of the backward pass; ZeRO-3 and FSDP2
    (as accelerate wraps it) have the head whole while the logits are computed. The
    choices are read from :data:`ift_tutorial.planning.sharding.SHARDING`, so the figure and the
    planner cannot disagree. (Decoder layers are gathered one at a time; not drawn.)

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = ddp_vs_fsdp(num_gpus=2)
        >>> "ZeRO-2" in {t.get_text() for t in fig.axes[0].texts}
        True
    """
    from matplotlib.patches import Rectangle

    from ..planning.sharding import SHARDING

    rows = [  # label, colour kind, the field of Sharding that splits it (None: never split),
        # and the values of Sharding.gathered that have it whole during the step
        (t("base weights (4-bit)"), "quantised", "parameters", ()),
        (t("embeddings (16-bit)"), "weight", "parameters", ("root",)),
        (t("head (16-bit)"), "weight", "parameters", ("root", "head")),
        (t("LoRA weights"), "trainable", "parameters", ()),
        (t("LoRA gradients"), "trainable", "gradients", ()),
        (t("optimizer states"), "output", "optimizer_states", ()),
        (t("activations (own batch)"), "input", None, ()),
    ]
    cell, gap, panel_gap, row_h, label_w, bottom = 0.36, 0.06, 0.35, 0.5, 2.3, 1.0
    panel_w = num_gpus * (cell + gap) - gap
    width = label_w + len(STRATEGY_PANELS) * (panel_w + panel_gap)
    top = bottom + len(rows) * row_h
    fig, ax = canvas(width, top + 0.75)
    for r, (label, *_) in enumerate(rows):
        ax.text(label_w - 0.15, top - (r + 0.5) * row_h, label, ha="right", va="center", fontsize=10)
    for p, (title, strategy) in enumerate(STRATEGY_PANELS):
        sharding = SHARDING[strategy]
        x0 = label_w + p * (panel_w + panel_gap)
        ax.text(x0 + panel_w / 2, top + 0.2, title, ha="center", va="bottom", fontsize=11,
                fontweight="bold")
        for gpu in range(num_gpus):
            x = x0 + gpu * (cell + gap)
            for r, (_, kind, split, gathered_by) in enumerate(rows):
                y, h = top - (r + 1) * row_h + 0.07, row_h - 0.14
                ax.add_patch(Rectangle((x, y), cell, h, facecolor="white", edgecolor="#999999", lw=0.8))
                if split is not None and getattr(sharding, split):  # GPU k keeps the k-th slice
                    ax.add_patch(Rectangle((x + cell * gpu / num_gpus, y), cell / num_gpus, h,
                                           facecolor=COLOURS[kind], edgecolor="#444444", lw=0.8))
                else:
                    ax.add_patch(Rectangle((x, y), cell, h, facecolor=COLOURS[kind], edgecolor="#444444",
                                           lw=0.8))
                if sharding.gathered in gathered_by:
                    ax.add_patch(Rectangle((x, y), cell, h, facecolor="none", edgecolor="#444444",
                                           hatch="////", lw=0.0))
            ax.text(x + cell / 2, bottom - 0.05, str(gpu), ha="center", va="top", fontsize=9.5,
                    color="#555555")
    ax.text(label_w - 0.15, bottom - 0.05, "GPU", ha="right", va="top", fontsize=9.5, color="#555555")
    key_y = 0.15
    for i, (text, fill, hatch) in enumerate([
            (t("kept by this GPU"), COLOURS["weight"], None),
            (t("not held"), "white", None),
            (t("gathered whole during the step"), "white", "////")]):
        kx = label_w + i * 3.2
        ax.add_patch(Rectangle((kx, key_y), 0.45, 0.3, facecolor=fill, edgecolor="#444444", lw=0.8,
                               hatch=hatch))
        ax.text(kx + 0.6, key_y + 0.15, text, va="center", fontsize=10)
    fig.tight_layout()
    return fig
