"""A QLoRA dry run: a preset's real architecture, random weights, real training steps.

Nothing is downloaded: the architecture comes from
:func:`ift_tutorial.planning.architectures.architecture_config`, the weights are random
(normal, std 0.02), and every ``nn.Linear`` of the decoder layers becomes a
bitsandbytes ``Linear4bit`` holding NF4 codes, exactly what loading a checkpoint
in 4 bits produces. PEFT adds the preset's LoRA adapters, and a few optimizer
steps run on a random-token batch. The run reports the memory it measured beside
the planner's estimate (:mod:`ift_tutorial.planning.memory`) for the same slice.

On a GPU the whole model fits (a 7B model in 4 bits is ~5 GiB), and the peak is
``torch.cuda.max_memory_allocated``. On a CPU, a slice of 2 decoder layers keeps it
to minutes; memory is measured as the bytes of the tensors the model and the
optimizer hold, plus the process's peak resident memory (``VmHWM``) during the
steps minus its size before the model was built.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, ExperimentConfig, load_config
from ..training.devices import to_model_device
from .hardware import detect_precision, trainable_dtype
from ..loading import disable_cpu_weight_repacking
from ..paths import display_path
from .measure import measure_model_bytes
from .memory import CUDA_OVERHEAD_BYTES, STATIC, GiB, MemoryPlan, plan_memory, resolve_optim



def _random_(t: torch.Tensor, name: str) -> torch.Tensor:
    # norms start at one, like a trained model's; everything else small and normal
    return t.fill_(1.0) if "norm" in name else t.normal_(0.0, 0.02)


def build_quantized_model(
    arch_config: Any,
    *,
    compute_dtype: torch.dtype,
    double_quant: bool = True,
    quant_type: str = "nf4",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The architecture with random weights, its linear layers in 4-bit (bitsandbytes).

    The model is created on the ``meta`` device first (no memory), then each weight is
    materialised on ``device``: linear weights one at a time, straight into 4-bit, so the
    16-bit model never exists in full. On a GPU (``device="cuda"``) the random values
    are drawn and quantised there: a full 7B model takes seconds, not minutes.

    Example:
        >>> from ift_tutorial.planning.architectures import architecture_config
        >>> m = build_quantized_model(architecture_config("tiny"), compute_dtype=torch.float32)
        >>> type(m.model.layers[0].self_attn.q_proj).__name__
        'Linear4bit'
    """
    import bitsandbytes as bnb
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with init_empty_weights(include_buffers=False):  # rotary buffers stay real
        model = AutoModelForCausalLM.from_config(arch_config, dtype=compute_dtype)
    head = model.get_output_embeddings()
    storage = compute_dtype if compute_dtype != torch.float32 else torch.uint8  # as loading.py
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, nn.Linear) or child is head:
                continue
            q = bnb.nn.Linear4bit(child.in_features, child.out_features,
                                  bias=child.bias is not None, compute_dtype=compute_dtype,
                                  compress_statistics=double_quant, quant_type=quant_type,
                                  quant_storage=storage, device="meta")
            w = torch.empty(child.out_features, child.in_features, dtype=compute_dtype, device=device)
            q.weight = bnb.nn.Params4bit(_random_(w, name), requires_grad=False,
                                         compress_statistics=double_quant,
                                         quant_type=quant_type, quant_storage=storage).to(device)
            if child.bias is not None:
                q.bias = nn.Parameter(torch.zeros(child.out_features, dtype=compute_dtype, device=device),
                                      requires_grad=False)
            setattr(module, child_name, q)
    for name, module in model.named_modules():
        for pname, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                t = _random_(torch.empty(p.shape, dtype=compute_dtype, device=device), f"{name}.{pname}")
                module._parameters[pname] = nn.Parameter(t, requires_grad=False)
        for bname, b in list(module.named_buffers(recurse=False)):  # rotary frequencies
            if b is not None:
                module._buffers[bname] = b.to(device)
    if getattr(arch_config, "tie_word_embeddings", False):
        model.get_output_embeddings().weight = model.get_input_embeddings().weight
    for p in model.parameters():
        p.requires_grad_(False)
    disable_cpu_weight_repacking(model)  # see loading.py: keeps gradients flowing on CPU
    return model


