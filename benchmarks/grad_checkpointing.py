"""What gradient checkpointing costs per training step when the base model is frozen (CPU).

The arithmetic (chapter 7): call the forward pass F. A full fine-tune's backward pass
computes two gradients per matrix product, one for the activations and one for the
weights, about 2F; checkpointing recomputes the forward during the backward, so a step
goes from F + 2F to F + F + 2F: **+33 %**. With a frozen (4-bit) base only the activation
gradients are needed (the LoRA matrices' own weight gradients are tiny), the backward is
about 1F, and the step goes from F + F to F + F + F: **+50 %**.

This script measures it. It builds a Llama from a config with random weights (wider than
the tiny preset's, so that matrix products and not Python overhead dominate a step), and
times training steps (forward, loss, backward, optimizer step) with and without
non-reentrant gradient checkpointing, the two alternating so that a busy moment of the
machine hits both, in three cases:

* ``lora-nf4``: the base in 4-bit NF4 (bitsandbytes, as ``train`` loads it), frozen, and a
  LoRA adapter (r=16, all linear layers): QLoRA, the book's recipe;
* ``lora-fp32``: the same with an fp32 base: the recomputation without the 4-bit
  dequantisation;
* ``full-fp32``: every weight trained (AdamW): the textbook +33 % case.

It reports medians over the repeats of the CPU time of one thread (on a machine shared
with other work, wall time also counts the moments another process had the core; the
wall-time ratio is recorded beside it): step time without and with checkpointing and their
ratio, and, without checkpointing, the forward and backward times on their own (their
ratio is the "backward = 1F or 2F" of the arithmetic). The JSON result, with the machine
described, goes to ``benchmarks/results/grad_checkpointing.json``, which chapter 7 reads.

    python benchmarks/grad_checkpointing.py                      # a few minutes on one core
    python benchmarks/grad_checkpointing.py --repeats 3 --cases lora-nf4 --output /tmp/gc.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "grad_checkpointing.json"
CASES = ("lora-nf4", "lora-fp32", "full-fp32")


def llama_config(hidden: int, layers: int, vocab: int) -> Any:
    """A Llama architecture, wider than the tiny preset's (192 wide, 4 layers, 1611 tokens)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 64 * 64, num_hidden_layers=layers,
        num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64, vocab_size=vocab,
        max_position_embeddings=2048, tie_word_embeddings=True, use_cache=False,
        attn_implementation="sdpa",
    )


def build(case: str, arch: Any, seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The model of one case and its optimizer (AdamW over what it trains)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ift_tutorial.planning.dry_run import build_quantized_model

    torch.manual_seed(seed)
    if case == "lora-nf4":
        model = build_quantized_model(arch, compute_dtype=torch.float32, seed=seed)
    else:
        model = AutoModelForCausalLM.from_config(arch, dtype=torch.float32)
    if case.startswith("lora"):
        for p in model.parameters():
            p.requires_grad_(False)
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-4)


