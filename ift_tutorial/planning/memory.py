"""Where the GPU memory of a QLoRA run goes, component by component.

The planner counts a model's parameters on PyTorch's ``meta`` device (shapes only,
no memory, nothing downloaded; :mod:`ift_tutorial.planning.parameters`) and turns them
into bytes:

- **4-bit base weights**: every ``nn.Linear`` of the decoder layers (not the output
  head), half a byte per weight, plus their quantisation constants (one fp32 absmax
  per block of 64, or with double quantisation one byte per block plus one fp32 per
  256 blocks; see :mod:`ift_tutorial.scratch.quantization`).
- **16-bit parts**: embeddings, output head, norms and biases stay in the compute
  dtype (bitsandbytes quantises only linear weights; the head is left out because
  its errors would land directly on the logits).
- **LoRA**: r * (in + out) parameters per adapted layer and their gradients. PEFT
  makes them fp32; TRL's ``SFTTrainer`` casts them to bf16 when the base is
  quantised (QLoRA's recipe), and training keeps that only in a bf16 run: there they
  take 2 bytes each, in an fp16 run (a T4) and on a CPU 4 (see
  :func:`ift_tutorial.planning.hardware.trainable_dtype`). Then the optimizer states: torch's
  AdamW keeps two moments in the parameters' dtype (8 bytes per fp32 parameter),
  bitsandbytes' 32-bit AdamW two fp32 moments, 8-bit AdamW two bytes plus block constants.
- **Activations** (an estimate): what autograd keeps for the backward pass. Per
  decoder layer and token, a Llama/Qwen block with LoRA on every linear layer keeps
  about ``(56 + 3e) h + (8 + 3e) i + 31 r`` bytes (e: bytes of the compute dtype,
  h: hidden size, i: MLP width, r: LoRA rank). The coefficients count the tensors
  saved for backward by the transformers + PEFT + bitsandbytes code path, measured
  with ``torch.autograd.graph.saved_tensors_hooks`` (fp32 copies made by the RMSNorm
  and by the fp32 adapters dominate, not the 16-bit matmul inputs). Attention uses
  SDPA/flash kernels that keep no seq x seq matrix. With gradient checkpointing
  only each layer's input (``e h`` bytes per token) is kept, and one layer at a
  time is recomputed in the backward pass.
- **Logits**: the loss is computed in fp32 over the whole vocabulary; in its
  backward pass the saved log-probabilities, their gradient and the logits'
  gradient coexist: about 12 bytes x tokens x vocabulary. With Qwen's 152k-token
  vocabulary this is often the largest activation of all.
- **Workspace**: bitsandbytes dequantises one weight matrix at a time to the compute
  dtype for each matmul.
- **Overhead**: the CUDA context, cuBLAS workspaces and allocator slack (a fixed
  allowance; PyTorch's ``max_memory_allocated`` does not see it, ``nvidia-smi`` does).

Several GPUs (``strategy``, ``num_gpus``): data parallelism gives every GPU its own
examples, so activations and logits never shrink. What is split N ways depends on the
strategy (:data:`~ift_tutorial.planning.sharding.SHARDING`): nothing for DDP; the optimizer
states for ZeRO-1; also the gradients for ZeRO-2; also the weights for ZeRO-3 and FSDP,
which then gather each decoder layer whole for the moment it computes. The parts outside the
decoder layers are whole at the peak too: FSDP1 wrapped per decoder layer
(``configs/accelerate/fsdp_qlora.yaml``) keeps its root unit, the embeddings, final norm and
head, gathered from the start of the forward pass to the end of the backward pass
(``torch.distributed.fsdp``'s ``_post_forward`` does not reshard the root); FSDP2 as
accelerate wraps it (``fsdp2_prepare_model``) and ZeRO-3 have the head and final norm whole
while the logits are computed.

"GB" in this module means GiB (2**30 bytes), the unit PyTorch and ``nvidia-smi``
report. All numbers are estimates for planning; ``ift-tutorial dry-run`` measures
(:mod:`ift_tutorial.planning.measure` counts the bytes a model actually holds), and
:func:`ift_tutorial.book.plots.plot_plan` draws a plan.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, ExperimentConfig, LoraSettings, load_config
from .parameters import ParameterBreakdown, count_parameters
from .sharding import GATHERED, SHARDING, STRATEGIES

GiB = 2**30

#: Usable memory of common training GPUs, in GiB (what ``torch.cuda`` reports).
GPUS: dict[str, float] = {
    "t4": 14.75,  # 16 GB, Colab's free GPU, as torch sees it there; fp16 compute (no bf16)
    "l4": 22.0,  # 24 GB
    "a100-40gb": 39.4,
    "a100-80gb": 79.2,
    "h100": 79.1,  # 80 GB
}

#: Compute capability of those GPUs: from 8.0 on they compute in bf16, below in fp16.
GPU_CAPABILITY: dict[str, tuple[int, int]] = {
    "t4": (7, 5), "l4": (8, 9), "a100-40gb": (8, 0), "a100-80gb": (8, 0), "h100": (9, 0),
}

#: CUDA context + cuBLAS workspace + allocator slack, in bytes (an allowance).
CUDA_OVERHEAD_BYTES = int(0.75 * GiB)

#: Optimizer state bytes per fp32 trainable parameter.
OPTIMIZER_STATE_BYTES: dict[str, float] = {
    "adamw_torch": 8.0,  # two fp32 moments
    "adamw_torch_fused": 8.0,
    "adamw_hf": 8.0,
    "paged_adamw_32bit": 8.0,
    "adamw_8bit": 2.0 + 8 / 256,  # two uint8 moments + an fp32 absmax per 256 values each
    "adamw_bnb_8bit": 2.0 + 8 / 256,
    "paged_adamw_8bit": 2.0 + 8 / 256,
    "sgd": 0.0,  # without momentum
}

#: torch optimizers whose moments take the parameters' dtype (bitsandbytes' keep their own).
_STATES_IN_PARAM_DTYPE = ("adamw_torch", "adamw_torch_fused", "adamw_hf")


def optimizer_state_bytes(optim: str, adapter_bytes: int = 4) -> float:
    """Optimizer state bytes per trainable parameter of ``adapter_bytes`` bytes.

    Example:
        >>> optimizer_state_bytes("adamw_torch", 2), optimizer_state_bytes("paged_adamw_8bit", 2)
        (4.0, 2.03125)
    """
    per_fp32 = OPTIMIZER_STATE_BYTES[optim]
    return per_fp32 * adapter_bytes / 4 if optim in _STATES_IN_PARAM_DTYPE else per_fp32


#: Components that are exact tensor sizes (the rest are estimates).
STATIC = ("base weights (4-bit)", "quantisation constants",
          "16-bit parts (embeddings, head, norms, biases)", "LoRA parameters",
          "LoRA gradients", "optimizer states")


def quantized_weight_bytes(numel: int, double_quant: bool, blocksize: int = 64) -> dict[str, int]:
    """Bytes bitsandbytes allocates for one 4-bit weight: packed codes and constants.

    Constants also include the small per-tensor tables bitsandbytes keeps: the 16
    NF4 levels (fp32) and, with double quantisation, a copy of the 256-entry 8-bit
    code book and the fp32 offset.
    """
    packed = math.ceil(numel / 2)
    blocks = math.ceil(numel / blocksize)
    if double_quant:
        constants = blocks + 4 * math.ceil(blocks / 256) + 4 * 256 + 4
    else:
        constants = 4 * blocks
    return {"weights": packed, "constants": constants + 4 * 16}


def activation_bytes_per_layer_token(hidden: int, intermediate: int, r: int, e: int) -> float:
    """Estimated bytes autograd keeps per decoder layer and token (no checkpointing)."""
    return (56 + 3 * e) * hidden + (8 + 3 * e) * intermediate + 31 * r


@dataclass
class MemoryPlan:
    """A memory estimate: bytes per component, and the settings it was made for."""

    components: dict[str, int]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.components.values())

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GiB

    def fits(self, gpu: str, margin: float = 0.0) -> bool:
        """True when the estimate is below the GPU's usable memory (minus ``margin`` GiB)."""
        return self.total_gb <= gpu_memory_gb(gpu) - margin

    def table(self) -> dict[str, bool]:
        """Fit for every GPU in :data:`GPUS`."""
        return {name: self.fits(name) for name in GPUS}

    def to_dict(self, gpu: str | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "components_gb": {k: round(v / GiB, 3) for k, v in self.components.items()},
            "components_bytes": dict(self.components),
            "total_gb": round(self.total_gb, 3),
            "settings": self.settings,
            "gpus": {name: {"memory_gb": GPUS[name], "fits": ok} for name, ok in self.table().items()},
        }
        if gpu is not None:
            d["gpu"] = gpu
            d["fits"] = self.fits(gpu)
        return d


