"""The hardware decides the precision: which compute dtype, which optimizer.

``torch.cuda.is_bf16_supported()`` answers True on a T4 (compute capability 7.5)
because bf16 is *emulated* there, slowly. We therefore decide from the compute
capability itself: bf16 needs Ampere (8.0) or newer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """What the trainer should use on this machine."""

    device: str  # "cuda" or "cpu"
    compute_dtype: torch.dtype  # dtype of the 4-bit matmuls and the 16-bit parts
    bf16: bool  # value for SFTConfig(bf16=...)
    fp16: bool  # value for SFTConfig(fp16=...)
    optim: str  # optimizer name for SFTConfig(optim=...)


_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


def compute_dtype_for_capability(capability: tuple[int, int] | None) -> torch.dtype:
    """bf16 from compute capability 8.0 (A100, L4, H100), fp16 below (T4), fp32 on CPU."""
    if capability is None:
        return torch.float32
    return torch.bfloat16 if capability >= (8, 0) else torch.float16


def detect_precision(compute_dtype: str = "auto", optim: str = "auto") -> Precision:
    """Pick dtype, mixed-precision flags and optimizer for the current machine.

    Args:
        compute_dtype: "auto" (from the hardware) or one of bf16/fp16/fp32.
        optim: "auto" (paged 8-bit AdamW on GPU, plain AdamW on CPU) or any
            ``transformers`` optimizer name.
    """
    on_gpu = torch.cuda.is_available()
    capability = torch.cuda.get_device_capability() if on_gpu else None
    if compute_dtype == "auto":
        dtype = compute_dtype_for_capability(capability)
    else:
        if compute_dtype not in _DTYPES:
            raise ValueError(f"compute_dtype {compute_dtype!r}: expected auto, {sorted(_DTYPES)}")
        dtype = _DTYPES[compute_dtype]
    if optim == "auto":
        # Paged optimizers move their states to CPU RAM under memory pressure; a
        # CUDA-only feature, so the CPU gets the plain torch AdamW.
        optim = "paged_adamw_8bit" if on_gpu else "adamw_torch"
    return Precision(
        device="cuda" if on_gpu else "cpu",
        compute_dtype=dtype,
        bf16=on_gpu and dtype == torch.bfloat16,
        fp16=on_gpu and dtype == torch.float16,
        optim=optim,
    )


def trainable_dtype(precision: Precision) -> torch.dtype:
    """The dtype of the trainable (LoRA) parameters: fp32 unless the run is bf16.

    A bf16 run keeps them in bf16 (QLoRA's recipe; TRL casts them so for a quantised
    base). An fp16 run (a T4) needs fp32 ones: its GradScaler cannot unscale bf16
    gradients and fp16 updates would underflow. On a CPU fp32 is what the matmuls use.

    Example:
        >>> trainable_dtype(Precision("cuda", torch.float16, bf16=False, fp16=True, optim="adamw_torch"))
        torch.float32
    """
    return torch.bfloat16 if precision.bf16 else torch.float32


def describe_hardware() -> str:
    """One line for a notebook: the device, and for a GPU its name and memory."""
    if not torch.cuda.is_available():
        return "CPU only (no CUDA GPU): use the tiny preset, or a Colab GPU for 7B presets"
    props = torch.cuda.get_device_properties(0)
    cc = f"{props.major}.{props.minor}"
    return f"GPU {props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability {cc}"
