"""What a multi-GPU strategy splits across the GPUs, for the memory planner (chapter 12).

Data parallelism gives every GPU its own examples, so activations and logits never
shrink. What is split N ways depends on the strategy: nothing for DDP; the optimizer
states for ZeRO-1; also the gradients for ZeRO-2; also the weights for ZeRO-3 and FSDP,
which then gather each decoder layer whole for the moment it computes. The 16-bit
parameters outside the decoder layers are whole at the peak too (:attr:`Sharding.gathered`):
FSDP1's root unit (embeddings, final norm and head), or the head and final norm for FSDP2
and ZeRO-3. :func:`ift_tutorial.planning.memory.plan_memory` divides its components by
this table; :func:`ift_tutorial.book.diagrams.ddp_vs_fsdp` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sharding:
    """What a multi-GPU strategy splits across the GPUs (True: each GPU keeps 1/N)."""

    optimizer_states: bool
    gradients: bool
    parameters: bool
    #: which 16-bit parameters outside the decoder layers are whole on every GPU at the peak:
    #: "" none (not sharded), "head" (head and final norm), "root" (FSDP1's root unit:
    #: embeddings, final norm and head)
    gathered: str = ""


#: Strategies and what they split across GPUs.
SHARDING: dict[str, Sharding] = {
    "single": Sharding(False, False, False),
    "ddp": Sharding(False, False, False),  # everything replicated, gradients all-reduced
    "zero1": Sharding(True, False, False),  # DeepSpeed ZeRO stage 1
    "zero2": Sharding(True, True, False),  # stage 2
    "zero3": Sharding(True, True, True, "head"),  # stage 3: a module's weights gathered when it runs
    "fsdp": Sharding(True, True, True, "root"),  # FSDP1 FULL_SHARD, one unit per decoder layer
    "fsdp2": Sharding(True, True, True, "head"),  # fully_shard, as accelerate 1.15 wraps a model
}
STRATEGIES = tuple(SHARDING)

#: The component of the 16-bit parameters that a sharded strategy holds whole at the peak.
GATHERED = "16-bit parts gathered whole (root unit or head)"
