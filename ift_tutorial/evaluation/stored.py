"""A run's evaluations, read back from its folder instead of decoded again.

``train`` evaluates the base model before tuning and the tuned one after, on the config's
held-out sets, and keeps what it measured: the summary in ``metrics.json`` (``KEY_before``
and ``KEY_after``) and every answer, side by side, in ``predictions.jsonl``,
``ifeval_answers.jsonl`` and ``gsm8k_answers.jsonl``. At 7B that evaluation decodes for
about twenty minutes on a T4; :func:`stored_reports` gives it back as the two reports
:func:`ift_tutorial.evaluation.runner.evaluate_model` would return, so chapter 8 reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserFacingError
from ..paths import display_path
from .runner import SUMMARY_KEYS

#: Per-report fields of metrics.json besides the summary (also stored as KEY_before/_after).
BY_KEYS = ("exact_match_by_task", "ifeval_by_set", "ifeval_by_lang", "gsm8k_by_lang")
#: Fields shared by both reports.
SHARED_KEYS = ("n_exact_match", "n_ifeval", "n_gsm8k", "n_perplexity", "decoding", "config")
#: Answer file -> (report key, the side-by-side field of each row's answer).
ANSWER_FILES = {
    "predictions.jsonl": ("predictions", "prediction"),
    "ifeval_answers.jsonl": ("ifeval_results", "response"),
    "gsm8k_answers.jsonl": ("gsm8k_results", "response"),
}


def _rows(path: Path, answer: str, when: str) -> list[dict[str, Any]]:
    """One side (``before`` or ``after``) of a side-by-side answer file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        mine = {k[: -len(when) - 1]: v for k, v in row.items() if k.endswith(f"_{when}")}
        shared = {k: v for k, v in row.items()
                  if k not in ("before", "after") and not k.endswith(("_before", "_after"))}
        out.append({**shared, **mine, answer: row.get(when)})
    return out


def stored_reports(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(before, after)`` evaluation reports that ``train`` stored in ``run_dir``.

    Raises:
        UserFacingError: the folder holds no ``metrics.json`` with an evaluation.

    Example:
        >>> before, after = stored_reports("data/adapters/tiny-sft")
        >>> round(before["exact_match"], 2), round(after["exact_match"], 2), len(after["predictions"])
        (0.0, 0.74, 180)
    """
    folder = Path(run_dir)
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        raise UserFacingError(f"{display_path(folder)}: no metrics.json; train with evaluation "
                              "first (ift-tutorial train without --no-eval)")
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    if not any(f"{k}_after" in metrics for k in SUMMARY_KEYS):
        raise UserFacingError(f"{display_path(metrics_file)} holds no evaluation: the run was "
                              "trained with --no-eval")
    reports = []
    for when in ("before", "after"):
        report = {k: metrics.get(f"{k}_{when}") for k in (*SUMMARY_KEYS, *BY_KEYS)}
        report |= {k: metrics.get(k) for k in SHARED_KEYS}
        for name, (key, answer) in ANSWER_FILES.items():
            if (folder / name).is_file():
                report[key] = _rows(folder / name, answer, when)
        report |= per_item_outcomes(report)
        reports.append(report)
    return reports[0], reports[1]


def per_item_outcomes(report: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
    """``outcomes`` and ``outcome_groups`` of a stored report, read from its answer rows.

    What the suites report live (:mod:`ift_tutorial.evaluation.statistics` turns them into
    intervals and paired tests). IFEval's instruction level needs each instruction's
    verdict (``follow_instruction_list``), which older runs did not store: then only its
    prompt level has outcomes.
    """
    from .ifeval.scoring import per_item_outcomes as ifeval_outcomes

    outcomes: dict[str, list[int]] = {}
    groups: dict[str, list[int]] = {}
    if report.get("predictions"):
        outcomes["exact_match"] = [int(bool(r.get("correct"))) for r in report["predictions"]]
    ifeval = report.get("ifeval_results") or []
    if ifeval and all("follow_instruction_list_loose" in r for r in ifeval):
        found = ifeval_outcomes(ifeval)
        outcomes |= found["outcomes"]
        groups |= found["outcome_groups"]
    elif ifeval:
        for level, suffix in (("strict", ""), ("loose", "_loose")):
            outcomes[f"ifeval_prompt_level_{level}_acc"] = [
                int(bool(r.get(f"follow_all_instructions{suffix}"))) for r in ifeval]
    for level in ("flexible", "strict"):
        if report.get("gsm8k_results"):
            outcomes[f"gsm8k_{level}_acc"] = [int(bool(r.get(f"{level}_correct")))
                                              for r in report["gsm8k_results"]]
    return {"outcomes": outcomes, "outcome_groups": groups}
