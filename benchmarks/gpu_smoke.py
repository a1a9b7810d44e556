"""GPU smoke test of the 7B path, sized for one short GPU loan (at most 8 minutes on one H100).

Nothing is downloaded, and it needs nothing beyond the project's installed dependencies
(torch with CUDA, transformers, trl, peft, bitsandbytes, accelerate, safetensors, datasets:
what ``pip install -e .`` gives a GPU machine); no wheel has to travel with it.

Three cases, each in its own process under its own timeout (a crash or a hang does not take
the others down), in this order:

* ``qwen2.5-7b:fp16``: the T4 recipe under a T4's memory: the process may allocate no more
  than the planner's usable T4 memory (``GPUS["t4"]``, 14.75 GiB) less its CUDA allowance
  (``CUDA_OVERHEAD_BYTES``), through ``torch.cuda.set_per_process_memory_fraction``;
* ``llama-3.1-8b:fp16``: the other architecture and vocabulary, under the T4 cap;
* ``qwen2.5-7b:bf16``: the A100/L4/H100 recipe, uncapped. Last: the T4 cases are the
  ledger's question, and a run that runs short of time loses the last case.

Each case goes through the package's own code, as a reader's run would:

1. ``checkpoint``: a full-size random checkpoint of the preset's real architecture is written
   to local temporary storage (RAM-backed ``/dev/shm`` when it has room): 16-bit safetensors
   shards of at most 4 GiB with their index, written tensor by tensor on the CPU (values
   tiled from one seeded block of N(0, 0.02) draws, norms 1; nothing is built on the GPU),
   ``config.json``, ``generation_config.json`` and a stand-in tokenizer with the preset's
   special tokens (``rehearsal.standins.stand_in_tokenizer``). The output head's rows of the
   stop tokens are zero, so a random model never ends an answer early: every decoding runs
   to its length. Both Qwen cases share one checkpoint (where the disk has room for it
   beside Llama's). A config points at it with ``model.load_from`` (``model.name_or_path``
   stays the hub id, so the planner and the ledger know the real model) and
   ``model.ledger_gpu=t4``: the ledger charges the real model as in a rehearsal
   (``planning.ledger``);
2. ``train``: ``training.trainer.train(config, out, evaluate=False)``: ``load_model``'s real
   ``from_pretrained`` with a ``BitsAndBytesConfig``, then one optimizer step of the preset's
   per-device batch (2) with gradient accumulation 2, on examples of ``max_length`` (1024)
   tokens; the trainer writes ``checkpoint-1``;
3. ``resume``: ``train`` again to step 2 with ``resume="auto"``: it loads the model again and
   continues from ``checkpoint-1``;
4. ``load_tuned``: ``load_for_inference(config, adapter)``, chapter 8's tuned model;
5. ``perplexity``: ``evaluation.perplexity.perplexity`` on a batch of the preset's
   ``eval_batch_size`` (8) conversations at ``max_length``, over the real vocabulary
   (152,064 for Qwen);
6. ``generate``: 8 prompts decoded greedily to 320 new tokens (``generate_responses``);
7. ``merge``: chapter 8's shard-wise merge of the adapter into the random checkpoint
   (``inference.merging.merge_adapter``, on the CPU), and a check of the first adapted
   tensors (``check_merged_tensors``). It runs in a separate CPU-only process while steps
   4-6 use the GPU (``--no-overlap`` runs it in sequence, as the chapter does);
8. ``load_merged``: the merged folder loaded in 4 bits beside the tuned model, as chapter 8
   does on a 7B, and its logits on a probe compared with the tuned model's;
9. ``release``: the merged model released (the ledger must stop counting it);
10. ``generate_cli``: ``generate_cli(..., loaded=(model, tokenizer))`` with the tuned model
    still in memory (two prompts, the preset's ``max_new_tokens``).

Per phase the report records the seconds (beside the estimate), the peak GPU memory and the
ledger's figure for that phase. Measured: ``torch.cuda.max_memory_allocated`` (reset at the
phase's start) plus what the process holds outside PyTorch's allocator (CUDA context, kernel
images, cuBLAS handles, bitsandbytes' paged optimizer states: ``mem_get_info``'s used memory
less ``memory_reserved``, read at the phase's end); ``max_memory_reserved`` and the device's
used memory are recorded beside it. The ledger's figure: the largest total it charged during
the phase (CUDA allowance + resident models + the step in hand), or, in a phase that charges
nothing, its allowance plus the resident models.

The band, asserted per phase: ``0.5 <= measured / ledger <= 1.0``.

* Upper bound 1.0: the ledger is a planning estimate meant to be conservative. A phase that
  holds more than it charged means a rehearsal on a CPU would pass a run that runs out of
  memory on a T4: the failure the ledger exists to prevent. An H100's CUDA context is larger
  than a T4's, so the measured side errs on the heavy side.
* Lower bound 0.5: a ledger that charges more than twice what a phase holds would refuse
  runs that fit, and would no longer say which phase is the tight one. Resident 4-bit models
  dominate most phases, so a correct ledger lands well above one half.
* Not counted as measured: memory PyTorch keeps cached but unallocated (reserved): the
  allocator frees it and retries before it reports out of memory, also under the T4 cap.

Time: before it starts it prints its estimate, per case and phase, from the checkpoints'
sizes and the throughput it assumes of an H100 machine (:data:`ASSUMED`: replace those by
the measured seconds of a first run, which the report puts beside them); today about 420 s
for the three cases (Qwen's 15.2 GB checkpoint and Llama's 16.1 GB, each loaded four times:
twice by ``train``, then tuned and merged). When the total is
over the budget (480 s, ``--budget``), the repeat of an architecture (Qwen bf16) is trimmed
first (it skips chapter 8's merge and reloads, then its decoding and perplexity); what still
does not fit is refused. While it runs, a case that would pass the deadline skips its
remaining phases, and a case process past its timeout is killed; the report keeps the
phases it finished.

    python benchmarks/gpu_smoke.py                  # the three cases: benchmarks/results/gpu_smoke.json
    python benchmarks/gpu_smoke.py --estimate       # the time estimate only (also on a CPU)
    python benchmarks/gpu_smoke.py --cases qwen2.5-7b:fp16 --budget 300
    python benchmarks/gpu_smoke.py --list           # the cases, without running them
    python benchmarks/gpu_smoke.py --cpu-check --cases qwen2.5-7b:fp16   # the code path on a CPU, toy sizes

Disk (``/dev/shm`` if it has room, else the temporary folder): about 50 GB at the peak (the
Qwen checkpoint kept for its bf16 case beside Llama's checkpoint and merge), or 34 GB when
each case writes its own checkpoint, which it falls back to; everything is removed as soon
as no later case needs it. Exit status: 0 every case passed, 1 one did not, 2 no CUDA GPU
(nothing run: ``--estimate``, ``--list`` and ``--cpu-check`` work on a CPU), 3 refused (over
the time budget even trimmed, or no room on disk).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
DTYPES = ("fp16", "bf16")
#: The cases, in the order they run: the two T4 cases (the ledger's question) first, the
#: book's default first of all; the uncapped bf16 case, which time runs out on first, last.
CASES = ("qwen2.5-7b:fp16", "llama-3.1-8b:fp16", "qwen2.5-7b:bf16")
#: The phases of a case, in order (see the module docstring).
PHASES = ("checkpoint", "train", "resume", "load_tuned", "perplexity", "generate", "merge",
          "load_merged", "release", "generate_cli")
#: Chapter 8's tail: what a repeat of an architecture skips first when time is short.
CH8_TAIL = ("merge", "load_merged", "release", "generate_cli")
#: The GPU whose memory the ledger charges (as a rehearsal does).
LEDGER_GPU = "t4"
#: measured / ledger must fall in this band (the module docstring says why).
BAND = (0.5, 1.0)
BUDGET_S = 480  # 8 minutes, start-up included
NEW_TOKENS = 320  # greedy decoding of the generate phase (the presets' IFEval/GSM8K length)
N_PROMPTS = 8
STEPS = 2  # optimizer steps in all: one in train, one more in resume
GRAD_ACCUM = 2
SHARD_BYTES = 4 * 2**30  # hub checkpoints of 7B models come in shards of about 4 GB
MERGE_CHECKED = 7  # adapted tensors checked against W + s*B@A after the merge (one layer)
#: Pool of seeded N(0, STD) values the random weights are tiled from (an odd size, so that
#: rows of every width start at different places in it).
POOL = 2**22 + 15
STD = 0.02

#: What the estimate assumes of an H100 machine (16 CPU cores, RAM-backed temporary storage).
#: Assumed, not measured: a run's report puts its measured seconds beside each estimate.
ASSUMED: dict[str, float] = {
    "parent_startup_s": 5.0,  # this script's imports and checks
    "case_startup_s": 12.0,  # a case process: torch/transformers/TRL/PEFT imports, CUDA context
    # random 16-bit shards tiled and written to /dev/shm (1.2 GB/s measured on 2 slow cores)
    "write_bytes_per_s": 1.5e9,
    "load_bytes_per_s": 1.2e9,  # from_pretrained: 16-bit shards read, moved, quantised to NF4
    "train_setup_s": 12.0,  # per train(): tokenizer, data, SFTTrainer + LoRA, warm-up, saves
    "train_tokens_per_s": 2500.0,  # QLoRA 7B, gradient checkpointing, no fused kernels
    "forward_tokens_per_s": 7500.0,  # perplexity: forward only (3x training's throughput)
    "decode_step_s": 0.06,  # one greedy step of 8 prompts through 4-bit weights and LoRA
    # shard-wise merge on the CPU: read, fp32 sum, 16-bit write (0.2-0.45 GB/s on 2 slow cores)
    "merge_bytes_per_s": 0.4e9,
    "overlap_efficiency": 0.8,  # share of the GPU phases' time the parallel merge gets
    "adapter_s": 3.0,  # PEFT's adapter load on top of the base
}
NO_GPU = ("gpu_smoke.py needs a CUDA GPU (torch.cuda.is_available() is False on this machine); "
          "nothing was run. On a CPU, `python benchmarks/gpu_smoke.py --estimate` prints its time "
          "estimate, and `ift-tutorial dry-run` and IFT_REHEARSAL=1 exercise the 7B path at "
          "reduced size.")
GiB = 2**30


# --- the cases -------------------------------------------------------------------------


def parse_case(case: str) -> tuple[str, str]:
    preset, _, dtype = case.partition(":")
    if dtype not in DTYPES or not preset:
        raise SystemExit(f"case {case!r}: expected PRESET:DTYPE with DTYPE one of {', '.join(DTYPES)}")
    return preset, dtype


def hub_id(preset: str) -> str:
    from ift_tutorial.config import load_config

    return load_config(preset).model.name_or_path


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text.lower()).strip("-")


def t4_allocatable_bytes() -> int:
    """What a T4 leaves to PyTorch's allocator: the planner's usable 14.75 GiB less the CUDA allowance."""
    from ift_tutorial.planning.memory import CUDA_OVERHEAD_BYTES, GPUS

    return int(GPUS["t4"] * GiB) - CUDA_OVERHEAD_BYTES


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What a case runs at: the GPU run uses the defaults; the CPU test shrinks them."""

    shrink: bool = False  # the rehearsal's shrunk architecture instead of the real one
    seq_len: int | None = None  # None: the preset's max_length
    new_tokens: int = NEW_TOKENS
    n_prompts: int = N_PROMPTS
    cli_new_tokens: int | None = None  # None: the preset's training.max_new_tokens


