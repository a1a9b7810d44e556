"""A GPU-memory ledger: what a run would hold on its target GPU, checked while it runs elsewhere.

A rehearsal (:mod:`ift_tutorial.rehearsal`) runs a 7B preset's code path on a CPU with a
shrunk stand-in, so nothing it allocates says whether the real run fits a T4. The ledger
says it instead. With ``model.ledger_gpu`` set (a rehearsal sets ``t4``), every
:func:`ift_tutorial.loading.load_model` registers the bytes the *real* model would take
(:func:`model_bytes`, from the planner's parameter count of ``model.name_or_path``), and
every training step, evaluation batch and generation charges what it would add on top:

* a training step: the planner's adapters, gradients, optimizer states, activations and
  fp32 logits at the batch's real shape (:func:`ift_tutorial.planning.memory.plan_for_config`);
* an evaluation batch: the hidden states of a batch at ``max_length`` and one slice of fp32
  logits with the real vocabulary (:func:`eval_batch_bytes`, the chunked perplexity);
* a generation: the KV cache of a batch of its prompts and the new tokens asked for (a
  rehearsal decodes fewer, ``model.max_new_tokens_cap``; the real run would not), the
  prefill's widest activation and one step's logits (:func:`generation_bytes`).

Models are held by weak references: a model that the code releases (``del merged``) stops
counting. When the resident models, the CUDA overhead and the step in hand would pass the
GPU's usable memory, the run stops with :class:`GPUMemoryError`, which lists each part.

Example:
    >>> ledger = Ledger("t4")
    >>> ledger.charge("a step of 2 GiB", 2 * GiB) and None
    >>> ledger.peak_bytes == 2 * GiB + CUDA_OVERHEAD_BYTES
    True
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import UserFacingError
from .memory import (CUDA_OVERHEAD_BYTES, STATIC, GiB, gpu_key, gpu_memory_gb, plan_for_config,
                     quantized_weight_bytes)
from .parameters import count_parameters

#: The attribute a tracked model carries: its :class:`Tag`.
TAG = "_ift_ledger"


class GPUMemoryError(UserFacingError):
    """The run would not fit its target GPU; the message lists what would be resident."""


@dataclass
class Tag:
    """What a tracked model's later charges need: its ledger and its real architecture."""

    ledger: Ledger
    arch: Any  # the real model's transformers config
    compute_bytes: int  # 2: fp16/bf16 on the target GPU
    max_length: int  # tokens per example: the bound used where the data is a fixture


@dataclass
class Ledger:
    """Resident models (weakly held) and the transient charges of one target GPU."""

    gpu: str = "t4"
    overhead_bytes: int = CUDA_OVERHEAD_BYTES
    models: list[tuple[weakref.ref, str, int]] = field(default_factory=list)
    peak_bytes: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def usable_bytes(self) -> int:
        return int(gpu_memory_gb(self.gpu) * GiB)

    def resident(self, collect: bool = False) -> list[tuple[str, int]]:
        """(name, bytes) of the models still alive; ``collect`` first frees released models
        caught in reference cycles (a full garbage collection: slow, so only when needed)."""
        if collect:
            gc.collect()
        self.models = [m for m in self.models if m[0]() is not None]
        return [(name, size) for _, name, size in self.models]

    def grow_model(self, model: Any, what: str, nbytes: int) -> None:
        """Count ``nbytes`` more for a resident model (an adapter put on it)."""
        for i, (ref, name, size) in enumerate(self.models):
            if ref() is model:
                self.charge(f"{what} on {name}", nbytes, kind="model")
                self.models[i] = (ref, f"{name} + {what}", size + nbytes)
                return

    def add_model(self, model: Any, name: str, nbytes: int) -> None:
        """Count ``model`` as resident from now on (checked first, with nothing transient)."""
        self.charge(f"loading {name}", nbytes, kind="model")
        self.models.append((weakref.ref(model), name, nbytes))

    def charge(self, what: str, nbytes: int, kind: str = "transient") -> None:
        """Check that the resident models plus ``nbytes`` fit; record the peak of what did.

        Raises:
            GPUMemoryError: they would not fit; the message lists each part.
        """
        resident = self.resident()
        total = self.overhead_bytes + sum(size for _, size in resident) + nbytes
        if total > self.usable_bytes:  # a released model may only wait for the collector
            resident = self.resident(collect=True)
            total = self.overhead_bytes + sum(size for _, size in resident) + nbytes
        fits = total <= self.usable_bytes
        self.events.append({"what": what, "kind": kind, "bytes": nbytes, "total_bytes": total,
                            "fits": fits})
        if fits:
            self.peak_bytes = max(self.peak_bytes, total)
        else:
            parts = [f"{name}: {size / GiB:.2f} GiB (resident)" for name, size in resident]
            parts.append(f"{what}: {nbytes / GiB:.2f} GiB")
            parts.append(f"CUDA context and overhead: {self.overhead_bytes / GiB:.2f} GiB")
            raise GPUMemoryError(
                f"on a {self.gpu.upper()} ({gpu_memory_gb(self.gpu):.2f} GiB usable) this run would "
                f"need {total / GiB:.2f} GiB at '{what}': " + "; ".join(parts)
                + ". Release a model before loading another (del model; gc.collect()), or reuse "
                "the one that is loaded.")


