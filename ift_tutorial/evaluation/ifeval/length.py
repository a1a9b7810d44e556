"""IFEval checkers of the length of a response: the ``length_constraints:`` instructions
(sentences, paragraphs, words, the first word of the n-th paragraph), one function per id.
"""

from __future__ import annotations

import re

from .text import _HAN_CHAR, _compare, count_sentences, count_words


# Each checker takes the response and the instruction's kwargs and returns True when the
# response follows the instruction.


def length_number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    """The response has ``relation`` ``num_sentences`` sentences (:func:`count_sentences`)."""
    return _compare(count_sentences(response), relation, num_sentences)


def _divider_paragraphs(response: str) -> list[str] | None:
    """Paragraphs separated by the markdown divider ``***``; None if one in the middle
    is empty (two dividers in a row). An empty first or last piece is dropped."""
    pieces = re.split(r"\s?\*\*\*\s?", response)
    for i, piece in enumerate(pieces):
        if not piece.strip() and 0 < i < len(pieces) - 1:
            return None
    return [p for p in pieces if p.strip()]


def length_number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Exactly ``num_paragraphs`` paragraphs separated by the markdown divider ``***``."""
    paragraphs = _divider_paragraphs(response)
    return paragraphs is not None and len(paragraphs) == num_paragraphs


def length_number_words(response: str, *, num_words: int, relation: str) -> bool:
    """The response has ``relation`` ``num_words`` words (:func:`count_words`)."""
    return _compare(count_words(response), relation, num_words)


def _first_word(paragraph: str) -> str:
    """The reference's first word: the first whitespace token without leading quotes,
    cut at the first punctuation mark, in lower case."""
    word = paragraph.split()[0].lstrip("'\"")
    return re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()


def length_nth_paragraph_first_word(response: str, *, num_paragraphs: int, nth_paragraph: int,
                                    first_word: str) -> bool:
    """Exactly ``num_paragraphs`` paragraphs separated by a blank line (``\\n\\n``), and
    paragraph ``nth_paragraph`` (from 1) starts with ``first_word`` (case ignored).

    A Chinese first word (Han characters) has no space after it: the paragraph must
    start with it, after any opening quotes.
    """
    paragraphs = [p.strip() for p in response.split("\n\n") if p.strip()]
    if len(paragraphs) != num_paragraphs or nth_paragraph > len(paragraphs):
        return False
    paragraph = paragraphs[nth_paragraph - 1]
    if _HAN_CHAR.search(first_word):
        return paragraph.lstrip("'\"“‘「『").startswith(first_word.strip())
    return _first_word(paragraph) == first_word.strip().lower()
