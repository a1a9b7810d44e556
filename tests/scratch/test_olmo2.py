"""The from-scratch OLMo 2 block against transformers' Olmo2, weight for weight."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from transformers import Olmo2Config, Olmo2ForCausalLM
from transformers.models.olmo2.modeling_olmo2 import Olmo2DecoderLayer, Olmo2RotaryEmbedding

from ift_tutorial.planning.architectures import PUBLISHED_PARAMETER_COUNTS, architecture_config
from ift_tutorial.scratch.llama import DecoderBlock, architecture_parameter_counts, parameter_breakdown
from ift_tutorial.scratch.olmo2 import Olmo2, Olmo2Block, from_hf, olmo2_args

torch.set_num_threads(1)


def _config(tie: bool = False, kv_heads: int = 2) -> Olmo2Config:
    return Olmo2Config(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=8,
                       num_key_value_heads=kv_heads, vocab_size=120, max_position_embeddings=64,
                       rms_norm_eps=1e-6, tie_word_embeddings=tie, pad_token_id=0, eos_token_id=1,
                       rope_parameters={"rope_type": "default", "rope_theta": 500.0})


def _randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights everywhere, the norms' gains too (their default 1 would hide a swap)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.normal_()
    return module.eval()


def _layer_inputs(config: Olmo2Config, T: int = 11):
    x = torch.randn(2, T, config.hidden_size, generator=torch.Generator().manual_seed(3)) * 2
    positions = torch.arange(T)[None]
    cos, sin = Olmo2RotaryEmbedding(config)(x, positions)  # (1, T, head_dim)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    # transformers' additive mask: 0 where a query may look, -inf where it may not
    additive = torch.zeros(T, T).masked_fill(~mask, float("-inf"))[None, None]
    return x, cos, sin, mask, additive


def test_block_equals_transformers_decoder_layer():
    config = _config()
    config._attn_implementation = "eager"
    ref = _randomised(Olmo2DecoderLayer(config, layer_idx=0))
    ours = Olmo2Block(olmo2_args(config)).eval()
    ours.load_state_dict(ref.state_dict())  # same names, strict: nothing left over
    x, cos, sin, mask, additive = _layer_inputs(config)
    with torch.no_grad():
        expected = ref(x, attention_mask=additive, position_embeddings=(cos, sin))
        got, weights = ours(x, cos[0], sin[0], mask)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    assert weights.shape == (2, 8, 11, 11)
    # QK-norm runs over all heads of a projection together, as in transformers
    assert ours.self_attn.q_norm.weight.shape == (8 * 8,) and ours.self_attn.k_norm.weight.shape == (2 * 8,)


def test_a_llama_block_with_the_same_weights_computes_something_else():
    """The norms' placement is the difference: pre-norm gives another output."""
    config = _config()
    config._attn_implementation = "eager"
    olmo = _randomised(Olmo2Block(olmo2_args(config)))
    llama = DecoderBlock(olmo2_args(config)).eval()
    state = olmo.state_dict()
    llama.load_state_dict({  # the post-attention norm becomes Llama's input norm, and so on
        **{k: v for k, v in state.items() if k.startswith(("self_attn.q_", "self_attn.k_", "self_attn.v_",
                                                               "self_attn.o_", "mlp."))
           and "norm" not in k},
        "input_layernorm.weight": state["post_attention_layernorm.weight"],
        "post_attention_layernorm.weight": state["post_feedforward_layernorm.weight"],
    })
    x, cos, sin, mask, _ = _layer_inputs(config)
    with torch.no_grad():
        difference = (olmo(x, cos[0], sin[0], mask)[0] - llama(x, cos[0], sin[0], mask)[0]).abs().max()
    assert difference > 0.1


@pytest.mark.parametrize("tie", [False, True])
def test_logits_equal_transformers_on_a_random_model(tie):
    hf = _randomised(Olmo2ForCausalLM(_config(tie=tie)))
    ours = from_hf(hf)
    assert isinstance(ours, Olmo2)
    assert parameter_breakdown(ours) == parameter_breakdown(hf)
    ids = torch.randint(0, 120, (3, 12), generator=torch.Generator().manual_seed(2))
    am = torch.ones(3, 12, dtype=torch.long)
    am[1, :4] = 0  # left padding
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)
        ours_pad, hf_pad = ours(ids, attention_mask=am).logits, hf(ids, attention_mask=am).logits
    real = am.bool()
    torch.testing.assert_close(ours_pad[real], hf_pad[real], atol=1e-4, rtol=0)


def test_other_configs_are_refused():
    with pytest.raises(ValueError, match="olmo2"):
        olmo2_args(architecture_config("Qwen/Qwen2.5-7B"))


def test_our_olmo2_has_the_published_parameters_at_7b_scale():
    hub_id = "allenai/OLMo-2-1124-7B"
    with init_empty_weights():
        ours = Olmo2(olmo2_args(architecture_config(hub_id)))
    counts = parameter_breakdown(ours)
    assert counts == architecture_parameter_counts(hub_id)
    assert counts["total"] == PUBLISHED_PARAMETER_COUNTS[hub_id]
    # QK-norm: 2 x 4096 gains per layer, counted with attention (32 heads of 128, no GQA)
    assert counts["attention"] == 32 * (4 * 4096 * 4096 + 2 * 4096)
