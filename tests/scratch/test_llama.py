"""The from-scratch Llama against transformers, and parameter counts of 7B architectures."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.models.llama.modeling_llama import (
    LlamaMLP,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

from ift_tutorial.planning.architectures import (
    KNOWN_ARCHITECTURES,
    PUBLISHED_PARAMETER_COUNTS,
    architecture_config,
)
from ift_tutorial.scratch.llama import (
    Llama,
    LlamaArgs,
    RMSNorm,
    SwiGLU,
    apply_rope,
    architecture_parameter_counts,
    from_hf,
    load_from_pretrained,
    parameter_breakdown,
    rope_cos_sin,
    rope_inverse_frequencies,
)
from ift_tutorial.paths import TINY_MODEL_DIR

torch.set_num_threads(1)


def _small_config(cls=LlamaConfig, tie=True, **kw):
    return cls(
        hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=120, max_position_embeddings=64, tie_word_embeddings=tie,
        rms_norm_eps=1e-5, **kw,
    )


def _randomised(model):
    """Random weights everywhere, norms and biases too (their defaults are 1 and 0)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.normal_()
    return model.eval()


def test_rope_equals_transformers():
    config = _small_config(rope_parameters={"rope_type": "default", "rope_theta": 500.0})
    ref = LlamaRotaryEmbedding(config)
    positions = torch.arange(17)[None]
    x = torch.randn(1, 17, 64)
    ref_cos, ref_sin = ref(x, positions)
    cos, sin = rope_cos_sin(positions, rope_inverse_frequencies(8, 500.0))
    torch.testing.assert_close(cos, ref_cos, atol=0, rtol=0)
    torch.testing.assert_close(sin, ref_sin, atol=0, rtol=0)
    q, k = torch.randn(1, 8, 17, 8), torch.randn(1, 2, 17, 8)
    ref_q, ref_k = apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    torch.testing.assert_close(apply_rope(q, cos[:, None], sin[:, None]), ref_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_rope(k, cos[:, None], sin[:, None]), ref_k, atol=1e-6, rtol=0)


def test_rope_scores_depend_on_relative_position_only():
    inv_freq = rope_inverse_frequencies(16)
    q, k = torch.randn(16), torch.randn(16)

    def score(m, n):
        cos, sin = rope_cos_sin(torch.tensor([m, n]), inv_freq)
        qm = apply_rope(q, cos[0], sin[0])
        kn = apply_rope(k, cos[1], sin[1])
        return float(qm @ kn)

    assert score(7, 3) == pytest.approx(score(104, 100), abs=1e-4)
    assert score(7, 3) != pytest.approx(score(7, 4), abs=1e-3)
    # Rotation keeps lengths: RoPE moves vectors around, it does not scale them.
    cos, sin = rope_cos_sin(torch.tensor([9]), inv_freq)
    assert float(apply_rope(q, cos[0], sin[0]).norm()) == pytest.approx(float(q.norm()), rel=1e-5)


