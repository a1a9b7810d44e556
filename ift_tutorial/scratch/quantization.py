"""4-bit NormalFloat (NF4) quantisation from scratch, checked against bitsandbytes.

QLoRA stores the frozen base weights in 4 bits. This module rebuilds what
bitsandbytes does, step by step, so that the book can show each piece:

1. **The 16 NF4 levels** come from quantiles of the standard normal distribution,
   because pretrained weights are roughly normal: each level then covers about the
   same share of the weights (:func:`nf4_levels`).
2. **Blockwise absmax scaling**: the flattened weight is cut into blocks of 64
   values; each block is divided by its largest absolute value (its *absmax*) so
   that it lies in [-1, 1], and each value is replaced by the index of the nearest
   level (:func:`quantize_nf4`, :func:`dequantize_nf4`).
3. **Packing**: two 4-bit indices share one byte, the first in the high nibble
   (:func:`pack_4bit`), which is bitsandbytes' storage layout.
4. **Double quantisation**: the absmax constants (one fp32 per 64 weights, i.e.
   0.5 bit per weight) are themselves quantised to 8 bits in blocks of 256
   (:func:`double_quantize`), bringing the overhead down to about 0.127 bit.

The functions work on the flattened tensor, in row-major order, like bitsandbytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch

from ..i18n import t

#: The outermost quantile used for NF4. The quantile function is infinite at 0 and 1,
#: so QLoRA stops short of them: at the mean of the half-bin widths of a 15-level
#: (1/30) and a 16-level (1/32) grid, i.e. 1 - (1/30 + 1/32) / 2 = 0.96770833...
#: bitsandbytes uses this number rounded to 7 decimals; so do we, to get its exact table.
NF4_OFFSET = 0.9677083

#: bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit) values, normalised to [-1, 1].
FP4_LEVELS = torch.tensor(
    sorted(v / 12 for v in (0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0625, -8, -12, -4, -6, -2, -3))
)
#: Plain symmetric int4 with absmax scaling: -7..7 over 7 (15 levels, one code unused).
INT4_LEVELS = torch.arange(-7, 8, dtype=torch.float32) / 7


def nf4_levels(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 levels, sorted, in [-1, 1].

    Construction (QLoRA paper, bitsandbytes ``create_normal_map``): a symmetric grid
    of 16 normal quantiles would have no exact zero, yet zero (padding, pruned
    weights) must be representable. So the two halves are built separately:

    - 8 positive levels: the normal quantiles at 8 evenly spaced probabilities from
      ``offset`` down to 0.5 (0.5 itself, whose quantile is 0, is dropped);
    - 7 negative levels: the same with 7 probabilities, negated;
    - one exact zero.

    Dividing by the largest level maps the grid onto [-1, 1], the range of a block
    after absmax scaling. The result is asymmetric: 7 negative, 8 positive levels.

    Returns:
        A float32 tensor of shape (16,).
    """
    normal = NormalDist()
    # float32 probabilities, as bitsandbytes builds them with torch.linspace
    pos_p = torch.linspace(offset, 0.5, 9)[:-1].tolist()
    neg_p = torch.linspace(offset, 0.5, 8)[:-1].tolist()
    positive = [normal.inv_cdf(p) for p in pos_p]
    negative = [-normal.inv_cdf(p) for p in neg_p]
    levels = torch.tensor(sorted(negative + [0.0] + positive), dtype=torch.float32)
    return levels / levels.max()


NF4_LEVELS = nf4_levels()


def _check_blocksize(blocksize: int) -> None:
    if blocksize <= 0:
        raise ValueError(f"blocksize must be positive, got {blocksize}")


