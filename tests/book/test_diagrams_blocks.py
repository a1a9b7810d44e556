"""Figure 4.4: Llama's block beside OLMo 2's, the norms where the code puts them."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ift_tutorial.book.diagrams_blocks import llama_and_olmo2_blocks  # noqa: E402
from ift_tutorial.i18n import set_edition  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")


def _column_order(fig, left: bool) -> list[str]:
    """The box labels of one column, bottom to top."""
    texts = [t for t in fig.axes[0].texts
             if t.get_text() and (t.get_position()[0] < 4.5) == left]
    return [t.get_text().splitlines()[0] for t in sorted(texts, key=lambda t: t.get_position()[1])]


def test_the_norms_sit_where_each_block_computes_them():
    fig = llama_and_olmo2_blocks()
    llama, olmo = _column_order(fig, left=True), _column_order(fig, left=False)
    # bottom to top, between the stream and the output
    assert llama[1:7] == ["RMSNorm", "causal attention", "+", "RMSNorm", "SwiGLU MLP", "+"]
    assert olmo[1:7] == ["causal attention", "RMSNorm", "+", "SwiGLU MLP", "RMSNorm", "+"]
    assert any("QK-norm" in t.get_text() for t in fig.axes[0].texts)
    assert fig.get_figwidth() <= 9
    assert min(t.get_fontsize() for t in fig.axes[0].texts if t.get_text()) >= 9.5
    plt.close(fig)


def test_the_chinese_edition_draws_chinese_labels():
    set_edition("zh")
    try:
        fig = llama_and_olmo2_blocks()
    finally:
        set_edition("en")
    words = [t.get_text() for t in fig.axes[0].texts if t.get_text()
             and t.get_text() not in ("RMSNorm", "SwiGLU MLP", "+") and "←" not in t.get_text()]
    assert words and all(CJK.search(w) for w in words), words
    plt.close(fig)
