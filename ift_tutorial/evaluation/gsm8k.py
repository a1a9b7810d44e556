"""Grade-school maths word problems (GSM8K format): extracting the answer and scoring it.

GSM8K (Cobbe et al. 2021, MIT licence) holds word problems whose ``answer`` is a
worked solution that ends with the number after ``####``::

    {"question": "A shelf holds 4 rows of 6 books. How many books are there?",
     "answer": "4 rows of 6 books make 4*6=<<4*6=24>>24 books.\\n#### 24"}

(``<<4*6=24>>`` is a calculator annotation of the original data set.) A model's
answer is scored two ways, both reported:

* **flexible** (the headline): the *last* number in the answer, thousands commas
  removed ("... so she pays $1,250." -> 1250). It forgives any wording, and is wrong
  only when a number follows the result ("1250 dollars for 2 weeks" -> 2);
* **strict**: the number after the first ``####``, the format the prompt asks for
  (:func:`gsm8k_prompt`); it measures whether the model followed that format.

Numbers are compared as decimals, so "18", "18.0" and "18.00" agree. Full-width
digits ("１８", common in Chinese text) count as digits. :func:`read_gsm8k_set` reads a
config's set (a file or a hub source) and :func:`evaluate_gsm8k` answers it with a model.

Example:
    >>> extract_flexible("She has 3 + 4 = 7 apples, so 7 × 2 = 14.")
    '14'
    >>> extract_strict("She has 14 apples.\\n#### 14"), extract_strict("She has 14 apples.")
    ('14', None)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..instructions.sources import HubSource, read_hub_rows
from ..jsonl import read_jsonl_objects
from ..paths import DATA_DIR, display_path, resolve_path

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

#: The project's small bilingual fixture in GSM8K's format (see data/gsm8k/README.md).
FIXTURE_PATH = DATA_DIR / "gsm8k" / "fixture.jsonl"

# A number: an optional minus sign (not the dash of a range such as "3-5"), digits
# with optional thousands commas (groups of three only, so that a list "1,2,3" stays
# three numbers), an optional decimal part.
_NUMBER = r"(?:(?<![\w.])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

PROMPT_SUFFIX = {
    "en": "Solve the problem step by step. Then write the final answer, a number alone, "
          "on the last line after '#### ', for example: #### 42",
    "zh": "请一步一步地解题，最后一行写出最终答案：在“#### ”后面只写一个数字，例如：#### 42",
}


def _clean(number: str) -> str:
    """'1,250.50' -> '1250.5'; '-3' -> '-3': commas dropped, trailing zeros dropped."""
    value = Decimal(number.replace(",", ""))
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def extract_flexible(text: str) -> str | None:
    """The last number in ``text``, commas removed, or None when there is none."""
    numbers = re.findall(_NUMBER, text.translate(_FULL_WIDTH_DIGITS))
    return _clean(numbers[-1]) if numbers else None


def extract_strict(text: str) -> str | None:
    """The number right after the first ``####`` in ``text``, or None."""
    match = re.search(r"####\s*(" + _NUMBER + ")", text.translate(_FULL_WIDTH_DIGITS))
    return _clean(match.group(1)) if match else None


def same_number(a: str | None, b: str | None) -> bool:
    """Whether two extracted numbers are equal as decimals (None equals nothing)."""
    if a is None or b is None:
        return False
    try:
        return Decimal(a.replace(",", "")) == Decimal(b.replace(",", ""))
    except InvalidOperation:
        return False


def is_correct(response: str, target: str) -> bool:
    """GSM8K's headline verdict on one answer: its last number (flexible) equals ``target``.

    Example:
        >>> is_correct("4 + 3 = 7, so 14 apples.", "14"), is_correct("#### 14\\nor 15", "14")
        (True, False)
    """
    return same_number(extract_flexible(response), target)


def reward(response: str, target: str, stopped: bool = True) -> float:
    """The reward of an answer in reinforcement learning: 1.0 when :func:`is_correct`, else 0.0.

    ``stopped`` (whether the model ended its turn) is accepted for the same signature as
    :func:`ift_tutorial.evaluation.exact_match.reward` and not used: GSM8K is scored on the
    last number of the answer whatever ends it, and the reward is the score, nothing added.

    Example:
        >>> reward("so she pays $1,250.", "1250"), reward("about 12", "1250")
        (1.0, 0.0)
    """
    return float(is_correct(response, target))


@dataclass(frozen=True)
class GSM8KProblem:
    """One problem: the question, the worked solution and its final number."""

    question: str
    answer: str
    target: str  # the number after '####' in ``answer``, cleaned ('1250')
    lang: str | None = None


