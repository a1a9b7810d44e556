"""The presets' architectures as recorded, against their published config.json values."""

from __future__ import annotations

import pytest

from ift_tutorial.planning.architectures import architecture_config, block_layout, describe

# From the published config.json files (Qwen/Qwen2.5-7B, meta-llama/Llama-3.1-8B,
# allenai/OLMo-2-1124-7B): layers, hidden, MLP width, heads, key/value heads, vocabulary.
PUBLISHED = {
    "Qwen/Qwen2.5-7B": (28, 3584, 18944, 28, 4, 152064),
    "meta-llama/Llama-3.1-8B": (32, 4096, 14336, 32, 8, 128256),
    "allenai/OLMo-2-1124-7B": (32, 4096, 11008, 32, 32, 100352),
}


@pytest.mark.parametrize("hub_id", sorted(PUBLISHED))
def test_recorded_shapes_are_the_published_ones(hub_id):
    a = describe(architecture_config(hub_id))
    got = (a["layers"], a["hidden"], a["intermediate"], a["heads"], a["kv_heads"], a["vocab"])
    assert got == PUBLISHED[hub_id]
    assert a["head_dim"] == 128 and not a["tied_embeddings"]


def test_only_olmo2_normalises_sublayer_outputs_and_queries_and_keys():
    layouts = {name: block_layout(architecture_config(name)) for name in PUBLISHED}
    assert layouts["allenai/OLMo-2-1124-7B"] == {
        "norm": "output", "qk_norm": True, "qkv_bias": False, "rope_base": 500_000.0,
        "rope_scaling": "default"}
    assert layouts["meta-llama/Llama-3.1-8B"] == {
        "norm": "input", "qk_norm": False, "qkv_bias": False, "rope_base": 500_000.0,
        "rope_scaling": "llama3"}
    assert layouts["Qwen/Qwen2.5-7B"] == {
        "norm": "input", "qk_norm": False, "qkv_bias": True, "rope_base": 1_000_000.0,
        "rope_scaling": "default"}
    # the presets' names lead to the same records
    assert block_layout(architecture_config("olmo-2-7b"))["norm"] == "output"
