"""A run's evaluations read back from its folder (chapter 8 at 7B does not decode them again)."""

from __future__ import annotations

import json

import pytest

from ift_tutorial.errors import UserFacingError
from ift_tutorial.evaluation.runner import SUMMARY_KEYS
from ift_tutorial.evaluation.stored import stored_reports
from ift_tutorial.paths import DATA_DIR

SHIPPED = DATA_DIR / "adapters" / "tiny-sft"


def test_the_shipped_runs_reports_come_back_as_evaluate_model_gives_them():
    metrics = json.loads((SHIPPED / "metrics.json").read_text(encoding="utf-8"))
    before, after = stored_reports(SHIPPED)
    for key in SUMMARY_KEYS:
        assert before[key] == metrics[f"{key}_before"] and after[key] == metrics[f"{key}_after"], key
    assert after["exact_match_by_task"] == metrics["exact_match_by_task_after"]
    assert before["n_ifeval"] == after["n_ifeval"] == len(after["ifeval_results"]) == metrics["n_ifeval"]
    rows = [json.loads(x) for x in (SHIPPED / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["prediction"] for r in after["predictions"]] == [r["after"] for r in rows]
    assert [r["prediction"] for r in before["predictions"]] == [r["before"] for r in rows]
    assert sum(r["correct"] for r in after["predictions"]) / len(rows) == pytest.approx(after["exact_match"])
    first = after["ifeval_results"][0]
    assert {"prompt", "instruction_id_list", "response", "follow_all_instructions"} <= set(first)


def test_a_folder_without_an_evaluation_says_so(tmp_path):
    with pytest.raises(UserFacingError, match="no metrics.json"):
        stored_reports(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"config": "tiny", "steps": 3}), encoding="utf-8")
    with pytest.raises(UserFacingError, match="trained with --no-eval"):
        stored_reports(tmp_path)
