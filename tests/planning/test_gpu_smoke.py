"""The GPU smoke benchmark: its cases, its refusal on a CPU, and one case's code run on the CPU.

The benchmark itself needs a CUDA GPU (``benchmarks/gpu_smoke.py``). Here its case list
and its message on a CPU are checked, and the code of one case (build a random 4-bit
model, train with the package's trainer, generate, merge shard by shard and compare)
runs on the tiny architecture in fp32.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from ift_tutorial.config import available_presets
from ift_tutorial.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_smoke.py" if PROJECT_ROOT else None
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="benchmarks are in the checkout only")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # no GPU, even on a machine that has one
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_on_a_cpu_it_says_why_and_exits_2():
    proc = _run()
    assert proc.returncode == 2, proc.stderr
    assert "needs a CUDA GPU" in proc.stderr and "nothing was run" in proc.stderr
    assert proc.stdout == ""


def _module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    return smoke


def test_cases_cover_every_7b_preset_in_both_dtypes_qwen_fp16_first(capsys):
    smoke = _module()
    assert smoke.main(["--list"]) == 0
    cases = capsys.readouterr().out.split()
    assert cases[0] == "qwen2.5-7b:fp16"
    presets = [p for p in available_presets() if p != "tiny"]
    assert sorted(cases) == sorted(f"{p}:{d}" for p in presets for d in ("fp16", "bf16"))
    with pytest.raises(SystemExit, match="no preset 'no-such-preset'"):
        smoke.main(["--cases", "no-such-preset:fp16", "--list"])
    with pytest.raises(SystemExit, match="expected PRESET:DTYPE"):
        smoke.main(["--cases", "qwen2.5-7b:int8", "--list"])


def test_one_case_runs_end_to_end_on_the_cpu():
    smoke = _module()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and steady on a busy machine
    try:
        report = smoke.run_case("tiny:fp16", steps=2, seq_len=32, batch_size=2, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert report["status"] == "pass", report["failures"]
    train, merge = report["train"], report["merge"]
    assert len(train["losses"]) == 2 and train["trainable_dtypes"] == ["float32"]
    assert train["tokens_per_s"] > 0 and isinstance(train["generation"]["answer"], str)
    assert merge["shards"] >= 2 and merge["adapter_effect_max"] > 0.1
    assert merge["ratio"] < 1e-4  # fp32 on a CPU: the merge is exact up to rounding
    json.dumps(report)  # the report is JSON
