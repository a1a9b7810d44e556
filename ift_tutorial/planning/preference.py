"""The memory of a DPO step: what preference tuning adds to a QLoRA run (chapter 9).

A DPO step differs from an SFT step in three ways the planner counts:

- **Twice the sequences.** Each pair is a chosen and a rejected answer, run as one batch
  of ``2 x per_device_train_batch_size`` sequences of ``dpo.max_length`` tokens: the
  activations and logits of SFT's plan at twice the batch.
- **A reference forward pass, without gradients.** The reference's log-probabilities
  come from a second pass through the *same* 4-bit base, under ``torch.no_grad``: it
  keeps nothing for the backward pass, so at its peak it holds one decoder layer's
  activations and the per-token log-probabilities.
- **A frozen copy of the adapter.** Starting from an SFT adapter, TRL keeps a copy of it
  as the reference's adapter: LoRA-sized, never trained (no gradients, no optimizer
  states).

What it does *not* count is a second model. A reference loaded on its own would hold
another copy of the base weights; :func:`plan_dpo` says how much that would have been
(``settings["separate_reference_bytes"]``).
"""

from __future__ import annotations

from .memory import MemoryPlan, activation_bytes_per_layer_token, plan_for_config, quantized_weight_bytes
from .parameters import count_parameters
from ..config import ExperimentConfig

REFERENCE_ADAPTER = "reference adapter (frozen copy)"
REFERENCE_PASS = "reference forward pass (no gradients)"


def plan_dpo(config: ExperimentConfig, *, gpu: str = "t4", on_gpu: bool = True,
             num_layers: int | None = None) -> MemoryPlan:
    """Plan a DPO step of ``config`` (its ``dpo`` section) on ``gpu``.

    Returns:
        A :class:`~ift_tutorial.planning.memory.MemoryPlan` whose components are SFT's at
        twice the batch plus :data:`REFERENCE_ADAPTER` and :data:`REFERENCE_PASS`; its
        settings add ``separate_reference_bytes``, what a second reference model would cost.

    Example:
        >>> from ift_tutorial import load_config
        >>> plan = plan_dpo(load_config("qwen2.5-7b"))
        >>> plan.settings["separate_reference_bytes"] > plan.components[REFERENCE_ADAPTER]
        True
    """
    from .architectures import architecture_config

    d = config.dpo
    sequences = 2 * d.per_device_train_batch_size  # chosen and rejected, one batch
    plan = plan_for_config(config, seq_len=d.max_length, batch_size=sequences, gpu=gpu,
                           on_gpu=on_gpu, num_layers=num_layers)
    arch = architecture_config(config.model.name_or_path)
    if num_layers is not None:
        arch.num_hidden_layers = num_layers
    b = count_parameters(arch, config.lora)
    e, tokens = plan.settings["compute_bytes"], sequences * d.max_length
    comps = dict(plan.components)
    comps[REFERENCE_ADAPTER] = b.lora_params * plan.settings["adapter_bytes"]
    comps[REFERENCE_PASS] = int(tokens * (activation_bytes_per_layer_token(
        b.hidden_size, b.intermediate_size, config.lora.r, e) + 4))  # one layer + fp32 log-probs
    if config.model.load_in_4bit:
        parts = [quantized_weight_bytes(n, config.model.double_quant) for n in b.quantized_numels]
        base = sum(p["weights"] + p["constants"] for p in parts)
    else:
        base = b.quantized_params * e
    settings = {**plan.settings, "step": "dpo", "pairs": d.per_device_train_batch_size,
                "separate_reference_bytes": base + b.kept_params * e}
    return MemoryPlan(comps, settings)
