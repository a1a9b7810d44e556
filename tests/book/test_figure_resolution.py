"""Every figure of the book is sharp and readable at the page's width.

A figure is either SVG, or a PNG with at least twice as many pixels as it is shown with
(a 100-dpi PNG is blurred on a high-density screen). Its smallest text, shown on a page
about 800 px wide, is at least :data:`MIN_TEXT_PX` pixels high.

Three ways in: the check itself (it must fail on a 100-dpi PNG), the package's figure
functions drawn as a chapter draws them, and the notebooks the book build executed
(``book/_build/.../jupyter_execute``), when a build is there.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from ift_tutorial.book import diagrams, plots

ROOT = Path(__file__).resolve().parents[2]
#: The width of a book page's text column, in CSS pixels.
PAGE_PX = 800
#: The smallest text a reader should have to read, in CSS pixels (about 7 points).
MIN_TEXT_PX = 9.0
IMAGE_TYPES = ("image/png", "image/jpeg")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from a PNG's header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def figure_problem(output: dict) -> str | None:
    """What is wrong with the figure of one notebook output, or None (fine, or no figure).

    An SVG is fine. A PNG is shown at the ``width`` of its metadata (Jupyter's
    ``retina`` format sets it to half the pixels) or else at its own pixel width, at
    most the page's: it needs twice as many pixels as that. A JPEG is never sharp text.
    """
    data = output.get("data") or {}
    if "image/svg+xml" in data:
        return None
    if "image/jpeg" in data:
        return "a JPEG figure (use SVG)"
    if "image/png" not in data:
        return None
    raw = data["image/png"]
    raw = "".join(raw) if isinstance(raw, list) else raw
    width, _ = png_size(base64.b64decode(raw))
    meta = (output.get("metadata") or {}).get("image/png") or {}
    shown = min(int(meta.get("width") or width), PAGE_PX)
    if width < 2 * shown:
        return f"a PNG of {width} px shown {shown} px wide ({width / shown:.1f}×, needs 2×)"
    return None


def smallest_text_px(fig, page_px: int = PAGE_PX) -> float:
    """The height of the figure's smallest visible text on the page, in CSS pixels.

    SVG sizes are in points (1 pt = 4/3 CSS px); a figure wider than the page is scaled
    down to it, its text with it.
    """
    fig.canvas.draw()
    # saved with bbox_inches="tight": a legend outside the axes widens the picture
    width_px = fig.get_tightbbox(fig.canvas.get_renderer()).width * 96
    scale = min(1.0, page_px / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()
             and (t.axes is None or t.axes.get_visible())]
    return min(sizes) * 96 / 72 * scale


# --- the check can fail -------------------------------------------------------------------


def _png_output(fig, dpi: int, width_meta: int | None = None) -> dict:
    import io

    buffer = io.BytesIO()
    # the house style saves "tight" (set by other tests' set_plot_style): keep the full size
    with matplotlib.rc_context({"savefig.bbox": "standard"}):
        fig.savefig(buffer, format="png", dpi=dpi)
    output = {"output_type": "display_data",
              "data": {"image/png": base64.b64encode(buffer.getvalue()).decode()},
              "metadata": {}}
    if width_meta:
        output["metadata"]["image/png"] = {"width": width_meta}
    return output


def test_a_100_dpi_png_fails_and_a_retina_png_or_svg_passes():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([1, 2, 3])
    low = _png_output(fig, dpi=100)  # 600 px, shown 600 px wide
    assert "needs 2×" in figure_problem(low)
    retina = _png_output(fig, dpi=200, width_meta=600)  # 1200 px shown at 600
    assert figure_problem(retina) is None
    unmarked = _png_output(fig, dpi=200)  # 1200 px shown at the page's 800: 1.5×
    assert "1.5×" in figure_problem(unmarked)
    assert figure_problem({"data": {"image/svg+xml": "<svg/>", "image/png": "x"}}) is None
    assert figure_problem({"data": {"text/plain": "42"}}) is None
    plt.close(fig)


def test_tiny_text_on_a_wide_figure_fails_the_text_check():
    fig, ax = plt.subplots(figsize=(13, 8.5))  # Figure 2.5 as it was: 6-point token labels
    ax.set_xticks([0, 1], ["a", "b"], fontsize=6)
    assert smallest_text_px(fig) < MIN_TEXT_PX
    plt.close(fig)


# --- the package's figures, drawn as the chapters draw them --------------------------------


def _figures():
    import numpy as np

    from ift_tutorial.book.plots_validation import plot_validation
    from ift_tutorial.planning.architectures import architecture_config
    from ift_tutorial.planning.memory import plan_memory

    log = [{"step": s, "loss": 3.0 * 0.99 ** s} for s in range(10, 410, 10)]
    before = {"addition": 0.0, "city": 0.0, "reversal": 0.05}
    after = {"addition": 0.62, "city": 0.92, "reversal": 0.68}
    metrics = {"exact_match_before": 0.0, "exact_match_after": 0.74,
               "ifeval_prompt_level_strict_acc_before": 0.06,
               "ifeval_prompt_level_strict_acc_after": 0.12,
               "ifeval_prompt_level_loose_acc_before": 0.06,
               "ifeval_prompt_level_loose_acc_after": 0.12,
               "ifeval_inst_level_strict_acc_before": 0.17,
               "ifeval_inst_level_strict_acc_after": 0.23,
               "ifeval_inst_level_loose_acc_before": 0.17,
               "ifeval_inst_level_loose_acc_after": 0.23,
               "gsm8k_flexible_acc_before": 0.0, "gsm8k_flexible_acc_after": 0.0,
               "gsm8k_strict_acc_before": 0.0, "gsm8k_strict_acc_after": 0.0,
               "answer_perplexity_before": 1_032_066.0, "answer_perplexity_after": 1.6}
    tokens = ["<|im_start|>", "user", "\n", "Where", " does", " Mira", " live", "?"] * 4
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(len(tokens)), size=(6, len(tokens)))
    arch = architecture_config("Qwen/Qwen2.5-7B")
    plan = plan_memory(arch, seq_len=1024, batch_size=2)
    yield "loss curve (7.1)", lambda: plots.plot_loss(log)
    yield "before/after per task (7.2)", lambda: plots.plot_before_after(before, after)
    yield "training vs validation loss (7.3)", lambda: plot_validation(
        log + [{"step": s, "eval_loss": 3.2 * 0.995 ** s} for s in range(0, 401, 50)])
    yield "metrics grid (8.1)", lambda: plots.plot_metrics_before_after(metrics)
    yield "label mask", lambda: plots.plot_label_mask(tokens[:20], [-100] * 10 + [1] * 10)
    yield "token lengths", lambda: plots.plot_token_lengths({"a": [5, 9, 30], "b": [3, 4]}, 16)
    yield "attention heads (2.5)", lambda: plots.plot_attention_heads(weights, tokens, query=30)
    yield "memory plan (6.6, 12.2)", lambda: plots.plot_plan(
        {"batch 2": plan, "batch 1": plan_memory(arch, seq_len=1024, batch_size=1)}).figure
    yield "LoRA layer", lambda: diagrams.lora_layer(r=16, alpha=32, in_features=3584,
                                                    out_features=3584)
    yield "Llama block (4)", diagrams.llama_block
    yield "QLoRA data flow (6)", lambda: diagrams.qlora_dataflow("bf16")
    yield "DDP vs FSDP (12)", lambda: diagrams.ddp_vs_fsdp(num_gpus=4)


@pytest.mark.parametrize("name, draw", list(_figures()), ids=[n for n, _ in _figures()])
def test_package_figures_are_svg_and_readable_at_page_width(name, draw):
    matplotlib.rcParams.update(__import__("ift_tutorial.book.notebook",
                                          fromlist=["PLOT_STYLE"]).PLOT_STYLE)
    fig = draw()
    text_px = smallest_text_px(fig)
    assert text_px >= MIN_TEXT_PX, f"{name}: smallest text {text_px:.1f} px at page width"
    shown = plots.show_figure(fig)
    assert figure_problem({"data": {"image/svg+xml": shown.data}}) is None


def test_saved_pngs_are_twice_a_screens_resolution(tmp_path):
    fig = plots.plot_loss([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}],
                          tmp_path / "loss.png")
    width, _ = png_size((tmp_path / "loss.png").read_bytes())
    shown = fig.get_size_inches()[0] * 100  # at a screen's 100 dpi
    assert width >= 1.9 * shown  # bbox "tight" trims a few pixels of margin
    plt.close(fig)


def test_a_chapters_inline_figures_are_svg(monkeypatch):
    """setup_notebook switches the inline backend to SVG: plt.show() in a chapter is sharp."""
    from IPython.core.interactiveshell import InteractiveShell

    from ift_tutorial.book.notebook import use_svg_figures

    shell = InteractiveShell.instance()
    try:
        assert use_svg_figures() is True
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        bundle, _ = shell.display_formatter.format(fig)
        assert "image/svg+xml" in bundle and "image/png" not in bundle
        assert figure_problem({"data": bundle}) is None
        plt.close(fig)
    finally:
        InteractiveShell.clear_instance()


# --- what a book build executed -----------------------------------------------------------


def _executed() -> list[Path]:
    build = ROOT / "book" / "_build"
    return sorted(build.glob("jupyter_execute/chapters/*.ipynb")) + sorted(
        build.glob("zh/_build/jupyter_execute/chapters/*.ipynb"))


@pytest.mark.skipif(not _executed(), reason="no executed notebooks: the book is not built")
@pytest.mark.parametrize("path", _executed(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_figure_of_a_built_chapter_is_sharp(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = [f"cell {i}: {problem}" for i, cell in enumerate(cells)
                for output in cell.get("outputs", [])
                if (problem := figure_problem(output))]
    assert not problems, "\n".join(problems)