#: ``--cpu-check``: the same code on a CPU, at toy sizes (the rehearsal's shrunk architecture).
CPU_SIZES = Sizes(shrink=True, seq_len=128, new_tokens=8, cli_new_tokens=4)


def checkpoint_dir(work: Path, hub: str, shrink: bool = False) -> Path:
    """Where the random checkpoint of ``hub`` goes (shared by the cases of one model)."""
    return work / "checkpoints" / (slug(hub) + ("-shrunk" if shrink else ""))


# --- the estimate ----------------------------------------------------------------------


_PARAMS: dict[str, int] = {}


def checkpoint_bytes(hub: str) -> int:
    """Bytes of the 16-bit checkpoint of a hub model's architecture (parameters x 2)."""
    if hub not in _PARAMS:
        from ift_tutorial.planning.architectures import architecture_config
        from ift_tutorial.planning.parameters import count_parameters

        _PARAMS[hub] = count_parameters(architecture_config(hub)).total_params
    return 2 * _PARAMS[hub]


def estimate_case(preset: str, *, writes_checkpoint: bool, overlap: bool = True,
                  skip: tuple[str, ...] = (), assumed: dict[str, float] = ASSUMED) -> dict[str, float]:
    """Seconds per phase of one case on an H100 machine (``startup`` included), from sizes."""
    from ift_tutorial.config import load_config

    config = load_config(preset)
    a = assumed
    size = checkpoint_bytes(config.model.name_or_path)
    load = size / a["load_bytes_per_s"]
    seq = config.model.max_length
    step_tokens = config.training.per_device_train_batch_size * GRAD_ACCUM * seq
    train = load + a["train_setup_s"] + step_tokens / a["train_tokens_per_s"]
    est = {
        "startup": a["case_startup_s"],
        "checkpoint": size / a["write_bytes_per_s"] if writes_checkpoint else 1.0,
        "train": train,
        "resume": train,
        "load_tuned": load + a["adapter_s"],
        "perplexity": 1.0 + config.training.eval_batch_size * seq / a["forward_tokens_per_s"],
        "generate": 1.0 + NEW_TOKENS * a["decode_step_s"],
        "merge": size / a["merge_bytes_per_s"],
        "load_merged": load + 1.0,
        "release": 1.0,
        "generate_cli": 1.0 + config.training.max_new_tokens * a["decode_step_s"],
    }
    for phase in skip:
        est[phase] = 0.0
    if overlap and "merge" not in skip:  # the merge runs while the GPU loads, scores and decodes
        hidden = a["overlap_efficiency"] * (est["load_tuned"] + est["perplexity"] + est["generate"])
        est["merge"] = max(1.0, est["merge"] - hidden)
    return {k: round(v, 1) for k, v in est.items()}


