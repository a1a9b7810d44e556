"""Reading preference pairs: the conversational form, the other shapes it accepts, and the
errors that name the file, the line and the field."""

from __future__ import annotations

import json

import pytest

from ift_tutorial.errors import DataError
from ift_tutorial.instructions.preferences import load_preferences, normalize_pair

USER = {"role": "user", "content": "What is 7 + 5?"}


def _write(path, *records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def test_the_shipped_pairs_are_conversational_and_keep_their_kind():
    pairs, report = load_preferences("data/preferences/heldout.jsonl")
    assert report.n_read == report.n_kept == len(pairs) == 540 and not report.filtered
    first = pairs[0]
    assert [m["role"] for m in first["prompt"]] == ["user"]
    assert [m["role"] for m in first["chosen"]] == ["assistant"] == [m["role"] for m in first["rejected"]]
    assert first["rejected_kind"] in {"wrong_fact", "runs_on", "wrong_language"}


def test_strings_and_a_repeated_prompt_become_the_conversational_form():
    plain = normalize_pair({"prompt": "What is 7 + 5?", "chosen": "12", "rejected": "13",
                            "system": "Answer in one word."})
    assert plain["prompt"] == [{"role": "system", "content": "Answer in one word."}, USER]
    assert plain["chosen"] == [{"role": "assistant", "content": "12"}]
    # ultrafeedback_binarized: chosen/rejected repeat the user turn before the answer
    repeated = normalize_pair({"prompt": "What is 7 + 5?",
                               "chosen": [USER, {"role": "assistant", "content": "12"}],
                               "rejected": [USER, {"role": "assistant", "content": "13"}]})
    assert repeated["prompt"] == [USER]
    assert repeated["rejected"] == [{"role": "assistant", "content": "13"}]


@pytest.mark.parametrize("record, field, words", [
    ({"prompt": [USER], "chosen": "12", "rejected": " 12 "}, "rejected", "the same answer"),
    ({"prompt": "", "chosen": "12", "rejected": "13"}, "prompt", "empty"),
    ({"prompt": [{"role": "user", "content": "  "}], "chosen": "12", "rejected": "13"},
     "prompt[0].content", "empty"),
    ({"prompt": [USER], "chosen": "12"}, "rejected", "missing field 'rejected'"),
    ({"prompt": [USER, {"role": "assistant", "content": "12"}], "chosen": "12",
      "rejected": "13"}, "prompt[1].role", "must end with a user turn"),
    ({"prompt": [USER], "chosen": [USER], "rejected": "13"}, "chosen", "assistant's answer"),
    ({"prompt": [USER], "chosen": "12", "rejected": "13", "score": 3}, "score", "unknown field"),
])
def test_a_bad_pair_is_named_by_file_line_and_field(tmp_path, record, field, words):
    good = {"prompt": [USER], "chosen": "12", "rejected": "13"}
    path = _write(tmp_path / "pairs.jsonl", good, record)
    with pytest.raises(DataError) as err:
        load_preferences(str(path))
    assert err.value.line == 2 and err.value.field == field
    assert words in str(err.value) and "pairs.jsonl, line 2" in str(err.value)


def test_not_strict_filters_bad_pairs_and_counts_them(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", {"prompt": "a?", "chosen": "x", "rejected": "y"},
                  {"prompt": "b?", "chosen": "x", "rejected": "x"},
                  {"prompt": "c?", "chosen": "x", "rejected": "z", "score": 1})
    pairs, report = load_preferences(str(path), strict=False)
    assert len(pairs) == 2 and report.filtered == {"same answer": 1}
    assert report.ignored_fields == ["score"] and "filtered, same answer: 1" in str(report)


def test_max_examples_is_counted_as_filtered():
    pairs, report = load_preferences("data/preferences/heldout.jsonl", max_examples=10)
    assert len(pairs) == 10 and report.filtered == {"over max_examples": 530}


def test_two_transcripts_without_a_prompt_split_at_the_last_answer():
    history = "\n\nHuman: Hi!\n\nAssistant: Hello.\n\nHuman: What is 7 + 5?\n\nAssistant:"
    pair = normalize_pair({"chosen": history + " 12", "rejected": history + " 13"})
    assert [m["role"] for m in pair["prompt"]] == ["user", "assistant", "user"]
    assert pair["chosen"] == [{"role": "assistant", "content": "12"}]
    with pytest.raises(Exception, match="differ before their last turn"):
        normalize_pair({"chosen": history + " 12",
                        "rejected": history.replace("7 + 5", "7 + 6") + " 13"})
