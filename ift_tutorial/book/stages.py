"""The stages that make a chat model, as one figure (chapter 1).

Pretraining reads raw text; supervised instruction tuning (SFT) reads instruction and
response pairs; the last stage either compares two answers (preference tuning, DPO)
or scores sampled answers with a program that checks them (RL with a verifiable
reward, GRPO). :func:`training_stages` draws the three stages left to right, each with
the data it learns from and the model it hands on.

Teaching code: nothing in the training pipeline imports this module. The figure's
words are kept here in both editions (:data:`LABELS`) and picked by
:func:`ift_tutorial.i18n.edition`, so the same call draws English labels in the English
edition and Chinese ones in the Chinese.
"""

from __future__ import annotations

from typing import Any

from ..i18n import edition
from .diagrams import arrow, box, canvas

#: Every word of the figure, per edition; the keys name the boxes.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "pretrain": "1. Pretraining\nnext-token loss\non all of the text",
        "sft": "2. Instruction tuning (SFT)\nnext-token loss\non the answers only",
        "dpo": "3a. Preference tuning (DPO)\nprefer the chosen answer",
        "grpo": "3b. RL with a verifiable\nreward (GRPO)",
        "raw": "raw text\n(web pages, books, code)\ntrillions of tokens",
        "pairs": "instruction / response\npairs in a chat template\nthousands of examples",
        "prefs": "preference pairs:\nprompt, chosen, rejected",
        "reward": "prompts and a reward\nthat checks each answer",
        "base": "base model",
        "tuned": "instruction-\ntuned model",
        "or": "or",
        "this_book": "this book: chapters 5 to 8",
        "chapter_9": "chapter 9",
    },
    "zh": {
        "pretrain": "1. 预训练\n对全部文本计算\n下一个词元的损失",
        "sft": "2. 指令微调（SFT）\n只对回答计算\n下一个词元的损失",
        "dpo": "3a. 偏好微调（DPO）\n偏向被选中的回答",
        "grpo": "3b. 可验证奖励的\n强化学习（GRPO）",
        "raw": "原始文本\n（网页、书籍、代码）\n数万亿词元",
        "pairs": "指令 / 回答对\n套用对话模板\n数千条样本",
        "prefs": "偏好对：\n提示、选中、拒绝",
        "reward": "提示，加上检查\n每个回答的奖励",
        "base": "基座模型",
        "tuned": "指令微调\n后的模型",
        "or": "或",
        "this_book": "本书：第 5 至 8 章",
        "chapter_9": "第 9 章",
    },
}


def stage_labels(lang: str | None = None) -> dict[str, str]:
    """The figure's words in ``lang`` (the running edition when None)."""
    return LABELS[lang or edition()]


def training_stages(lang: str | None = None) -> Any:
    """Pretraining → instruction tuning → preference tuning or RL, with each stage's data.

    The top row holds the stages, the bottom row the data each one learns from; the
    arrows between the stages carry the model from one to the next (base model, then
    instruction-tuned model), and the last stage splits into DPO and GRPO.

    Args:
        lang: ``"en"`` or ``"zh"``; None draws in the running edition.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = training_stages("en")
        >>> "base model" in {t.get_text() for t in fig.axes[0].texts}
        True
    """
    words = stage_labels(lang)
    fig, ax = canvas(11.1, 4.9)
    w, size = 2.9, 10.5  # width of every box, font size

    def card(x: float, y: float, h: float, stage: str, kind: str, data: str) -> tuple:
        """A stage with its data below it; returns the stage box's left and right middle."""
        box(ax, x, y, w, h, words[data], "input", size - 0.5)
        _, cy = box(ax, x, y + h + 0.3, w, h, words[stage], kind, size)
        arrow(ax, (x + w / 2, y + h), (x + w / 2, y + h + 0.3))  # the data feed the stage
        return (x, cy), (x + w, cy)

    _, pre = card(0.1, 1.3, 1.0, "pretrain", "op", "raw")
    sft_in, sft = card(4.1, 1.3, 1.0, "sft", "trainable", "pairs")
    dpo, _ = card(8.1, 2.45, 0.85, "dpo", "trainable", "prefs")
    grpo, _ = card(8.1, 0.1, 0.85, "grpo", "trainable", "reward")
    # the model passes from stage to stage; the last stage is DPO or GRPO (or both)
    arrow(ax, pre, sft_in)
    ax.text(3.55, pre[1] + 0.08, words["base"], ha="center", va="bottom", fontsize=9.5)
    arrow(ax, sft, dpo)
    arrow(ax, sft, grpo)
    ax.text(7.7, sft[1], words["tuned"], ha="center", va="center", fontsize=9.5)
    ax.text(9.55, 2.22, words["or"], ha="center", va="center", fontsize=10)
    # where the book works
    ax.text(5.55, 1.0, words["this_book"], ha="center", fontsize=10, color="#555555")
    ax.text(9.55, 4.65, words["chapter_9"], ha="center", fontsize=10, color="#555555")
    fig.tight_layout()
    return fig