#: How a run over budget is trimmed, in order: only cases that repeat an earlier case's
#: architecture (another dtype of the same model) are trimmed.
TRIMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (CH8_TAIL, "chapter 8's merge and merged reload ran for this architecture in an earlier case"),
    (("perplexity", "generate"), "perplexity and decoding ran for this architecture in an "
                                  "earlier case (same shapes, same bytes per value)"),
)


def plan_run(cases: list[str], budget: float = BUDGET_S, overlap: bool = True,
             assumed: dict[str, float] = ASSUMED, share: bool = True) -> dict[str, Any]:
    """The estimate of a run, trimmed to ``budget`` where it can be (:data:`TRIMS`).

    ``share``: the cases of one model share its checkpoint (written once, kept until the
    last of them); else each case writes its own (less disk, more time).

    Returns:
        ``cases``: per case its phase estimates, the phases it skips and why, its total;
        ``total_s``; ``budget_s``; ``fits``; ``trimmed`` (the trims applied); ``disk_bytes``
        (the most that is on disk at once: checkpoints, a merged copy, 2 GB of the rest).
    """
    seen: set[str] = set()
    rows = []
    for case in cases:
        preset, _ = parse_case(case)
        hub = hub_id(preset)
        rows.append({"case": case, "hub": hub, "repeat": hub in seen, "skip": [], "why": {}})
        seen.add(hub)

    def total() -> float:
        written: set[str] = set()
        s = assumed["parent_startup_s"]
        for row in rows:
            row["estimate_s"] = estimate_case(parse_case(row["case"])[0],
                                              writes_checkpoint=not share or row["hub"] not in written,
                                              overlap=overlap, skip=tuple(row["skip"]),
                                              assumed=assumed)
            written.add(row["hub"])
            row["total_s"] = round(sum(row["estimate_s"].values()), 1)
            s += row["total_s"]
        return round(s, 1)

    trimmed = []
    s = total()
    for phases, why in TRIMS:
        if s <= budget:
            break
        for row in rows:
            if row["repeat"]:
                row["skip"] += [p for p in phases if p not in row["skip"]]
                row["why"].update({p: why for p in phases})
        trimmed.append(why)
        s = total()
    for row in rows:
        row.pop("repeat")
    disk = 0
    for i, row in enumerate(rows):  # the checkpoints alive while case i runs, and its merge
        alive = {row["hub"]} | ({r["hub"] for r in rows[:i] if any(q["hub"] == r["hub"] for q in rows[i:])}
                                if share else set())
        disk = max(disk, sum(checkpoint_bytes(h) for h in alive) + checkpoint_bytes(row["hub"]) + 2 * 10**9)
    return {"cases": rows, "total_s": s, "budget_s": budget, "fits": s <= budget,
            "trimmed": trimmed, "assumed": dict(assumed), "overlap": overlap, "share": share,
            "disk_bytes": disk}


def format_plan(plan: dict[str, Any]) -> str:
    lines = []
    for row in plan["cases"]:
        parts = [f"{p} {s:.0f}" for p, s in row["estimate_s"].items() if p not in row["skip"]]
        skipped = f" (skips {', '.join(row['skip'])})" if row["skip"] else ""
        lines.append(f"  {row['case']}: {', '.join(parts)} = {row['total_s']:.0f} s{skipped}")
    a = plan["assumed"]
    lines.insert(0, (
        f"estimate: {plan['total_s']:.0f} s of the {plan['budget_s']:.0f} s budget"
        f"{'' if plan['fits'] else ' (OVER)'}, on an H100 machine assumed to load 16-bit shards at "
        f"{a['load_bytes_per_s'] / 1e9:.1f} GB/s, write them at {a['write_bytes_per_s'] / 1e9:.1f} GB/s, "
        f"merge at {a['merge_bytes_per_s'] / 1e9:.1f} GB/s, train {a['train_tokens_per_s']:.0f} tokens/s, "
        f"decode a step in {a['decode_step_s']:.2f} s; seconds per phase:"))
    if plan["trimmed"]:
        lines.append("  trimmed to fit: " + "; ".join(plan["trimmed"]))
    return "\n".join(lines)


# --- the random checkpoint --------------------------------------------------------------


def case_tokenizer(hub: str):
    """The stand-in tokenizer: the tiny one plus the hub model's special tokens (its chat
    template is the preset's, applied by ``load_tokenizer`` from ``model.chat_template``)."""
    from ift_tutorial.rehearsal.standins import stand_in_tokenizer

    return stand_in_tokenizer(hub)


def case_architecture(hub: str, tokenizer, shrink: bool = False):
    """The real architecture of ``hub`` (or the rehearsal's shrunk one, with a vocabulary
    larger than the tokenizer's, as the real one is), its special-token ids the stand-in's."""
    from ift_tutorial.planning.architectures import architecture_config
    from ift_tutorial.rehearsal.standins import model_class_name, shrunk_config

    small = shrunk_config(hub, tokenizer)  # remaps bos/eos/pad ids to the stand-in's
    arch = small if shrink else architecture_config(hub)
    if shrink:
        arch.vocab_size = len(tokenizer) + 128  # ids past the tokenizer's, as in the real run
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(arch, name, getattr(small, name, None))
    arch.architectures = [model_class_name(hub)]
    return arch


def stop_ids(tokenizer) -> list[int]:
    """The stand-in's special tokens: their output rows are zeroed so no answer ends early."""
    return sorted({i for i in tokenizer.all_special_ids if i is not None}
                  | set(tokenizer.get_added_vocab().values()))


def _weight_plan(arch) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor a checkpoint of ``arch`` holds (tied ones once)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(arch)
    entries = [(n, tuple(t.shape)) for n, t in model.state_dict().items()]
    if getattr(arch, "tie_word_embeddings", False):
        entries = [e for e in entries if e[0] != "lm_head.weight"]
    return entries


