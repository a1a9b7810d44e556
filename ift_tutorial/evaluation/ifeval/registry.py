"""The IFEval instructions: each id with its checker and the kwargs it takes
(:data:`INSTRUCTIONS`), the ids that need an English response (:data:`ENGLISH_ONLY`),
and the validation of a prompt's ids and kwargs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import UserFacingError
from .layout import (
    combination_repeat_prompt,
    combination_two_responses,
    content_number_placeholders,
    content_postscript,
    format_constrained_response,
    format_json_format,
    format_multiple_sections,
    format_number_bullet_lists,
    format_number_highlighted_sections,
    format_title,
    startend_end_checker,
    startend_quotation,
)
from .length import (
    length_nth_paragraph_first_word,
    length_number_paragraphs,
    length_number_sentences,
    length_number_words,
)
from .text import RELATIONS
from .wording import (
    change_case_capital_word_frequency,
    change_case_english_capital,
    change_case_english_lowercase,
    keywords_existence,
    keywords_forbidden_words,
    keywords_frequency,
    keywords_letter_frequency,
    language_response_language,
    punctuation_no_comma,
)


class InstructionError(UserFacingError):
    """An instruction id or its kwargs are invalid. ``field`` says which one."""

    def __init__(self, message: str, field: str):
        self.field = field
        super().__init__(f"{field}: {message}")


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
