"""Install torch for `make setup`: the CPU build where one can be had, and never a long stall.

PyPI's Linux wheels of torch are CUDA builds of several GB; a machine without an NVIDIA
GPU wants the CPU build from PyTorch's own CPU index. That index is not reachable from
everywhere (behind some firewalls, or where pip is set up to use a mirror), and pip
retries an unreachable index for minutes. So:

1. a torch that is already installed is kept;
2. PyTorch's CPU index (``--index``) is tried only if it answers within a few seconds;
3. otherwise the index pip is configured with (a mirror, ``pip config``, ``PIP_INDEX_URL``)
   is used: on Linux without an NVIDIA GPU, its newest ``+cpu`` build that meets the
   requirement if it has one, else the requirement as it is, with a warning that this may
   be a CUDA build and how to point ``TORCH_INDEX`` at a mirror of the CPU index.

Usage: python scripts/install_torch.py [--spec "torch>=2.4"] [--index URL]
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import urllib.request

try:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version
except ImportError:  # a fresh virtualenv: pip carries its own copy
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.version import InvalidVersion, Version

PROBE_SECONDS = 8


def installed() -> str | None:
    """The installed torch's version, or None."""
    code = "import torch; print(torch.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def reachable(index: str) -> bool:
    """True if the index answers for torch within a few seconds."""
    try:
        with urllib.request.urlopen(index.rstrip("/") + "/torch/", timeout=PROBE_SECONDS):
            return True
    except Exception:  # unreachable, refused, timed out, proxy error: all mean "do not wait"
        return False


def wants_cpu_build() -> bool:
    """Linux with no NVIDIA GPU: a CUDA build would be several GB of nothing."""
    return platform.system() == "Linux" and shutil.which("nvidia-smi") is None


def newest_cpu_build(spec: str) -> str | None:
    """The newest ``+cpu`` torch version the configured index offers that meets ``spec``."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "torch"],
                         capture_output=True, text=True)
    match = re.search(r"Available versions: (.+)", out.stdout)
    wanted = SpecifierSet(spec.split("torch", 1)[1].strip() or ">=0")
    found = []
    for text in (match.group(1).split(", ") if match else []):
        try:
            version = Version(text.strip())
        except InvalidVersion:
            continue
        if version.local == "cpu" and Version(version.public) in wanted:
            found.append(version)
    return str(max(found)) if found else None


def pip_install(*args: str) -> None:
    print("+ pip install " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="torch>=2.4", help="the requirement (default: %(default)s)")
    parser.add_argument("--index", default="https://download.pytorch.org/whl/cpu",
                        help="PyTorch's CPU index, or a mirror of it; empty: the configured index")
    args = parser.parse_args(argv)
    version = installed()
    if version:
        print(f"torch {version} is installed: kept")
        return 0
    if args.index and reachable(args.index):
        pip_install(args.spec, "--index-url", args.index)
    else:
        if args.index:
            print(f"PyTorch's CPU index did not answer within {PROBE_SECONDS} s: using the index "
                  "pip is configured with (set TORCH_INDEX to a mirror of the CPU index to use one)")
        cpu = newest_cpu_build(args.spec) if wants_cpu_build() else None
        if cpu:
            pip_install(f"torch=={cpu}")
        else:
            if wants_cpu_build():
                print("warning: the configured index has no CPU build of torch; on Linux this may "
                      "download a CUDA build of several GB. To avoid it: make setup "
                      "TORCH_INDEX=<a mirror of PyTorch's CPU index>", file=sys.stderr)
            pip_install(args.spec)
    print(f"torch {installed()} installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
