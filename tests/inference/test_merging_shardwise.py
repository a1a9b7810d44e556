"""The shard-wise merge equals PEFT's in-memory merge, on the tiny model cut into shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from ift_tutorial.inference.merging import INDEX_FILE, MergeError, lora_scale, merge_adapter, merge_shardwise
from ift_tutorial.paths import TINY_MODEL_DIR


@pytest.fixture(scope="module")
def sharded_base(tmp_path_factory) -> Path:
    """The tiny model (8.7 MB in fp32), saved in shards of at most 2 MB, with an index."""
    folder = tmp_path_factory.mktemp("sharded-base")
    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR, dtype=torch.float32)
    model.save_pretrained(folder, max_shard_size="2MB")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).write_bytes((TINY_MODEL_DIR / name).read_bytes())
    assert (folder / INDEX_FILE).is_file() and len(list(folder.glob("model-*.safetensors"))) >= 4
    return folder


def _adapter(folder: Path, base: Path, **lora) -> Path:
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(init_lora_weights=False, task_type="CAUSAL_LM", **lora))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)  # as after training: the update changes the logits
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("lora", [
    {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"},
    {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "down_proj"], "use_rslora": True,
     "alpha_pattern": {"down_proj": 2}},
], ids=["all-linear", "rslora-some-modules-alpha-pattern"])
@torch.no_grad()
def test_shardwise_merge_equals_peft_merge(sharded_base, tmp_path, lora):
    adapter = _adapter(tmp_path / "adapter", sharded_base, **lora)
    out = merge_shardwise(sharded_base, adapter, tmp_path / "merged")
    assert sorted(p.name for p in out.glob("*.safetensors")) == \
        sorted(p.name for p in sharded_base.glob("*.safetensors"))  # the base's shard layout
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["weight_map"] == json.loads((sharded_base / INDEX_FILE).read_text())["weight_map"]

    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(sharded_base, dtype=torch.float32), str(adapter)
    ).merge_and_unload()
    expected = reference.state_dict()
    changed = 0
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(str(out / shard), framework="pt") as f, \
                safe_open(str(sharded_base / shard), framework="pt") as before:
            for name in f.keys():
                got = f.get_tensor(name)
                # the same fp32 arithmetic as PEFT's merge: equal bit for bit
                assert torch.equal(got, expected[name]), name
                changed += not torch.equal(got, before.get_tensor(name))
    targets = lora["target_modules"]
    n_layers = reference.config.num_hidden_layers
    assert changed == n_layers * (7 if targets == "all-linear" else len(targets))

    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    torch.testing.assert_close(merged(ids).logits, reference.eval()(ids).logits, rtol=0, atol=1e-5)


def test_scales():
    assert lora_scale(16, 8) == 2.0 and lora_scale(8, 4, use_rslora=True) == 4.0


def test_merge_adapter_goes_shard_by_shard_and_writes_stop_tokens(sharded_base, tmp_path, monkeypatch):
    """The CLI's merge: the sharded tiny base, a tokenizer and generation_config.json."""
    import ift_tutorial.inference.merging as merging

    adapter = _adapter(tmp_path / "adapter", sharded_base, r=8, lora_alpha=16, target_modules="all-linear")
    monkeypatch.setattr(merging, "load_merged", None)  # the in-memory path is not taken
    config = tiny_config(f"model.name_or_path={sharded_base}")
    out = merge_adapter(config, adapter, tmp_path / "merged", dtype="fp16")
    assert (out / INDEX_FILE).is_file() and (out / "tokenizer.json").is_file()
    with safe_open(str(next(out.glob("model-*.safetensors"))), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 2 and generation["pad_token_id"] == 0  # EOS ends a tiny turn


def test_an_adapter_for_another_model_is_a_clear_error(sharded_base, tmp_path):
    adapter = _adapter(tmp_path / "adapter", sharded_base, r=4, target_modules=["q_proj"])
    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as f:
        tensors = {k.replace("layers.0.", "layers.9."): f.get_tensor(k) for k in f.keys()}
    from safetensors.torch import save_file

    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(MergeError, match=r"not in the base checkpoint.*layers\.9\.self_attn\.q_proj"):
        merge_shardwise(sharded_base, adapter, tmp_path / "merged")
