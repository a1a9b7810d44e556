"""Memory planner vs measurement on the CPU: the tiny preset and a Qwen2.5-7B slice.

Runs ``ift_tutorial.planning.dry_run.dry_run`` (random weights, 4-bit NF4, LoRA, real
optimizer steps) and prints, per component, the planner's bytes beside the bytes
actually allocated, and the planned total beside the measured peak.

    python benchmarks/bench_memory.py [--qwen-layers 2] [--seq-len 128] [--steps 3]
"""

from __future__ import annotations

import argparse

import torch

from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.config import ConfigError, load_config
from ift_tutorial.planning.dry_run import dry_run, format_report
from ift_tutorial.planning.memory import STATIC, GiB


def run(preset: str, overrides: list[str], layers: int | None, seq_len: int, batch: int,
        steps: int) -> dict | None:
    try:
        config = load_config(preset, overrides)
        architecture_config(config.model.name_or_path)
    except (ConfigError, KeyError, FileNotFoundError, OSError) as err:
        print(f"{preset}: skipped ({err})")
        return None
    report = dry_run(config, layers=layers, steps=steps, seq_len=seq_len, batch_size=batch)
    print(format_report(report))
    print()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qwen-layers", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    for label, preset, overrides, layers, batch in [
        ("tiny", "tiny", [], None, 32),
        (f"qwen2.5-7b, {args.qwen_layers} layers", "qwen2.5-7b", [], args.qwen_layers,
         args.batch_size),
    ]:
        r = run(preset, overrides, layers, args.seq_len, batch, args.steps)
        if r is not None:
            rows.append((label, r))
    print(f"{'run':<26}{'static planned':>15}{'static measured':>16}"
          f"{'total planned':>14}{'peak measured':>14}{'ratio':>7}{'tokens/s':>10}")
    for label, r in rows:
        m = sum(r["measured"]["components_bytes"][k] for k in STATIC)
        p = r["planned"]["static_bytes"]
        peak = r["measured"]["peak_bytes"] or float("nan")
        tot = r["planned"]["total_bytes"]
        print(f"{label:<26}{p / GiB:>15.3f}{m / GiB:>16.3f}{tot / GiB:>14.3f}"
              f"{peak / GiB:>14.3f}{tot / peak:>7.2f}{r['tokens_per_s']:>10.0f}")
    print("(GiB; static = weights, constants, 16-bit parts, LoRA, gradients, optimizer states)")


if __name__ == "__main__":
    main()
