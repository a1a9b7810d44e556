"""Run every benchmark in turn on this machine and print their tables (`make benchmarks`).

Each benchmark is a standalone script in this folder; run one alone for its options
(`python benchmarks/bench_attention.py --help`). Timings on a shared or busy machine are
not comparable: run this on an otherwise idle one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_attention.py", "bench_memory.py", "bench_tiny_training.py", "bench_distributed.py",
              "grad_checkpointing.py"]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / name)])
        print(f"({name}: {time.perf_counter() - start:.0f} s, exit {rc})", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
