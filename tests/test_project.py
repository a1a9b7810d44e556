"""The project's own plumbing: packaging files agree, presets load, the CLI explains itself."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib

import pytest
import torch
import yaml

from ift_tutorial import cli
from ift_tutorial.planning import hardware
from ift_tutorial.config import ConfigError, available_presets, load_config
from ift_tutorial.paths import PROJECT_ROOT

SUBCOMMANDS = ["train", "evaluate", "generate", "chat", "merge", "check-data", "pretrain",
               "plan-memory", "dry-run", "score-ifeval", "export", "grpo", "dpo"]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(r): r for r in pip_section} == {_name(r): r for r in wanted}


def test_torch_requirement_is_a_lower_bound():
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [torch_req] = [d for d in deps if _name(d) == "torch"]
    assert ">=" in torch_req and "==" not in torch_req and "<" not in torch_req


@pytest.mark.parametrize("preset", ["qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"])
def test_7b_presets_load_with_secure_defaults(preset):
    cfg = load_config(preset)
    assert cfg.model.load_in_4bit and cfg.model.quant_type == "nf4" and cfg.model.double_quant
    assert cfg.model.trust_remote_code is False and cfg.model.allow_pickle is False
    assert "/" in cfg.model.name_or_path  # a hub id, used only when a reader runs the preset
    assert cfg.training.per_device_train_batch_size <= 4  # T4-sized
    assert preset in available_presets()


def test_llama_preset_says_it_is_gated_and_the_open_ones_are_not():
    cfg = load_config("llama-3.1-8b")
    assert cfg.model.gated and "licence" in cfg.model.notes
    assert not load_config("qwen2.5-7b").model.gated and not load_config("olmo-2-7b").model.gated


def test_overrides_are_typed_and_unknown_keys_rejected(tmp_path):
    cfg = load_config("qwen2.5-7b", ["training.max_steps=7", "lora.r=4", "lora.use_rslora=true"])
    assert (cfg.training.max_steps, cfg.lora.r, cfg.lora.use_rslora) == (7, 4, True)
    with pytest.raises(ConfigError, match="learnig_rate"):
        load_config("qwen2.5-7b", ["training.learnig_rate=1e-3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name_or_path: x\n  colour: blue\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'model'.*colour"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_config("no-such-preset")


@pytest.mark.parametrize(
    "capability, expected",
    [(None, torch.float32), ((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
)
def test_compute_dtype_from_capability(capability, expected):
    assert hardware.compute_dtype_for_capability(capability) == expected


def test_t4_gets_fp16_even_if_torch_claims_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulated on a T4
    p = hardware.detect_precision()
    assert (p.compute_dtype, p.fp16, p.bf16, p.optim) == (torch.float16, True, False, "paged_adamw_8bit")


def test_cpu_precision_is_fp32_without_mixed_precision():
    p = hardware.detect_precision()
    assert (p.device, p.compute_dtype, p.bf16, p.fp16, p.optim) == ("cpu", torch.float32, False, False, "adamw_torch")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ift-tutorial {command}") and len(out.splitlines()) > 4


def test_the_subcommand_list_is_the_parsers():
    """SUBCOMMANDS is every subcommand of ``build_parser()``, so that a new one gets its --help test."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert SUBCOMMANDS == list(sub.choices)


def test_console_script_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in SUBCOMMANDS:
        assert command in out


def test_cli_reports_config_errors_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "train", "--config", "qwen2.5-7b",
                          "--set", "training.bogus=1", "--output-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "bogus" in run.stderr and "Traceback" not in run.stderr


def test_pickle_only_model_folder_is_refused_with_a_clear_error(tmp_path):
    """A folder with only pytorch_model.bin is refused before anything is unpickled."""
    import shutil

    from ift_tutorial.paths import TINY_MODEL_DIR

    folder = tmp_path / "pickled"
    shutil.copytree(TINY_MODEL_DIR, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "evaluate", "--config", "tiny",
                          "--set", f"model.name_or_path={folder}"], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "pytorch_model.bin" in run.stderr and "allow_pickle" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_model_folder_is_a_clear_error(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "evaluate", "--config", "tiny",
                          "--set", f"model.name_or_path={tmp_path / 'nowhere'}"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "nowhere" in run.stderr and "Traceback" not in run.stderr