def write_random_checkpoint(arch, tokenizer, folder: Path, *, dtype=None, seed: int = 0,
                            shard_bytes: int = SHARD_BYTES) -> dict[str, Any]:
    """A random checkpoint of ``arch`` in ``folder``, written tensor by tensor on the CPU.

    Values are tiled from one seeded pool of N(0, STD) draws, each tensor starting at its own
    place in it; norms are 1; the head's rows of the tokenizer's special tokens are 0. A marker
    file (``WRITTEN``) is written last: a folder without it is incomplete.

    Returns:
        ``bytes``, ``shards``, ``tensors``, ``seconds``.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    dtype = dtype or torch.bfloat16
    start = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    entries = _weight_plan(arch)
    esize = torch.tensor([], dtype=dtype).element_size()
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    used = 0
    for name, shape in entries:
        nbytes = math.prod(shape) * esize
        if shards[-1] and used + nbytes > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append((name, shape))
        used += nbytes
    pool = (torch.randn(POOL, generator=torch.Generator().manual_seed(seed)) * STD).to(dtype)
    pool = torch.cat([pool, pool])  # a rotation of it is a slice
    # one buffer for every shard's tensors: fresh memory is paid for (page faults) once
    arena = torch.empty(max(sum(math.prod(s) for _, s in shard) for shard in shards), dtype=dtype)
    zero_rows = torch.tensor(stop_ids(tokenizer), dtype=torch.long)
    head = "lm_head.weight" if not getattr(arch, "tie_word_embeddings", False) else "model.embed_tokens.weight"
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        tensors, used = {}, 0
        for name, shape in shard:
            n = math.prod(shape)
            t = _random_tensor(name, shape, pool, arena[used:used + n])
            used += n
            if name == head:
                t[zero_rows[zero_rows < shape[0]]] = 0
            tensors[name] = t
            weight_map[name] = fname
            total += t.numel() * esize
        save_file(tensors, str(folder / fname), metadata={"format": "pt"})
        del tensors
    del arena
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    arch.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = str(dtype).replace("torch.", "")
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    GenerationConfig.from_model_config(arch).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info = {"bytes": total, "shards": len(shards), "tensors": len(entries),
            "seconds": round(time.perf_counter() - start, 1)}
    (folder / "WRITTEN").write_text(json.dumps(info), encoding="utf-8")
    return info


def _random_tensor(name: str, shape: tuple[int, ...], pool, out):
    """One tensor, written into ``out`` (1-D, its size): ones for a norm's weight, else values
    tiled from ``pool`` (the pool twice over, 2 x POOL values) from an offset that depends on
    the name: memory copies only, a 7B checkpoint in seconds."""
    n = math.prod(shape)
    if len(shape) == 1 and "norm" in name and name.endswith("weight"):
        return out.fill_(1).view(shape)
    size = len(pool) // 2
    start = zlib.crc32(name.encode()) % size
    block = pool[start:start + size]  # the pool, rotated: contiguous, no copy
    rows = n // size
    if rows:  # one broadcast copy: much faster than one copy per block
        out[:rows * size].view(rows, size).copy_(block.expand(rows, size))
    out[rows * size:] = block[:n - rows * size]
    return out.view(shape)


def ensure_checkpoint(arch, tokenizer, folder: Path) -> dict[str, Any]:
    """The checkpoint in ``folder``: reused when complete (another case wrote it), else written."""
    marker = folder / "WRITTEN"
    if marker.is_file():
        return {**json.loads(marker.read_text(encoding="utf-8")), "reused": True}
    return {**write_random_checkpoint(arch, tokenizer, folder), "reused": False}


# --- data ------------------------------------------------------------------------------


PROMPTS = ["What is 7 + 5?", "Name three primary colours.", "把“早上好”翻译成英文。",
           "Write a haiku about autumn.", "Explain LoRA in one sentence.",
           "List the planets of the solar system.", "用一句话介绍长城。",
           "Give me a recipe for pancakes, step by step."]


def long_conversations(tokenizer, n: int, max_length: int, seed: int = 0) -> list[list[dict]]:
    """``n`` conversations whose chat-template rendering is just under ``max_length`` tokens."""
    import random

    rng = random.Random(seed)
    words = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2) or ["word"]

    def conv(k: int, text: list[str]) -> list[dict]:
        return [{"role": "user", "content": f"Write a long text ({k})."},
                {"role": "assistant", "content": " ".join(text)}]

    def length(c) -> int:
        return len(tokenizer.apply_chat_template(c, tokenize=True, return_dict=True)["input_ids"])

    out = []
    for k in range(n):
        text = [rng.choice(words) for _ in range(max_length)]
        lo, hi = 0, len(text)  # the most words whose rendering fits max_length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if length(conv(k, text[:mid])) <= max_length else (lo, mid - 1)
        if lo == 0:
            raise ValueError(f"max_length {max_length} leaves no room for an answer in the chat template")
        out.append(conv(k, text[:lo]))
    return out


def write_jsonl(rows: list[list[dict]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"messages": r}, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


# --- measuring a phase -----------------------------------------------------------------


def _ledger():
    from ift_tutorial.planning.ledger import ledger_for

    return ledger_for(LEDGER_GPU)


def judge(measured: int | None, ledger: int | None) -> tuple[str, str | None]:
    """``pass``/``fail`` and the reason, for a measured peak against the ledger's figure."""
    if measured is None:
        return "pass", None  # nothing to measure on a CPU
    if not ledger:
        return "fail", "the ledger charged nothing for this phase"
    ratio = measured / ledger
    lo, hi = BAND
    if ratio > hi:
        return "fail", (f"measured {measured / GiB:.2f} GiB is over the ledger's {ledger / GiB:.2f} GiB "
                        f"(x{ratio:.2f}): the ledger under-charges this phase")
    if ratio < lo:
        return "fail", (f"measured {measured / GiB:.2f} GiB is under {lo:.0%} of the ledger's "
                        f"{ledger / GiB:.2f} GiB (x{ratio:.2f}): the ledger over-charges this phase")
    return "pass", None