def problem_from_dict(row: Mapping[str, Any]) -> GSM8KProblem:
    """Validate a GSM8K row (``question``, ``answer`` ending in ``#### N``, optional ``lang``).

    Raises:
        ValueError: whose first word is the bad field.
    """
    for name in ("question", "answer"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise ValueError(f"{name}: expected a non-empty string")
    target = extract_strict(row["answer"])
    if target is None:
        raise ValueError("answer: no final '#### N' line with a number")
    lang = row.get("lang")
    if lang is not None and (not isinstance(lang, str) or not lang):
        raise ValueError(f"lang: expected a language code such as 'en', got {lang!r}")
    return GSM8KProblem(row["question"], row["answer"], target, lang)


def read_gsm8k(path: str | os.PathLike[str] = FIXTURE_PATH) -> list[GSM8KProblem]:
    """Read a GSM8K-format JSONL file (default: the project's fixture).

    Raises:
        DataError: naming the file, the line and the field of the first problem.
    """
    file = resolve_path(path)
    problems = []
    for lineno, row in read_jsonl_objects(file, empty="the file holds no problems"):
        try:
            problems.append(problem_from_dict(row))
        except ValueError as err:
            field, message = str(err).split(": ", 1)
            raise DataError(str(file), message, line=lineno, field=field) from None
    return problems


def gsm8k_prompt(question: str, lang: str | None = "en") -> str:
    """The zero-shot user message: the question, then how to give the answer.

    Example:
        >>> print(gsm8k_prompt("What is 2 + 3?")[:41])
        What is 2 + 3?
        <BLANKLINE>
        Solve the problem step by
    """
    return question.strip() + "\n\n" + PROMPT_SUFFIX["zh" if lang == "zh" else "en"]


def score_gsm8k(problems: Sequence[GSM8KProblem], responses: Sequence[str]) -> dict[str, Any]:
    """Score model answers: flexible accuracy (the headline) and strict accuracy.

    Returns:
        ``flexible_acc`` and ``strict_acc`` (fractions in [0, 1]), ``num_problems``,
        ``by_lang`` (both accuracies and ``num_problems`` per ``lang``) and ``results``:
        per problem, in order, ``index``, ``lang``, ``target``, the extracted
        ``flexible`` and ``strict`` numbers (None when absent) and whether each is
        ``flexible_correct`` / ``strict_correct``; ``outcomes``: 1 or 0 per problem, in
        order, under the metrics' keys ``gsm8k_flexible_acc`` and ``gsm8k_strict_acc``.

    Example:
        >>> p = [GSM8KProblem("2+2?", "#### 4", "4"), GSM8KProblem("3+3?", "#### 6", "6")]
        >>> r = score_gsm8k(p, ["It is 4.", "3+3 = 6\\n#### 6"])
        >>> r["flexible_acc"], r["strict_acc"]
        (1.0, 0.5)
    """
    if len(problems) != len(responses):
        raise ValueError(f"{len(problems)} problems but {len(responses)} responses")
    results = []
    for i, (p, response) in enumerate(zip(problems, responses)):
        flexible, strict = extract_flexible(response), extract_strict(response)
        results.append({"index": i, "lang": p.lang, "target": p.target,
                        "flexible": flexible, "strict": strict,
                        "flexible_correct": is_correct(response, p.target),
                        "strict_correct": same_number(strict, p.target)})

    def accuracies(rs: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(rs)
        return {"flexible_acc": sum(r["flexible_correct"] for r in rs) / n if n else 0.0,
                "strict_acc": sum(r["strict_correct"] for r in rs) / n if n else 0.0,
                "num_problems": n}

    langs = sorted({r["lang"] for r in results if r["lang"] is not None})
    return accuracies(results) | {
        "by_lang": {lang: accuracies([r for r in results if r["lang"] == lang])
                    for lang in langs},
        "results": results,
        "outcomes": {f"gsm8k_{level}_acc": [int(r[f"{level}_correct"]) for r in results]
                     for level in ("flexible", "strict")}}


# --- a set of a config, answered by a model ---------------------------------------------


#: Fields a hub source's ``columns`` may map onto, for a GSM8K set.
GSM8K_FIELDS = ("question", "answer", "lang")


def read_gsm8k_set(source: str | HubSource) -> tuple[list[Any], list[str]]:
    """GSM8K problems from a file or a hub source (its fixture offline), and notes."""
    if not isinstance(source, HubSource):
        return read_gsm8k(source), [f"read {display_path(resolve_path(source))}"]
    rows = read_hub_rows(source, GSM8K_FIELDS)
    problems = []
    for where, row in rows.records:
        try:
            problems.append(problem_from_dict(row))
        except ValueError as err:
            field, message = str(err).split(": ", 1)
            raise rows.error(where, message, field) from None
    return problems, rows.notes


def evaluate_gsm8k(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Any],
    max_new_tokens: int = 256,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Answer each GSM8K problem zero-shot (:func:`gsm8k_prompt`),
    greedily, and score flexible and strict.

    Args:
        problems: :class:`GSM8KProblem` objects, e.g. from :func:`read_gsm8k`.

    Returns:
        :func:`score_gsm8k`'s report; each of its ``results`` also holds the ``question``
        and the ``response``.
    """
    from ..inference.generation import generate_responses  # torch: only when answering

    convs = [[{"role": "user", "content": gsm8k_prompt(p.question, p.lang)}] for p in problems]
    responses = generate_responses(model, tokenizer, convs, max_new_tokens, batch_size)
    report = score_gsm8k(problems, responses)
    for result, problem, response in zip(report["results"], problems, responses):
        result.update(question=problem.question, response=response)
    return report
