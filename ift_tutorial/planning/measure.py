"""Measuring what a model actually holds, by the memory planner's components.

The planner (:mod:`ift_tutorial.planning.memory`) estimates; this module counts the bytes
of the tensors a model and its optimizer hold: the 4-bit weights (packed ``uint8`` codes,
``(numel / 2, 1)`` per bitsandbytes ``Params4bit``), their quantisation state (``absmax``
of shape ``(numel / 64,)`` for blocks of 64, the code book, and with double quantisation
the constants' own ``absmax`` and code book), the 16-bit parameters, the LoRA parameters and gradients,
and the optimizer states. Tensors that share a storage (tied embeddings) count once.
Used by the tests, the benchmarks and the dry run (:mod:`ift_tutorial.planning.dry_run`).
"""

from __future__ import annotations

import torch
from torch import nn


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    return (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())


def quant_state_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The tensors of a bitsandbytes 4-bit weight's quantisation state (absmax, codes...)."""
    qs = getattr(getattr(module, "weight", None), "quant_state", None)
    if qs is None:
        return []
    out = [qs.absmax, qs.code]
    if getattr(qs, "offset", None) is not None and torch.is_tensor(qs.offset):
        out.append(qs.offset)
    if getattr(qs, "state2", None) is not None:
        out += [qs.state2.absmax, qs.state2.code]
    return [t for t in out if torch.is_tensor(t)]


def measure_model_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None
                        ) -> dict[str, int]:
    """Bytes a model and its optimizer actually hold, by the planner's components.

    Storages shared between tensors (tied embeddings) are counted once.
    """
    seen: set[tuple[int, int]] = set()

    def nbytes(t: torch.Tensor) -> int:
        key = _storage_key(t)
        if key in seen or t.device.type == "meta":
            return 0
        seen.add(key)
        return t.untyped_storage().nbytes()

    out = {"base weights (4-bit)": 0, "quantisation constants": 0,
           "16-bit parts (embeddings, head, norms, biases)": 0, "LoRA parameters": 0,
           "LoRA gradients": 0, "optimizer states": 0}
    for module in model.modules():
        for t in quant_state_tensors(module):
            out["quantisation constants"] += nbytes(t)
    for name, p in model.named_parameters():
        if p.requires_grad:
            out["LoRA parameters"] += nbytes(p)
            if p.grad is not None:
                out["LoRA gradients"] += nbytes(p.grad)
        elif hasattr(p, "quant_state"):
            out["base weights (4-bit)"] += nbytes(p)
        else:
            out["16-bit parts (embeddings, head, norms, biases)"] += nbytes(p)
    if optimizer is not None:
        for state in optimizer.state.values():
            for v in state.values():
                if torch.is_tensor(v) and v.numel() > 1:  # step counters are not memory
                    out["optimizer states"] += nbytes(v)
    return out