class Meter:
    """Per phase: seconds, GPU memory (on a GPU) and the ledger's figure."""

    def __init__(self, on_gpu: bool):
        self.on_gpu = on_gpu

    @contextmanager
    def phase(self, record: dict[str, Any], after: bool = False) -> Iterator[None]:
        """Measure the block into ``record``. ``after``: the memory held at its end, not the
        peak (a release). The previous phase ended with a garbage collection: what it
        released is gone when this one starts."""
        import torch

        ledger = _ledger()
        if self.on_gpu:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        first = len(ledger.events)
        resident_before = _alive(ledger)
        start = time.perf_counter()
        try:
            yield
        finally:
            record["seconds"] = round(time.perf_counter() - start, 2)
            gc.collect()  # once per phase: a collection takes a while in a process this size
            resident = _alive(ledger)
            events = ledger.events[first:]
            charged = [e["total_bytes"] for e in events if e["fits"]]
            base_before = ledger.overhead_bytes + sum(b for _, b in resident_before)
            base_after = ledger.overhead_bytes + sum(b for _, b in resident)
            record["ledger_bytes"] = base_after if after else max([base_before, base_after, *charged])
            record["ledger_events"] = [{k: e[k] for k in ("what", "bytes", "total_bytes", "fits")}
                                       for e in events]
            record["ledger_resident"] = [name for name, _ in resident]
            if self.on_gpu:
                torch.cuda.synchronize()
                free, total = torch.cuda.mem_get_info()
                reserved = torch.cuda.memory_reserved()
                outside = max(0, (total - free) - reserved)
                alloc = torch.cuda.memory_allocated() if after else torch.cuda.max_memory_allocated()
                record.update(measured_at="end" if after else "peak", peak_allocated_bytes=alloc,
                              peak_reserved_bytes=torch.cuda.max_memory_reserved(),
                              outside_allocator_bytes=outside, device_used_bytes=total - free,
                              measured_bytes=alloc + outside)
                record["ratio"] = round(record["measured_bytes"] / record["ledger_bytes"], 3)
            else:
                record["measured_bytes"] = None


