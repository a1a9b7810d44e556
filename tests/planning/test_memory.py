"""The memory planner's byte counts equal what PyTorch actually allocates."""

import json

import pytest
import torch

from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.cli import main
from ift_tutorial.config import ConfigError, LoraSettings, ModelSettings, load_config
from ift_tutorial.planning.measure import measure_model_bytes
from ift_tutorial.planning.memory import GPUS, STATIC, plan_for_config, plan_memory
from ift_tutorial.planning.parameters import count_parameters
from ift_tutorial.planning.sharding import GATHERED
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


def test_zero_stages_split_states_then_gradients_then_weights():
    cfg = load_config("qwen2.5-7b")
    single = plan_for_config(cfg).components
    split = {s: plan_for_config(cfg, strategy=s, num_gpus=4).components for s in ("zero1", "zero2", "zero3")}
    quarter = {k: v // 4 for k, v in single.items()}
    assert split["zero1"]["optimizer states"] == quarter["optimizer states"]
    assert split["zero1"]["LoRA gradients"] == single["LoRA gradients"]
    assert split["zero2"]["LoRA gradients"] == quarter["LoRA gradients"]
    assert split["zero2"]["base weights (4-bit)"] == single["base weights (4-bit)"]
    assert split["zero3"]["base weights (4-bit)"] == quarter["base weights (4-bit)"]
    for stage in ("zero1", "zero2"):  # nothing is gathered: the weights are whole anyway
        assert GATHERED not in split[stage]
    # with QLoRA the adapter's states are small: ZeRO-1 and -2 save little, ZeRO-3 a lot
    saved = {s: sum(single.values()) - sum(c.values()) for s, c in split.items()}
    assert 0 < saved["zero1"] < saved["zero2"] < 0.02 * sum(single.values()) < saved["zero3"]


def test_fsdp1_counts_its_root_unit_whole_on_every_gpu():
    cfg = load_config("qwen2.5-7b")
    b = count_parameters(architecture_config("Qwen/Qwen2.5-7B"))
    vocab, hidden = 152_064, 3_584
    assert b.root_params == 2 * vocab * hidden + hidden  # embeddings, head (untied), final norm
    assert b.head_params == vocab * hidden + hidden
    fsdp1 = {n: plan_for_config(cfg, strategy="fsdp", num_gpus=n) for n in (1, 4, 8)}
    fsdp2 = plan_for_config(cfg, strategy="fsdp2", num_gpus=4)
    zero3 = plan_for_config(cfg, strategy="zero3", num_gpus=4)
    e = fsdp1[4].settings["compute_bytes"]
    assert fsdp1[4].components[GATHERED] == b.root_params * e
    assert fsdp1[8].components[GATHERED] == fsdp1[4].components[GATHERED]  # it never shrinks
    assert fsdp2.components[GATHERED] == zero3.components[GATHERED] == b.head_params * e
    # FSDP1's root unit holds the input embeddings too: that is the whole difference
    assert fsdp1[4].total_bytes - fsdp2.total_bytes == vocab * hidden * e
    assert fsdp1[1].total_bytes == plan_for_config(cfg).total_bytes  # one GPU shards nothing
    # tied embeddings (Qwen2.5-0.5B): the head is the embedding matrix, counted once
    tied = count_parameters(architecture_config("Qwen/Qwen2.5-0.5B"))
    assert tied.root_params == tied.head_params == 151_936 * 896 + 896



def test_plot_plan_stacks_the_gathered_parts_hatched_beside_the_16_bit_parts():
    import matplotlib.pyplot as plt

    from ift_tutorial.book.plots import plot_plan

    cfg = load_config("qwen2.5-7b")
    plans = {"1 GPU": plan_for_config(cfg), "FSDP1 x4": plan_for_config(cfg, strategy="fsdp", num_gpus=4)}
    ax = plot_plan(plans)
    bars = {c.get_label(): c.patches for c in ax.containers}
    names = list(bars)
    kept = "16-bit parts (embeddings, head, norms, biases)"
    assert names.index(GATHERED) == names.index("optimizer states") + 1  # the bigger plan's order
    assert bars[GATHERED][1].get_hatch() and bars[GATHERED][1].get_facecolor() == bars[kept][1].get_facecolor()
    assert bars[GATHERED][0].get_height() == 0  # one GPU gathers nothing
    plt.close(ax.figure)
