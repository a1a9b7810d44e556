"""One training process vs two (DDP over gloo) on the CPU, tiny preset.

Usage::

    python benchmarks/bench_distributed.py                 # 30 steps per layout
    python benchmarks/bench_distributed.py --steps 60 --batch-size 32

Every layout runs the unchanged ``ift-tutorial train`` command (through ``torchrun``)
with the same per-rank batch, so two ranks process twice the examples per step. The
layouts share the same CPU cores: 1 rank x 2 threads, 1 rank x 1 thread, 2 ranks x 1
thread each. Throughput comes from the run's own records: ``train_seconds`` and
``steps`` from ``metrics.json``, the token count (all ranks) from ``log.json``.

What to expect on a 2-core machine: two ranks add no device, only split the same two
cores, and they add work: each step both ranks must finish before the gradients are
averaged (gloo all-reduce through shared memory), and every rank loads the model and
prepares the data. Yet on an idle machine two ranks x 1 thread measured about 1.5 times
the examples per second of one rank x 2 threads (102 vs 70): the tiny model's matmuls
are too small for two threads of one process to share well, while two processes each
keep a core busy. Steps per second fall, since each step carries twice the examples.
On N GPUs, the same command gets ~N times the examples per second, minus the all-reduce.

On a machine whose cores are also busy with other work, "1 rank x 2 threads" can be
several times *slower* than one thread: OpenMP's worker threads spin while waiting for
each other, and a spinning thread whose partner has been descheduled burns its time
slice for nothing. ``OMP_WAIT_POLICY=passive`` (set before Python starts) makes them
sleep instead and removes the slowdown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ift_tutorial.paths import PROJECT_ROOT

#: (label, processes, threads per process)
LAYOUTS = [
    ("1 rank x 2 threads", 1, 2),
    ("1 rank x 1 thread", 1, 1),
    ("2 ranks x 1 thread", 2, 1),
]


def run_layout(procs: int, threads: int, steps: int, batch_size: int, out: Path,
               overrides: list[str]) -> dict[str, float]:
    """Train ``steps`` steps with ``procs`` ranks; return throughput numbers."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", str(procs), "-m", "ift_tutorial.cli", "train",
           "--config", "tiny", "--output-dir", str(out), "--no-eval", "--resume", "never"]
    sets = [f"training.max_steps={steps}", f"training.per_device_train_batch_size={batch_size}",
            f"training.num_threads={threads}", f"training.save_steps={steps}",
            "training.logging_steps=1", *overrides]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({procs} ranks):\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    log = json.loads((out / "log.json").read_text())
    tokens = max(e.get("num_tokens", 0) for e in log)
    secs = metrics["train_seconds"]
    return {
        "global_batch": metrics["distributed"]["global_batch_size"],
        "steps_per_s": metrics["steps"] / secs,
        "examples_per_s": metrics["steps"] * metrics["distributed"]["global_batch_size"] / secs,
        "tokens_per_s": tokens / secs,
        "train_seconds": secs,
        "total_seconds": metrics["total_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="extra config overrides")
    args = parser.parse_args(argv)
    print(f"tiny preset, {args.steps} steps, per-rank batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores, load average before: {os.getloadavg()[0]:.1f} "
          "(other processes on the machine skew the comparison)")
    header = f"{'layout':<22}{'global batch':>13}{'steps/s':>9}{'examples/s':>12}{'tokens/s':>10}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for label, procs, threads in LAYOUTS:
            r = run_layout(procs, threads, args.steps, args.batch_size,
                           Path(tmp) / f"{procs}x{threads}", args.overrides)
            print(f"{label:<22}{r['global_batch']:>13}{r['steps_per_s']:>9.2f}"
                  f"{r['examples_per_s']:>12.1f}{r['tokens_per_s']:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