@contextmanager
def _timed(record: dict[str, Any]) -> Iterator[None]:
    """Seconds only: a phase on the CPU before CUDA starts (the ledger has nothing to say)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        record["seconds"] = round(time.perf_counter() - start, 2)


def _alive(ledger) -> list[tuple[str, int]]:
    """(name, bytes) of the ledger's models still alive, without the collection that
    ``Ledger.resident`` starts with (the caller collects where it matters)."""
    return [(name, size) for ref, name, size in ledger.models if ref() is not None]


# --- one case, in its own process ------------------------------------------------------


class CaseStopped(Exception):
    """A phase failed in a way the later phases cannot go on from."""


def run_case(case: str, *, work: Path, device: str = "cuda", sizes: Sizes = Sizes(),
             skip: tuple[str, ...] = (), overlap: bool = True, deadline: float | None = None,
             estimate: dict[str, float] | None = None, result_file: Path | None = None,
             keep: bool = False) -> dict[str, Any]:
    """One case, phase by phase; ``status`` is ``pass``, ``fail`` or ``incomplete``.

    Args:
        work: a folder for the checkpoint (``work/checkpoints``, shared by the cases of one
            model) and this case's files (``work/<case>``, removed at the end unless ``keep``).
        device: ``cuda``; ``cpu`` runs the same code at ``sizes`` without measuring memory.
        skip: phases trimmed by the plan (reported as skipped, not failed).
        deadline: ``time.time()`` after which no phase starts (its estimate is counted).
        result_file: the report is written there after every phase (a killed process
            still leaves the phases it finished).
    """
    import torch

    preset, dtype = parse_case(case)
    on_gpu = device != "cpu"
    hub = hub_id(preset)
    estimate = estimate or {}
    report: dict[str, Any] = {"case": case, "preset": preset, "dtype": dtype, "model": hub,
                              "device": device, "sizes": dataclasses.asdict(sizes), "phases": {},
                              "status": "running"}
    phases: dict[str, dict[str, Any]] = report["phases"]
    meter = Meter(on_gpu)
    case_dir = work / slug(case)
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)

    def save() -> None:
        if result_file is not None:
            Path(result_file).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")

    def begin(name: str) -> dict[str, Any] | None:
        """The record of phase ``name``, or None when it is skipped (trimmed, or no time)."""
        rec = phases.setdefault(name, {})
        if name in estimate:
            rec["estimate_s"] = estimate[name]
        if name in skip:
            rec.update(status="skipped", reason="trimmed to fit the time budget")
            return None
        if report.get("deadline_hit") or (
                deadline is not None and time.time() + estimate.get(name, 0) > deadline):
            rec.update(status="skipped", reason="the run's time budget ran out before this phase")
            report["deadline_hit"] = True
            return None
        return rec

    def done(rec: dict[str, Any], failures: list[str]) -> None:
        _, reason = judge(rec.get("measured_bytes"), rec.get("ledger_bytes"))
        if reason:
            failures = [*failures, reason]
        rec["status"] = "fail" if failures else "pass"
        if failures:
            rec["reason"] = "; ".join(failures)
        save()

    @contextmanager
    def phase(name: str, after: bool = False, gpu: bool = True) -> Iterator[dict[str, Any] | None]:
        rec = begin(name)
        if rec is None:
            save()
            yield None
            return
        failures: list[str] = rec.setdefault("failures", [])
        try:
            with (meter.phase(rec, after=after) if gpu else _timed(rec)):
                yield rec
        except Exception as err:  # noqa: BLE001 - recorded, and the case stops
            rec.pop("failures", None)
            rec.update(status="fail", reason=f"{type(err).__name__}: {err}"[:2000],
                       traceback=traceback.format_exc()[-4000:])
            save()
            raise CaseStopped(name) from err
        done(rec, rec.pop("failures"))

    tokenizer = case_tokenizer(hub)
    arch = case_architecture(hub, tokenizer, sizes.shrink)
    ckpt = checkpoint_dir(work, hub, sizes.shrink)
    model = merged = merge_proc = None
    try:
        with phase("checkpoint", gpu=False) as rec:  # on the CPU, before CUDA starts
            if rec is not None:
                rec.update(ensure_checkpoint(arch, tokenizer, ckpt))
        if on_gpu:
            torch.cuda.set_device(0)
            report["environment"] = environment()
            free, total = torch.cuda.mem_get_info()
            report["cuda_context_bytes"] = total - free  # before any tensor: the context
            if dtype == "fp16":  # the T4 recipe gets a T4's memory
                cap = t4_allocatable_bytes()
                torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), 0)
                report["memory_cap_bytes"] = cap
        config, config2 = _case_configs(preset, dtype, ckpt, case_dir, sizes, on_gpu)
        report["config"] = {"max_length": config.model.max_length,
                            "batch": config.training.per_device_train_batch_size,
                            "grad_accum": config.training.gradient_accumulation_steps,
                            "compute_dtype": config.model.compute_dtype,
                            "eval_batch": config.training.eval_batch_size}
        run_dir = case_dir / "run"
        adapter = run_dir / "adapter"
        merged_dir = case_dir / "merged"
        if overlap and "merge" not in skip:  # it imports now, and merges once the adapter exists
            merge_proc = start_merge(preset, config2, adapter, merged_dir, case_dir)
        from ift_tutorial.training.trainer import train

        with phase("train") as rec:
            if rec is not None:
                m = train(config, run_dir, resume="auto", evaluate=False)
                rec.update(steps=m["steps"], final_loss=m["final_loss"], peak_gpu_memory_mb=m["peak_gpu_memory_mb"])
                if m["steps"] != 1 or not (run_dir / "checkpoint-1" / "COMPLETE").is_file():
                    rec["failures"].append(f"expected step 1 and a complete checkpoint-1, got step {m['steps']}")
        with phase("resume") as rec:
            if rec is not None:
                m = train(config2, run_dir, resume="auto", evaluate=False)
                rec.update(steps=m["steps"], resumed_from_step=m["resumed_from_step"],
                           final_loss=m["final_loss"], train_loss=m["train_loss"])
                if m["steps"] != STEPS or m["resumed_from_step"] != 1:
                    rec["failures"].append(f"expected a resume from step 1 to {STEPS}, got "
                                           f"{m['resumed_from_step']} -> {m['steps']}")
                if not (m["final_loss"] is not None and math.isfinite(m["final_loss"])):
                    rec["failures"].append(f"loss {m['final_loss']} is not finite")
        if not adapter.is_dir():
            raise CaseStopped("no adapter: training did not run")
        (case_dir / MERGE_GO).touch()  # the merge process starts: on the CPU, beside the GPU phases
        from ift_tutorial.inference.generation import generate_cli, generate_responses, load_for_inference

        with phase("load_tuned") as rec:
            if rec is not None:
                model, tok = load_for_inference(config2, adapter)
                rec["model_class"] = type(model).__name__
        if model is None:
            raise CaseStopped("no tuned model")
        with phase("perplexity") as rec:
            if rec is not None:
                from ift_tutorial.evaluation.perplexity import perplexity

                convs = long_conversations(tok, config2.training.eval_batch_size, config2.model.max_length, 1)
                vocab = model.get_base_model().get_output_embeddings().out_features
                result = perplexity(model, tok, convs, batch_size=config2.training.eval_batch_size,
                                    max_length=config2.model.max_length)
                rec.update(result, vocabulary=vocab, batch=len(convs))
                if not math.isfinite(result["perplexity"]) or result["tokens"] <= 0:
                    rec["failures"].append(f"perplexity {result}")
        with phase("generate") as rec:
            if rec is not None:
                prompts = [[{"role": "user", "content": p}] for p in PROMPTS[:sizes.n_prompts]]
                steps = _count_calls(model.get_base_model().get_output_embeddings())
                try:
                    answers = generate_responses(model, tok, prompts, max_new_tokens=sizes.new_tokens,
                                                 batch_size=len(prompts))
                finally:
                    steps.remove()
                rec.update(prompts=len(prompts), new_tokens=sizes.new_tokens, decoded_steps=steps.calls)
                if steps.calls != sizes.new_tokens:
                    rec["failures"].append(f"decoded {steps.calls} steps, expected {sizes.new_tokens}")
                if len(answers) != len(prompts) or not all(isinstance(a, str) for a in answers):
                    rec["failures"].append("not one answer per prompt")
        with phase("merge") as rec:
            if rec is not None:
                from ift_tutorial.inference.merging import check_merged_tensors, merge_adapter

                if merge_proc is not None:
                    rec.update(finish_merge(merge_proc, case_dir), overlapped=True)
                    merge_proc = None
                else:
                    t0 = time.perf_counter()
                    merge_adapter(config2, adapter, merged_dir)
                    rec.update(merge_seconds=round(time.perf_counter() - t0, 1), overlapped=False)
                rec["merged_bytes"] = sum(p.stat().st_size for p in merged_dir.glob("*.safetensors"))
                rec["max_difference"] = check_merged_tensors(config2, adapter, merged_dir,
                                                             limit=MERGE_CHECKED)
        with phase("load_merged") as rec:
            if rec is not None:
                from ift_tutorial.loading import load_model
                from ift_tutorial.training.devices import to_model_device

                probe = tok.apply_chat_template([{"role": "user", "content": PROMPTS[0]}],
                                                add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
                with torch.no_grad():
                    tuned_logits = model(**to_model_device(probe, model)).logits.float().cpu()
                merged = load_model(dataclasses.replace(config2.model, load_from=str(merged_dir))).eval()
                with torch.no_grad():
                    merged_logits = merged(**to_model_device(probe, merged)).logits.float().cpu()
                gap = (tuned_logits - merged_logits).abs().max().item()
                scale = merged_logits.abs().max().item()
                rec.update(resident_models=len(_alive(_ledger())), logits_gap=gap, logits_max=scale)
                if not gap < 0.25 * scale:  # chapter 8's check: NF4 rounding, no more
                    rec["failures"].append(f"merged logits differ from the tuned model's by {gap:.3g} "
                                           f"(max |logit| {scale:.3g})")
        with phase("release", after=True) as rec:
            if rec is not None:
                import weakref

                ref = weakref.ref(merged) if merged is not None else None
                merged = None  # chapter 8: `merged = unmerged = None`
                gc.collect()
                if on_gpu:
                    torch.cuda.empty_cache()
                rec["released"] = ref is None or ref() is None
                if ref is not None and ref() is not None:
                    rec["failures"].append("the merged model is still alive after its release")
        with phase("generate_cli") as rec:
            if rec is not None:
                limit = sizes.cli_new_tokens or config2.training.max_new_tokens
                blocks = generate_cli(config2, None, PROMPTS[:2], max_new_tokens=limit,
                                      loaded=(model, tok))
                rec.update(prompts=2, new_tokens=limit, resident_models=len(_alive(_ledger())))
                if len(blocks) != 2 or not all(b.startswith("> ") for b in blocks):
                    rec["failures"].append(f"generate_cli returned {blocks!r}")
    except CaseStopped as stop:
        report["stopped_at"] = str(stop)
    finally:
        if merge_proc is not None:
            merge_proc.kill()
            merge_proc.wait()
        model = merged = None
        gc.collect()
        ledger = _ledger()
        report["ledger"] = {"gpu": ledger.gpu, "usable_bytes": ledger.usable_bytes,
                            "overhead_bytes": ledger.overhead_bytes, "peak_bytes": ledger.peak_bytes}
        if not keep:
            shutil.rmtree(case_dir, ignore_errors=True)
    for name in PHASES:
        if not phases.get(name, {}).get("status"):
            phases[name] = ({"status": "skipped", "reason": "the run's time budget ran out"}
                            if report.get("deadline_hit") else
                            {"status": "not run", "reason": f"an earlier phase ({report.get('stopped_at')}) failed"})
    states = [p["status"] for p in phases.values()]
    report["status"] = ("fail" if "fail" in states or "not run" in states else
                        "incomplete" if report.get("deadline_hit") else "pass")
    report["failures"] = [f"{n}: {p['reason']}" for n, p in phases.items() if p["status"] == "fail"]
    save()
    return report


def _case_configs(preset: str, dtype: str, ckpt: Path, case_dir: Path, sizes: Sizes,
                  on_gpu: bool):
    """The case's config (one step, checkpoint every step) and its resume's (two steps)."""
    from ift_tutorial.config import load_config
    from ift_tutorial.loading import load_tokenizer

    base = load_config(preset)
    seq_len = sizes.seq_len or base.model.max_length
    batch = base.training.per_device_train_batch_size
    # the tokenizer training will use: the checkpoint's, with the preset's chat template
    tok = load_tokenizer(dataclasses.replace(base.model, load_from=str(ckpt)))
    data = write_jsonl(long_conversations(tok, batch * GRAD_ACCUM * STEPS, seq_len), case_dir / "train.jsonl")
    common = [f"model.load_from={ckpt}", f"model.ledger_gpu={LEDGER_GPU}",
              # on a CPU, "auto" is fp32 (as training there), and the ledger plans a T4 run
              f"model.compute_dtype={dtype if on_gpu else 'auto'}",
              f"model.max_length={seq_len}", f"data.train={data}",
              f"training.gradient_accumulation_steps={GRAD_ACCUM}", "training.save_steps=1",
              "training.logging_steps=1", "training.warmup_ratio=0", "training.save_total_limit=2"]
    if sizes.cli_new_tokens:
        common.append(f"training.max_new_tokens={sizes.cli_new_tokens}")
    return (load_config(preset, [*common, "training.max_steps=1"]),
            load_config(preset, [*common, f"training.max_steps={STEPS}"]))


class _CallCounter:
    def __init__(self, module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


def _count_calls(module) -> _CallCounter:
    """Counts forward calls of ``module`` (the head: one per decoding step)."""
    return _CallCounter(module)


MERGE_GO = "merge.go"  # the case writes it once the adapter is saved
MERGE_RESULT = "merge.json"


def start_merge(preset: str, config, adapter: Path, merged_dir: Path, case_dir: Path) -> subprocess.Popen:
    """Chapter 8's ``merge_adapter`` in a CPU-only process (it never sees the GPU), started
    early: it imports while the case trains, then waits for ``case_dir/merge.go``."""
    job = {"preset": preset, "model": dataclasses.asdict(config.model), "adapter": str(adapter),
           "output": str(merged_dir), "case_dir": str(case_dir), "parent": os.getpid()}
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="",
               OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 2) // 2)))
    env.pop("IFT_REHEARSAL", None)
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--merge-job", json.dumps(job)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_merge(proc: subprocess.Popen, case_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    _, err = proc.communicate()
    waited = round(time.perf_counter() - t0, 1)
    result = case_dir / MERGE_RESULT
    if proc.returncode != 0 or not result.is_file():
        raise RuntimeError(f"the merge process exited with {proc.returncode}: {(err or '')[-1500:]}")
    return {**json.loads(result.read_text(encoding="utf-8")), "waited_seconds": waited}


def merge_job(spec: str) -> int:
    """The merge process: imports, waits for the go, then ``merge_adapter`` of the case's
    config, timed. It gives up when the case process that started it is gone."""
    from ift_tutorial.config import load_config
    from ift_tutorial.inference.merging import merge_adapter

    job = json.loads(spec)
    case_dir = Path(job["case_dir"])
    while not (case_dir / MERGE_GO).is_file():
        if os.getppid() != job["parent"]:
            return 1
        time.sleep(0.1)
    config = load_config(job["preset"])
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, **job["model"]))
    t0 = time.perf_counter()
    merge_adapter(config, job["adapter"], job["output"])
    (case_dir / MERGE_RESULT).write_text(json.dumps({"merge_seconds": round(time.perf_counter() - t0, 1)}),
                                         encoding="utf-8")
    return 0


# --- the driver: one subprocess per case -----------------------------------------------


def environment() -> dict[str, Any]:
    import torch

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate",
                 "safetensors", "datasets"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            versions[name] = None
    versions["cuda"] = torch.version.cuda
    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "device_memory_bytes": props.total_memory,
            "device_memory_gib": round(props.total_memory / GiB, 2),
            "compute_capability": f"{props.major}.{props.minor}", "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "versions": versions,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def work_roots(explicit: str | None) -> list[Path]:
    """Where checkpoints may go, best first: ``--work-dir``, else /dev/shm (RAM-backed), else
    the temporary folder."""
    roots = [Path(explicit)] if explicit else [Path("/dev/shm"), Path(tempfile.gettempdir())]
    return [r for r in roots if r.is_dir()]


def pick_work_dir(need: int, roots: list[Path]) -> Path | None:
    """A fresh folder under the first of ``roots`` with ``need`` bytes free, or None."""
    for root in roots:
        if shutil.disk_usage(root).free >= need:
            return Path(tempfile.mkdtemp(prefix="gpu-smoke-", dir=root))
    return None


def run_in_subprocess(case: str, args: argparse.Namespace, work: Path, skip: list[str],
                      estimate: dict[str, float], deadline: float) -> dict[str, Any]:
    """Run ``case`` in a fresh Python process, killed at ``deadline``."""
    result_file = work / f"{slug(case)}.result.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-case", case, "--result-file",
           str(result_file), "--work-dir", str(work), "--deadline", str(deadline),
           "--estimate-json", json.dumps(estimate)]
    if skip:
        cmd += ["--skip", ",".join(skip)]
    if args.no_overlap:
        cmd.append("--no-overlap")
    if args.cpu_check:
        cmd.append("--cpu-check")
    timeout = max(1.0, min(args.timeout or math.inf, deadline - time.time()))
    start = time.perf_counter()
    status = None
    # its own process group: at the timeout the case and its merge process are killed together
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        status = "timeout"
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    tail = (err or "")[-3000:]
    out_tail = (out or "")[-2000:]
    seconds = round(time.perf_counter() - start, 1)
    try:
        report = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {"case": case, "status": "error", "phases": {},
                  "failures": [f"the case process exited with {proc.returncode} and no result"]}
    if status == "timeout":
        report["status"] = "timeout"
        report.setdefault("failures", []).append(f"killed after {timeout:.0f} s")
        for name in PHASES:  # the phase in progress, and those after it
            rec = report.setdefault("phases", {}).setdefault(name, {})
            if not rec.get("status"):
                rec.update(status="not run", reason=f"the case process was killed after {timeout:.0f} s")
    elif proc.returncode != 0 and report.get("status") in (None, "running", "pass"):
        report["status"] = "error"
        report.setdefault("failures", []).append(f"the case process exited with {proc.returncode}")
    if report.get("status") != "pass":
        report.update(stderr_tail=tail, stdout_tail=out_tail)
    report["seconds"] = seconds
    report["estimate_s"] = round(sum(estimate.values()), 1)
    shutil.rmtree(work / slug(case), ignore_errors=True)  # a killed case leaves its files
    return report


def freeze_imports() -> None:
    """Import what a case uses, then move every object so far out of the garbage collector's
    sight (``gc.freeze``): the ledger collects garbage at every charge, and with the libraries'
    millions of objects scanned each time a collection takes most of a second."""
    import ift_tutorial.evaluation.perplexity  # noqa: F401
    import ift_tutorial.inference.generation  # noqa: F401
    import ift_tutorial.inference.merging  # noqa: F401
    import ift_tutorial.training.trainer  # noqa: F401
    import peft  # noqa: F401
    import trl.chat_template_utils  # noqa: F401

    gc.collect()
    gc.freeze()


def default_output() -> Path:
    return HERE / "results" / "gpu_smoke.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated PRESET:DTYPE (default: {','.join(CASES)})")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--estimate", action="store_true",
                        help="print the time estimate and exit (works without a GPU)")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help=f"seconds for the whole run, start-up included (default {BUDGET_S})")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per case at most (default: what is left of the budget)")
    parser.add_argument("--no-overlap", action="store_true",
                        help="merge after decoding, in sequence, instead of in a parallel CPU process")
    parser.add_argument("--work-dir", default=None,
                        help="where checkpoints go (default: /dev/shm if it has room, else the temp folder)")
    parser.add_argument("--output", default=None,
                        help="JSON report (default: benchmarks/results/gpu_smoke.json)")
    parser.add_argument("--cpu-check", action="store_true",
                        help="run the cases' code on a CPU at toy sizes (a shrunk architecture, "
                             "short examples and answers; no memory measured): a check for CI")
    parser.add_argument("--run-case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip", default="", help=argparse.SUPPRESS)
    parser.add_argument("--estimate-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--merge-job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.time()
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")  # no network: everything is built locally
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.pop("IFT_REHEARSAL", None)  # the real architecture, not a rehearsal's stand-in

    if args.merge_job:
        return merge_job(args.merge_job)
    if args.run_case:  # the child process of one case
        import torch

        if args.cpu_check:
            torch.set_num_threads(1)  # toy matrices: one thread is fastest, and steady on a busy machine
        freeze_imports()
        run_case(args.run_case, work=Path(args.work_dir), skip=tuple(s for s in args.skip.split(",") if s),
                 device="cpu" if args.cpu_check else "cuda", sizes=CPU_SIZES if args.cpu_check else Sizes(),
                 overlap=not args.no_overlap, deadline=args.deadline,
                 estimate=json.loads(args.estimate_json) if args.estimate_json else None,
                 result_file=Path(args.result_file))
        return 0

    cases = args.cases.split(",") if args.cases else list(CASES)
    if not (args.list or args.estimate or args.cpu_check):
        import torch

        if not torch.cuda.is_available():
            print(NO_GPU, file=sys.stderr)
            return 2
    from ift_tutorial.config import available_presets

    for case in cases:
        preset = parse_case(case)[0]
        if preset not in available_presets():
            raise SystemExit(f"case {case!r}: no preset {preset!r}; presets: {', '.join(available_presets())}")
    if args.list:
        print("\n".join(cases))
        return 0
    plan = plan_run(cases, args.budget, overlap=not args.no_overlap)
    work = None
    if not args.estimate:
        roots = work_roots(args.work_dir)
        work = pick_work_dir(10**8 if args.cpu_check else plan["disk_bytes"], roots)
        if work is None:  # no room to keep a checkpoint for a later case: each writes its own
            plan = plan_run(cases, args.budget, overlap=not args.no_overlap, share=False)
            work = pick_work_dir(plan["disk_bytes"], roots)
        if work is None:
            free = "; ".join(f"{r}: {shutil.disk_usage(r).free / 1e9:.1f} GB free" for r in roots)
            print(f"gpu_smoke.py: no room for the checkpoints (needs {plan['disk_bytes'] / 1e9:.1f} GB; "
                  f"{free or 'no folder'}); nothing was run. Pass --work-dir.", file=sys.stderr)
            return 3
    print(format_plan(plan), flush=True)
    if args.estimate or not plan["fits"]:
        if not plan["fits"]:
            print(f"gpu_smoke.py: the estimate ({plan['total_s']:.0f} s) is over the budget "
                  f"({args.budget:.0f} s) even trimmed; {'' if args.estimate else 'nothing was run. '}"
                  "Run fewer --cases or raise --budget.", file=sys.stderr)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        return 0 if plan["fits"] else 3
    deadline = started + args.budget
    output = Path(args.output) if args.output else (
        Path(tempfile.gettempdir()) / "gpu_smoke-cpu-check.json" if args.cpu_check else default_output())
    report: dict[str, Any] = {"device": "cpu (--cpu-check: toy sizes)" if args.cpu_check else None,
                              "budget_s": args.budget, "band": list(BAND),
                              "ledger_gpu": LEDGER_GPU, "work_dir": str(work), "plan": plan,
                              "cases": []}
    try:
        for i, row in enumerate(plan["cases"]):
            case = row["case"]
            print(f"=== {case}", flush=True)
            if time.time() + row["estimate_s"]["startup"] + 10 > deadline:
                result = {"case": case, "status": "skipped", "phases": {},
                          "failures": ["no time left in the budget to start it"]}
            else:
                result = run_in_subprocess(case, args, work, row["skip"], row["estimate_s"], deadline)
            env = result.pop("environment", None)
            if env and report["device"] is None:
                report.update(device=env["device"], environment=env)
            report["cases"].append(result)
            if not plan["share"] or all(r["hub"] != row["hub"] for r in plan["cases"][i + 1:]):
                shutil.rmtree(checkpoint_dir(work, row["hub"], args.cpu_check), ignore_errors=True)
            print(case_line(result), flush=True)
            report["seconds"] = round(time.time() - started, 1)
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shown = output.relative_to(HERE.parent) if output.is_relative_to(HERE.parent) else output
    print(f"report: {shown} ({report['seconds']} s of the {args.budget:.0f} s budget)")
    return 0 if all(c["status"] == "pass" for c in report["cases"]) else 1


def case_line(result: dict[str, Any]) -> str:
    """``case: status in N s (estimate M s); phase seconds measured/ledger GiB [status], ...``."""
    parts = []
    for name, p in result.get("phases", {}).items():
        text = f"{name} {p.get('seconds', '-')} s"
        if p.get("measured_bytes") and p.get("ledger_bytes"):
            text += f" {p['measured_bytes'] / GiB:.2f}/{p['ledger_bytes'] / GiB:.2f} GiB"
        if p.get("status") not in ("pass", None):
            text += f" [{p['status']}]"
        parts.append(text)
    line = (f"{result['case']}: {result['status']} in {result.get('seconds', 0)} s "
            f"(estimate {result.get('estimate_s', '-')} s); {', '.join(parts)}")
    if result.get("failures"):
        line += "\n  failures: " + "; ".join(result["failures"])
    return line


if __name__ == "__main__":
    sys.exit(main())
