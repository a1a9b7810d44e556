"""IFEval checkers of the words and characters of a response: the ``keywords:``,
``language:``, ``change_case:`` and ``punctuation:`` instructions, one function per id.
"""

from __future__ import annotations

import re
from collections import Counter

from .text import _HAN_CHAR, _compare, _is_language


#: Every character that ``punctuation:no_comma`` rejects: the ASCII comma, the
#: full-width Chinese comma, the enumeration comma and their small/half-width forms.
COMMAS = ",，、﹐﹑､"


def _whole_word(word: str) -> str:
    """A pattern that finds ``word`` as a whole word, case aside.

    ``\\b`` is put only next to a non-Han word character: between two Han characters
    there is no word boundary, so ``\\b猫\\b`` would never match "我的猫很好".
    """
    def edge(ch: str) -> str:
        return r"\b" if re.match(r"\w", ch) and not _HAN_CHAR.match(ch) else ""

    return edge(word[0]) + re.escape(word) + edge(word[-1])


# Each checker takes the response and the instruction's kwargs and returns True when the
# response follows the instruction.


def keywords_existence(response: str, *, keywords: list[str]) -> bool:
    """Every keyword occurs in the response (as a substring, case ignored)."""
    return all(re.search(re.escape(k), response, flags=re.IGNORECASE) for k in keywords)


def keywords_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    """The keyword occurs (as a substring, case ignored) ``relation`` ``frequency`` times."""
    count = len(re.findall(re.escape(keyword.strip()), response, flags=re.IGNORECASE))
    return _compare(count, relation, frequency)


def keywords_forbidden_words(response: str, *, forbidden_words: list[str]) -> bool:
    """None of the words occurs as a whole word (case ignored)."""
    return not any(re.search(_whole_word(w), response, flags=re.IGNORECASE)
                   for w in forbidden_words)


def keywords_letter_frequency(response: str, *, letter: str, let_frequency: int,
                              let_relation: str) -> bool:
    """The character ``letter`` (case ignored) occurs ``let_relation`` ``let_frequency`` times."""
    count = Counter(response.lower())[letter.lower()]
    return _compare(count, let_relation, let_frequency)


def language_response_language(response: str, *, language: str) -> bool:
    """The whole response is detected as ``language`` (ISO 639-1; "zh" = either script)."""
    return _is_language(response, language)


def change_case_capital_word_frequency(response: str, *, capital_frequency: int,
                                       capital_relation: str) -> bool:
    """Words in all capitals ("NOTE") occur ``capital_relation`` ``capital_frequency`` times.

    Words are runs of ``\\w`` joined by hyphens or apostrophes ("WELL-KNOWN" is one).
    """
    words = re.findall(r"\w+(?:[-']\w+)*", response)
    return _compare(sum(w.isupper() for w in words), capital_relation, capital_frequency)


def change_case_english_capital(response: str) -> bool:
    """The response is in English and has no lower-case letter."""
    return response.isupper() and _is_language(response, "en")


def change_case_english_lowercase(response: str) -> bool:
    """The response is in English and has no capital letter."""
    return response.islower() and _is_language(response, "en")


def punctuation_no_comma(response: str) -> bool:
    """No comma of any kind (:data:`COMMAS`: ',', '，', '、' and their variants)."""
    return not any(c in COMMAS for c in response)
