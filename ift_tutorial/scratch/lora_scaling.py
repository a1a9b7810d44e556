"""How far one optimizer step moves a LoRA layer's output, by rank, scale and optimizer.

At the start B = 0, so only B gets a gradient (A's is s Bᵀ g xᵀ = 0). With g = dL/dh for
one input x, the gradient of B is s g (Ax)ᵀ, and the output moves by Δh = s ΔB A x:

- **plain SGD**: ΔB = -η s g (Ax)ᵀ, so Δh = -η s² ‖Ax‖² g. ‖Ax‖² is a sum of r squares,
  so Δh grows like s² r: α²/r with s = α/r (halved by every doubling of the rank),
  α² with rsLoRA's s = α/√r (the same at every rank).
- **Adam**: its first step is m̂ / √v̂ = the gradient's sign, so every entry of B moves
  by η: ΔB = -η sign(g) sign(Ax)ᵀ and Δh = -η s ‖Ax‖₁ sign(g). ‖Ax‖₁ is a sum of r
  absolute values, so Δh grows like s r: α with s = α/r (the same at every rank),
  α √r with s = α/√r.

:func:`first_step_changes` measures both with :class:`~ift_tutorial.scratch.lora.LoRALinear`
and ``torch.optim``; chapter 6 draws them (:func:`plot_first_step_changes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..i18n import t
from .lora import LoRALinear

#: The optimizers compared, by name as the rows of :func:`first_step_changes` give them.
OPTIMIZERS = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}


def output_change(layer: LoRALinear, x: torch.Tensor, target: torch.Tensor,
                  optimizer: str, lr: float) -> torch.Tensor:
    """Take one step of ``optimizer`` on ``layer``'s adapter (squared error to ``target``)
    and return how much the output on ``x`` moved.

    Args:
        layer: a fresh LoRA layer (B = 0); its adapter is changed in place.
        x: inputs, shape (batch, in).
        target: wanted outputs, shape (batch, out).
        optimizer: a key of :data:`OPTIMIZERS` (default settings apart from ``lr``).
        lr: the learning rate η.

    Returns:
        Δh, shape (batch, out): the output after the step minus the output before.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    opt = OPTIMIZERS[optimizer]([layer.lora_A, layer.lora_B], lr=lr)
    before = layer(x)
    ((before - target) ** 2).sum().backward()
    opt.step()
    with torch.no_grad():
        return layer(x) - before.detach()


def first_step_change(r: int, optimizer: str, use_rslora: bool = False, d: int = 512,
                      alpha: float = 16.0, lr: float = 1e-3, seeds: int = 8) -> float:
    """RMS of Δh after one step from B = 0 on a d × d layer, mean over ``seeds`` draws of
    the layer, the input x (1, d) and the target (1, d)."""
    total = 0.0
    for seed in range(seeds):
        torch.manual_seed(seed)
        layer = LoRALinear(nn.Linear(d, d, bias=False), r=r, alpha=alpha,
                           use_rslora=use_rslora)
        x, target = torch.randn(1, d), torch.randn(1, d)
        delta = output_change(layer, x, target, optimizer, lr)
        total += delta.pow(2).mean().sqrt().item() / seeds
    return total


def first_step_changes(ranks: Sequence[int] = (1, 4, 16, 64),
                       optimizers: Sequence[str] = ("SGD", "Adam"),
                       **kwargs: float) -> list[dict]:
    """:func:`first_step_change` for every rank, optimizer and scale (α/r and α/√r).

    Returns:
        One row per (optimizer, scale): ``{"optimizer", "rslora", "changes": {r: RMS Δh}}``.
    """
    return [{"optimizer": name, "rslora": rs,
             "changes": {r: first_step_change(r, name, rs, **kwargs) for r in ranks}}
            for name in optimizers for rs in (False, True)]


def scale_name(rslora: bool) -> str:
    """The scale as the book writes it."""
    return "α/√r" if rslora else "α/r"


def relative_table(rows: list[dict], reference: int = 4):
    """The rows of :func:`first_step_changes` as a table, each change relative to the
    change at rank ``reference`` (its column reads 1)."""
    from ..book.tables import table

    ranks = list(rows[0]["changes"])
    cells = [{"run": f"{row['optimizer']}, s = {scale_name(row['rslora'])}",
              **{f"r = {r}": row["changes"][r] / row["changes"][reference] for r in ranks}}
             for row in rows]
    return table(cells, columns={"run": "optimizer and scale",
                                 **{f"r = {r}": f"r = {r}" for r in ranks}},
                 styles={f"r = {r}": "number" for r in ranks})


def plot_first_step_changes(rows: list[dict], reference: int = 4):
    """One panel per optimizer: the first step's output change against the rank (log-log),
    relative to rank ``reference``, for both scales. Returns the Figure."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(row["optimizer"] for row in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(8.4, 3.4), sharey=True)
    for ax, name in zip(axes, names):
        for row in (row for row in rows if row["optimizer"] == name):
            ranks = list(row["changes"])
            values = [row["changes"][r] / row["changes"][reference] for r in ranks]
            ax.loglog(ranks, values, "o-", label=f"s = {scale_name(row['rslora'])}")
        ax.set_title(t("plain SGD") if name == "SGD" else name)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.minorticks_off()
        ax.set_xlabel(t("rank r"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(t("first-step output change\n(relative to r = {r})", r=reference))
    axes[0].legend()
    fig.tight_layout()
    return fig
