"""Chapter 6's gradient-checkpointing figure: what each row keeps, the planner's numbers."""

from __future__ import annotations

from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from helpers import needs_cjk_font  # noqa: E402
from test_figure_resolution import MIN_TEXT_PX, smallest_text_px  # noqa: E402

from ift_tutorial.book.notebook import PLOT_STYLE, set_plot_style  # noqa: E402
from ift_tutorial.book.plots_memory import STATES, checkpointing_diagram  # noqa: E402
from ift_tutorial.formatting import size  # noqa: E402
from ift_tutorial.i18n import set_edition  # noqa: E402
from ift_tutorial.planning.architectures import architecture_config  # noqa: E402
from ift_tutorial.planning.memory import plan_memory  # noqa: E402

COLOUR_STATE = {to_hex(colour): state for state, colour in STATES.items()}


def _cells(fig) -> Counter:
    """How many activation squares of each state the figure draws."""
    squares = [p for p in fig.axes[0].patches if type(p) is Rectangle]
    return Counter(COLOUR_STATE[to_hex(p.get_facecolor())] for p in squares)


@pytest.mark.parametrize("n_blocks", [3, 4])
def test_without_checkpointing_all_is_kept_with_it_the_inputs_and_one_block(n_blocks):
    fig = checkpointing_diagram(n_blocks=n_blocks)
    inside = 3  # activations drawn per block
    # top row: every input and every activation; bottom row: the inputs only
    assert _cells(fig) == {"stored": 2 * n_blocks + n_blocks * inside,
                           "recomputed": inside, "discarded": (n_blocks - 1) * inside}
    plt.close(fig)


def test_the_planners_numbers_are_written_beside_the_rows():
    arch = architecture_config("Qwen/Qwen2.5-7B")
    kept = {on: plan_memory(arch, seq_len=1024, batch_size=1, gradient_checkpointing=on)
            .components["activations"] for on in (True, False)}
    fig = checkpointing_diagram(kept_without=kept[False], kept_with=kept[True])
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for on in (True, False):
        assert f"{size(kept[on])} of activations" in texts
    assert kept[False] > 10 * kept[True]
    plt.close(fig)
    bare = checkpointing_diagram()
    assert "of activations" not in " ".join(t.get_text() for t in bare.axes[0].texts)
    plt.close(bare)


def test_readable_at_page_width():
    with matplotlib.rc_context(PLOT_STYLE):
        fig = checkpointing_diagram(kept_without=2**30, kept_with=2**28)
        assert smallest_text_px(fig) >= MIN_TEXT_PX
    plt.close(fig)


@needs_cjk_font
def test_chinese_in_the_chinese_edition():
    set_edition("zh")
    try:
        with matplotlib.rc_context():
            set_plot_style("zh")
            fig = checkpointing_diagram()
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "使用梯度检查点" in texts and "第 3 块" in texts
        plt.close(fig)
    finally:
        set_edition(None)
