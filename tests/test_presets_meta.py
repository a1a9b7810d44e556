"""Each 7B preset's real architecture, built on the meta device (no download, no memory),
with the preset's own LoRA settings applied through PEFT."""

from __future__ import annotations

import pytest
from peft import LoraConfig, get_peft_model

from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.config import load_config
from ift_tutorial.scratch.llama import meta_model

# Published totals of the base models (their model cards / config.json).
BASE_PARAMETERS = {
    "qwen2.5-7b": 7_615_616_512,
    "llama-3.1-8b": 8_030_261_248,
    "olmo-2-7b": 7_298_617_344,
}


def expected_lora_parameters(config, r: int) -> int:
    """LoRA adds r * (in + out) per adapted Linear: q, k, v, o, gate, up and down of each block."""
    h, i = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    per_layer = (h + h) + (h + kv) * 2 + (h + h) + (h + i) * 3
    return r * per_layer * config.num_hidden_layers


@pytest.mark.parametrize("preset", sorted(BASE_PARAMETERS))
def test_7b_preset_architecture_and_lora_parameter_counts(preset):
    cfg = load_config(preset)
    arch = architecture_config(cfg.model.name_or_path)
    model = meta_model(arch)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == BASE_PARAMETERS[preset]

    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, bias=cfg.lora.bias,
                      use_rslora=cfg.lora.use_rslora, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    trainable, total = peft_model.get_nb_trainable_parameters()
    assert trainable == expected_lora_parameters(arch, cfg.lora.r)
    assert total == BASE_PARAMETERS[preset] + trainable
    # The output head is never adapted by "all-linear".
    assert not any("lm_head.lora" in n for n, _ in peft_model.named_parameters())


def test_qwen_lora_count_matches_the_published_figure():
    """r=16 on every linear layer of Qwen2.5-7B: the commonly quoted 40,370,176 trainable."""
    arch = architecture_config("Qwen/Qwen2.5-7B")
    assert expected_lora_parameters(arch, 16) == 40_370_176
