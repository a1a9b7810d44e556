"""GPU smoke test of the 7B path: every 7B preset's real architecture, trained, used and merged.

Nothing is downloaded. For each case (a 7B preset and a compute dtype):

1. the preset's full-depth architecture (``ift_tutorial.planning.architectures``) gets random
   weights drawn directly on the GPU, its linear layers quantised to 4-bit NF4 there
   (``ift_tutorial.planning.dry_run.build_quantized_model``);
2. ``fp16`` is the T4 recipe: the process may allocate no more than a T4 leaves (the
   planner's 15 GiB less its CUDA-context allowance, through
   ``torch.cuda.set_per_process_memory_fraction``); ``bf16`` is the A100/L4/H100 recipe;
3. a few steps of the package's own trainer (``training.build_trainer``: TRL's
   ``SFTTrainer``, the preset's LoRA, assistant-only loss, fp16 GradScaler or bf16) run
   on examples of ``max_length`` tokens (1024) with the preset's per-device batch, the
   tokenizer a stand-in with the preset's special tokens and chat template;
4. one chapter-8 style answer is generated (``inference.generation.generate_responses``);
5. a shard-wise merge (``merging.merge_shardwise``, on the CPU) of a LoRA adapter into a
   16-bit checkpoint of the same architecture (its real widths and vocabulary, two
   layers, saved in several shards) is compared with base + adapter: the merged model's
   logits must reproduce the adapter's effect to within ``MERGE_TOLERANCE``.

Each case runs in its own process under its own timeout, so one crash or hang does not
take the others down. The JSON report records, per case, the peak GPU memory beside
``plan-memory``'s estimate, tokens/s, and pass/fail with the reason.

    python benchmarks/gpu_smoke.py                      # every case, Qwen fp16 first
    python benchmarks/gpu_smoke.py --cases qwen2.5-7b:fp16,qwen2.5-7b:bf16 --timeout 300
    python benchmarks/gpu_smoke.py --list               # the cases, without running them

On a machine without a CUDA GPU it prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DTYPES = ("fp16", "bf16")
#: Merged logits must reproduce the adapter's effect on the logits to within this fraction:
#: max |merged - (base + adapter)| <= MERGE_TOLERANCE * max |(base + adapter) - base|.
#: Rounding W + s B A once to 16 bits costs about 2**-8 (bf16) of |W|; with the update
#: drawn at a third of |W| that is ~1 % of the effect.
MERGE_TOLERANCE = 0.05
MERGE_LAYERS = 2
NO_GPU = ("gpu_smoke.py needs a CUDA GPU (torch.cuda.is_available() is False on this machine); "
          "nothing was run. On a CPU, `ift-tutorial dry-run` and IFT_REHEARSAL=1 exercise the "
          "7B path at reduced size.")


# --- the cases -------------------------------------------------------------------------


def default_cases() -> list[str]:
    """``preset:dtype`` for every 7B preset and both dtypes, the Qwen fp16 case first."""
    from ift_tutorial.planning.architectures import KNOWN_ARCHITECTURES
    from ift_tutorial.config import available_presets, load_config

    presets = [p for p in available_presets()
               if load_config(p).model.name_or_path in KNOWN_ARCHITECTURES]
    presets.sort(key=lambda p: (not p.startswith("qwen"), p))  # the book's default preset first
    return [f"{p}:{d}" for d in DTYPES for p in presets]  # every preset in fp16 (a T4), then bf16


def parse_case(case: str) -> tuple[str, str]:
    preset, _, dtype = case.partition(":")
    if dtype not in DTYPES or not preset:
        raise SystemExit(f"case {case!r}: expected PRESET:DTYPE with DTYPE one of {', '.join(DTYPES)}")
    return preset, dtype


def t4_allocatable_bytes() -> int:
    """What a T4 leaves to PyTorch's allocator: the planner's usable 15 GiB less the CUDA context."""
    from ift_tutorial.planning.memory import CUDA_OVERHEAD_BYTES, GPUS, GiB

    return int(GPUS["t4"] * GiB) - CUDA_OVERHEAD_BYTES


# --- one case, in its own process ------------------------------------------------------


def case_tokenizer(config):
    """The preset's tokenizer without a download: a stand-in with its special tokens and template."""
    from ift_tutorial.paths import resolve_path
    from ift_tutorial.rehearsal.standins import stand_in_tokenizer

    tok = stand_in_tokenizer(config.model.name_or_path)
    if config.model.chat_template:
        tok.chat_template = resolve_path(config.model.chat_template).read_text(encoding="utf-8")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # as loading.load_tokenizer does
    return tok


