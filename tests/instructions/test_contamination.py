"""The data checks against evaluation sets (13-gram overlap) and near duplicates (MinHash)."""

from __future__ import annotations

import argparse

import pytest

from ift_tutorial.config import ConfigError, load_config
from ift_tutorial.errors import UserFacingError
from ift_tutorial.instructions.contamination import (
    DataChecks, EvalSet, config_eval_sets, data_checks, find_overlaps, near_duplicates,
    read_eval_set, shingles, words,
)
from ift_tutorial.instructions.dataset import check_data_cli, load_conversations, prepare_dataset
from ift_tutorial.rehearsal import preset as edge
from tests.helpers import write_jsonl

# 20 words: any 13 in a row are a 13-gram an evaluation item can share.
PASSAGE = ("the lighthouse keeper counted forty ships before the storm reached the harbour "
           "and then she lit the second lamp for the fishing boats")
OTHER = "a completely different answer about baking bread slowly in a cold oven overnight"


def conv(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def chat(question: str, answer: str) -> dict:
    """A record of the messages format."""
    return {"messages": conv(question, answer)}


def test_words_normalise_case_punctuation_width_and_split_chinese_into_characters():
    assert words("Hello,  WORLD!  (again)") == ["hello", "world", "again"]
    assert words("Ｈｅｌｌｏ？") == ["hello"]  # NFKC: full-width letters and question mark
    assert words("Bora 住在哪个城市？") == ["bora", "住", "在", "哪", "个", "城", "市"]
    assert shingles(["a", "b"], k=5) == {"a b"}  # shorter than a shingle: the whole text
    assert shingles(list("abcdef"), k=5) == {"a b c d e", "b c d e f"}


def test_a_planted_13_gram_is_found_and_the_clean_item_is_not():
    train = [conv("Tell me a story.", OTHER),
             conv("What happened at the harbour?", "As the log says, " + PASSAGE.upper() + ".")]
    held_out = EvalSet("data.eval_perplexity", "held.jsonl",
                       [f"Question\n{PASSAGE}", "What is 7 + 5?\n12",
                        "a long item that is clean and shares nothing with the training data at all"])
    [overlap], involved = find_overlaps(train, [held_out])
    assert (overlap.n_items, overlap.n_overlapping, overlap.n_short) == (3, 1, 1)
    assert overlap.example["item"] == 0 and overlap.example["train"] == 1
    assert len(overlap.example["shared"].split()) == 13
    assert overlap.example["shared"] in PASSAGE
    assert involved == {1: "data.eval_perplexity"}
    # 12 shared words are not a 13-gram
    twelve = " ".join(PASSAGE.split()[:12])
    [overlap], involved = find_overlaps([conv("x", twelve)], [EvalSet("e", "f", [PASSAGE])])
    assert overlap.n_overlapping == 0 and involved == {}


def test_a_short_item_counts_only_when_it_is_a_whole_training_conversation():
    train = [conv("What is 7 + 5?", "12"), conv("Which city does Bora live in?", "Zandor")]
    items = EvalSet("data.eval_exact_match", "tasks", ["What is 7 + 5?\n12", "What is 7 + 6?\n13",
                                                      "Zandor"])
    [overlap], involved = find_overlaps(train, [items])
    assert (overlap.n_short, overlap.n_overlapping) == (3, 1)  # "Zandor" alone is no leak
    assert involved == {0: "data.eval_exact_match"}


def _checked(tmp_path, rows, **checks):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    return prepare_dataset(str(path), checks=DataChecks(**checks))


def test_contaminated_rows_are_dropped_counted_and_reported(tmp_path):
    held = write_jsonl(tmp_path / "held.jsonl", [chat("Continue the story.", PASSAGE)])
    rows = [chat("Tell me a story.", OTHER), chat("Go on.", PASSAGE + " and slept"),
            chat("Say hi.", "hi")]
    sets = [read_eval_set(str(held), "data.eval_perplexity")]
    dataset, report = _checked(tmp_path, rows, eval_sets=sets, decontaminate="drop")
    assert len(dataset) == 2 and report.filtered == {"contaminated": 1}
    assert report.examples == {"contaminated": [2]}  # the line it was on
    assert report.overlap_counts() == {"data.eval_perplexity": 1}
    assert report.contamination[0]["example"]["train"] == 2
    text = str(report)
    assert "data.eval_perplexity" in text and "1 of 1 items" in text and "line 2" in text
    # only reported: kept, and still counted per evaluation set
    dataset, report = _checked(tmp_path, rows, eval_sets=sets, decontaminate="report")
    assert len(dataset) == 3 and report.filtered == {}
    assert report.overlap_counts() == {"data.eval_perplexity": 1}
    assert "reported, kept" in str(report)


def test_a_planted_near_duplicate_is_dropped_counted_and_shown(tmp_path):
    rows = [chat("Tell me about the lighthouse.", PASSAGE),
            chat("Tell me a story.", OTHER),
            chat("Tell me about the lighthouse!", PASSAGE.replace("boats", "ships"))]
    dataset, report = _checked(tmp_path, rows, near_duplicate_threshold=0.8)
    assert len(dataset) == 2 and report.filtered == {"near_duplicate": 1}
    [pair] = report.near_duplicates
    assert (pair["dropped"], pair["kept"]) == (3, 1) and 0.8 <= pair["jaccard"] < 1
    assert "line 3 is like line 1" in str(report)
    # above the pair's similarity, nothing is dropped
    dataset, report = _checked(tmp_path, rows, near_duplicate_threshold=0.95)
    assert len(dataset) == 3 and report.filtered == {} and report.near_duplicates == []


def test_the_tiny_world_is_clean_and_every_evaluation_set_is_checked():
    config = load_config("tiny")
    sets = config_eval_sets(config)
    names = ", ".join(s.name for s in sets).split(", ")
    assert len(names) == len(set(names)) and {
        "data.eval_exact_match", "data.eval_gsm8k", "data.eval_ifeval", "data.eval_perplexity",
        "dpo.eval", "grpo.eval"} <= set(names)
    # every data.eval_* setting that names a file is checked, whatever suites exist
    files = {k for k, v in vars(config.data).items() if k.startswith("eval_")
             and isinstance(v, str) and v.endswith(".jsonl")}
    assert {f"data.{k}" for k in files} <= set(names)
    train = load_conversations(config.data.train, strict=False)
    overlaps, involved = find_overlaps(train, sets)
    assert [o.n_overlapping for o in overlaps] == [0] * len(sets) and involved == {}
    heldout = next(o for o in overlaps if "data.eval_exact_match" in o.name)
    assert heldout.n_items == heldout.n_short == 180  # every question under 13 words
    assert near_duplicates(train[:800], 0.8) == []


def test_the_7b_presets_sets_are_read_from_their_fixtures_offline(monkeypatch):
    # offline, as in CI and in a rehearsal: each hub source reads its local fixture
    monkeypatch.delenv(edge.ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checks = data_checks(load_config("qwen2.5-7b"))
    names = {s.name for s in checks.eval_sets}
    assert {"data.eval_perplexity", "data.eval_ifeval[0]", "data.eval_ifeval[1]",
            "data.eval_gsm8k, grpo.eval", "dpo.eval"} <= names
    assert not any("_format" in name for name in names)  # "letters" is a setting, not a set
    assert all(s.texts and all(s.texts) for s in checks.eval_sets)
    assert {s.source for s in checks.eval_sets} >= {"data/ifeval/prompts.jsonl",
                                                     "Anthropic/hh-rlhf @09be8c5, split test"}
    assert (checks.near_duplicate_threshold, checks.decontaminate) == (0.8, "drop")


def test_bad_settings_are_clear_errors():
    with pytest.raises(UserFacingError, match="data.decontaminate must be one of drop, report"):
        DataChecks(decontaminate="remove")
    with pytest.raises(ConfigError, match="near_duplicate_threshold must be between 0 and 1"):
        load_config("tiny", ["data.near_duplicate_threshold=1.5"])
    with pytest.raises(UserFacingError, match=r"\(0, 1\]"):
        near_duplicates([conv("a", "b")], 0.0)


def test_check_data_with_a_config_reports_every_evaluation_set(tmp_path, capsys):
    held = tmp_path / "held.jsonl"
    write_jsonl(held, [chat("Continue the story.", PASSAGE)])
    train = write_jsonl(tmp_path / "train.jsonl", [chat("Go on.", PASSAGE), chat("Hi", "Hello")])
    args = argparse.Namespace(path=str(train), format="auto", config="tiny", json=False,
                              overrides=[f"data.eval_perplexity={held}"],
                              ignore_extra_fields=False)
    assert check_data_cli(args) == 0
    out = capsys.readouterr().out
    assert "2 conversations read (messages format), 1 kept" in out
    assert "filtered, contaminated: 1 (line 1)" in out
    assert "data.eval_perplexity (" in out and "1 of 1 items" in out
    assert "dpo.eval (data/preferences/heldout.jsonl): 0 of 540 items" in out


def test_the_training_data_line_names_the_sets_with_overlap_and_stays_quiet_without():
    from ift_tutorial.training.progress import data_line

    metrics = {"train_read": 10, "train_examples": 9, "data_filtered": {"contaminated": 1},
               "data_overlap": {"data.eval_gsm8k, grpo.eval": 1, "dpo.eval": 0}}
    assert data_line(metrics) == ("data: 10 conversations read, 9 kept (1 contaminated); "
                                  "evaluation items sharing a 13-gram with it: "
                                  "data.eval_gsm8k, grpo.eval 1")
    clean = {"train_read": 10, "train_examples": 10, "data_overlap": {"dpo.eval": 0}}
    assert data_line(clean) == "data: 10 conversations read, 10 kept"
