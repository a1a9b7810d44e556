"""The gradient-checkpointing benchmark runs, and its committed result is the one chapter 7 reads.

``benchmarks/grad_checkpointing.py`` times LoRA-on-a-frozen-base steps with and without
gradient checkpointing (chapter 7 quotes its result). Here one tiny case runs in seconds,
and the committed JSON is checked for what the chapter uses; no timing is asserted live.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from ift_tutorial.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "grad_checkpointing.py" if PROJECT_ROOT else None
RESULT = PROJECT_ROOT / "benchmarks" / "results" / "grad_checkpointing.json" if PROJECT_ROOT else None
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="benchmarks are in the checkout only")


def _module():
    spec = importlib.util.spec_from_file_location("grad_checkpointing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_case_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "gc.json"
    assert _module().main(["--cases", "lora-nf4,full-fp32", "--hidden", "64", "--layers", "1",
                           "--vocab", "128", "--batch-size", "1", "--seq-len", "16", "--repeats", "1",
                           "--warmup", "0", "--output", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    lora, full = report["cases"]["lora-nf4"], report["cases"]["full-fp32"]
    assert lora["trainable_parameters"] < full["trainable_parameters"]  # only the adapter trains
    for case in (lora, full):
        assert case["step_seconds_without"] > 0 and case["step_seconds_with"] > 0
        assert len(case["steps_seconds_without"]) == len(case["steps_seconds_with"]) == 1
    assert report["machine"]["torch_threads"] == 1 and report["machine"]["versions"]["torch"]


def test_an_unknown_case_is_a_usage_error():
    with pytest.raises(SystemExit) as err:
        _module().main(["--cases", "lora-int3", "--output", "-"])
    assert err.value.code == 2


def test_the_committed_result_has_what_chapter_7_reads():
    report = json.loads(RESULT.read_text(encoding="utf-8"))
    cases = report["cases"]
    assert {"lora-nf4", "full-fp32"} <= set(cases)
    assert report["machine"]["cpu"] and report["repeats"] >= 5
    # What was measured, not how fast this machine is now: recomputing a frozen base's forward
    # costs more, relatively, than a full fine-tune's (its backward has no weight gradients).
    assert 1.2 < cases["lora-nf4"]["ratio"] < 1.8
    assert cases["full-fp32"]["ratio"] < cases["lora-nf4"]["ratio"]
    assert cases["full-fp32"]["backward_over_forward"] > 1.5 > cases["lora-nf4"]["backward_over_forward"]
