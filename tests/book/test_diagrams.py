"""The book's code-drawn diagrams: each returns a Figure with the labels the chapter's prose names."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ift_tutorial.book import diagrams  # noqa: E402


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text()]



def test_attention_flow_names_every_tensor_with_its_shape():
    fig = diagrams.attention_flow(L=4, S=6, d_model=16, d_k=8, d_v=5)
    texts = _texts(fig)
    assert isinstance(fig, matplotlib.figure.Figure)
    lines = {t.splitlines()[0]: t.splitlines()[-1] for t in texts}
    assert lines["X"] == "4 × 16"
    assert lines["Q = X$W_Q$"] == "4 × 8" and lines["K = X$W_K$"] == "6 × 8"
    assert lines["V = X$W_V$"] == "6 × 5" and lines["weights · V"] == "4 × 5"
    assert sum(t.endswith("4 × 6") for t in texts) == 2  # scores and weights are L x S
    plt.close(fig)


def test_attention_flow_for_cross_attention_takes_k_and_v_from_the_context():
    texts = _texts(diagrams.attention_flow(cross=True))
    assert any(t.startswith("context C") for t in texts)
    assert any(t.startswith("K = C") for t in texts) and any(t.startswith("Q = X") for t in texts)
    plt.close("all")


def test_encoder_decoder_vs_decoder_only_shows_both_layouts():
    texts = " ".join(_texts(diagrams.encoder_decoder_vs_decoder_only()))
    for label in ("Encoder–decoder", "Decoder-only", "bidirectional", "cross-attention",
                  "causal self-attention", "prompt tokens | answer tokens"):
        assert label in texts, label
    plt.close("all")


def test_llama_block_shows_the_pre_norm_residual_block_and_its_insides():
    texts = _texts(diagrams.llama_block())
    joined = " ".join(texts)
    assert texts.count("RMSNorm") == 2 and "final RMSNorm" in texts  # pre-norm: one per sublayer
    assert texts.count("+") == 2  # two residual additions per block
    for label in ("with RoPE on q, k", "SwiGLU MLP", "W_gate x", "W_up x", "W_down", "SiLU",
                  "causal mask", "× N decoder blocks", "embedding", "lm_head"):
        assert label in joined, label
    plt.close("all")


def test_lora_layer_labels_shapes_scale_and_counts_from_its_arguments():
    texts = " ".join(_texts(diagrams.lora_layer(r=4, alpha=16, in_features=1000, out_features=500)))
    assert "A   (r × in),  r = 4" in texts and "B   (out × r),  starts at 0" in texts
    assert "α/r = 4" in texts  # 16 / 4
    assert "frozen: 0.5 M weights" in texts  # 1000 x 500
    assert "r·(in + out) = 6 k" in texts  # 4 x 1500
    plt.close("all")


def test_qlora_dataflow_stores_4_bits_and_computes_in_the_16_bit_dtype():
    texts = " ".join(_texts(diagrams.qlora_dataflow("fp16")))
    assert "NF4 codes: 4 bits per weight" in texts and "one per 64 weights" in texts
    assert "≈ 4.13 bits per weight" in texts  # 4 + 8/64 + 32/(64*256)
    assert "fp16 matmul" in texts and "LoRA in fp16" in texts and "bf16" not in texts
    assert "no 4-bit arithmetic" in texts
    plt.close("all")


def test_ddp_vs_fsdp_draws_what_the_planner_shards():
    from collections import Counter

    from ift_tutorial.planning.sharding import SHARDING

    fig = diagrams.ddp_vs_fsdp(num_gpus=4)
    texts = _texts(fig)
    for label in ("DDP", "ZeRO-1", "ZeRO-2", "ZeRO-3 / FSDP2", "FSDP1", "embeddings (16-bit)",
                  "head (16-bit)", "LoRA gradients", "optimizer states", "gathered whole during the step"):
        assert label in texts, label
    patches = fig.axes[0].patches
    cell = Counter(round(p.get_width(), 6) for p in patches).most_common(1)[0][0]
    slices = sum(abs(p.get_width() - cell / 4) < 1e-6 for p in patches)  # a GPU's 1/4 shard
    split = {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 6, "fsdp": 6}  # rows split per panel
    assert slices == 4 * sum(split.values())
    assert SHARDING["zero3"] == SHARDING["fsdp2"]  # one panel draws both
    # hatched: FSDP1's root unit (embeddings and head) and ZeRO-3's head on every GPU, and the key
    assert sum(bool(p.get_hatch()) for p in patches) == 4 * (2 + 1) + 1
    plt.close(fig)
