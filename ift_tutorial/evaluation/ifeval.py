"""Verifiable instruction following (IFEval), in English and Chinese, offline.

IFEval (Zhou et al. 2023, "Instruction-Following Evaluation for Large Language
Models") scores what instruction tuning is for: does the model do what the prompt
*says*? Each prompt carries instructions that a program can check without a judge
model ("answer in less than 50 words", "wrap the answer in double quotes")::

    {"key": 1001, "prompt": "Write a haiku about tea. Do not use any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}

Four numbers summarise a run:

* **prompt level**: the share of prompts whose instructions are *all* followed;
* **instruction level**: the share of single instructions that are followed;
* **strict**: the response is checked as it is;
* **loose**: an instruction counts as followed if *any* of eight variants of the
  response follows it: the response, without its first line, without its last line,
  without both, and each of these four with every ``*`` removed. Loose forgives a
  chatty "Sure, here it is:" line and markdown bold that breaks a pattern.

The checkers below follow the definitions of the reference implementation
(google-research/instruction_following_eval) instruction by instruction; the
docstring of each says what it checks. What differs, and why:

* **No NLTK.** The reference counts sentences with NLTK's punkt model, which must be
  downloaded; :func:`split_sentences` is a regular-expression splitter.
* **Chinese.** Words are counted so that each Han character is one word (Chinese
  has no spaces; the reference's ``\\w+`` counts a whole run of Chinese characters
  as one word); sentences also end at 。！？ (and at ! or ? followed by a Han character);
  ``punctuation:no_comma`` also rejects the Chinese commas '，' and '、' (the
  enumeration comma: a response that swaps every '，' for '、' has not avoided
  commas); ``language:response_language`` with ``"zh"`` accepts simplified and
  traditional Chinese (the detector says ``zh-cn`` or ``zh-tw``); a forbidden or
  first word written in Han characters is found without word boundaries.
* **Keywords are text, not regular expressions** (``re.escape``): a keyword such as
  ``C++`` is searched for literally instead of crashing the scorer.
* **A letter is the character given.** The reference replaces a ``letter`` that is
  not a-z (``"#"``, ``"!"`` in IFEval's own data) by a *random* letter; here any
  single character is counted as given.
* **Empty paragraphs are skipped** when ``nth_paragraph_first_word`` picks the n-th
  paragraph (the reference indexes the list with the empty ones still in).
* **kwargs are checked.** A missing or unknown argument is an error; the reference
  draws a random value for a missing one.

Some instructions only make sense when the response is in English; they are listed
in :data:`ENGLISH_ONLY` with the reason, and the project's Chinese prompts do not use
them. Language detection uses ``langdetect`` with a fixed seed (its algorithm is
randomised) on lower-cased text, and takes text written mostly in Han characters as
Chinese (:func:`detect_language`); as in the reference, text in which it finds no
letters at all counts as following a language instruction.

Example:
    >>> from ift_tutorial.ifeval import IFEvalPrompt, score_ifeval
    >>> p = IFEvalPrompt(key=1, prompt="Say hi without commas.",
    ...                  instruction_id_list=["punctuation:no_comma"], kwargs=[{}])
    >>> score_ifeval([p], ["Hi there"])["prompt_level_strict_acc"]
    1.0
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DataError, UserFacingError
from .jsonl import read_jsonl_objects
from .paths import DATA_DIR, display_path, resolve_path

#: The project's bilingual prompt set (see ``data/ifeval/README.md``).
PROMPTS_PATH = DATA_DIR / "ifeval" / "prompts.jsonl"

#: The two comparisons IFEval's counting instructions use.
RELATIONS = ("less than", "at least")

#: Every character that ``punctuation:no_comma`` rejects: the ASCII comma, the
#: full-width Chinese comma, the enumeration comma and their small/half-width forms.
COMMAS = ",，、﹐﹑､"

#: The three answers ``detectable_format:constrained_response`` accepts (IFEval's).
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

# Han (Chinese) characters: the CJK Unified Ideographs, extension A, compatibility
# ideographs and the supplementary-plane extensions.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_HAN_CHAR = re.compile(f"[{_HAN}]")


class InstructionError(UserFacingError):
    """An instruction id or its kwargs are invalid. ``field`` says which one."""

    def __init__(self, message: str, field: str):
        self.field = field
        super().__init__(f"{field}: {message}")


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


def _whole_word(word: str) -> str:
    """A pattern that finds ``word`` as a whole word, case aside.

    ``\\b`` is put only next to a non-Han word character: between two Han characters
    there is no word boundary, so ``\\b猫\\b`` would never match "我的猫很好".
    """
    def edge(ch: str) -> str:
        return r"\b" if re.match(r"\w", ch) and not _HAN_CHAR.match(ch) else ""

    return edge(word[0]) + re.escape(word) + edge(word[-1])


# --- the checkers: one function per instruction id ------------------------------------
# Each takes the response and the instruction's kwargs and returns True when the
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


def content_number_placeholders(response: str, *, num_placeholders: int) -> bool:
    """At least ``num_placeholders`` placeholders in square brackets, such as ``[name]``."""
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


def content_postscript(response: str, *, postscript_marker: str) -> bool:
    """The response holds a postscript starting with the marker ("P.S.", "P.P.S", ...).

    As in the reference, "P.S." and "P.P.S" also match with spaces after the dots
    ("P. S."), case is ignored, and the marker may stand anywhere in a line.
    """
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return re.search(pattern, response.lower(), flags=re.MULTILINE) is not None


def format_number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    """Exactly ``num_bullets`` markdown bullet lines (starting with ``* `` or ``-``)."""
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


def format_constrained_response(response: str) -> bool:
    """The response contains one of :data:`CONSTRAINED_RESPONSES`."""
    return any(option in response.strip() for option in CONSTRAINED_RESPONSES)


def format_number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    """At least ``num_highlights`` non-empty ``*highlighted*`` or ``**bold**`` spans,
    each within one line."""
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h[2:-2].strip()]
    return len(single) + len(double) >= num_highlights


def format_multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    """At least ``num_sections`` sections, each starting with the splitter and a number
    ("SECTION 1", "Section 2"; Chinese prompts use "部分 1")."""
    pattern = r"\s?" + re.escape(section_spliter.strip()) + r"\s?\d+\s?"
    return len(re.split(pattern, response)) - 1 >= num_sections


def format_json_format(response: str) -> bool:
    """The whole response parses as JSON, optionally inside a ```` ``` ```` block."""
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def format_title(response: str) -> bool:
    """A non-empty title in double angular brackets on one line, such as ``<<Tea>>``."""
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


def combination_two_responses(response: str) -> bool:
    """Two different responses separated by six asterisks ``******``."""
    pieces = response.split("******")
    for i, piece in enumerate(pieces):
        if not piece.strip() and 0 < i < len(pieces) - 1:
            return False
    answers = [p.strip() for p in pieces if p.strip()]
    return len(answers) == 2 and answers[0] != answers[1]


def combination_repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    """The response starts with the request, word for word (case ignored)."""
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def startend_end_checker(response: str, *, end_phrase: str) -> bool:
    """The response ends with the phrase (case ignored; an outer ``"`` is allowed)."""
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def startend_quotation(response: str) -> bool:
    """The whole response is wrapped in ASCII double quotes ``"..."``."""
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


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


# --- the registry: instruction id -> checker and the kwargs it takes -----------------

# The kinds of kwarg values, and how each is validated (see _check_value).
INT, TEXT, WORDS, RELATION, CHAR = "int", "text", "words", "relation", "char"


@dataclass(frozen=True)
class Instruction:
    """One verifiable instruction: its checker and the kwargs that it takes."""

    id: str
    check: Callable[..., bool]
    args: Mapping[str, str] = field(default_factory=dict)  # name -> kind (INT, TEXT...)


INSTRUCTIONS: dict[str, Instruction] = {i.id: i for i in [
    Instruction("keywords:existence", keywords_existence, {"keywords": WORDS}),
    Instruction("keywords:frequency", keywords_frequency,
                {"keyword": TEXT, "frequency": INT, "relation": RELATION}),
    Instruction("keywords:forbidden_words", keywords_forbidden_words,
                {"forbidden_words": WORDS}),
    Instruction("keywords:letter_frequency", keywords_letter_frequency,
                {"letter": CHAR, "let_frequency": INT, "let_relation": RELATION}),
    Instruction("language:response_language", language_response_language, {"language": TEXT}),
    Instruction("length_constraints:number_sentences", length_number_sentences,
                {"num_sentences": INT, "relation": RELATION}),
    Instruction("length_constraints:number_paragraphs", length_number_paragraphs,
                {"num_paragraphs": INT}),
    Instruction("length_constraints:number_words", length_number_words,
                {"num_words": INT, "relation": RELATION}),
    Instruction("length_constraints:nth_paragraph_first_word", length_nth_paragraph_first_word,
                {"num_paragraphs": INT, "nth_paragraph": INT, "first_word": TEXT}),
    Instruction("detectable_content:number_placeholders", content_number_placeholders,
                {"num_placeholders": INT}),
    Instruction("detectable_content:postscript", content_postscript,
                {"postscript_marker": TEXT}),
    Instruction("detectable_format:number_bullet_lists", format_number_bullet_lists,
                {"num_bullets": INT}),
    Instruction("detectable_format:constrained_response", format_constrained_response),
    Instruction("detectable_format:number_highlighted_sections",
                format_number_highlighted_sections, {"num_highlights": INT}),
    Instruction("detectable_format:multiple_sections", format_multiple_sections,
                {"section_spliter": TEXT, "num_sections": INT}),
    Instruction("detectable_format:json_format", format_json_format),
    Instruction("detectable_format:title", format_title),
    Instruction("combination:two_responses", combination_two_responses),
    Instruction("combination:repeat_prompt", combination_repeat_prompt,
                {"prompt_to_repeat": TEXT}),
    Instruction("startend:end_checker", startend_end_checker, {"end_phrase": TEXT}),
    Instruction("startend:quotation", startend_quotation),
    Instruction("change_case:capital_word_frequency", change_case_capital_word_frequency,
                {"capital_frequency": INT, "capital_relation": RELATION}),
    Instruction("change_case:english_capital", change_case_english_capital),
    Instruction("change_case:english_lowercase", change_case_english_lowercase),
    Instruction("punctuation:no_comma", punctuation_no_comma),
]}

#: Instruction ids whose check only makes sense for a response in English, and why.
#: A Chinese prompt may still use one to ask for an English answer; the project's
#: Chinese prompts ask for Chinese answers and so never do.
ENGLISH_ONLY: dict[str, str] = {
    "change_case:capital_word_frequency": "Chinese has no capital letters",
    "change_case:english_capital": "checks that the response is English in capitals",
    "change_case:english_lowercase": "checks that the response is English in lower case",
    "keywords:letter_frequency": "counts a letter of the Latin alphabet",
    "detectable_format:constrained_response": "the accepted answers are fixed English "
                                              "sentences ('My answer is yes.')",
}


def _check_value(value: Any, kind: str, where: str) -> Any:
    """Validate one kwarg value; return it normalised (3.0 -> 3, words as a list)."""
    if kind == INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # tables with missing values store integers as floats
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InstructionError(f"expected a non-negative integer, got {value!r}", where)
    elif kind == RELATION:
        if value not in RELATIONS:
            raise InstructionError(f"expected one of {list(RELATIONS)}, got {value!r}", where)
    elif kind == CHAR:
        if not isinstance(value, str) or len(value) != 1:
            raise InstructionError(f"expected a single character, got {value!r}", where)
    elif kind == TEXT:
        if not isinstance(value, str) or not value.strip():
            raise InstructionError(f"expected a non-empty string, got {value!r}", where)
    elif kind == WORDS:
        if isinstance(value, tuple):
            value = list(value)
        if (not isinstance(value, list) or not value
                or not all(isinstance(w, str) and w.strip() for w in value)):
            raise InstructionError(f"expected a non-empty list of non-empty strings, "
                                   f"got {value!r}", where)
    return value


def validate_instructions(instruction_id_list: Any, kwargs: Any) -> list[dict[str, Any]]:
    """Check instruction ids and their kwargs; return the kwargs cleaned.

    A kwarg whose value is None is dropped first: the hub copy of IFEval stores every
    argument name on every line, None where unused.

    Raises:
        InstructionError: whose ``field`` names the bad entry, e.g.
            ``kwargs[1].num_words`` or ``instruction_id_list[0]``.
    """
    if not isinstance(instruction_id_list, list) or not instruction_id_list:
        raise InstructionError("expected a non-empty list of instruction ids",
                               "instruction_id_list")
    if not isinstance(kwargs, list) or len(kwargs) != len(instruction_id_list):
        raise InstructionError(f"expected a list of {len(instruction_id_list)} objects, one per "
                               "instruction", "kwargs")
    cleaned = []
    for i, (iid, kw) in enumerate(zip(instruction_id_list, kwargs)):
        if iid not in INSTRUCTIONS:
            raise InstructionError(f"unknown instruction id {iid!r}; known ids: "
                                   f"{', '.join(INSTRUCTIONS)}", f"instruction_id_list[{i}]")
        if not isinstance(kw, dict):
            raise InstructionError("expected an object of arguments", f"kwargs[{i}]")
        args = INSTRUCTIONS[iid].args
        kw = {k: v for k, v in kw.items() if v is not None}
        unknown = sorted(set(kw) - set(args))
        if unknown:
            raise InstructionError(f"{iid} takes {sorted(args) or 'no arguments'}, not "
                                   f"{unknown}", f"kwargs[{i}].{unknown[0]}")
        missing = [k for k in args if k not in kw]
        if missing:
            raise InstructionError(f"{iid} needs {missing}", f"kwargs[{i}].{missing[0]}")
        kw = {k: _check_value(kw[k], kind, f"kwargs[{i}].{k}") for k, kind in args.items()}
        if iid == "length_constraints:nth_paragraph_first_word" and not (
                1 <= kw["nth_paragraph"] <= kw["num_paragraphs"]):
            raise InstructionError(f"expected 1 <= nth_paragraph <= num_paragraphs "
                                   f"({kw['num_paragraphs']})", f"kwargs[{i}].nth_paragraph")
        cleaned.append(kw)
    return cleaned


# --- prompts, responses and scores -----------------------------------------------------


@dataclass(frozen=True)
class IFEvalPrompt:
    """One IFEval line: a prompt and the instructions that its response must follow.

    ``kwargs[i]`` holds the arguments of ``instruction_id_list[i]``. ``lang`` (the
    language of the prompt, "en" or "zh" in the project's set) is optional: the
    original IFEval lines have none.
    """

    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    lang: str | None = None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> IFEvalPrompt:
        """Validate a JSON object (a line of a prompt file) and build the prompt.

        Raises:
            InstructionError: naming the bad field.
        """
        key = row.get("key")
        if isinstance(key, bool) or not isinstance(key, (int, str)) or key == "":
            raise InstructionError(f"expected an integer or a string, got {key!r}", "key")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise InstructionError("expected a non-empty string", "prompt")
        kwargs = validate_instructions(row.get("instruction_id_list"), row.get("kwargs"))
        lang = row.get("lang")
        if lang is not None and (not isinstance(lang, str) or not lang):
            raise InstructionError(f"expected a language code such as 'en', got {lang!r}",
                                   "lang")
        return cls(key, row["prompt"], list(row["instruction_id_list"]), kwargs, lang)

    def to_dict(self) -> dict[str, Any]:
        row = {"key": self.key, "prompt": self.prompt,
               "instruction_id_list": self.instruction_id_list, "kwargs": self.kwargs}
        return row | ({"lang": self.lang} if self.lang is not None else {})


def loose_variants(response: str) -> list[str]:
    """The eight versions of a response that loose scoring tries, the response first.

    Example:
        >>> loose_variants("Sure!\\n*Tea*\\nBye")[:5]
        ['Sure!\\n*Tea*\\nBye', 'Sure!\\nTea\\nBye', '*Tea*\\nBye', 'Sure!\\n*Tea*', '*Tea*']
    """
    lines = response.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(),
           "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


def check_instruction(instruction_id: str, response: str, **kwargs: Any) -> bool:
    """Whether ``response`` follows one instruction (strict: the response as it is).

    An empty (or all-whitespace) response follows nothing.

    Example:
        >>> check_instruction("length_constraints:number_words", "三个字",
        ...                   num_words=5, relation="less than")
        True
    """
    kwargs = validate_instructions([instruction_id], [kwargs])[0]
    return bool(response.strip()) and INSTRUCTIONS[instruction_id].check(response, **kwargs)


def _follows(instruction_id: str, kwargs: dict[str, Any], responses: Sequence[str]) -> bool:
    check = INSTRUCTIONS[instruction_id].check
    return any(r.strip() and check(r, **kwargs) for r in responses)


def score_response(prompt: IFEvalPrompt, response: str) -> dict[str, Any]:
    """Score one response against its prompt's instructions, strict and loose.

    Returns:
        ``key``, ``lang``, ``instruction_id_list``, ``follow_all_instructions`` and
        ``follow_instruction_list`` (strict), and the same two with ``_loose``.
    """
    variants = loose_variants(response)
    strict = [_follows(i, kw, [response]) for i, kw in zip(prompt.instruction_id_list,
                                                          prompt.kwargs)]
    loose = [s or _follows(i, kw, variants[1:]) for s, i, kw in
             zip(strict, prompt.instruction_id_list, prompt.kwargs)]
    return {"key": prompt.key, "lang": prompt.lang,
            "instruction_id_list": prompt.instruction_id_list,
            "follow_all_instructions": all(strict), "follow_instruction_list": strict,
            "follow_all_instructions_loose": all(loose), "follow_instruction_list_loose": loose}


def _accuracies(results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """IFEval's four numbers over per-prompt results (NaN-free: 0 prompts -> 0.0)."""
    def share(hits: int, total: int) -> float:
        return hits / total if total else 0.0

    n_prompts = len(results)
    n_inst = sum(len(r["follow_instruction_list"]) for r in results)
    return {
        "prompt_level_strict_acc": share(sum(r["follow_all_instructions"] for r in results),
                                         n_prompts),
        "prompt_level_loose_acc": share(sum(r["follow_all_instructions_loose"] for r in results),
                                        n_prompts),
        "inst_level_strict_acc": share(sum(sum(r["follow_instruction_list"]) for r in results),
                                       n_inst),
        "inst_level_loose_acc": share(sum(sum(r["follow_instruction_list_loose"])
                                          for r in results), n_inst),
    }


def score_ifeval(prompts: Sequence[IFEvalPrompt], responses: Sequence[str]) -> dict[str, Any]:
    """Score responses to IFEval prompts: IFEval's four accuracies and per-prompt results.

    Args:
        prompts: the prompts, e.g. from :func:`read_ifeval_prompts`.
        responses: one response per prompt, in the same order.

    Returns:
        ``prompt_level_strict_acc``, ``prompt_level_loose_acc``, ``inst_level_strict_acc``,
        ``inst_level_loose_acc`` (fractions in [0, 1]), ``num_prompts``,
        ``num_instructions``, ``by_lang`` (the four accuracies and ``num_prompts`` per
        ``lang``, for prompts that have one), ``by_instruction`` (``n``, ``strict_acc``
        and ``loose_acc`` per instruction id) and ``results`` (:func:`score_response` of
        each prompt, in order).

    Example:
        >>> from ift_tutorial.ifeval import IFEvalPrompt, score_ifeval
        >>> p = IFEvalPrompt(1, "Two words, in quotes.", ["startend:quotation",
        ...     "length_constraints:number_words"], [{}, {"num_words": 5, "relation": "less than"}])
        >>> r = score_ifeval([p], ['Sure:\\n"Hello there"'])
        >>> r["inst_level_strict_acc"], r["inst_level_loose_acc"]
        (0.5, 1.0)
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    results = [score_response(p, r) for p, r in zip(prompts, responses)]
    by_lang = {lang: _accuracies(rs) | {"num_prompts": len(rs)}
               for lang in sorted({r["lang"] for r in results if r["lang"] is not None})
               for rs in [[r for r in results if r["lang"] == lang]]}
    per_id: dict[str, list[tuple[bool, bool]]] = {}
    for r in results:
        for iid, s, loose in zip(r["instruction_id_list"], r["follow_instruction_list"],
                                 r["follow_instruction_list_loose"]):
            per_id.setdefault(iid, []).append((s, loose))
    by_instruction = {iid: {"n": len(v), "strict_acc": sum(s for s, _ in v) / len(v),
                            "loose_acc": sum(lo for _, lo in v) / len(v)}
                      for iid, v in sorted(per_id.items())}
    return _accuracies(results) | {
        "num_prompts": len(results),
        "num_instructions": sum(len(r["follow_instruction_list"]) for r in results),
        "by_lang": by_lang, "by_instruction": by_instruction, "results": results}


# --- files ---------------------------------------------------------------------------


def _read(path: str | os.PathLike[str], with_responses: bool
          ) -> tuple[list[IFEvalPrompt], list[str]]:
    path = resolve_path(path)
    prompts, responses, seen = [], [], {}
    for lineno, row in read_jsonl_objects(path):
        try:
            prompt = IFEvalPrompt.from_dict(row)
        except InstructionError as err:
            raise DataError(display_path(path), str(err).removeprefix(f"{err.field}: "),
                            line=lineno, field=err.field) from None
        if prompt.key in seen:
            raise DataError(display_path(path), f"duplicate key {prompt.key!r} (first on line "
                            f"{seen[prompt.key]})", line=lineno, field="key")
        seen[prompt.key] = lineno
        if with_responses:
            if "response" not in row:
                raise DataError(display_path(path), "missing: add the model's answer to each "
                                "line", line=lineno, field="response")
            if not isinstance(row["response"], str):
                raise DataError(display_path(path), f"expected a string, got "
                                f"{type(row['response']).__name__}", line=lineno,
                                field="response")
            responses.append(row["response"])
        prompts.append(prompt)
    return prompts, responses


def read_ifeval_prompts(path: str | os.PathLike[str] = PROMPTS_PATH) -> list[IFEvalPrompt]:
    """Read and validate an IFEval-format JSONL file (default: the project's prompt set).

    Raises:
        DataError: naming the file, the line and the field of the first problem
            (bad JSON, unknown instruction id, bad or missing kwargs, duplicate key).
    """
    return _read(path, with_responses=False)[0]


def read_ifeval_responses(path: str | os.PathLike[str]
                          ) -> tuple[list[IFEvalPrompt], list[str]]:
    """Read IFEval lines that also carry the model's ``response``; validate both."""
    return _read(path, with_responses=True)


def score_ifeval_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`score_ifeval` of a JSONL file whose lines carry a ``response``."""
    return score_ifeval(*read_ifeval_responses(path))


def format_report(report: Mapping[str, Any]) -> str:
    """A short text table of a :func:`score_ifeval` report."""
    rows = [("all", report)] + list(report["by_lang"].items())
    lines = [f"{'':6} {'prompts':>7} {'prompt strict':>13} {'prompt loose':>12} "
             f"{'inst strict':>11} {'inst loose':>10}"]
    for name, r in rows:
        lines.append(f"{name:6} {r['num_prompts']:>7} {r['prompt_level_strict_acc']:>13.1%} "
                     f"{r['prompt_level_loose_acc']:>12.1%} {r['inst_level_strict_acc']:>11.1%} "
                     f"{r['inst_level_loose_acc']:>10.1%}")
    return "\n".join(lines)


def score_ifeval_cli(args: Any) -> int:
    """``ift-tutorial score-ifeval --input FILE [--json]``: score a JSONL of responses.

    A bad file raises DataError (a UserFacingError): the CLI prints it as one line
    naming the file, line and field, and exits with status 2.
    """
    report = score_ifeval_file(args.input)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    sys.stdout.flush()
    return 0