def gpu_key(gpu: str) -> str:
    """A GPU's key in :data:`GPUS` (case-insensitive), or a ConfigError listing them."""
    key = gpu.lower()
    if key not in GPUS:
        raise ConfigError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
    return key


def gpu_memory_gb(gpu: str) -> float:
    return GPUS[gpu_key(gpu)]


def plan_memory(
    arch_config: Any,
    *,
    seq_len: int,
    batch_size: int,
    lora: LoraSettings | None = None,
    gradient_checkpointing: bool = True,
    optim: str = "paged_adamw_8bit",
    compute_bytes: int = 2,
    double_quant: bool = True,
    load_in_4bit: bool = True,
    bf16: bool = False,
    adapter_bytes: int | None = None,
    strategy: str = "single",
    num_gpus: int = 1,
    overhead_bytes: int = CUDA_OVERHEAD_BYTES,
    breakdown: ParameterBreakdown | None = None,
) -> MemoryPlan:
    """Estimate the peak memory of one GPU (or the CPU) during QLoRA training.

    Args:
        arch_config: a ``transformers`` config (from
            :func:`ift_tutorial.planning.architectures.architecture_config`).
        seq_len, batch_size: tokens per example and examples per device and step.
        lora: rank and target modules.
        gradient_checkpointing: keep only layer inputs and recompute the rest.
        optim: an optimizer name of :data:`OPTIMIZER_STATE_BYTES`.
        compute_bytes: bytes per value of the compute dtype (2: fp16/bf16; 4: fp32 on CPU).
        double_quant: quantise the absmax constants too.
        load_in_4bit: False plans a 16-bit LoRA run (weights in the compute dtype).
        bf16: the run computes in bf16 (an Ampere or newer GPU); False: fp16 (a T4)
            or fp32 (a CPU).
        adapter_bytes: bytes per LoRA parameter (and gradient); default: 2 in a bf16
            run of a quantised base (TRL's bf16 cast is kept), else 4 (fp32: training
            undoes the cast, which an fp16 run's GradScaler cannot take).
        strategy: a key of :data:`~ift_tutorial.planning.sharding.SHARDING`: single, ddp
            (everything replicated), zero1 (optimizer states sharded over ``num_gpus``),
            zero2 (and gradients), zero3, fsdp (FSDP1) or fsdp2 (and weights; one decoder
            layer gathered at a time, plus the parts outside the layers that the strategy
            keeps whole).
        overhead_bytes: CUDA context etc.; 0 when comparing with CPU tensor bytes.

    Example:
        >>> from ift_tutorial.planning.architectures import architecture_config
        >>> from ift_tutorial import plan_memory
        >>> plan = plan_memory(architecture_config("Qwen/Qwen2.5-7B"), seq_len=1024, batch_size=2)
        >>> round(plan.total_gb) > 0
        True
    """
    lora = lora or LoraSettings()
    if optim not in OPTIMIZER_STATE_BYTES:
        raise ConfigError(f"optimizer {optim!r} unknown to the planner; known: "
                          f"{', '.join(OPTIMIZER_STATE_BYTES)}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if num_gpus < 1 or seq_len < 1 or batch_size < 1:
        raise ConfigError("num_gpus, seq_len and batch_size must be at least 1")
    b = breakdown or count_parameters(arch_config, lora)
    if adapter_bytes is None:
        adapter_bytes = 2 if (bf16 and load_in_4bit) else 4
    sharding = SHARDING[strategy]
    n_params, n_grads, n_states = (num_gpus if split else 1 for split in (
        sharding.parameters, sharding.gradients, sharding.optimizer_states))
    e = compute_bytes

    if load_in_4bit:
        parts = [quantized_weight_bytes(n, double_quant) for n in b.quantized_numels]
        weights4 = sum(p["weights"] for p in parts)
        constants = sum(p["constants"] for p in parts)
    else:
        weights4, constants = b.quantized_params * e, 0
    kept = b.kept_params * e
    comps: dict[str, int] = {
        "base weights (4-bit)" if load_in_4bit else "base weights (16-bit)": weights4 // n_params,
        "quantisation constants": constants // n_params,
        "16-bit parts (embeddings, head, norms, biases)": kept // n_params,
        "LoRA parameters": b.lora_params * adapter_bytes // n_params,
        "LoRA gradients": b.lora_params * adapter_bytes // n_grads,
        "optimizer states": int(b.lora_params * optimizer_state_bytes(optim, adapter_bytes)) // n_states,
    }
    if n_params > 1:  # beside each GPU's shards, the full copy of what is gathered at the peak
        gathered = {"root": b.root_params, "head": b.head_params}[sharding.gathered]
        comps[GATHERED] = gathered * e
    tokens = seq_len * batch_size
    per_layer = activation_bytes_per_layer_token(b.hidden_size, b.intermediate_size, lora.r, e)
    if gradient_checkpointing:
        # layer inputs for all layers + one layer's full activations while recomputing
        act = tokens * (b.num_layers * e * b.hidden_size + per_layer)
    else:
        act = tokens * b.num_layers * per_layer
    comps["activations"] = int(act)
    comps["logits and loss (fp32)"] = 12 * tokens * b.vocab_size
    # one weight matrix dequantised for a matmul (4-bit) ...
    workspace = max(b.quantized_numels) * e if load_in_4bit else 0
    if n_params > 1:  # ... and one decoder layer gathered from all ranks
        workspace += b.quantized_per_layer // 2 if load_in_4bit else b.quantized_per_layer * e
    comps["matmul workspace"] = workspace
    comps["CUDA context and overhead"] = overhead_bytes
    settings = dict(seq_len=seq_len, batch_size=batch_size, lora_r=lora.r,
                    target_modules=lora.target_modules, gradient_checkpointing=gradient_checkpointing,
                    optim=optim, compute_bytes=e, bf16=bf16, adapter_bytes=adapter_bytes,
                    double_quant=double_quant,
                    load_in_4bit=load_in_4bit, strategy=strategy, num_gpus=num_gpus,
                    total_params=b.total_params, quantized_params=b.quantized_params,
                    lora_params=b.lora_params)
    return MemoryPlan(comps, settings)


def resolve_optim(optim: str | None, on_gpu: bool = True) -> str:
    """The config's ``auto`` optimizer, as :func:`ift_tutorial.planning.hardware.detect_precision` picks it."""
    if optim in (None, "auto"):
        return "paged_adamw_8bit" if on_gpu else "adamw_torch"
    return optim


def plan_for_config(
    config: ExperimentConfig,
    *,
    seq_len: int | None = None,
    batch_size: int | None = None,
    gradient_checkpointing: bool | None = None,
    optim: str | None = None,
    strategy: str = "single",
    num_gpus: int = 1,
    on_gpu: bool = True,
    num_layers: int | None = None,
    gpu: str = "t4",
) -> MemoryPlan:
    """Plan a config's run on a GPU (or ``on_gpu=False``: CPU tensors, fp32, no CUDA overhead).

    ``num_layers`` cuts the architecture to its first layers (the dry run's slice).
    ``gpu`` decides what ``compute_dtype: auto`` means: fp16 on a T4 (whose run then
    keeps fp32 adapters), bf16 from an A100 or L4 on.

    Example:
        >>> from ift_tutorial import load_config, plan_for_config
        >>> plan = plan_for_config(load_config("qwen2.5-7b"))
        >>> 5 < plan.total_gb < 15  # fits a 16 GB T4
        True
    """
    from .architectures import architecture_config

    arch = architecture_config(config.model.name_or_path)
    if num_layers is not None:
        arch.num_hidden_layers = num_layers
    compute = config.model.compute_dtype
    if compute == "auto":
        e = 2 if on_gpu else 4
        bf16 = on_gpu and GPU_CAPABILITY[gpu_key(gpu)] >= (8, 0)
    else:
        e = 4 if compute in ("fp32", "float32") else 2
        bf16 = on_gpu and compute in ("bf16", "bfloat16")
    gc = config.training.gradient_checkpointing if gradient_checkpointing is None \
        else gradient_checkpointing
    return plan_memory(
        arch,
        seq_len=seq_len or config.model.max_length,
        batch_size=batch_size or config.training.per_device_train_batch_size,
        lora=config.lora,
        gradient_checkpointing=gc,
        optim=resolve_optim(optim or config.training.optim, on_gpu),
        compute_bytes=e,
        bf16=bf16,
        double_quant=config.model.double_quant,
        load_in_4bit=config.model.load_in_4bit,
        strategy=strategy,
        num_gpus=num_gpus,
        overhead_bytes=CUDA_OVERHEAD_BYTES if on_gpu else 0,
    )


def format_plan(plan: MemoryPlan, gpu: str | None = None) -> str:
    """A plain-text table of the components and the fit on each GPU."""
    width = max(len(k) for k in plan.components) + 2
    lines = [f"{'component':<{width}}{'GiB':>8}"]
    for k, v in plan.components.items():
        lines.append(f"{k:<{width}}{v / GiB:>8.2f}")
    lines.append(f"{'total':<{width}}{plan.total_gb:>8.2f}")
    s = plan.settings
    lines.append(f"(per GPU, strategy {s['strategy']}, {s['num_gpus']} GPU(s), seq_len "
                 f"{s['seq_len']}, batch {s['batch_size']}, gradient checkpointing "
                 f"{'on' if s['gradient_checkpointing'] else 'off'}, optimizer {s['optim']})")
    for name, ok in plan.table().items():
        mark = "fits" if ok else "does not fit"
        star = "  <-" if gpu and name == gpu.lower() else ""
        lines.append(f"  {name:<10} {GPUS[name]:>5.1f} GiB  {mark}{star}")
    return "\n".join(lines)


def plan_memory_cli(args: argparse.Namespace) -> int:
    """``ift-tutorial plan-memory``: print the estimate (or JSON); exit 0 when it fits."""
    config = load_config(args.config, args.overrides)
    gpu_memory_gb(args.gpu)  # validate early, with the list of known GPUs
    plan = plan_for_config(
        config,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        gradient_checkpointing=False if args.no_gradient_checkpointing else None,
        optim=args.optim,
        strategy=args.strategy,
        num_gpus=args.num_gpus,
        gpu=args.gpu,
    )
    if args.json:
        print(json.dumps(plan.to_dict(args.gpu), indent=2))
    else:
        from ..paths import display_path

        print(f"{config.name}: {display_path(config.model.name_or_path)}")
        print(format_plan(plan, args.gpu))
    return 0