def test_rmsnorm_and_swiglu_equal_transformers():
    torch.manual_seed(1)
    ref_norm, norm = LlamaRMSNorm(32, eps=1e-5), RMSNorm(32, eps=1e-5)
    with torch.no_grad():
        ref_norm.weight.normal_()
        norm.weight.copy_(ref_norm.weight)
    x = torch.randn(2, 5, 32) * 3
    torch.testing.assert_close(norm(x), ref_norm(x), atol=1e-6, rtol=0)
    rms = norm(x).div(norm.weight).pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones(2, 5), atol=1e-4, rtol=0)

    config = _small_config()
    ref_mlp, mlp = LlamaMLP(config), SwiGLU(64, 160)
    mlp.load_state_dict(ref_mlp.state_dict())
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(mlp(x), ref_mlp(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls,config_cls", [(LlamaForCausalLM, LlamaConfig), (Qwen2ForCausalLM, Qwen2Config)])
@pytest.mark.parametrize("tie", [True, False])
def test_logits_equal_transformers_on_a_random_model(cls, config_cls, tie):
    hf = _randomised(cls(_small_config(config_cls, tie=tie)))
    ours = from_hf(hf)
    assert parameter_breakdown(ours) == parameter_breakdown(hf)
    ids = torch.randint(0, 120, (3, 12), generator=torch.Generator().manual_seed(2))
    am = torch.ones(3, 12, dtype=torch.long)
    am[1, :4] = 0  # left padding
    am[2, 9:] = 0  # right padding
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)
        ours_pad, hf_pad = ours(ids, attention_mask=am).logits, hf(ids, attention_mask=am).logits
    real = am.bool()  # padding positions' outputs are never used
    torch.testing.assert_close(ours_pad[real], hf_pad[real], atol=1e-4, rtol=0)


def test_logits_equal_transformers_on_the_tiny_preset():
    """The shipped, pretrained tiny model: our implementation and transformers' agree."""
    assert (TINY_MODEL_DIR / "model.safetensors").is_file(), f"{TINY_MODEL_DIR} is missing"
    hf = LlamaForCausalLM.from_pretrained(str(TINY_MODEL_DIR), dtype=torch.float32).eval()
    ours = load_from_pretrained(TINY_MODEL_DIR)
    ids = torch.randint(0, hf.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = ours(ids, output_attentions=True)
        expected = hf(ids).logits
        torch.testing.assert_close(out.logits, expected, atol=1e-4, rtol=0)
        torch.testing.assert_close(from_hf(hf)(ids).logits, expected, atol=1e-4, rtol=0)
    assert len(out.attentions) == hf.config.num_hidden_layers
    assert out.attentions[0].shape == (2, hf.config.num_attention_heads, 24, 24)
    # Pretrained, not random: the logits are far from uniform.
    assert out.logits.softmax(-1).max(-1).values.mean() > 0.2


def test_load_from_pretrained_refuses_folders_without_safetensors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_from_pretrained(tmp_path)
    _small_config().save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        load_from_pretrained(tmp_path)


def test_unsupported_configs_are_refused():
    llama3 = _small_config(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0,
                                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                            "original_max_position_embeddings": 8192})
    with pytest.raises(ValueError, match="llama3"):
        LlamaArgs.from_hf_config(llama3)
    with pytest.raises(ValueError, match="mistral"):
        LlamaArgs.from_hf_config(architecture_config("mistralai/Mistral-7B-v0.1"))


# Published sizes: Qwen2.5-7B's model card, Mistral-7B-v0.1 and Llama-2-7b safetensors metadata.
@pytest.mark.parametrize("hub_id", sorted(PUBLISHED_PARAMETER_COUNTS))
def test_meta_device_parameter_counts_match_published_totals(hub_id):
    counts = architecture_parameter_counts(hub_id)
    assert counts["total"] == PUBLISHED_PARAMETER_COUNTS[hub_id]


def test_qwen2_5_7b_breakdown_by_component():
    counts = architecture_parameter_counts("Qwen/Qwen2.5-7B")
    assert counts["total"] == 7_615_616_512
    embed = 152_064 * 3_584
    assert counts["embeddings"] == counts["lm_head"] == embed  # untied: two separate matrices
    # Per layer: q and o are 3584x3584, k and v 3584x512 (4 kv heads x 128); biases on q, k, v.
    attention_per_layer = 2 * 3584 * 3584 + 2 * 3584 * 512 + 3584 + 2 * 512
    assert counts["attention"] == 28 * attention_per_layer
    assert counts["mlp"] == 28 * 3 * 3584 * 18_944
    assert counts["norms"] == (2 * 28 + 1) * 3584
    assert counts["mlp"] / counts["total"] > 0.74  # most parameters sit in the MLPs


def test_tied_embeddings_are_counted_once():
    counts = architecture_parameter_counts("Qwen/Qwen2.5-0.5B")
    assert counts["lm_head"] == 0
    assert counts["total"] == 494_032_768


@pytest.mark.parametrize("hub_id", ["Qwen/Qwen2.5-7B", "meta-llama/Llama-2-7b-hf"])
def test_our_model_has_the_same_parameters_at_7b_scale(hub_id):
    with init_empty_weights():
        ours = Llama(LlamaArgs.from_hf_config(architecture_config(hub_id)))
    assert parameter_breakdown(ours) == architecture_parameter_counts(hub_id)


def test_architecture_config_lookup(tmp_path):
    assert architecture_config("qwen/qwen2.5-7b").hidden_size == 3584
    assert architecture_config("Qwen/Qwen2.5-7B-Instruct").num_key_value_heads == 4
    _small_config().save_pretrained(tmp_path)
    assert architecture_config(str(tmp_path)).hidden_size == 64
    with pytest.raises(KeyError, match="Qwen/Qwen2.5-7B"):
        architecture_config("gpt-7b-unknown")
    assert len(KNOWN_ARCHITECTURES) >= 3
