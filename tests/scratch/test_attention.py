"""The from-scratch attention against PyTorch's and transformers' implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.scratch.attention import (
    CrossAttention,
    MultiHeadAttention,
    causal_mask,
    dtype_bytes,
    kv_cache_bytes,
    padding_mask,
    repeat_kv,
    scaled_dot_product_attention,
)

torch.set_num_threads(1)
ATOL = 1e-5


def _qkv(gen, B, H, H_kv, L, S, E, E_v=None):
    E_v = E_v or E
    q = torch.randn(B, H, L, E, generator=gen)
    k = torch.randn(B, H_kv, S, E, generator=gen)
    v = torch.randn(B, H_kv, S, E_v, generator=gen)
    return q, k, v


def _random_shape(gen):
    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    return r(1, 3), r(1, 4), r(1, 9), r(1, 9), r(2, 16)  # B, H, L, S, E


@pytest.mark.parametrize("seed", range(8))
def test_matches_torch_without_mask(seed):
    gen = torch.Generator().manual_seed(seed)
    B, H, L, S, E = _random_shape(gen)
    q, k, v = _qkv(gen, B, H, H, L, S, E, E_v=E + 3)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=0)
    assert weights.shape == (B, H, L, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, L))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mask_shape", ["LS", "B1LS", "BHLS", "B11S"])
def test_matches_torch_with_bool_mask(seed, mask_shape):
    gen = torch.Generator().manual_seed(100 + seed)
    B, H, L, S, E = _random_shape(gen)
    q, k, v = _qkv(gen, B, H, H, L, S, E)
    shape = {"LS": (L, S), "B1LS": (B, 1, L, S), "BHLS": (B, H, L, S), "B11S": (B, 1, 1, S)}[mask_shape]
    mask = torch.rand(shape, generator=gen) > 0.3
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0)
    # Blocked pairs get exactly zero weight.
    assert torch.all(weights.masked_select(~mask.expand(B, H, L, S)) == 0)


@pytest.mark.parametrize("seed", range(6))
def test_matches_torch_with_additive_mask_and_scale(seed):
    gen = torch.Generator().manual_seed(200 + seed)
    B, H, L, S, E = _random_shape(gen)
    q, k, v = _qkv(gen, B, H, H, L, S, E)
    bias = torch.randn(B, 1, L, S, generator=gen)
    bias = bias.masked_fill(torch.rand(B, 1, L, S, generator=gen) < 0.2, float("-inf"))
    scale = float(torch.rand(1, generator=gen)) * 2
    out, _ = scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("L,S", [(5, 5), (3, 7), (7, 3), (1, 6)])
def test_causal_matches_torch_also_when_lengths_differ(L, S):
    gen = torch.Generator().manual_seed(L * 10 + S)
    q, k, v = _qkv(gen, 2, 3, 3, L, S, 8)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=0)
    # Top-left aligned: query i sees keys 0..i, whatever S is.
    allowed = torch.ones(L, S, dtype=torch.bool).tril(0)
    assert torch.equal(causal_mask(L, S), allowed)
    assert torch.all(weights[..., ~allowed] == 0)
    assert torch.all(weights[..., 0, 0] == 1)  # the first query sees only the first key


@pytest.mark.parametrize("H,H_kv", [(4, 2), (6, 3), (8, 1), (4, 4)])
def test_grouped_query_attention_matches_torch(H, H_kv):
    gen = torch.Generator().manual_seed(H * 7 + H_kv)
    q, k, v = _qkv(gen, 2, H, H_kv, 5, 6, 8)
    mask = torch.rand(5, 6, generator=gen) > 0.2
    out, _ = scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    out_causal, _ = scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected_causal = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(out_causal, expected_causal, atol=ATOL, rtol=0)


def test_gqa_head_h_uses_kv_head_h_div_group_size():
    k = torch.arange(3.0).view(1, 3, 1, 1)  # kv head j holds the value j
    assert repeat_kv(k, 2).flatten().tolist() == [0, 0, 1, 1, 2, 2]


def test_gqa_rejects_head_counts_that_do_not_divide():
    q, k, v = _qkv(torch.Generator().manual_seed(0), 1, 6, 4, 3, 3, 4)
    with pytest.raises(ValueError, match="cannot share"):
        scaled_dot_product_attention(q, k, v, enable_gqa=True)


def test_unbatched_three_dimensional_inputs():
    gen = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(4, 8, generator=gen), torch.randn(6, 8, generator=gen), torch.randn(6, 5, generator=gen)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=0)
    assert weights.shape == (4, 6)


def test_fully_masked_query_gives_zeros_like_torch():
    q, k, v = _qkv(torch.Generator().manual_seed(4), 1, 2, 2, 3, 4, 8)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not torch.isnan(out).any()
    assert torch.all(out[..., 1, :] == 0) and torch.all(weights[..., 1, :] == 0)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0)


def test_mask_and_is_causal_together_is_an_error():
    q, k, v = _qkv(torch.Generator().manual_seed(5), 1, 1, 1, 3, 3, 4)
    with pytest.raises(ValueError, match="not both"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 3, dtype=torch.bool), is_causal=True)


def test_default_scale_is_one_over_sqrt_dk():
    q, k, v = _qkv(torch.Generator().manual_seed(6), 1, 1, 1, 2, 3, 16)
    _, w_default = scaled_dot_product_attention(q, k, v)
    _, w_explicit = scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(16))
    _, w_unscaled = scaled_dot_product_attention(q, k, v, scale=1.0)
    torch.testing.assert_close(w_default, w_explicit)
    assert not torch.allclose(w_default, w_unscaled)


def test_padding_mask_blocks_padding_keys_only():
    am = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    mask = padding_mask(am)
    assert mask.shape == (2, 1, 1, 4)
    combined = causal_mask(4) & mask  # (2, 1, 4, 4)
    q, k, v = _qkv(torch.Generator().manual_seed(7), 2, 2, 2, 4, 4, 8)
    _, weights = scaled_dot_product_attention(q, k, v, attn_mask=combined)
    assert torch.all(weights[1, :, :, :2] == 0)  # nobody attends to the two pads
    assert torch.all(weights[1, :, 2:, 2:].sum(-1).sub(1).abs() < 1e-6)
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        padding_mask(torch.ones(4))


def _torch_mha_from(ours: MultiHeadAttention, kdim: int | None = None) -> torch.nn.MultiheadAttention:
    d = ours.o_proj.out_features
    ref = torch.nn.MultiheadAttention(d, ours.num_heads, bias=False, batch_first=True, kdim=kdim, vdim=kdim)
    with torch.no_grad():
        if kdim is None:
            ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        else:
            ref.q_proj_weight.copy_(ours.q_proj.weight)
            ref.k_proj_weight.copy_(ours.k_proj.weight)
            ref.v_proj_weight.copy_(ours.v_proj.weight)
        ref.out_proj.weight.copy_(ours.o_proj.weight)
    return ref


def test_multi_head_self_attention_matches_torch_module():
    torch.manual_seed(0)
    ours = MultiHeadAttention(d_model=24, num_heads=4)
    ref = _torch_mha_from(ours)
    x = torch.randn(2, 5, 24)
    out, weights = ours(x, is_causal=True)
    # torch.nn.MultiheadAttention's bool masks are inverted: True = blocked.
    ref_out, ref_weights = ref(x, x, x, attn_mask=~causal_mask(5), average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)


def test_cross_attention_matches_torch_module():
    torch.manual_seed(1)
    ours = CrossAttention(d_model=16, num_heads=2, context_dim=10)
    ref = _torch_mha_from(ours, kdim=10)
    x, context = torch.randn(3, 4, 16), torch.randn(3, 7, 10)  # L = 4 queries, S = 7 keys
    am = torch.ones(3, 7, dtype=torch.long)
    am[0, 5:] = 0
    out, weights = ours(x, context, attn_mask=padding_mask(am))
    ref_out, ref_weights = ref(x, context, context, key_padding_mask=~am.bool(), average_attn_weights=False)
    assert out.shape == (3, 4, 16) and weights.shape == (3, 2, 4, 7)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="context"):
        ours(x, None)


def test_gqa_module_equals_mha_with_repeated_kv_weights():
    torch.manual_seed(2)
    gqa = MultiHeadAttention(d_model=32, num_heads=8, num_kv_heads=2)
    mha = MultiHeadAttention(d_model=32, num_heads=8)
    head_dim = 4
    with torch.no_grad():
        mha.q_proj.weight.copy_(gqa.q_proj.weight)
        mha.o_proj.weight.copy_(gqa.o_proj.weight)
        for name in ("k_proj", "v_proj"):
            w = getattr(gqa, name).weight.view(2, head_dim, 32)  # (H_kv, E, d)
            getattr(mha, name).weight.copy_(w.repeat_interleave(4, dim=0).reshape(32, 32))
    x = torch.randn(2, 6, 32)
    torch.testing.assert_close(gqa(x, is_causal=True)[0], mha(x, is_causal=True)[0], atol=ATOL, rtol=0)
    assert gqa.k_proj.weight.numel() * 4 == mha.k_proj.weight.numel()


def test_kv_cache_bytes_matches_a_real_cache():
    config = LlamaConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=50,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 50, (3, 7)), use_cache=True).cache
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert measured == kv_cache_bytes(config, batch_size=3, seq_len=7, dtype=torch.float32)


def test_kv_cache_of_a_sliding_window_model_stops_growing_at_the_window():
    config = MistralConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=50, sliding_window=4,
    )
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 50, (1, 9)), use_cache=True).cache
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    per_token = kv_cache_bytes(config, 1, 1, torch.float32)
    assert kv_cache_bytes(config, 1, 9, torch.float32) == 4 * per_token  # the window, not 9 tokens
    assert measured == 3 * per_token  # between steps: window - 1, the next token makes it 4


def test_kv_cache_bytes_of_7b_models():
    qwen = architecture_config("Qwen/Qwen2.5-7B")
    # 2 (k, v) x 28 layers x 4 kv heads x 128 dims x 2 bytes = 56 KiB per token.
    assert kv_cache_bytes(qwen, 1, 1, torch.bfloat16) == 57_344
    assert kv_cache_bytes(qwen, 1, 32_768, "bf16") == 1_879_048_192  # 1.75 GiB
    # Without GQA (28 kv heads) the same context would need 7 times as much.
    assert kv_cache_bytes(qwen, 1, 32_768, "bf16", num_kv_heads=28) == 7 * 1_879_048_192
    llama2 = architecture_config("meta-llama/Llama-2-7b-hf")
    assert kv_cache_bytes(llama2, 1, 4096, torch.float16) == 2 * 1024**3  # 0.5 MiB per token
    mistral = architecture_config("mistralai/Mistral-7B-v0.1")
    assert kv_cache_bytes(mistral, 1, 32_768, "bf16") == kv_cache_bytes(mistral, 1, 4096, "bf16") == 2**29
    assert dtype_bytes("fp32") == 4 and dtype_bytes(torch.bfloat16) == 2
    with pytest.raises(ValueError, match="unknown dtype"):
        dtype_bytes("float12")


# --- the encoder-decoder of chapter 3 --------------------------------------------------

def test_reversal_batches_reverse_the_real_digits_only():
    from ift_tutorial.scratch.seq2seq import BOS, EOS, PAD, SEP, as_one_sequence, reversal_batch

    b = reversal_batch(32, torch.Generator().manual_seed(0))
    for i in range(32):
        n = int(b.lengths[i])
        digits = b.src[i, :n].tolist()
        assert b.src[i, n:].eq(PAD).all() and b.src_mask[i].sum() == n
        assert b.tgt_in[i, 0] == BOS and b.tgt_in[i, 1 : n + 1].tolist() == digits[::-1]
        assert b.tgt_out[i, :n].tolist() == digits[::-1] and b.tgt_out[i, n] == EOS
        assert b.tgt_out[i, n + 1 :].eq(-100).all()
    tokens, mask, target = as_one_sequence(b)
    n = int(b.lengths[0])
    row = tokens[0][mask[0].bool()].tolist()
    assert row == b.src[0, :n].tolist() + [SEP] + b.src[0, :n].flip(0).tolist()
    answer = target[0][target[0] != -100].tolist()
    assert answer == b.src[0, :n].flip(0).tolist() + [EOS]


def test_cross_attention_ignores_source_padding_and_learns_to_reverse():
    from ift_tutorial.scratch.seq2seq import EncoderDecoder, reversal_batch, train_reversal

    torch.manual_seed(0)
    model = EncoderDecoder(d_model=32, num_heads=2)
    losses = train_reversal(model, steps=40, batch_size=32)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    b = reversal_batch(8, torch.Generator().manual_seed(5))
    model.eval()
    with torch.no_grad():
        logits, cross = model(b)
    assert logits.shape == (8, 9, 14) and cross[0].shape == (8, 2, 9, 8)
    pad_keys = (b.src_mask == 0)[:, None, None, :].expand_as(cross[0])
    assert torch.all(cross[0][pad_keys] == 0)
    torch.testing.assert_close(cross[0].sum(-1), torch.ones(8, 2, 9))


def test_copy_alignment_counts_the_anti_diagonal():
    from ift_tutorial.scratch.seq2seq import copy_alignment

    perfect = torch.eye(4).flip(1)  # row i attends to source position 3 - i
    perfect = torch.cat([perfect, torch.full((1, 4), 0.25)])  # the EOS row is not counted
    assert copy_alignment([perfect]) == 1.0
    assert copy_alignment([torch.eye(4)]) == 0.0  # copying in order is not reversing