def make_optimizer(params: list[nn.Parameter], optim: str, lr: float) -> torch.optim.Optimizer:
    """The optimizer a ``transformers`` Trainer would build for ``optim``."""
    import bitsandbytes as bnb

    if optim in ("adamw_torch", "adamw_torch_fused", "adamw_hf"):
        return torch.optim.AdamW(params, lr=lr)
    if optim in ("adamw_8bit", "adamw_bnb_8bit"):
        return bnb.optim.AdamW8bit(params, lr=lr)
    if optim == "paged_adamw_8bit":
        return bnb.optim.PagedAdamW8bit(params, lr=lr)
    if optim == "paged_adamw_32bit":
        return bnb.optim.PagedAdamW32bit(params, lr=lr)
    if optim == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ConfigError(f"dry run: optimizer {optim!r} not supported")


def _rss_bytes(field: str = "VmRSS") -> int | None:
    """Resident memory of this process from /proc (Linux), or None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux: writing 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def dry_run(
    config: ExperimentConfig,
    *,
    layers: int | None = None,
    steps: int = 3,
    seq_len: int | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Build, quantise, adapt and train a slice of a preset's architecture.

    Returns:
        A report: settings, losses, tokens/s, ``measured`` (bytes per component and
        the peak), ``planned`` (the planner's components for the same slice) and
        ``planned_over_measured``.
    """
    from peft import LoraConfig, get_peft_model

    from .architectures import architecture_config

    on_gpu = torch.cuda.is_available()
    precision = detect_precision(config.model.compute_dtype, config.training.optim)
    optim = resolve_optim(config.training.optim, on_gpu)
    arch = architecture_config(config.model.name_or_path)
    # a CPU gets a 2-layer slice of a large model; small models (the tiny preset) run whole
    small = 12 * arch.hidden_size**2 * arch.num_hidden_layers < 100_000_000
    if layers is None:  # 0 is an error below, not "the default"
        layers = arch.num_hidden_layers if on_gpu or small else min(2, arch.num_hidden_layers)
    if layers < 1:
        raise ConfigError("--layers must be at least 1")
    arch.num_hidden_layers = layers
    if hasattr(arch, "max_window_layers"):
        arch.max_window_layers = layers
    seq_len = seq_len or config.model.max_length
    batch_size = batch_size or config.training.per_device_train_batch_size
    dtype = precision.compute_dtype

    gc.collect()
    rss_before = _rss_bytes()
    model = build_quantized_model(arch, compute_dtype=dtype, double_quant=config.model.double_quant,
                                  quant_type=config.model.quant_type, seed=config.training.seed)
    if config.training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = config.lora
    model = get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias=lora.bias,
        target_modules=lora.target_modules, use_rslora=lora.use_rslora, task_type="CAUSAL_LM"))
    # As in training: TRL's bf16 cast for a quantised base stays only in a bf16 run;
    # an fp16 run (a T4) and a CPU keep fp32 adapters (hardware.trainable_dtype).
    adapter_dtype = trainable_dtype(precision)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(adapter_dtype)
    device = torch.device("cuda" if on_gpu else "cpu")
    model.to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optim, config.training.learning_rate)
    generator = torch.Generator().manual_seed(config.training.seed)
    ids = to_model_device(torch.randint(0, arch.vocab_size, (batch_size, seq_len), generator=generator),
                          model)  # (B, T)

    gc.collect()
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    hwm_reset = _reset_peak_rss()
    losses, times, measured = [], [], {}
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        measured = measure_model_bytes(model, opt)  # gradients still present here
        opt.zero_grad(set_to_none=True)
        if on_gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[1:] or times  # the first step pays for warm-up and optimizer state creation
    tokens_per_s = batch_size * seq_len * len(timed) / sum(timed)

    e = torch.finfo(dtype).bits // 8
    adapter_bytes = trainable[0].element_size()
    plan: MemoryPlan = plan_memory(
        arch, seq_len=seq_len, batch_size=batch_size, lora=lora,
        gradient_checkpointing=config.training.gradient_checkpointing, optim=optim,
        compute_bytes=e, bf16=precision.bf16, double_quant=config.model.double_quant,
        adapter_bytes=adapter_bytes,
        overhead_bytes=CUDA_OVERHEAD_BYTES if on_gpu else 0)
    if on_gpu:
        peak = torch.cuda.max_memory_allocated()
        peak_note = "torch.cuda.max_memory_allocated (CUDA context not included)"
        planned_total = plan.total_bytes - CUDA_OVERHEAD_BYTES
    else:
        hwm = _rss_bytes("VmHWM") if hwm_reset else None
        peak = (hwm - rss_before) if (hwm is not None and rss_before is not None) else None
        peak_note = "peak resident memory during the steps minus the process before the model"
        planned_total = plan.total_bytes
    report = {
        "preset": config.name,
        "model": display_path(config.model.name_or_path),
        "device": describe_device(),
        "layers": layers,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "steps": steps,
        "compute_dtype": str(dtype).replace("torch.", ""),
        "optim": optim,
        "gradient_checkpointing": config.training.gradient_checkpointing,
        "losses": losses,
        "seconds_per_step": sum(timed) / len(timed),
        "tokens_per_s": tokens_per_s,
        "measured": {"components_bytes": measured, "static_bytes": sum(measured.values()),
                     "peak_bytes": peak, "peak_note": peak_note},
        "planned": {"components_bytes": plan.components, "static_bytes":
                    sum(plan.components[k] for k in STATIC),
                    "total_bytes": planned_total},
    }
    if peak:
        report["planned_over_measured"] = planned_total / peak
    return report


