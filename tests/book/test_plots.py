"""The book's figure helpers draw what they are given (counts, colours, limits)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex

from ift_tutorial.book.plots import display_token, plot_label_mask, plot_token_lengths


def test_display_token_makes_whitespace_visible():
    assert display_token(" ") == "␣"
    assert display_token("\n") == "⏎"
    assert display_token("a b") == "a␣b"


def test_label_mask_draws_one_box_per_token_coloured_by_label():
    tokens = ["<s>", "<|user|>", "\n", "Hi", "<|assistant|>", "\n", "Yo", "</s>", "\n"]
    labels = [-100, -100, -100, -100, -100, -100, 7, 2, -100]
    fig = plot_label_mask(tokens, labels, per_row=4)
    texts = fig.axes[0].texts
    assert [t.get_text() for t in texts] == [display_token(t) for t in tokens]
    colours = [to_hex(t.get_bbox_patch().get_facecolor()) for t in texts]
    kept = {c for c, lab in zip(colours, labels) if lab != -100}
    masked = {c for c, lab in zip(colours, labels) if lab == -100}
    assert len(kept) == 1 and len(masked) == 1 and kept != masked
    assert "2 of 9 tokens" in fig.axes[0].get_title()
    plt.close(fig)


def test_label_mask_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 tokens but 2 labels"):
        plot_label_mask(["a", "b", "c"], [1, 2])


def test_token_length_histograms_count_every_conversation_and_those_over_the_limit():
    lengths = {"a": [10, 20, 30, 70], "b": [5, 100, 200]}
    fig = plot_token_lengths(lengths, max_length=64, bins=5)
    assert len(fig.axes) == 2
    for ax, values in zip(fig.axes, lengths.values()):
        assert sum(p.get_height() for p in ax.patches) == len(values)
        assert [line.get_xdata()[0] for line in ax.lines] == [64]
    assert "1 over the limit" in fig.axes[0].get_title()
    assert "2 over the limit" in fig.axes[1].get_title()
    plt.close(fig)


def test_show_figure_returns_svg_and_closes_the_figure():
    from ift_tutorial.book.plots import show_figure

    fig = plot_token_lengths({"a": [1, 2, 3]})
    image = show_figure(fig)
    assert image.data.lstrip().startswith("<svg") and "</svg>" in image.data
    assert not plt.fignum_exists(fig.number)
    again = show_figure(plot_token_lengths({"a": [1, 2, 3]}))
    assert again.data == image.data  # no date, fixed ids: both editions get the same bytes
