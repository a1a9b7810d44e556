"""Two CPU ranks (gloo) train the tiny preset through the unchanged ``ift-tutorial train``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from ift_tutorial.training import distributed
from ift_tutorial.paths import PROJECT_ROOT

OVERRIDES = [
    "training.max_steps=2",
    "training.save_steps=2",
    "training.per_device_train_batch_size=4",
    "training.logging_steps=1",
    "training.num_threads=2",  # a budget for the machine: one thread per rank
]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", "-m", "ift_tutorial.cli", "train", "--config", "tiny",
           "--output-dir", str(out), "--no-eval"]
    for o in OVERRIDES:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_two_ranks_form_one_gloo_group(ddp_run: Path) -> None:
    metrics = json.loads((ddp_run / "metrics.json").read_text())
    assert metrics["num_threads"] == 1  # training.num_threads=2 shared by the 2 ranks
    d = metrics["distributed"]
    assert d["world_size"] == 2
    assert d["backend"] == "gloo"
    assert d["launcher"] == "torchrun"
    assert d["global_batch_size"] == 4 * 1 * 2


def test_adapters_identical_across_ranks(ddp_run: Path) -> None:
    d = json.loads((ddp_run / "metrics.json").read_text())["distributed"]
    for key in ("adapter_sha256_step1", "adapter_sha256_final"):
        assert len(d[key]) == 2 and d[key][0] == d[key][1], key
    # ...and the adapter changed during training (the digests are not of a frozen tensor).
    assert d["adapter_sha256_step1"][0] != d["adapter_sha256_final"][0]


def test_each_step_consumes_the_global_batch(ddp_run: Path) -> None:
    # The trainer's epoch counter measures how much data a step uses: with 2 ranks x 4
    # examples, an epoch takes ceil(examples / 8) steps (one rank alone: twice as many).
    metrics = json.loads((ddp_run / "metrics.json").read_text())
    log = json.loads((ddp_run / "log.json").read_text())
    epoch = max(e["epoch"] for e in log if "epoch" in e)
    assert round(metrics["steps"] / epoch) == math.ceil(metrics["train_examples"] / 8)


def test_both_ranks_checkpoint_and_rank0_marks_complete(ddp_run: Path) -> None:
    ck = ddp_run / "checkpoint-2"
    assert (ck / "rng_state_0.pth").is_file() and (ck / "rng_state_1.pth").is_file()
    listed = json.loads((ck / "COMPLETE").read_text())["files"]
    assert {"rng_state_0.pth", "rng_state_1.pth", "adapter_model.safetensors"} <= set(listed)


def test_only_rank0_writes_outputs(tmp_path: Path, monkeypatch) -> None:
    # Run the real training in this process as if it were rank 1.
    from ift_tutorial.training.trainer import train

    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    cfg = tiny_config(*OVERRIDES, "training.max_steps=1", "training.save_steps=1", "training.num_threads=1")
    metrics = train(cfg, tmp_path, resume="never", evaluate=False)
    assert metrics["steps"] == 1
    written = {p.name for p in tmp_path.iterdir()}
    assert not written & {"adapter", "metrics.json", "log.json", "loss.png"}, written
    # The trainer itself saved (it thinks it is process 0), but no marker came from "rank 1".
    assert not (tmp_path / "checkpoint-1" / "COMPLETE").exists()


# --- the helpers, one process ---------------------------------------------------------


def test_global_batch_size() -> None:
    assert distributed.global_batch_size(2, 8, 1) == 16
    assert distributed.global_batch_size(2, 8, 4) == 64
    assert distributed.global_batch_size(2, 2, 4) == 16  # 4 GPUs, same global batch as 1


def test_rank_from_launcher_environment(monkeypatch) -> None:
    assert distributed.world_size() == 1 and distributed.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.world_size() == 4 and distributed.rank() == 3
    assert not distributed.is_main_process()
    assert distributed.threads_per_rank(4) == 2 and distributed.threads_per_rank(1) == 1
    assert distributed.threads_per_rank(None) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU settings")
def test_cpu_trainer_settings(monkeypatch) -> None:
    assert distributed.device_map() == {"": "cpu"}
    single = distributed.trainer_kwargs()
    assert single["use_cpu"] is True and "ddp_backend" not in single
    monkeypatch.setenv("WORLD_SIZE", "2")
    multi = distributed.trainer_kwargs()
    assert multi["ddp_backend"] == "gloo" and multi["ddp_find_unused_parameters"] is False


def test_digest_sees_one_changed_bit() -> None:
    model = torch.nn.Linear(4, 4)
    model.bias.requires_grad_(False)
    before = distributed.trainable_digest(model)
    bits = model.weight.data.view(torch.int32)
    bits[0, 0] ^= 1  # flip the lowest mantissa bit of one weight
    assert distributed.trainable_digest(model) != before
    flipped = distributed.trainable_digest(model)
    model.bias.data += 1  # frozen parameters are not part of the adapter
    assert distributed.trainable_digest(model) == flipped


def test_rank_sync_refuses_a_missing_process_group(monkeypatch) -> None:
    # The launcher started 2 processes but the trainer formed no group: each would train
    # alone on the same batches. The callback stops that before the first step.
    from types import SimpleNamespace

    monkeypatch.setenv("WORLD_SIZE", "2")
    args = SimpleNamespace(world_size=1, per_device_train_batch_size=4,
                           gradient_accumulation_steps=1)
    with pytest.raises(RuntimeError, match="no process group"):
        distributed.RankSyncCallback().on_train_begin(args, None, None)


def test_sharded_ranks_are_not_required_to_agree(monkeypatch) -> None:
    # One process stands in for a rank whose neighbour holds different bytes.
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(distributed, "gather_digests", lambda m: ["a" * 64, "b" * 64])
    callback = distributed.RankSyncCallback()
    with pytest.raises(RuntimeError, match="different adapters"):
        callback._check(model, "after step 1")  # DDP: replicas must be identical
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # FSDP: each rank holds its own shard
    assert distributed.sharding_strategy() == "fsdp"
    assert callback._check(model, "after step 1") == ["a" * 64, "b" * 64]
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert distributed.sharding_strategy() == "none"  # ZeRO-2 keeps whole parameters
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert distributed.sharding_strategy() == "zero3"



def test_a_4bit_model_can_be_moved_but_not_cast() -> None:
    """device_map()'s docstring: transformers 5 refuses a dtype cast of a bitsandbytes model,
    not a device move, and Params4bit.to hands its quantisation state to the moved weight."""
    import bitsandbytes as bnb

    from ift_tutorial.loading import load_model

    model = load_model(tiny_config().model)
    layer = next(m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    with pytest.raises(ValueError, match="cannot cast a bitsandbytes model"):
        model.to(torch.float16)
    assert model.to("cpu") is model  # the only device here; on a GPU machine "cuda:1" alike
    moved = layer.weight.to("cpu")
    assert type(moved) is bnb.nn.Params4bit and moved.bnb_quantized
    assert moved.quant_state is layer.weight.quant_state  # absmax and code book travel along
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)
