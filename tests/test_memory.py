"""The memory planner's byte counts equal what PyTorch actually allocates."""

import json

import pytest
import torch

from ift_tutorial.architectures import architecture_config
from ift_tutorial.cli import main
from ift_tutorial.config import ConfigError, LoraSettings, ModelSettings, load_config
from ift_tutorial.memory import (GPUS, STATIC, count_parameters, measure_model_bytes,
                                 plan_for_config, plan_memory)
from ift_tutorial.paths import TINY_MODEL_DIR


@pytest.mark.parametrize("double_quant", [True, False])
def test_planner_bytes_equal_allocated_bytes_tiny(double_quant):
    from peft import LoraConfig, get_peft_model

    from ift_tutorial.loading import load_model

    path = str(TINY_MODEL_DIR)  # the shipped tiny preset
    settings = ModelSettings(name_or_path=path, double_quant=double_quant, compute_dtype="fp32")
    model = load_model(settings)  # the real 4-bit loading path, on the CPU
    lora = LoraSettings(r=8, alpha=16, dropout=0.0)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    measured = measure_model_bytes(model, opt)

    plan = plan_memory(architecture_config(path), seq_len=16, batch_size=2, lora=lora,
                       optim="adamw_torch", compute_bytes=4, double_quant=double_quant,
                       overhead_bytes=0)
    for name in STATIC:
        assert plan.components[name] == measured[name], name
    assert measured["base weights (4-bit)"] > 0 and measured["LoRA gradients"] > 0


def test_qwen_7b_counts_match_published():
    arch = architecture_config("Qwen/Qwen2.5-7B")
    b = count_parameters(arch, LoraSettings(r=16, target_modules="all-linear"))
    assert b.total_params == 7_615_616_512
    assert b.lora_params == 40_370_176  # r=16 on q,k,v,o,gate,up,down of 28 layers
    assert b.lora_layers == 7 * 28


def test_qwen_on_t4_fits_and_components_are_sane():
    plan = plan_for_config(load_config("qwen2.5-7b"))
    c = {k: v / 2**30 for k, v in plan.components.items()}
    # 6.5B quantised weights at 4.127 bit plus 1.1B 16-bit parameters
    assert 3.0 < c["base weights (4-bit)"] < 3.1
    assert 0.09 < c["quantisation constants"] < 0.11
    assert 2.0 < c["16-bit parts (embeddings, head, norms, biases)"] < 2.1
    # with a 152k vocabulary the fp32 logits outweigh all other activations
    assert c["logits and loss (fp32)"] > c["activations"]
    assert plan.fits("t4") and 8 < plan.total_gb < 15
    no_dq = plan_for_config(load_config("qwen2.5-7b", ["model.double_quant=false"]))
    saved = plan.settings["quantized_params"] * 0.373 / 8 / 2**30
    assert no_dq.total_gb - plan.total_gb == pytest.approx(saved, rel=0.02)
    # without checkpointing every layer keeps its activations: ~13 GiB per 1024 tokens
    no_gc = plan_for_config(load_config("qwen2.5-7b"), gradient_checkpointing=False)
    assert no_gc.components["activations"] > 15 * plan.components["activations"]
    assert not no_gc.fits("t4") and no_gc.fits("a100-80gb")


def test_sharding_divides_weights():
    cfg = load_config("qwen2.5-7b")
    single = plan_for_config(cfg)
    ddp = plan_for_config(cfg, strategy="ddp", num_gpus=4)
    fsdp = plan_for_config(cfg, strategy="fsdp", num_gpus=4)
    key = "base weights (4-bit)"
    assert ddp.components[key] == single.components[key]
    assert fsdp.components[key] == single.components[key] // 4
    assert fsdp.components["activations"] == single.components["activations"]
    assert fsdp.total_gb < single.total_gb
    with pytest.raises(ConfigError):
        plan_for_config(cfg, strategy="tensor")


def test_cli_json(capsys):
    rc = main(["plan-memory", "--config", "qwen2.5-7b", "--gpu", "t4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(out["gpus"]) == set(GPUS)
    assert out["fits"] is True and out["total_gb"] > 5
    assert "logits and loss (fp32)" in out["components_gb"]
    rc = main(["plan-memory", "--config", "qwen2.5-7b", "--gpu", "v100"])
    assert rc == 2 and "unknown GPU" in capsys.readouterr().err
