"""The GPU smoke benchmark: its refusal on a CPU, its cases, its time estimate, and one case's
code run on the CPU.

The benchmark itself needs a CUDA GPU (``benchmarks/gpu_smoke.py``). Here its message on a
CPU, its three cases and its estimate (under the 8 minutes of a GPU loan) are checked; the
random checkpoint it writes is loaded with plain transformers; and one case runs through the
script's own driver (``--cpu-check``: a case process, the merge process beside it) on the
rehearsal's shrunk Qwen architecture, in fp32, with the ledger charging the real 7B model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from ift_tutorial.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_smoke.py" if PROJECT_ROOT else None
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="benchmarks are in the checkout only")
EIGHT_MINUTES = 480


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # no GPU, even on a machine that has one
    env.pop("IFT_REHEARSAL", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    smoke = importlib.util.module_from_spec(spec)
    sys.modules["gpu_smoke"] = smoke  # its dataclasses look their module up
    spec.loader.exec_module(smoke)
    return smoke


def test_on_a_cpu_it_says_why_and_exits_2():
    proc = _run()
    assert proc.returncode == 2, proc.stderr
    assert "needs a CUDA GPU" in proc.stderr and "nothing was run" in proc.stderr
    assert proc.stdout == ""


def test_the_cases_are_qwen_fp16_llama_fp16_and_qwen_bf16(capsys):
    smoke = _module()
    assert smoke.main(["--list"]) == 0  # the T4 cases first, the book's default first of all
    assert capsys.readouterr().out.split() == ["qwen2.5-7b:fp16", "llama-3.1-8b:fp16", "qwen2.5-7b:bf16"]
    assert smoke.main(["--list", "--cases", "llama-3.1-8b:fp16"]) == 0
    assert capsys.readouterr().out.split() == ["llama-3.1-8b:fp16"]
    with pytest.raises(SystemExit, match="no preset 'no-such-preset'"):
        smoke.main(["--cases", "no-such-preset:fp16", "--list"])
    with pytest.raises(SystemExit, match="expected PRESET:DTYPE"):
        smoke.main(["--cases", "qwen2.5-7b:int8", "--list"])


def test_the_estimate_fits_a_loan_of_eight_minutes_and_trims_or_refuses_beyond(capsys):
    smoke = _module()
    plan = smoke.plan_run(list(smoke.CASES))
    assert plan["fits"] and plan["total_s"] <= EIGHT_MINUTES and not plan["trimmed"]
    for row in plan["cases"]:
        assert set(row["estimate_s"]) == {"startup", *smoke.PHASES}
        assert all(s > 0 for s in row["estimate_s"].values()) and not row["skip"]
    # the Qwen checkpoint is written once and kept for the bf16 case, if the disk has room
    qwen, llama, qwen_bf16 = plan["cases"]
    assert qwen_bf16["estimate_s"]["checkpoint"] < qwen["estimate_s"]["checkpoint"] / 5
    assert llama["estimate_s"]["train"] > qwen["estimate_s"]["train"]  # 8B: more bytes to load
    apart = smoke.plan_run(list(smoke.CASES), share=False)
    assert apart["disk_bytes"] < 0.75 * plan["disk_bytes"] and plan["total_s"] < apart["total_s"] <= EIGHT_MINUTES
    # a tighter budget trims the repeat of an architecture, chapter 8's tail first ...
    tight = smoke.plan_run(list(smoke.CASES), budget=plan["total_s"] - 20)
    assert tight["fits"] and tight["trimmed"]
    assert tight["cases"][2]["skip"] == list(smoke.CH8_TAIL)
    assert not tight["cases"][0]["skip"] and not tight["cases"][1]["skip"]
    # ... and what cannot fit even trimmed is refused
    assert smoke.main(["--estimate", "--budget", "120"]) == 3
    assert "over the budget" in capsys.readouterr().err
    # on a CPU, --estimate prints it: the total, then a line per case
    proc = _run("--estimate")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"estimate: {plan['total_s']:.0f} s of the 480 s budget")
    assert [line.split(": ")[0].strip() for line in lines[1:]] == list(smoke.CASES)


def test_the_band_fails_a_ledger_that_under_or_over_charges():
    smoke = _module()
    gib = 2**30
    assert smoke.judge(9 * gib, 10 * gib) == ("pass", None)
    assert smoke.judge(None, 10 * gib) == ("pass", None)  # a CPU: nothing measured
    status, reason = smoke.judge(11 * gib, 10 * gib)
    assert status == "fail" and "under-charges" in reason
    status, reason = smoke.judge(4 * gib, 10 * gib)
    assert status == "fail" and "over-charges" in reason


@pytest.mark.parametrize("hub, cls", [("Qwen/Qwen2.5-7B", "Qwen2ForCausalLM"),
                                      ("meta-llama/Llama-3.1-8B", "LlamaForCausalLM")])
def test_the_random_checkpoint_loads_in_shards_and_never_ends_an_answer(tmp_path, hub, cls):
    from transformers import AutoModelForCausalLM

    smoke = _module()
    tokenizer = smoke.case_tokenizer(hub)
    arch = smoke.case_architecture(hub, tokenizer, shrink=True)
    info = smoke.write_random_checkpoint(arch, tokenizer, tmp_path / "ckpt", shard_bytes=2**18)
    assert info["shards"] >= 2 and (tmp_path / "ckpt" / "model.safetensors.index.json").is_file()
    assert smoke.ensure_checkpoint(arch, tokenizer, tmp_path / "ckpt")["reused"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt", dtype=torch.float32)
    assert type(model).__name__ == cls
    assert model.config.vocab_size > len(tokenizer)  # ids past the tokenizer's, as with 152,064
    head = model.get_output_embeddings().weight
    stops = smoke.stop_ids(tokenizer)
    assert tokenizer.eos_token_id in stops and head[stops].abs().sum() == 0
    assert 0.01 < head.std().item() < 0.03 and head[-1].ne(head[-2]).any()  # random, not constant
    norm = model.model.layers[0].input_layernorm.weight
    assert torch.equal(norm, torch.ones_like(norm))


def test_one_case_runs_through_the_driver_on_the_cpu(tmp_path):
    output = tmp_path / "report.json"
    proc = _run("--cpu-check", "--cases", "qwen2.5-7b:fp16", "--output", str(output),
                "--work-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    [case] = report["cases"]
    assert case["status"] == "pass", case["failures"]
    phases = case["phases"]
    assert list(phases) == ["checkpoint", "train", "resume", "load_tuned", "perplexity", "generate",
                            "merge", "load_merged", "release", "generate_cli"]
    assert all(p["status"] == "pass" and p["seconds"] >= 0 for p in phases.values())
    assert phases["train"]["steps"] == 1
    assert phases["resume"]["resumed_from_step"] == 1 and phases["resume"]["steps"] == 2
    assert phases["perplexity"]["n"] == 8 and phases["perplexity"]["tokens"] > 0
    assert phases["generate"]["decoded_steps"] == phases["generate"]["new_tokens"] == 8
    assert phases["merge"]["overlapped"] and phases["merge"]["max_difference"] < 1e-2
    # the ledger charged the real Qwen2.5-7B on a T4: two 4-bit copies resident, then one
    assert phases["load_merged"]["ledger_resident"] == ["Qwen/Qwen2.5-7B (4-bit) + LoRA adapter",
                                                        "Qwen/Qwen2.5-7B (4-bit)"]
    assert phases["release"]["released"]
    assert phases["release"]["ledger_resident"] == ["Qwen/Qwen2.5-7B (4-bit) + LoRA adapter"]
    assert phases["load_merged"]["ledger_bytes"] > 1.8 * phases["release"]["ledger_bytes"]
    assert any(e["what"].startswith("training step") for e in phases["train"]["ledger_events"])
    assert any(e["what"].startswith("perplexity batch of 8") for e in phases["perplexity"]["ledger_events"])
    assert case["ledger"]["gpu"] == "t4" and case["ledger"]["peak_bytes"] <= case["ledger"]["usable_bytes"]
    assert not list(tmp_path.glob("gpu-smoke-*"))  # the work folder is removed
