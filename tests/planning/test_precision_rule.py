"""Trainable parameters are fp32 unless the run is bf16: trainer, dry run and planner agree.

TRL casts LoRA weights to bf16 for a quantised base. On a T4 (fp16 compute) the
GradScaler then fails at the first optimizer step, so training casts them back. A CPU
never takes the fp16 path, so these tests build the trainer with the precision a T4
(or an A100) would get and look at the parameters.
"""

from __future__ import annotations

import pytest
import torch
from helpers import small_train_file, tiny_config

from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.config import load_config
from ift_tutorial.planning.hardware import Precision, trainable_dtype
from ift_tutorial.planning.memory import STATIC, plan_for_config, plan_memory
from ift_tutorial.planning.parameters import count_parameters

T4 = Precision(device="cuda", compute_dtype=torch.float16, bf16=False, fp16=True, optim="adamw_torch")
A100 = Precision(device="cuda", compute_dtype=torch.bfloat16, bf16=True, fp16=False, optim="adamw_torch")
CPU = Precision(device="cpu", compute_dtype=torch.float32, bf16=False, fp16=False, optim="adamw_torch")


def test_the_rule():
    assert trainable_dtype(T4) == torch.float32
    assert trainable_dtype(CPU) == torch.float32
    assert trainable_dtype(A100) == torch.bfloat16


@pytest.mark.parametrize("precision", [T4, A100], ids=["t4-fp16", "a100-bf16"])
def test_trainer_keeps_trainable_parameters_in_the_rules_dtype(tmp_path, precision):
    from ift_tutorial.instructions.dataset import prepare_dataset
    from ift_tutorial.loading import load_model, load_tokenizer
    from ift_tutorial.training.trainer import build_trainer, sft_config

    dtype = "fp16" if precision.fp16 else "bf16"
    cfg = tiny_config(f"model.compute_dtype={dtype}", "training.max_steps=1")
    tok = load_tokenizer(cfg.model)
    model = load_model(cfg.model)  # 4-bit, its other parts in the GPU's compute dtype
    assert {p.dtype for p in model.parameters() if p.is_floating_point()} == {precision.compute_dtype}
    dataset, _ = prepare_dataset(str(small_train_file(tmp_path / "train.jsonl", 8)), tok, strict=False)
    args = sft_config(cfg, tmp_path / "out", precision)
    assert (args.fp16, args.bf16) == (precision.fp16, precision.bf16)
    trainer = build_trainer(cfg, model, tok, dataset, args, precision)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert len(trainable) == 2 * 7 * 4  # A and B of 7 linear layers in each of 4 blocks
    assert {p.dtype for p in trainable} == {trainable_dtype(precision)}


def test_dry_run_in_fp16_trains_fp32_adapters_as_planned(monkeypatch):
    """The dry run copies training's rule, and the planner counts the bytes it then holds."""
    from ift_tutorial.planning import dry_run as dr

    monkeypatch.setattr(dr, "detect_precision", lambda *a, **k: T4)
    report = dr.dry_run(tiny_config("model.compute_dtype=fp16"), steps=1, seq_len=16,
                        batch_size=2)
    assert report["compute_dtype"] == "float16"
    measured, planned = report["measured"]["components_bytes"], report["planned"]["components_bytes"]
    for name in STATIC:
        assert planned[name] == measured[name], name
    n = count_parameters(architecture_config("tiny"), tiny_config().lora).lora_params
    assert measured["LoRA parameters"] == measured["LoRA gradients"] == 4 * n  # fp32
    assert measured["optimizer states"] == 8 * n  # torch AdamW: two fp32 moments


def test_planner_counts_fp32_adapters_on_a_t4_and_bf16_ones_on_an_a100():
    cfg = load_config("qwen2.5-7b")
    arch = architecture_config(cfg.model.name_or_path)
    n = count_parameters(arch, cfg.lora).lora_params
    t4, a100 = plan_for_config(cfg, gpu="t4"), plan_for_config(cfg, gpu="a100-80gb")
    for plan, size in ((t4, 4), (a100, 2)):
        assert plan.components["LoRA parameters"] == plan.components["LoRA gradients"] == n * size
    # paged 8-bit AdamW keeps its own 8-bit states, whatever the parameters' dtype
    assert t4.components["optimizer states"] == a100.components["optimizer states"]
    # torch's AdamW keeps its two moments in the parameters' dtype
    assert plan_for_config(cfg, gpu="t4", optim="adamw_torch").components["optimizer states"] == 8 * n
    assert plan_for_config(cfg, gpu="a100-80gb", optim="adamw_torch").components["optimizer states"] == 4 * n
    # 16-bit compute alone (no bf16 flag) is the fp16 case: fp32 adapters
    plan = plan_memory(arch, seq_len=8, batch_size=1, lora=cfg.lora, compute_bytes=2)
    assert plan.components["LoRA parameters"] == 4 * n
