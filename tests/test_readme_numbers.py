"""The numbers the README quotes are the shipped run's numbers (its metrics.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ift_tutorial.paths import DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
METRICS = json.loads((DATA_DIR / "adapters" / "tiny-sft" / "metrics.json").read_text(encoding="utf-8"))


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(?:(\d+) min )?(\d+(?:\.\d+)?) s", text)
    assert m, text
    return 60 * int(m.group(1) or 0) + float(m.group(2))


def test_the_main_run_sentence_matches_the_shipped_metrics():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    m = re.search(r"took ((?:\d+ min )?\d+ s) of training \(((?:\d+ min )?\d+ s) for the whole "
                  r"command\), held-out exact match went from (\d+) % before to (\d+) % after "
                  r"tuning, and peak memory was (\d+\.\d) GB", readme)
    assert m, "the README's sentence about the shipped run is gone or reworded"
    train, total, before, after, peak = m.groups()
    # Tolerances: the README rounds to whole seconds, whole percents and 0.1 GB.
    assert abs(_seconds(train) - METRICS["train_seconds"]) <= 1
    assert abs(_seconds(total) - METRICS["total_seconds"]) <= 1
    assert abs(int(before) - 100 * METRICS["exact_match_before"]) <= 0.5
    assert abs(int(after) - 100 * METRICS["exact_match_after"]) <= 0.5
    assert abs(float(peak) - METRICS["peak_rss_mb"] / 1000) <= 0.05


def test_the_evaluation_table_counts_match_the_shipped_run_and_the_data():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    prompts = sum(1 for line in (DATA_DIR / "ifeval" / "prompts.jsonl").open(encoding="utf-8") if line.strip())
    problems = sum(1 for p in (DATA_DIR / "gsm8k").glob("*.jsonl")
                   for line in p.open(encoding="utf-8") if line.strip())
    assert f"{METRICS['n_exact_match']} held-out questions of the made-up world" in readme
    assert f"{METRICS['n_ifeval']} of the project's {prompts} bilingual prompts" in readme
    assert f"{METRICS['n_gsm8k']} of the project's {problems} problems" in readme
    assert f"the {METRICS['n_perplexity']} held-out conversations of the tiny world" in readme