def set_checkpointing(model: torch.nn.Module, enabled: bool) -> None:
    """Non-reentrant gradient checkpointing on or off (what ``sft_config`` asks the Trainer for)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # transformers 5 renamed gradient_checkpointing_* to activation_checkpointing_*
    name = "activation" if hasattr(base, "activation_checkpointing_enable") else "gradient"
    if enabled:
        getattr(base, f"{name}_checkpointing_enable")({"use_reentrant": False})
    else:
        getattr(base, f"{name}_checkpointing_disable")()


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]
         ) -> dict[str, float]:
    """One training step: CPU seconds of forward, backward and the whole step, and its wall time.

    CPU time (``time.process_time``) counts the work this process did, whatever else the
    machine runs; on one thread it is the honest measure on a shared machine, where wall
    time also counts the moments another process had the core.
    """
    w0, t0 = time.perf_counter(), time.process_time()
    loss = model(**batch).loss
    t1 = time.process_time()
    loss.backward()
    t2 = time.process_time()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t3, w3 = time.process_time(), time.perf_counter()
    return {"forward": t1 - t0, "backward": t2 - t1, "step": t3 - t0, "wall": w3 - w0}


def measure(case: str, arch: Any, batch_size: int, seq_len: int, repeats: int, warmup: int) -> dict[str, Any]:
    model, optimizer = build(case, arch)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, arch.vocab_size, (batch_size, seq_len), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    times: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for i in range(warmup + repeats):
        for enabled in (False, True) if i % 2 == 0 else (True, False):  # alternate who goes first
            set_checkpointing(model, enabled)
            t = step(model, optimizer, batch)
            if i >= warmup:
                times[enabled].append(t)

    def median(enabled: bool, key: str) -> float:
        return statistics.median(t[key] for t in times[enabled])

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    off, on = median(False, "step"), median(True, "step")
    result = {
        "trainable_parameters": trainable,
        "step_seconds_without": round(off, 4),
        "step_seconds_with": round(on, 4),
        "ratio": round(on / off, 3),
        "forward_seconds": round(median(False, "forward"), 4),
        "backward_seconds": round(median(False, "backward"), 4),
        "backward_over_forward": round(median(False, "backward") / median(False, "forward"), 3),
        "wall_ratio": round(median(True, "wall") / median(False, "wall"), 3),
        "steps_seconds_without": [round(t["step"], 4) for t in times[False]],
        "steps_seconds_with": [round(t["step"], 4) for t in times[True]],
    }
    del model, optimizer
    return result


def machine(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "load_average_1min_before": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("torch", "transformers", "peft", "bitsandbytes")},
        "note": "a machine shared with other work: CPU time of one thread, medians of alternating runs",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9, help="measured steps per setting (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads: 1 makes CPU time a fair measure on a shared machine")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON result; '-' for none")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}: choose from {', '.join(CASES)}")

    from ift_tutorial.quiet import silence_known_messages

    silence_known_messages()
    torch.set_num_threads(args.threads)
    arch = llama_config(args.hidden, args.layers, args.vocab)
    report: dict[str, Any] = {
        "what": "median CPU seconds (time.process_time, one thread) per training step (forward, loss, "
                "backward, AdamW step) without and with non-reentrant gradient checkpointing; "
                "ratio = with / without; wall_ratio the same from wall-clock medians",
        "arithmetic": {"full fine-tune": "(F + F + 2F) / (F + 2F) = 4/3",
                       "frozen base + LoRA": "(F + F + F) / (F + F) = 3/2"},
        "model": {"architecture": "LlamaForCausalLM, random weights", "hidden_size": arch.hidden_size,
                  "intermediate_size": arch.intermediate_size, "layers": arch.num_hidden_layers,
                  "heads": arch.num_attention_heads, "vocab_size": arch.vocab_size,
                  "lora": "r=16, alpha=32, all-linear"},
        "batch": {"batch_size": args.batch_size, "seq_len": args.seq_len},
        "repeats": args.repeats, "warmup": args.warmup,
        "machine": machine(args.threads),
        "date": datetime.date.today().isoformat(),
        "cases": {},
    }
    start = time.perf_counter()
    print(f"{'case':<11}{'trainable':>12}{'step off':>10}{'step on':>9}{'ratio':>7}{'bwd/fwd':>9}")
    for case in cases:
        r = measure(case, arch, args.batch_size, args.seq_len, args.repeats, args.warmup)
        report["cases"][case] = r
        print(f"{case:<11}{r['trainable_parameters']:>12,}{r['step_seconds_without']:>9.3f}s"
              f"{r['step_seconds_with']:>8.3f}s{r['ratio']:>7.2f}{r['backward_over_forward']:>9.2f}", flush=True)
    report["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.output != "-":
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        root = HERE.parent
        print(f"result: {out.resolve().relative_to(root) if out.resolve().is_relative_to(root) else out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
