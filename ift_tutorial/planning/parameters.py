"""Counting a model's parameters as QLoRA stores them: 4-bit, 16-bit and LoRA (chapter 6).

The architecture is built on PyTorch's ``meta`` device (shapes only, no memory, nothing
downloaded). Each ``nn.Linear`` weight of shape ``(out_features, in_features)`` outside
the output head is quantised to 4 bits; everything else (embeddings ``(vocab, hidden)``,
the head, norms ``(hidden,)``, biases) stays in the compute dtype; LoRA adds
``A: (r, in_features)`` and ``B: (out_features, r)`` to each adapted layer, r * (in + out)
parameters. :mod:`ift_tutorial.planning.memory` turns the counts into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, LoraSettings


@dataclass
class ParameterBreakdown:
    """Parameter counts of an architecture as QLoRA stores it."""

    quantized_numels: list[int]  # numel of each Linear weight stored in 4 bits
    kept_params: int  # parameters left in the compute dtype (embeddings, head, norms, biases)
    lora_params: int  # trainable adapter parameters
    lora_layers: int  # how many Linear layers get an adapter
    num_layers: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    quantized_per_layer: int  # 4-bit weights in one decoder layer
    root_params: int = 0  # 16-bit parameters outside the decoder layers (embeddings, final norm, head)
    head_params: int = 0  # of those, the head and final norm (the embeddings too when tied)

    @property
    def quantized_params(self) -> int:
        return sum(self.quantized_numels)

    @property
    def total_params(self) -> int:
        return self.quantized_params + self.kept_params


def meta_model(arch_config: Any) -> nn.Module:
    """The architecture with shapes only (PyTorch ``meta`` device: no memory used)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(arch_config)


def _is_target(name: str, target_modules: str | list[str]) -> bool:
    if target_modules == "all-linear":
        return True
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    return name.split(".")[-1] in targets


def count_parameters(arch_config: Any, lora: LoraSettings | None = None) -> ParameterBreakdown:
    """Count what QLoRA quantises, keeps and trains, for an architecture config.

    Every ``nn.Linear`` except the output head is quantised (what transformers'
    bitsandbytes integration does); LoRA adapts the Linear layers named in
    ``lora.target_modules`` ("all-linear": all of them except the head, as PEFT).
    The decoder layers are the modules named in the model's ``_no_split_modules`` (what
    accelerate's ``TRANSFORMER_BASED_WRAP`` gives an FSDP unit each); the 16-bit parameters
    outside them are what FSDP1's root unit holds.
    """
    lora = lora or LoraSettings()
    model = meta_model(arch_config)
    head = model.get_output_embeddings()
    quantized: list[int] = []
    quantized_ids: set[int] = set()
    lora_params = lora_layers = 0
    layer0 = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or module is head:
            continue
        quantized.append(module.weight.numel())
        quantized_ids.add(id(module.weight))
        if ".layers.0." in f".{name}.":
            layer0 += module.weight.numel()
        if _is_target(name, lora.target_modules):
            lora_params += lora.r * (module.in_features + module.out_features)
            lora_layers += 1
    kept = sum(p.numel() for p in model.parameters() if id(p) not in quantized_ids)
    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    in_layers = {id(p) for m in model.modules() if type(m).__name__ in layer_classes
                 for p in m.parameters()}
    outside = [p for p in model.parameters()  # shared (tied) parameters come once
               if id(p) not in in_layers and id(p) not in quantized_ids]
    embedding = {id(p) for p in model.get_input_embeddings().parameters()}
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    if not quantized:
        raise ConfigError("the architecture has no nn.Linear layers to quantise")
    return ParameterBreakdown(
        quantized_numels=quantized,
        kept_params=kept,
        lora_params=lora_params,
        lora_layers=lora_layers,
        num_layers=arch_config.num_hidden_layers,
        hidden_size=arch_config.hidden_size,
        intermediate_size=arch_config.intermediate_size,
        vocab_size=arch_config.vocab_size,
        quantized_per_layer=layer0,
        root_params=sum(p.numel() for p in outside),
        head_params=sum(p.numel() for p in outside if id(p) not in embedding or id(p) in head_ids),
    )
