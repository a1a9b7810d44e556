"""IFEval checkers of the form of a response, one function per id: the ``detectable_content:``
(placeholders, postscript), ``detectable_format:`` (bullets, highlights, sections, JSON, title,
fixed answers), ``combination:`` (two responses, repeating the request) and ``startend:``
instructions.
"""

from __future__ import annotations

import json
import re


#: The three answers ``detectable_format:constrained_response`` accepts (IFEval's).
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


# Each checker takes the response and the instruction's kwargs and returns True when the
# response follows the instruction.


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
