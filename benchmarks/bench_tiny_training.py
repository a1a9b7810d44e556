"""Time and memory of the tiny preset's QLoRA run on this machine.

Runs ``ift_tutorial.training.trainer.train`` with the ``tiny`` preset into a temporary folder
and prints wall time (training alone and the whole command), seconds per step, peak
resident memory, and held-out exact match before and after. The target for the full
preset (400 steps) is a few minutes on a 2-core CPU that nobody else is using.

    python benchmarks/bench_tiny_training.py            # the full preset
    python benchmarks/bench_tiny_training.py --steps 50 --no-eval
"""

from __future__ import annotations

import argparse
import tempfile

from ift_tutorial.config import load_config
from ift_tutorial.training.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's max_steps")
    parser.add_argument("--threads", type=int, default=None, help="default: the preset's")
    parser.add_argument("--no-eval", action="store_true")
    args = parser.parse_args()
    overrides = []
    if args.steps:
        overrides.append(f"training.max_steps={args.steps}")
    if args.threads:
        overrides.append(f"training.num_threads={args.threads}")
    config = load_config("tiny", overrides)
    with tempfile.TemporaryDirectory() as out:
        m = train(config, out, resume="never", evaluate=not args.no_eval)
    print(f"steps                {m['steps']}")
    print(f"threads              {m['num_threads']}")
    print(f"training             {m['train_seconds']:.1f} s ({m['train_seconds'] / m['steps']:.3f} s/step)")
    print(f"whole command        {m['total_seconds']:.1f} s")
    print(f"peak resident memory {m['peak_rss_mb']:.0f} MiB")
    if not args.no_eval:
        print(f"exact match          {m['exact_match_before']:.1%} -> {m['exact_match_after']:.1%}")


if __name__ == "__main__":
    main()
