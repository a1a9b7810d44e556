"""Merging into NF4(W): the 16-bit model that equals the 4-bit base plus the adapter."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from peft import PeftModel
from transformers import AutoModelForCausalLM

from ift_tutorial.inference.merging import (MergeError, adapted_weight, check_merged_tensors,
                                            merge_adapter, nf4_weight)
from ift_tutorial.loading import load_model, load_tokenizer
from ift_tutorial.paths import DATA_DIR

ADAPTER = DATA_DIR / "adapters" / "tiny-sft"


def test_nf4_weight_is_what_the_loaded_4bit_layer_holds():
    import bitsandbytes.functional as bnbF

    config = tiny_config()
    name, W, _ = adapted_weight(config, ADAPTER)
    layer = load_model(config.model).get_submodule(name.removesuffix(".weight"))
    loaded = bnbF.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    assert torch.equal(nf4_weight(W, config.model.double_quant), loaded.float())
    assert not torch.equal(nf4_weight(W), W)  # the rounding is real


@torch.no_grad()
def test_a_merge_into_nf4_computes_what_the_4bit_model_with_the_adapter_computes(tmp_path):
    config = tiny_config()
    merged_dir = merge_adapter(config, ADAPTER, tmp_path / "nf4", merge_into="nf4")
    assert check_merged_tensors(config, ADAPTER, merged_dir, merge_into="nf4") == 0.0
    with pytest.raises(MergeError):  # it is not W + s·BA
        check_merged_tensors(config, ADAPTER, merged_dir)
    tok = load_tokenizer(config.model)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 7 + 5?"}],
                                  add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    four_bit = PeftModel.from_pretrained(load_model(config.model), str(ADAPTER)).eval()
    reference = four_bit(ids).logits
    nf4 = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    original = AutoModelForCausalLM.from_pretrained(
        merge_adapter(config, ADAPTER, tmp_path / "original"), dtype=torch.float32).eval()
    nf4_gap = (nf4(ids).logits - reference).abs().max().item()
    original_gap = (original(ids).logits - reference).abs().max().item()
    assert nf4_gap < 1e-3 < original_gap  # rounding only; the quantisation error


def test_merge_into_is_checked(tmp_path):
    with pytest.raises(MergeError, match="merge_into 'int4'"):
        merge_adapter(tiny_config(), ADAPTER, tmp_path / "x", merge_into="int4")

