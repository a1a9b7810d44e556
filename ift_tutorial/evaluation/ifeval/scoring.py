"""Scoring responses to IFEval prompts: strict and loose, at prompt and instruction level.

A prompt (:class:`IFEvalPrompt`) holds the instruction ids and kwargs that its response
must follow. Also: reading prompt and response files (or a hub set), answering the
prompts with a model, and ``ift-tutorial score-ifeval``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import DataError
from ...instructions.sources import HubSource, read_hub_rows
from ...jsonl import read_jsonl_objects
from ...paths import DATA_DIR, display_path, resolve_path
from .registry import INSTRUCTIONS, InstructionError, validate_instructions

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

#: The project's bilingual prompt set (see ``data/ifeval/README.md``).
PROMPTS_PATH = DATA_DIR / "ifeval" / "prompts.jsonl"


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
        and ``loose_acc`` per instruction id), ``results`` (:func:`score_response` of
        each prompt, in order) and ``outcomes``: 1 or 0 per prompt (prompt level) or per
        instruction (instruction level), in order, under the metrics' keys
        (``ifeval_prompt_level_strict_acc`` ...); ``outcome_groups`` gives the prompt of
        each instruction, whose instructions are not independent items.

    Example:
        >>> from ift_tutorial.evaluation.ifeval.scoring import IFEvalPrompt, score_ifeval
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
        "by_lang": by_lang, "by_instruction": by_instruction, "results": results,
        **per_item_outcomes(results)}


def per_item_outcomes(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """``outcomes`` and ``outcome_groups`` of scored prompts (:func:`score_response` rows)."""
    outcomes, groups = {}, {}
    for level, suffix in (("strict", ""), ("loose", "_loose")):
        outcomes[f"ifeval_prompt_level_{level}_acc"] = [
            int(r[f"follow_all_instructions{suffix}"]) for r in results]
        key = f"ifeval_inst_level_{level}_acc"
        outcomes[key] = [int(x) for r in results for x in r[f"follow_instruction_list{suffix}"]]
        groups[key] = [i for i, r in enumerate(results)
                       for _ in r[f"follow_instruction_list{suffix}"]]
    return {"outcomes": outcomes, "outcome_groups": groups}


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


#: Fields a hub source's ``columns`` may map onto, for an IFEval set.
IFEVAL_FIELDS = ("key", "prompt", "instruction_id_list", "kwargs", "lang")


def read_ifeval_set(source: str | HubSource) -> tuple[list[Any], list[str]]:
    """IFEval prompts from a file or a hub source (its fixture offline), and notes.

    Raises:
        DataError: naming the file or hub source, the line or record and the field.
    """
    if not isinstance(source, HubSource):
        return read_ifeval_prompts(source), [f"read {display_path(resolve_path(source))}"]
    rows = read_hub_rows(source, IFEVAL_FIELDS)
    prompts = []
    for where, row in rows.records:
        try:
            prompts.append(IFEvalPrompt.from_dict(row))
        except InstructionError as err:
            raise rows.error(where, str(err).removeprefix(f"{err.field}: "), err.field) from None
    return prompts, rows.notes


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


# --- answering the prompts with a model ------------------------------------------------


def evaluate_ifeval(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    max_new_tokens: int = 256,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Answer each IFEval prompt as one user turn, greedily, and score the answers.

    Args:
        prompts: :class:`IFEvalPrompt` objects, e.g. from :func:`read_ifeval_prompts`.

    Returns:
        :func:`score_ifeval`'s report; each of its ``results`` also holds the ``response``.
    """
    from ...inference.generation import generate_responses  # torch: only when answering

    convs = [[{"role": "user", "content": p.prompt}] for p in prompts]
    responses = generate_responses(model, tokenizer, convs, max_new_tokens, batch_size)
    report = score_ifeval(prompts, responses)
    for result, response in zip(report["results"], responses):
        result["response"] = response
    return report