def long_conversations(tokenizer, n: int, max_length: int, seed: int = 0):
    """``n`` conversations whose answer alone fills ``max_length`` tokens (truncated to it)."""
    import random

    import datasets

    rng = random.Random(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 1] or ["word"]
    rows = [[{"role": "user", "content": "Write a long text."},
             {"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(max_length))}]
            for _ in range(n)]
    return datasets.Dataset.from_dict({"messages": rows})


def mark_as_loaded_in_4bit(model, device: str) -> None:
    """The attributes ``load_model`` (``from_pretrained`` with a BitsAndBytesConfig and a
    one-device map) sets, which TRL, PEFT, accelerate and the Trainer read: TRL's bf16 cast
    of the adapters, PEFT's 4-bit LoRA layers, no ``.to()`` of the model."""
    from transformers.utils.quantization_config import QuantizationMethod

    model.is_loaded_in_4bit = True
    model.quantization_method = QuantizationMethod.BITS_AND_BYTES
    model.hf_device_map = {"": "cpu" if device == "cpu" else 0}


class StepTimer:
    """A TrainerCallback that times each optimizer step (synchronising the GPU)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.seconds: list[float] = []

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                _sync()
                outer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                _sync()
                outer.seconds.append(time.perf_counter() - outer._start)

        self.callback = _Callback()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def train_and_generate(preset: str, dtype: str, *, steps: int, seq_len: int | None,
                       batch_size: int | None, device: str, layers: int | None = None,
                       out_dir: Path) -> dict[str, Any]:
    """Steps 1-4 of a case; returns its measurements."""
    import torch

    from ift_tutorial.planning.architectures import architecture_config
    from ift_tutorial.config import load_config
    from ift_tutorial.planning.dry_run import build_quantized_model
    from ift_tutorial.inference.generation import generate_responses
    from ift_tutorial.planning.hardware import Precision, trainable_dtype
    from ift_tutorial.planning.memory import CUDA_OVERHEAD_BYTES, GiB, plan_for_config
    from ift_tutorial.training.trainer import build_trainer, sft_config

    base = load_config(preset)
    seq_len = seq_len or base.model.max_length
    batch_size = batch_size or base.training.per_device_train_batch_size
    config = load_config(preset, [
        f"model.compute_dtype={dtype}", f"model.max_length={seq_len}",
        f"training.max_steps={steps}", "training.gradient_accumulation_steps=1",
        f"training.per_device_train_batch_size={batch_size}", "training.logging_steps=1",
        f"training.save_steps={steps + 1}", "training.warmup_ratio=0",
    ])
    on_gpu = device != "cpu"
    compute = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    if not on_gpu:  # the CPU check of this script runs in fp32, as training does on a CPU
        compute = torch.float32
    precision = Precision(device="cuda" if on_gpu else "cpu", compute_dtype=compute,
                          bf16=on_gpu and dtype == "bf16", fp16=on_gpu and dtype == "fp16",
                          optim=("paged_adamw_8bit" if on_gpu else "adamw_torch"))
    arch = architecture_config(config.model.name_or_path)
    if layers:
        arch.num_hidden_layers = layers
        if hasattr(arch, "max_window_layers"):
            arch.max_window_layers = layers
    local = Path(config.model.name_or_path).is_dir()  # the tiny preset (the CPU check)
    tokenizer = _local_tokenizer(config) if local else case_tokenizer(config)
    result: dict[str, Any] = {"layers": arch.num_hidden_layers, "seq_len": seq_len,
                              "batch_size": batch_size, "steps": steps,
                              "compute_dtype": str(compute).replace("torch.", ""),
                              "optim": precision.optim}
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = build_quantized_model(arch, compute_dtype=compute, double_quant=config.model.double_quant,
                                  quant_type=config.model.quant_type, seed=config.training.seed,
                                  device=device)
    mark_as_loaded_in_4bit(model, device)
    result["build_seconds"] = round(time.perf_counter() - t0, 1)
    if on_gpu:
        result["model_gib"] = round(torch.cuda.memory_allocated() / GiB, 3)

    dataset = long_conversations(tokenizer, batch_size * steps, seq_len, config.training.seed)
    timer = StepTimer()
    args = sft_config(config, out_dir / "run", precision)
    trainer = build_trainer(config, model, tokenizer, dataset, args, precision, callbacks=[timer.callback])
    dtypes = {str(p.dtype).replace("torch.", "") for p in trainer.model.parameters() if p.requires_grad}
    result["trainable_dtypes"] = sorted(dtypes)
    t0 = time.perf_counter()
    trainer.train()
    result["train_seconds"] = round(time.perf_counter() - t0, 1)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    result["losses"] = losses
    timed = timer.seconds[1:] or timer.seconds  # the first step pays for warm-up and state creation
    result["seconds_per_step"] = sum(timed) / len(timed) if timed else None
    result["tokens_per_s"] = (batch_size * seq_len / result["seconds_per_step"]
                              if result["seconds_per_step"] else None)
    if on_gpu:
        peak = torch.cuda.max_memory_allocated()
        plan = plan_for_config(config, seq_len=seq_len, batch_size=batch_size,
                               gpu="t4" if dtype == "fp16" else "a100-80gb")
        planned = plan.total_bytes - CUDA_OVERHEAD_BYTES  # what max_memory_allocated can see
        result.update(peak_gib=round(peak / GiB, 3), planned_gib=round(planned / GiB, 3),
                      planned_over_peak=round(planned / peak, 3),
                      peak_note="torch.cuda.max_memory_allocated over build + training; the plan "
                                "without its CUDA-context allowance")

    t0 = time.perf_counter()
    question = [{"role": "user", "content": "What is 7 + 5?"}]
    [answer] = generate_responses(trainer.model, tokenizer, [question], max_new_tokens=16)
    result["generation"] = {"question": question[0]["content"], "answer": answer,
                            "seconds": round(time.perf_counter() - t0, 2)}

    failures = []
    if len(losses) != steps or not all(math.isfinite(x) for x in losses):
        failures.append(f"losses {losses}: expected {steps} finite values")
    if dtypes != {str(trainable_dtype(precision)).replace("torch.", "")}:
        failures.append(f"trainable parameters in {sorted(dtypes)}, expected {trainable_dtype(precision)}")
    if not isinstance(answer, str):
        failures.append("no answer generated")
    result["failures"] = failures
    del trainer, model
    return result


def _local_tokenizer(config):
    from ift_tutorial.loading import load_tokenizer

    return load_tokenizer(config.model)


def merge_check(preset: str, dtype: str, *, device: str, out_dir: Path, seq_len: int = 64,
                layers: int = MERGE_LAYERS) -> dict[str, Any]:
    """Step 5: the shard-wise merge of an adapter against base + adapter, logits compared."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ift_tutorial.planning.architectures import architecture_config
    from ift_tutorial.config import load_config
    from ift_tutorial.inference.merging import merge_shardwise

    config = load_config(preset)
    on_gpu = device != "cpu"
    dtype_t = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype] if on_gpu else torch.float32
    arch = architecture_config(config.model.name_or_path)
    arch.num_hidden_layers = layers
    if hasattr(arch, "max_window_layers"):
        arch.max_window_layers = layers
    torch.manual_seed(0)
    with torch.device(device):
        base = AutoModelForCausalLM.from_config(arch, dtype=dtype_t).eval()
    # several shards, as a hub checkpoint has (the embeddings and head alone are over 1 GB at 7B)
    shard = "300MB" if on_gpu else "2MB"
    base.save_pretrained(out_dir / "base", max_shard_size=shard)
    lora = config.lora
    peft = get_peft_model(base, LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                                           use_rslora=lora.use_rslora, init_lora_weights=False,
                                           task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)  # an update of about a third of |W|: its effect is measurable
    peft.save_pretrained(out_dir / "adapter")
    ids = torch.randint(0, min(arch.vocab_size, 1000), (1, seq_len), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged = peft(input_ids=ids.to(device)).logits.float().cpu()
        with peft.disable_adapter():
            plain = peft(input_ids=ids.to(device)).logits.float().cpu()
    del peft, base
    _free()
    t0 = time.perf_counter()
    merge_shardwise(out_dir / "base", out_dir / "adapter", out_dir / "merged")
    seconds = time.perf_counter() - t0
    merged_model = AutoModelForCausalLM.from_pretrained(out_dir / "merged", dtype=dtype_t,
                                                        device_map={"": 0 if on_gpu else "cpu"}).eval()
    with torch.no_grad():
        merged = merged_model(input_ids=ids.to(device)).logits.float().cpu()
    del merged_model
    _free()
    effect = (unmerged - plain).abs().max().item()
    error = (merged - unmerged).abs().max().item()
    shards = len(list((out_dir / "base").glob("*.safetensors")))
    ok = effect > 0 and error <= MERGE_TOLERANCE * effect
    return {"layers": layers, "shards": shards, "dtype": str(dtype_t).replace("torch.", ""),
            "merge_seconds": round(seconds, 2), "adapter_effect_max": effect,
            "merged_vs_unmerged_max": error, "ratio": error / effect if effect else None,
            "tolerance": MERGE_TOLERANCE,
            "failures": [] if ok else [f"merged logits off by {error:.3g}, the adapter's effect is "
                                       f"{effect:.3g} (tolerance {MERGE_TOLERANCE:.0%} of it)"]}


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_case(case: str, *, steps: int, seq_len: int | None, batch_size: int | None,
             device: str = "cuda", layers: int | None = None) -> dict[str, Any]:
    """One case, all five steps; ``status`` is ``pass`` or ``fail`` (with ``failures``)."""
    import torch

    preset, dtype = parse_case(case)
    report: dict[str, Any] = {"case": case, "preset": preset, "dtype": dtype}
    if device != "cpu":
        torch.cuda.set_device(0)
        report["environment"] = environment()
        if dtype == "fp16":  # the T4 recipe gets a T4's memory
            cap = t4_allocatable_bytes()
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), 0)
            report["memory_cap_gib"] = round(cap / 2**30, 3)
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        report["train"] = train_and_generate(preset, dtype, steps=steps, seq_len=seq_len,
                                             batch_size=batch_size, device=device, layers=layers,
                                             out_dir=Path(tmp))
        _free()
        report["merge"] = merge_check(preset, dtype, device=device, out_dir=Path(tmp))
    failures = report["train"].pop("failures") + report["merge"].pop("failures")
    cap = report.get("memory_cap_gib")
    if cap and report["train"].get("peak_gib", 0) > cap:
        failures.append(f"peak {report['train']['peak_gib']} GiB over the T4 cap {cap} GiB")
    report["status"] = "fail" if failures else "pass"
    report["failures"] = failures
    return report