def describe_device() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({torch.get_num_threads()} threads)"


def format_report(r: dict[str, Any]) -> str:
    """The report as a small text table: measured vs planned per component."""
    m, p = r["measured"]["components_bytes"], r["planned"]["components_bytes"]
    lines = [f"{r['preset']} ({r['model']}), {r['layers']} layer(s), {r['device']}, "
             f"{r['compute_dtype']}, batch {r['batch_size']} x {r['seq_len']} tokens",
             f"losses: {', '.join(f'{x:.3f}' for x in r['losses'])}; "
             f"{r['tokens_per_s']:.0f} tokens/s ({r['seconds_per_step']:.2f} s/step)",
             f"{'component':<50}{'planned GiB':>12}{'measured GiB':>14}"]
    for k, v in p.items():
        got = f"{m[k] / GiB:>14.3f}" if k in m else f"{'-':>14}"
        lines.append(f"{k:<50}{v / GiB:>12.3f}{got}")
    peak = r["measured"]["peak_bytes"]
    lines.append(f"{'total / peak':<50}{r['planned']['total_bytes'] / GiB:>12.3f}"
                 f"{(peak / GiB if peak else float('nan')):>14.3f}")
    lines.append(f"(peak: {r['measured']['peak_note']})")
    return "\n".join(lines)


def dry_run_cli(args: argparse.Namespace) -> int:
    """``ift-tutorial dry-run``: run the steps and print the report (or JSON)."""
    config = load_config(args.config, args.overrides)
    if args.steps < 1:
        raise ConfigError("--steps must be at least 1")
    report = dry_run(config, layers=args.layers, steps=args.steps, seq_len=args.seq_len,
                     batch_size=args.batch_size)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_report(report))
    return 0
