"""Chinese text in figures: drawn with a CJK font, or one clear warning when there is none."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import font_manager
from helpers import needs_cjk_font  # skips without a CJK font; fails under IFT_BOOK_TESTS=1

from ift_tutorial.book import fonts
from ift_tutorial.book.fonts import (MissingCJKFontWarning, family_with_cjk, find_cjk_font,
                                savefig_checked, use_cjk_fallback)
from ift_tutorial.book.notebook import set_plot_style
from ift_tutorial.book.plots import plot_label_mask, show_figure

INSTALLED = find_cjk_font()


def _glyph_pixels(char: str) -> np.ndarray:
    fig = plt.figure(figsize=(0.6, 0.6), dpi=50)
    fig.text(0.5, 0.5, char, ha="center", va="center", fontsize=24)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()
    plt.close(fig)
    return pixels


@needs_cjk_font
def test_plot_style_adds_the_cjk_font_after_the_default():
    with matplotlib.rc_context():
        font = set_plot_style()
        assert font == INSTALLED
        assert matplotlib.rcParams["font.family"] == ["sans-serif", font]
        sans = matplotlib.rcParams["font.sans-serif"]
        assert sans[0] == "DejaVu Sans" and sans[-1] == font and sans.count(font) == 1
        set_plot_style()  # twice: still one entry
        assert matplotlib.rcParams["font.sans-serif"].count(font) == 1


@needs_cjk_font
def test_chinese_labels_render_with_real_glyphs():
    with matplotlib.rc_context():
        set_plot_style()
        # Tofu boxes all look alike; real glyphs of different characters do not.
        assert not np.array_equal(_glyph_pixels("损"), _glyph_pixels("失"))
        fig, ax = plt.subplots()
        ax.set_title("训练损失 (loss)")
        ax.set_xlabel("步数 step")
        ax.text(0.5, 0.5, "答案", family=family_with_cjk("monospace"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert savefig_checked(fig, io.BytesIO(), format="png") is False
        plt.close(fig)
    assert [str(w.message) for w in caught] == []


@needs_cjk_font
def test_a_font_installed_after_matplotlibs_cache_is_found(monkeypatch):
    ttf = [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", ttf)  # the cache before apt-get
    monkeypatch.setattr(fonts, "_system_fonts_scanned", False)
    assert find_cjk_font() == INSTALLED


def test_without_a_cjk_font_chinese_text_gives_one_clear_warning(monkeypatch):
    monkeypatch.setattr(fonts, "CJK_FAMILIES", ())
    monkeypatch.setattr(fonts, "_warned", False)
    with matplotlib.rc_context({"font.family": ["sans-serif"]}):
        assert use_cjk_fallback() is None and find_cjk_font() is None
        assert matplotlib.rcParams["font.family"] == ["sans-serif"]  # unchanged
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for title in ("训练损失", "答案对照"):  # two figures; the first one warns
                fig, ax = plt.subplots()
                ax.set_title(title)
                image = show_figure(fig)
                assert "<svg" in image.data  # still drawn
            fig = plot_label_mask(["a", "b"], [-100, 1])  # Latin only: no warning
            show_figure(fig)
    messages = [(w.category, str(w.message)) for w in caught]
    assert len(messages) == 1, messages
    category, text = messages[0]
    assert category is MissingCJKFontWarning
    assert "4 characters (训练损失) are drawn as boxes" in text and "fonts-noto-cjk" in text
    assert not any("Glyph" in m for _, m in messages)


def test_other_warnings_of_a_figure_pass_through(monkeypatch):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2], label="_hidden")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax.legend()  # "No artists with labels found": not a glyph warning
        fig.savefig(io.BytesIO(), format="png")
        before = len(caught)
        savefig_checked(fig, io.BytesIO(), format="png")
    plt.close(fig)
    assert len(caught) == before  # nothing added, nothing dropped


@needs_cjk_font
def test_a_font_shipped_by_a_pip_package_is_found(tmp_path, monkeypatch):
    """``pip install mplfonts`` on a machine without system CJK fonts (here: a stand-in)."""
    system_file = min(f.fname for f in font_manager.fontManager.ttflist if f.name == INSTALLED)
    package = tmp_path / "cjkfontpkg"
    (package / "fonts").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fonts" / f"NotoSansCJK-Regular{Path(system_file).suffix}").symlink_to(system_file)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(fonts, "FONT_PACKAGES", ("cjkfontpkg", "no_such_font_package"))
    ttf = [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", ttf)
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    monkeypatch.setattr(fonts, "_system_fonts_scanned", False)
    assert find_cjk_font() == INSTALLED
    assert any(f.fname.startswith(str(package)) for f in font_manager.fontManager.ttflist)