def blockwise_absmax(weight: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """The largest absolute value of each block of the flattened weight.

    Args:
        weight: any shape; flattened in row-major order into n values.
        blocksize: values per block; a shorter last block is allowed.

    Returns:
        float32 tensor of shape (ceil(n / blocksize),).
    """
    _check_blocksize(blocksize)
    flat = weight.detach().reshape(-1).float()
    pad = (-flat.numel()) % blocksize
    # zero padding never changes an absmax
    blocks = torch.nn.functional.pad(flat, (0, pad)).view(-1, blocksize)
    return blocks.abs().amax(dim=1)


def quantize_blockwise(
    weight: torch.Tensor, levels: torch.Tensor, blocksize: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each block by its absmax and round every value to the nearest level.

    Args:
        weight: any shape, n values in total.
        levels: sorted code book in [-1, 1], shape (k,), k <= 256.
        blocksize: values per block.

    Returns:
        ``codes``: uint8 indices into ``levels``, shape (n,);
        ``absmax``: float32, shape (ceil(n / blocksize),).
    """
    absmax = blockwise_absmax(weight, blocksize)
    flat = weight.detach().reshape(-1).float()
    n = flat.numel()
    # multiply by the reciprocal (not divide) and clamp tiny absmax, as bitsandbytes
    # does, so that the codes agree bit for bit
    scale = (1.0 / absmax.clamp(min=1e-38)).repeat_interleave(blocksize)[:n]
    scaled = torch.clamp(flat * scale, -1, 1)
    # nearest level = which interval between neighbouring midpoints the value is in
    midpoints = (levels[:-1] + levels[1:]) / 2
    codes = torch.bucketize(scaled, midpoints)
    return codes.to(torch.uint8), absmax


def dequantize_blockwise(
    codes: torch.Tensor,
    absmax: torch.Tensor,
    levels: torch.Tensor,
    shape: tuple[int, ...] | torch.Size,
    blocksize: int = 64,
) -> torch.Tensor:
    """Look each code up in ``levels`` and multiply by its block's absmax.

    Args:
        codes: uint8 indices, shape (n,).
        absmax: float32, shape (ceil(n / blocksize),).
        levels: the code book used to quantise, shape (k,).
        shape: the original weight shape (n values).

    Returns:
        float32 tensor of ``shape``.
    """
    n = math.prod(shape)
    values = levels[codes[:n].long()]
    return (values * absmax.repeat_interleave(blocksize)[:n]).reshape(shape)


def quantize_nf4(weight: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 quantisation: codes (uint8 in 0..15, shape (n,)) and absmax (shape (n_blocks,))."""
    return quantize_blockwise(weight, NF4_LEVELS, blocksize)


def dequantize_nf4(
    codes: torch.Tensor,
    absmax: torch.Tensor,
    shape: tuple[int, ...] | torch.Size,
    blocksize: int = 64,
) -> torch.Tensor:
    """Undo :func:`quantize_nf4` up to the rounding error; float32 of ``shape``."""
    return dequantize_blockwise(codes, absmax, NF4_LEVELS, shape, blocksize)


def pack_4bit(codes: torch.Tensor, pad_code: int = 7) -> torch.Tensor:
    """Two 4-bit codes per byte, the first in the high nibble (bitsandbytes' layout).

    Args:
        codes: uint8 in 0..15, shape (n,).
        pad_code: fills the last low nibble when n is odd; bitsandbytes pads with the
            code of 0.0, which is 7 in NF4.

    Returns:
        uint8 of shape (ceil(n / 2), 1), like ``bitsandbytes.functional.quantize_4bit``.
    """
    if codes.numel() and int(codes.max()) > 15:
        raise ValueError("4-bit codes must lie in 0..15")
    c = codes.reshape(-1).to(torch.uint8)
    if c.numel() % 2:
        c = torch.cat([c, c.new_full((1,), pad_code)])
    return ((c[0::2] << 4) | c[1::2]).unsqueeze(1)


def unpack_4bit(packed: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_4bit`: uint8 codes of shape (n,)."""
    p = packed.reshape(-1).view(torch.uint8) if packed.dtype != torch.uint8 else packed.reshape(-1)
    codes = torch.stack([p >> 4, p & 0xF], dim=1).reshape(-1)
    return codes[:n]


# --- double quantisation of the absmax constants ------------------------------


def dynamic_map_8bit(max_exponent_bits: int = 7) -> torch.Tensor:
    """bitsandbytes' signed 8-bit "dynamic" code book (256 sorted values in [-1, 1]).

    A sign bit, then a run of zeros whose length is a decimal exponent (10^0 down to
    10^-6), then a linear fraction filling the remaining bits: small numbers get
    fine steps, large numbers coarse ones, like a float with a variable split
    between exponent and mantissa (Dettmers 2016, "8-Bit Approximations").
    """
    data: list[float] = []
    non_sign_bits = 7
    for i in range(max_exponent_bits):
        # with i more exponent steps, 2**i fraction intervals, represented by their middles
        edges = torch.linspace(0.1, 1, 2 ** (i + non_sign_bits - max_exponent_bits) + 1)
        means = (edges[:-1] + edges[1:]) / 2
        scale = 10 ** (-(max_exponent_bits - 1) + i)
        # multiply in float32, as bitsandbytes does, to get its exact table
        data += (scale * means).tolist() + (-scale * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (256 - len(data))
    return torch.tensor(sorted(data), dtype=torch.float32)


@dataclass
class DoubleQuantState:
    """The absmax constants after double quantisation.

    Attributes:
        codes: uint8 indices into the dynamic 8-bit map, shape (n_blocks,).
        absmax2: fp32 absmax of each block of 256 constants, shape (ceil(n_blocks/256),).
        offset: the mean that was subtracted first (absmax values are all positive,
            so centring them uses the signed 8-bit range fully).
        blocksize: constants per second-level block (256).
    """

    codes: torch.Tensor
    absmax2: torch.Tensor
    offset: float
    blocksize: int = 256


def double_quantize(absmax: torch.Tensor, blocksize: int = 256) -> DoubleQuantState:
    """Quantise the first-level absmax constants to 8 bits, as bitsandbytes does.

    Subtract their mean, then blockwise absmax 8-bit quantisation (blocks of 256)
    with the dynamic code book.

    Args:
        absmax: float32 first-level constants, shape (n_blocks,).
    """
    offset = absmax.float().mean()
    codes, absmax2 = quantize_blockwise(absmax.float() - offset, dynamic_map_8bit(), blocksize)
    return DoubleQuantState(codes, absmax2, float(offset), blocksize)


def double_dequantize(state: DoubleQuantState) -> torch.Tensor:
    """Recover the first-level absmax constants, float32 of shape (n_blocks,)."""
    n = state.codes.numel()
    centred = dequantize_blockwise(state.codes, state.absmax2, dynamic_map_8bit(), (n,),
                                   state.blocksize)
    return centred + state.offset


def constant_bits_per_param(
    blocksize: int = 64, double_quant: bool = False, blocksize2: int = 256
) -> float:
    """Bits of quantisation constants stored per weight.

    Without double quantisation: one fp32 absmax per block, 32 / 64 = 0.5 bit.
    With it: one 8-bit code per block plus one fp32 per 256 blocks,
    8 / 64 + 32 / (64 * 256) ~ 0.127 bit (the 8-bit map and the offset are a few
    bytes per tensor and left out).
    """
    if not double_quant:
        return 32 / blocksize
    return 8 / blocksize + 32 / (blocksize * blocksize2)


def bits_per_param(blocksize: int = 64, double_quant: bool = False, blocksize2: int = 256) -> float:
    """Total storage of a 4-bit quantised weight, in bits per parameter (4 + constants)."""
    return 4 + constant_bits_per_param(blocksize, double_quant, blocksize2)


# --- comparing 4-bit data types ------------------------------------------------

#: The three 4-bit code books compared in the book.
CODE_BOOKS: dict[str, torch.Tensor] = {
    "NF4": NF4_LEVELS,
    "FP4": FP4_LEVELS,
    "int4": INT4_LEVELS,
}


def quantization_error(
    weight: torch.Tensor, levels: torch.Tensor, blocksize: int = 64
) -> dict[str, float]:
    """Round-trip error of blockwise absmax quantisation with a code book.

    Returns:
        ``mse`` (mean squared error), ``mae`` (mean absolute error) and ``rel_rmse``
        (root mean squared error divided by the weights' root mean square).
    """
    codes, absmax = quantize_blockwise(weight, levels, blocksize)
    w = weight.detach().float()
    err = dequantize_blockwise(codes, absmax, levels, w.shape, blocksize) - w
    mse = float(err.pow(2).mean())
    return {
        "mse": mse,
        "mae": float(err.abs().mean()),
        "rel_rmse": math.sqrt(mse / float(w.pow(2).mean().clamp(min=1e-30))),
    }


def quantization_error_table(weights: dict[str, torch.Tensor], blocksize: int = 64):
    """Relative RMS error of NF4, FP4 and int4 for each named weight tensor.

    Args:
        weights: name -> tensor (e.g. ``{"normal": torch.randn(...), "q_proj": W}``).

    Returns:
        A ``pandas.DataFrame``: one row per weight, one column per data type
        (relative RMS error), plus ``n`` (the number of values).
    """
    import pandas as pd

    rows = []
    for name, w in weights.items():
        row: dict[str, object] = {"weights": name, "n": w.numel()}
        for dtype_name, levels in CODE_BOOKS.items():
            row[dtype_name] = quantization_error(w, levels, blocksize)["rel_rmse"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("weights")


def linear_weights(model: torch.nn.Module, include_embeddings: bool = False
                   ) -> dict[str, torch.Tensor]:
    """All ``nn.Linear`` weights of a model by module name (the ones QLoRA quantises)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or (
            include_embeddings and isinstance(module, torch.nn.Embedding)
        ):
            out[name] = module.weight.detach()
    return out


# --- figures ---------------------------------------------------------------------


def plot_levels(ax=None):
    """The 16 NF4 levels next to FP4 and int4, on [-1, 1] (a matplotlib Axes)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.4))
    for row, (name, levels) in enumerate(CODE_BOOKS.items()):
        ax.scatter(levels.numpy(), [row] * len(levels), s=25, label=name)
    ax.set_yticks(range(len(CODE_BOOKS)), list(CODE_BOOKS))
    ax.set_xlabel(t("level (after dividing a block by its absmax)"))
    ax.set_ylim(-0.7, len(CODE_BOOKS) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_error_table(table, ax=None):
    """Grouped bars of a :func:`quantization_error_table` (lower is better)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    cols = [c for c in CODE_BOOKS if c in table.columns]
    table[cols].plot.bar(ax=ax, rot=0)
    ax.set_ylabel(t("relative RMS error"))
    ax.set_xlabel("")
    return ax
