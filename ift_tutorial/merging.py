"""Merging a LoRA adapter into its base model, and saving a standard model folder.

Merge into a *16-bit (or fp32) reload* of the base, never into the 4-bit weights:
adding ``B @ A`` to NF4 weights would require re-quantising the sum, which rounds
the update away and changes the model's outputs. The merged folder loads with a
plain ``AutoModelForCausalLM.from_pretrained`` and needs no peft at all.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoTokenizer, PreTrainedModel

from .config import ExperimentConfig
from .hardware import _DTYPES, detect_precision
from .loading import load_model, load_tokenizer
from .paths import resolve_path


def merge_dtype(dtype: str = "auto") -> torch.dtype:
    """``auto``: the GPU's 16-bit compute dtype (bf16 or fp16), fp32 on a CPU.

    On a CPU the tiny preset is stored in fp32 and fp16 matmuls are slow, so the
    merge is exact in fp32 there.
    """
    if dtype == "auto":
        return detect_precision().compute_dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected auto, bf16, fp16 or fp32")
    return _DTYPES[dtype]


def load_merged(config: ExperimentConfig, adapter_dir: str | Path, dtype: str = "auto") -> PreTrainedModel:
    """Reload the base unquantised, apply the adapter and fold ``(alpha/r) B A`` into W."""
    adapter_dir = resolve_path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    base = load_model(config.model, load_in_4bit=False, dtype=merge_dtype(dtype))
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    return model.merge_and_unload()


def merge_adapter(
    config: ExperimentConfig, adapter_dir: str | Path, output_dir: str | Path, dtype: str = "auto"
) -> Path:
    """Merge and save the model (safetensors) with its tokenizer to ``output_dir``."""
    merged = load_merged(config, adapter_dir, dtype)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output_dir, safe_serialization=True)
    adapter_dir = resolve_path(adapter_dir)
    has_tokenizer = (adapter_dir / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir) if has_tokenizer else load_tokenizer(config.model)
    tokenizer.save_pretrained(output_dir)
    return output_dir
