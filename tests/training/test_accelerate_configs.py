"""The shipped ``configs/accelerate/*.yaml`` files are what ``accelerate launch`` accepts.

Each file goes through accelerate's own code path: its config class (unknown keys are
an error there), the launcher's validation, and the environment the launcher would
hand to every process. Nothing is launched (no GPU here; DeepSpeed not installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from ift_tutorial.paths import CONFIGS_DIR

ACCELERATE_DIR = CONFIGS_DIR / "accelerate"


def _launch_env(path: Path) -> tuple[object, dict[str, str]]:
    """Parse ``accelerate launch --config_file path -m ift_tutorial.cli train`` and build its env."""
    args = launch_command_parser().parse_args(
        ["--config_file", str(path), "-m", "ift_tutorial.cli", "train"]
    )
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        # as accelerate's launch_command does before calling the DeepSpeed launcher
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return args, prepare_deepspeed_cmd_env(args)[1]
    return args, prepare_multi_gpu_env(args)


def test_the_three_strategies_are_shipped() -> None:
    assert sorted(p.name for p in ACCELERATE_DIR.glob("*.yaml")) == [
        "ddp.yaml", "fsdp_qlora.yaml", "zero3_qlora.yaml"]


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp_qlora.yaml", "zero3_qlora.yaml"])
def test_config_is_valid_for_accelerate(name: str) -> None:
    path = ACCELERATE_DIR / name
    raw = yaml.safe_load(path.read_text())
    cfg = load_config_from_file(str(path))
    assert isinstance(cfg, ClusterConfig)
    assert cfg.num_processes == 2 and cfg.num_machines == 1
    # Commented: a reader opens these files to learn what each key does.
    assert path.read_text().count("#") >= 5
    assert raw["mixed_precision"] == "no"  # the trainer chooses bf16/fp16 from the GPU


def test_ddp_config() -> None:
    args, env = _launch_env(ACCELERATE_DIR / "ddp.yaml")
    assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed
    assert load_config_from_file(str(ACCELERATE_DIR / "ddp.yaml")).distributed_type \
        == DistributedType.MULTI_GPU
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"


def test_fsdp_qlora_config() -> None:
    args, env = _launch_env(ACCELERATE_DIR / "fsdp_qlora.yaml")
    assert args.use_fsdp
    assert env["ACCELERATE_USE_FSDP"] == "true"
    expected = {
        "FSDP_VERSION": "1",
        "FSDP_SHARDING_STRATEGY": "FULL_SHARD",
        "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
        "FSDP_CPU_RAM_EFFICIENT_LOADING": "true",
        "FSDP_SYNC_MODULE_STATES": "true",
        "FSDP_USE_ORIG_PARAMS": "false",
        "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
    }
    assert {k: env[k] for k in expected} == expected


def test_zero3_qlora_config() -> None:
    args, env = _launch_env(ACCELERATE_DIR / "zero3_qlora.yaml")
    assert args.use_deepspeed
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
    assert env["ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"] == "none"
    assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"] == "true"


def test_quant_storage_matches_the_model_dtype() -> None:
    # FSDP and ZeRO-3 flatten 4-bit and 16-bit weights into one buffer: one dtype.
    import torch

    from ift_tutorial.config import ModelSettings
    from ift_tutorial.loading import quantization_config

    for dtype in (torch.bfloat16, torch.float16):
        q = quantization_config(ModelSettings(), dtype)
        assert q.bnb_4bit_quant_storage == dtype and q.bnb_4bit_compute_dtype == dtype


def test_the_fsdp2_variant_that_the_config_describes(tmp_path, monkeypatch) -> None:
    """fsdp_qlora.yaml's comment: `fsdp_version: 2` and `fsdp_reshard_after_forward: true`."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    text = (ACCELERATE_DIR / "fsdp_qlora.yaml").read_text()
    assert "fsdp_version: 1\n" in text and "fsdp_sharding_strategy: FULL_SHARD" in text
    variant = tmp_path / "fsdp2_qlora.yaml"
    variant.write_text(text.replace("fsdp_version: 1\n", "fsdp_version: 2\n").replace(
        "fsdp_sharding_strategy: FULL_SHARD", "fsdp_reshard_after_forward: true"))
    _, env = _launch_env(variant)
    assert env["FSDP_VERSION"] == "2" and env["FSDP_RESHARD_AFTER_FORWARD"] == "true"
    for key, value in env.items():  # what each launched process would see
        if key.startswith("FSDP_"):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    # the FSDP1-only keys of the file are dropped or not read
    assert plugin.backward_prefetch is None and plugin.forward_prefetch is None
    assert plugin.use_orig_params is None and plugin.sync_module_states is None
    assert plugin.cpu_ram_efficient_loading is True
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"


def test_a_config_without_fsdp_version_gets_fsdp1(monkeypatch) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin

    monkeypatch.delenv("FSDP_VERSION", raising=False)
    # without sync_module_states FSDP1's plugin needs no accelerator to be built
    monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "false")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    assert FullyShardedDataParallelPlugin().fsdp_version == 1
