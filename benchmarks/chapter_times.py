"""How much CPU each chapter notebook takes, tiny preset: processor and wall-clock time.

The preface's chapter map quotes these times (ift_tutorial/book/chapter_map.py reads
the results). Each notebook runs from top to bottom in a fresh kernel, in its own folder,
as ``make test-notebooks`` runs it, with no finished run to reuse: a training cell trains::

    python benchmarks/chapter_times.py                       # every chapter
    python benchmarks/chapter_times.py --chapters 11 12 A    # some (A, B: the appendices)

A chapter measured again replaces its entry in ``--output``; the others are kept, so
the file can be filled a few chapters at a time. Each entry records the processor time
(the kernel's and its subprocesses', which the preface quotes), the wall-clock time, the
date and the machine (CPU cores, torch threads, and the load average when the run ended):
wall-clock times on a shared or busy machine are not comparable; processor times nearly are.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "book" / "chapters"
OUTPUT = ROOT / "benchmarks" / "results" / "chapter_times.json"
APPENDICES = {"A": "appendix_errata", "B": "appendix_checkpoints"}
#: The environment of `make test-notebooks`: offline, quiet, no reused runs.
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "IFT_QUIET_PROGRESS": "1"}


def notebook_for(chapter: str) -> Path:
    """The notebook of a chapter given as "7", "07" or "A"."""
    stem = APPENDICES.get(chapter.upper())
    pattern = f"{stem}.ipynb" if stem else f"{int(chapter):02d}_*.ipynb"
    found = sorted(CHAPTERS.glob(pattern))
    if not found:
        raise SystemExit(f"no notebook for chapter {chapter!r} in book/chapters")
    return found[0]


def time_notebook(path: Path, timeout: int = 1800) -> dict[str, float]:
    """Run ``path`` top to bottom in a fresh kernel: its wall-clock and processor seconds.

    The processor time is the kernel's and its subprocesses' (a training cell that starts
    ``torchrun`` included), user and system: the work the chapter asks of a CPU. Unlike the
    wall-clock time it hardly changes when other programs share the cores.
    """
    notebook = nbformat.read(path, as_version=4)
    for key in ("IFT_REUSE_RUNS", "IFT_PRESET", "IFT_REHEARSAL"):
        os.environ.pop(key, None)
    os.environ.update(ENV)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        kernel = psutil.Process(client.km.provisioner.process.pid)
        start = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        wall = time.perf_counter() - start
        used = kernel.cpu_times()
    cpu = used.user + used.system + used.children_user + used.children_system
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}


def machine() -> dict[str, object]:
    import torch

    # The load average says whether other work shared the cores during the run.
    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, A, B (default: all)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    paths = ([notebook_for(c) for c in args.chapters] if args.chapters
             else sorted(CHAPTERS.glob("*.ipynb")))
    results = json.loads(args.output.read_text()) if args.output.is_file() else {"chapters": {}}
    failed = []
    for path in paths:
        try:
            timing = time_notebook(path)
        except Exception as err:  # a failing chapter is reported, not timed
            last = str(err).strip().splitlines()[-1:] or [""]
            print(f"{path.stem}: not timed, it failed: {type(err).__name__}: {last[0]}",
                  file=sys.stderr)
            failed.append(path.stem)
            continue
        results["chapters"][path.stem] = {
            **timing, "date": datetime.date.today().isoformat(), "machine": machine()}
        print(f"{path.stem:<40} {timing['cpu_seconds']:7.1f} s of CPU, "
              f"{timing['wall_seconds']:7.1f} s wall", flush=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        results["chapters"] = dict(sorted(results["chapters"].items()))
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
