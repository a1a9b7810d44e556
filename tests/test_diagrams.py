"""The book's code-drawn diagrams: each returns a Figure with the labels the chapter's prose names."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ift_tutorial import diagrams  # noqa: E402


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
