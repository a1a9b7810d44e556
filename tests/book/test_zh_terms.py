"""The Chinese edition's terms: one word per concept, as the glossary (book/zh/glossary.md) says.

* logits stay "logits" (or 未归一化的对数概率): 对数几率 means log-odds, another thing;
* a conversation turn is 轮次 (轮次结束词元, the end-of-turn token), never 回合 or 轮末;
* an epoch is 一轮 (训练轮数), not 轮次;
* preference tuning is 偏好微调, never 偏好训练;
* an English term is glossed in brackets, 中文（English）, at most once per chapter: after
  that the chapter and the glossary carry it.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from helpers import BOOK, markdown_prose, markdown_text, read_notebook

CHINESE = sorted((BOOK / "zh" / "chapters").glob("*.ipynb"))
GLOSSARY = BOOK / "zh" / "glossary.md"

#: A word the edition does not use -> the word it uses instead.
AVOIDED = {"对数几率": "logits", "回合": "轮次", "轮末": "轮次结束", "偏好训练": "偏好微调"}

#: 中文（English）: Chinese words with an English gloss in full-width brackets.
GLOSS = re.compile(r"[\u4e00-\u9fff]+（([A-Za-z][A-Za-z0-9 \-./']*)）")


def avoided_words(text: str) -> list[str]:
    """The avoided words in ``text``, each with the word to use instead."""
    return [f"{word} (use {instead})" for word, instead in AVOIDED.items() if word in text]


def repeated_glosses(text: str) -> dict[str, int]:
    """English glosses that appear more than once in ``text``, with their counts."""
    counts = Counter(gloss.lower() for gloss in GLOSS.findall(text))
    return {gloss: n for gloss, n in counts.items() if n > 1}


def test_the_checks_catch_what_they_look_for():
    text = "模型输出对数几率。第一个回合……词元（token）……词元（Token）"
    assert avoided_words(text) == ["对数几率 (use logits)", "回合 (use 轮次)"]
    assert repeated_glosses(text) == {"token": 2}
    assert avoided_words("logits（未归一化的对数概率）与轮次结束词元") == []


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.stem)
def test_one_word_per_concept(path):
    prose = markdown_prose(markdown_text(read_notebook(path)))
    assert avoided_words(prose) == [], f"book/zh/chapters/{path.name}"


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.stem)
def test_an_english_term_is_glossed_once_per_chapter(path):
    prose = markdown_prose(markdown_text(read_notebook(path)))
    assert repeated_glosses(prose) == {}, f"book/zh/chapters/{path.name}"


def test_the_glossary_names_the_words_the_chapters_use():
    glossary = GLOSSARY.read_text(encoding="utf-8")
    for word in ("logits", "轮次", "偏好微调"):
        assert f"| {word}" in glossary, word
    assert "| 对数几率 |" not in glossary
