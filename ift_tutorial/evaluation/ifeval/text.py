"""Text units of the IFEval checkers: words, sentences and the language of a response.

Both English and Chinese: each Han character is one word, sentences also end at 。！？,
and no NLTK model is downloaded. Also the two comparisons that counting instructions use.
"""

from __future__ import annotations

import functools
import re
from typing import Any


#: The two comparisons IFEval's counting instructions use.
RELATIONS = ("less than", "at least")


# Han (Chinese) characters: the CJK Unified Ideographs, extension A, compatibility
# ideographs and the supplementary-plane extensions.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_HAN_CHAR = re.compile(f"[{_HAN}]")


# --- text units: words and sentences -------------------------------------------------


def count_words(text: str) -> int:
    """Count words: each Han character is one word, other words are runs of ``\\w``.

    For text without Chinese this is the reference's count (``\\w+`` tokens, so
    "don't" is two words and "3.5" is two).

    Example:
        >>> count_words("Tea is good. 我爱喝茶。")
        7
    """
    return len(re.findall(f"[{_HAN}]|(?:(?![{_HAN}])\\w)+", text))


# Words after which a full stop does not end a sentence (titles and "e.g."-like
# abbreviations); single capital letters (initials, "J. Smith") are handled apart.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs cf fig ph.d approx dept".split())

# A candidate sentence end: one or more terminators plus any closing quotes or
# brackets. Latin terminators need a space (or the end) after them, so that "3.14"
# and "example.com" stay whole; Chinese ones end a sentence wherever they are, and so
# do ! and ? when a Han character follows directly (Chinese text has no spaces).
_CLOSERS = "\"'”’)）]」』》"
_CLOSE = f"[{re.escape(_CLOSERS)}]*"
_SENTENCE_END = re.compile(
    f"[.!?。！？]*[。！？]{_CLOSE}"  # a run that holds a Chinese terminator
    f"|[!?]+{_CLOSE}(?=[{_HAN}])"  # ! or ? directly before Chinese text
    f"|[.!?]+{_CLOSE}(?=\\s|$)"  # Latin terminators before a space or the end
)


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """False for a full stop after an abbreviation or an initial ("Dr.", "J."), and for
    an ellipsis that a lower-case word continues ("Wait... what")."""
    marks = match.group(0).rstrip(_CLOSERS)
    if ".." in marks:
        return re.match(r"\s*[a-z]", text[match.end():]) is None
    if marks != ".":
        return True
    before = re.search(r"(\S+)$", text[: match.start()])
    if before is None:
        return True
    word = before.group(1).lstrip("\"'“‘([").lower()
    is_initial = len(word) == 1 and word.isalpha()
    is_dotted = re.fullmatch(r"(?:[a-z]\.)+[a-z]", word) is not None  # "U.S", "e.g"
    return not (word in _ABBREVIATIONS or is_initial or is_dotted)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with regular expressions (no NLTK download).

    A sentence ends at ``.``, ``!`` or ``?`` followed by a space or the end of the
    text, and anywhere at 。！？ (and at ``!``/``?`` directly before a Han
    character). A full stop after an abbreviation ("Dr.", "e.g.") or an initial does
    not end one, nor does an ellipsis followed by a lower-case word. Pieces without a
    letter, digit or Han character (a ``***`` divider, a lone bullet mark) are not
    sentences.

    Example:
        >>> split_sentences("Dr. Li met us. It rained! 我们回家了。然后睡觉")
        ['Dr. Li met us.', 'It rained!', '我们回家了。', '然后睡觉']
    """
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if _ends_sentence(text, match):
            sentences.append(text[start: match.end()])
            start = match.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if re.search(r"\w", s)]


def count_sentences(text: str) -> int:
    """The number of sentences :func:`split_sentences` finds."""
    return len(split_sentences(text))


# --- language detection ------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _language_detector_factory() -> Any:
    # A factory of our own, seeded, instead of langdetect's global one: langdetect
    # samples n-grams at random, and a seed makes the same text get the same answer.
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def _langdetect(text: str) -> str | None:
    from langdetect.lang_detect_exception import LangDetectException

    detector = _language_detector_factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:  # no letters at all
        return None


def _mostly_han(text: str) -> bool:
    """At least two thirds of the words are Han characters, and there is no Japanese kana."""
    if re.search("[\u3040-\u30ff]", text):
        return False
    words = [w for w in re.findall(f"[{_HAN}]|(?:(?![{_HAN}])\\w)+", text) if not w.isdigit()]
    han = sum(bool(_HAN_CHAR.match(w)) for w in words)
    return bool(words) and 3 * han >= 2 * len(words)


def detect_language(text: str) -> str | None:
    """The language of ``text`` as langdetect names it (``en``, ``fr``, ``zh-cn``,
    ``zh-tw``...), or None when the text holds nothing to detect (digits only).

    Two corrections to langdetect: the text is lower-cased first (langdetect reads
    French in capitals as English), and text that is mostly Han characters
    (:func:`_mostly_han`) is Chinese, "zh" when langdetect says otherwise (it reads
    "我用Python写代码，很开心。" as Vietnamese).

    Example:
        >>> detect_language("這是一個簡單的測試句子，我們用它來檢查語言。")
        'zh-tw'
    """
    detected = _langdetect(text.lower())
    if _mostly_han(text) and not (detected or "").startswith("zh"):
        return "zh"
    return detected


def _is_language(text: str, language: str) -> bool:
    detected = detect_language(text)
    if detected is None:
        return True  # as in the reference: nothing to judge counts as followed
    # "zh" accepts both scripts (zh-cn, zh-tw); a code with a region must match exactly.
    return detected == language or ("-" not in language and detected.split("-")[0] == language)


# --- helpers shared by several checkers ----------------------------------------------


def _compare(count: int, relation: str, threshold: int) -> bool:
    return count < threshold if relation == "less than" else count >= threshold