_LEDGERS: dict[str, Ledger] = {}


def ledger_for(gpu: str) -> Ledger:
    """This process's ledger of ``gpu`` (one per GPU name, so every load counts)."""
    key = gpu_key(gpu)
    return _LEDGERS.setdefault(key, Ledger(key))


def model_bytes(arch: Any, load_in_4bit: bool = True, double_quant: bool = True,
                compute_bytes: int = 2) -> int:
    """Bytes of a loaded model's weights on the GPU: 4-bit linear weights and their
    constants, and everything else in the compute dtype (or all of it in 16 bits)."""
    b = count_parameters(arch)
    if not load_in_4bit:
        return b.total_params * compute_bytes
    parts = [quantized_weight_bytes(n, double_quant) for n in b.quantized_numels]
    return sum(p["weights"] + p["constants"] for p in parts) + b.kept_params * compute_bytes


def _dims(arch: Any) -> tuple[int, int, int, int, int, int]:
    heads = arch.num_attention_heads
    kv = getattr(arch, "num_key_value_heads", None) or heads
    head_dim = getattr(arch, "head_dim", None) or arch.hidden_size // heads
    return arch.num_hidden_layers, kv, head_dim, arch.hidden_size, arch.intermediate_size, arch.vocab_size


def eval_batch_bytes(arch: Any, batch: int, seq_len: int, chunk: int, compute_bytes: int = 2) -> int:
    """One perplexity batch: its hidden states, (B, T, H), the widest layer activation
    (B, T, 3 x MLP width) and one slice of logits in 16 and 32 bits plus the log-softmax."""
    _, _, _, hidden, inter, vocab = _dims(arch)
    tokens = batch * seq_len
    return tokens * (hidden + 3 * inter) * compute_bytes + chunk * vocab * (compute_bytes + 8)


def generation_bytes(arch: Any, batch: int, prompt_tokens: int, new_tokens: int,
                     compute_bytes: int = 2) -> int:
    """Greedy decoding of ``batch`` prompts of ``prompt_tokens`` and ``new_tokens`` more: the
    KV cache, (layers, 2, B, kv heads, T, head dim), the prefill's widest activation,
    (B, prompt, H + 3 x MLP width), and one step's fp32 logits and scores, (B, V)."""
    layers, kv, head_dim, hidden, inter, vocab = _dims(arch)
    cache = 2 * layers * batch * kv * (prompt_tokens + new_tokens) * head_dim * compute_bytes
    prefill = batch * prompt_tokens * (hidden + 3 * inter) * compute_bytes
    return cache + prefill + batch * vocab * 4 * 2


def training_step_bytes(config: Any, gpu: str) -> int:
    """What a training step adds to the resident model: the planner's plan of ``config``
    on ``gpu`` without the weights (resident already) and the CUDA overhead."""
    plan = plan_for_config(config, gpu=gpu)
    skip = set(STATIC[:3]) | {"base weights (16-bit)", "CUDA context and overhead"}
    return sum(v for k, v in plan.components.items() if k not in skip)


def track_model(model: Any, settings: Any, load_in_4bit: bool) -> None:
    """Register a just-loaded model in the ledger of ``settings.ledger_gpu``, as the real
    ``settings.name_or_path`` would weigh on that GPU."""
    from .architectures import architecture_config

    ledger = ledger_for(settings.ledger_gpu)
    arch = architecture_config(settings.name_or_path)
    nbytes = model_bytes(arch, load_in_4bit, settings.double_quant)
    ledger.add_model(model, f"{settings.name_or_path} ({'4-bit' if load_in_4bit else '16-bit'})",
                     nbytes)
    setattr(model, TAG, Tag(ledger, arch, 2, settings.max_length))


def add_adapter(model: Any, base: Any) -> None:
    """Count a LoRA adapter just put on a tracked ``base`` (a PEFT model): its parameters,
    kept in fp32, as many as the adapter would have on the real architecture."""
    tag = getattr(base, TAG, None)
    lora = getattr(model, "peft_config", {}).get("default")
    if not isinstance(tag, Tag) or lora is None:
        return
    from ..config import LoraSettings

    targets = lora.target_modules
    settings = LoraSettings(r=lora.r, target_modules=sorted(targets) if isinstance(targets, set) else targets)
    tag.ledger.grow_model(base, "LoRA adapter", count_parameters(tag.arch, settings).lora_params * 4)


def charge(model: Any, what: str, nbytes: Callable[[Tag], int]) -> None:
    """Charge ``nbytes(tag)`` to the ledger of a tracked model; nothing for any other model."""
    tag = getattr(model, TAG, None)
    if isinstance(tag, Tag):
        tag.ledger.charge(what, nbytes(tag))
