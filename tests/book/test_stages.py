"""Chapter 1's figure of the training stages: every stage with its data, in both editions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from ift_tutorial.book import stages  # noqa: E402
from ift_tutorial.book.fonts import use_cjk_fallback  # noqa: E402
from ift_tutorial.i18n import set_edition  # noqa: E402


@pytest.fixture(autouse=True)
def cjk_font():
    """Chinese labels drawn with a CJK font, as the Chinese edition's setup cell does."""
    with matplotlib.rc_context():
        use_cjk_fallback(matplotlib.rcParams)
        yield


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text()]


def test_both_editions_label_the_same_boxes():
    assert stages.LABELS["en"].keys() == stages.LABELS["zh"].keys()
    assert all(stages.LABELS["en"][k] != v for k, v in stages.LABELS["zh"].items())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_stage_and_its_data_are_drawn(lang):
    texts = _texts(stages.training_stages(lang))
    assert sorted(texts) == sorted(stages.LABELS[lang].values())
    plt.close("all")


def test_the_stages_name_their_methods_and_data():
    joined = " ".join(_texts(stages.training_stages("en")))
    for label in ("Pretraining", "SFT", "DPO", "GRPO", "raw text", "instruction / response",
                  "preference pairs", "reward", "base model"):
        assert label in joined, label
    plt.close("all")


def test_the_running_edition_is_drawn_when_none_is_given():
    set_edition("zh")
    try:
        assert "预训练" in " ".join(_texts(stages.training_stages()))
    finally:
        set_edition(None)
        plt.close("all")
