"""LoRA in a few lines: a frozen linear layer plus a trainable low-rank update.

A pretrained weight W0 (out x in) is kept frozen. LoRA learns the change as a
product of two thin matrices, B (out x r) and A (r x in), with r much smaller than
in and out:

    h = W0 x + s * B A x,   s = alpha / r        (rsLoRA: s = alpha / sqrt(r))

B starts at zero, so at step 0 the adapted model is exactly the base model; A
starts random (Kaiming-uniform, as in PEFT) so that B receives a gradient.
Trainable parameters per layer: r * (in + out) instead of in * out.

This module is the teaching version; training uses PEFT, and the tests check that
the two give the same outputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``nn.Linear`` with a LoRA update; the base layer is frozen.

    Args:
        base: the pretrained layer (weight shape (out, in)); its parameters are frozen.
        r: rank of the update.
        alpha: scaling numerator.
        dropout: dropout probability on the adapter's input (the base path sees x).
        use_rslora: scale by alpha / sqrt(r) (rank-stabilised LoRA) instead of alpha / r.
    """

    def __init__(
        self,
        base: nn.Linear,
        r: int,
        alpha: float,
        dropout: float = 0.0,
        use_rslora: bool = False,
    ):
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank r must be positive, got {r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.use_rslora = r, alpha, use_rslora
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype,
                                               device=weight.device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype,
                                               device=weight.device))  # (out, r)
        # PEFT's init: like a fresh nn.Linear's weight; B = 0 makes the update start at 0
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update s * B A, shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> (..., out)."""
        h = self.base(x)
        if self.merged:
            return h
        # (..., in) @ (in, r) @ (r, out): never form the (out, in) update
        return h + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: W = W0 + s B A (one matmul at inference)."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update again (up to rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:.4g}, merged={self.merged}"


def lora_parameter_count(in_features: int, out_features: int, r: int) -> int:
    """Trainable parameters of one adapted layer: r * (in + out)."""
    return r * (in_features + out_features)


def add_lora(
    model: nn.Module,
    target_modules: list[str],
    r: int,
    alpha: float,
    dropout: float = 0.0,
    use_rslora: bool = False,
) -> nn.Module:
    """Replace every ``nn.Linear`` whose name ends with a target by a :class:`LoRALinear`.

    All other parameters are frozen. Returns the same model, changed in place.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and name.split(".")[-1] in target_modules]
    if not targets:
        raise ValueError(f"no nn.Linear named {target_modules} in the model")
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha, dropout, use_rslora))
    return model