# --- the driver: one subprocess per case -----------------------------------------------


def run_in_subprocess(case: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``case`` in a fresh Python process under ``args.timeout`` seconds."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_file = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-case", case, "--result-file",
           str(result_file), "--steps", str(args.steps)]
    if args.seq_len:
        cmd += ["--seq-len", str(args.seq_len)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired as err:
        tail = (err.stderr or b"")[-2000:]
        return {"case": case, "status": "timeout", "seconds": args.timeout,
                "failures": [f"no result within {args.timeout} s"],
                "stderr_tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail}
    seconds = round(time.perf_counter() - start, 1)
    try:
        report = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {"case": case, "status": "error",
                  "failures": [f"the case process exited with {proc.returncode} and no result"],
                  "stderr_tail": proc.stderr[-3000:]}
    finally:
        result_file.unlink(missing_ok=True)
    report["seconds"] = seconds
    return report


def environment() -> dict[str, Any]:
    import torch

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            versions[name] = None
    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "device_memory_gib": round(props.total_memory / 2**30, 2),
            "compute_capability": f"{props.major}.{props.minor}", "python": platform.python_version(),
            "versions": versions, "date": time.strftime("%Y-%m-%d")}


def default_output(device: str) -> Path:
    slug = "".join(c if c.isalnum() else "-" for c in device.lower()).strip("-")
    return HERE / "results" / f"gpu_smoke-{slug}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None,
                        help="comma-separated PRESET:DTYPE (default: every 7B preset in fp16 and bf16)")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--steps", type=int, default=3, help="training steps per case (default 3)")
    parser.add_argument("--seq-len", type=int, default=None, help="default: the preset's max_length")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the preset's per_device_train_batch_size")
    parser.add_argument("--timeout", type=int, default=420, help="seconds per case (default 420)")
    parser.add_argument("--output", default=None,
                        help="JSON report (default: benchmarks/results/gpu_smoke-<device>.json)")
    parser.add_argument("--run-case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network: everything is built locally
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if args.run_case:  # the child process of one case
        report = run_case(args.run_case, steps=args.steps, seq_len=args.seq_len,
                          batch_size=args.batch_size)
        Path(args.result_file).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        return 0

    if not args.list:
        import torch

        if not torch.cuda.is_available():
            print(NO_GPU, file=sys.stderr)
            return 2
    cases = args.cases.split(",") if args.cases else default_cases()
    from ift_tutorial.config import available_presets

    for case in cases:
        if parse_case(case)[0] not in available_presets():
            raise SystemExit(f"case {case!r}: no preset {parse_case(case)[0]!r}; presets: "
                             f"{', '.join(available_presets())}")
    if args.list:
        print("\n".join(cases))
        return 0
    # The device is read in the case processes: this one never starts CUDA (its context
    # would take GPU memory from the cases).
    report: dict[str, Any] = {"device": None, "settings": {"steps": args.steps, "seq_len": args.seq_len or "preset",
                                  "batch_size": args.batch_size or "preset", "timeout_s": args.timeout,
                                  "merge_layers": MERGE_LAYERS, "merge_tolerance": MERGE_TOLERANCE},
              "cases": []}
    for case in cases:
        print(f"=== {case}", flush=True)
        result = run_in_subprocess(case, args)
        if report["device"] is None and result.get("environment"):
            report.update(result.pop("environment"))
        result.pop("environment", None)
        report["cases"].append(result)
        output = Path(args.output) if args.output else default_output(report["device"] or "unknown-gpu")
        train = result.get("train", {})
        print(f"{case}: {result['status']} in {result.get('seconds')} s; peak {train.get('peak_gib')} GiB "
              f"(planned {train.get('planned_gib')}), {train.get('tokens_per_s') or 0:.0f} tokens/s"
              + (f"; {'; '.join(result['failures'])}" if result.get("failures") else ""), flush=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"report: {output.relative_to(HERE.parent) if output.is_relative_to(HERE.parent) else output}")
    return 0 if all(c["status"] == "pass" for c in report["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
