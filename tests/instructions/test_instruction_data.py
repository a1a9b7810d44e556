"""Instruction data: every format normalises, every bad input names file/line/field,
filters are counted, the check-data command behaves, the shipped splits are sound."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import write_jsonl

from ift_tutorial.cli import main
from ift_tutorial.errors import DataError, RecordError, UserFacingError
from ift_tutorial.paths import display_path
from ift_tutorial.instructions.dataset import (
    MAX_ERRORS_SHOWN,
    DataReport,
    DataValidationError,
    check_data,
    length_statistics,
    load_conversations,
    prepare_dataset,
)
from ift_tutorial.instructions.reading import is_local
from ift_tutorial.paths import DATA_DIR, PROJECT_ROOT

INSTRUCTIONS = DATA_DIR / "instructions"

# --- one conversation in each schema -------------------------------------------------

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "What is 2 + 3?"}
ASSISTANT = {"role": "assistant", "content": "2 + 3 = 5."}
USER_ZH = {"role": "user", "content": "把“谢谢”翻译成英文。"}
ASSISTANT_EN = {"role": "assistant", "content": "Thank you."}

# schema -> (records, expected conversations)
SCHEMAS = {
    "messages": (
        [{"messages": [SYSTEM, USER, ASSISTANT]}, {"messages": [USER_ZH, ASSISTANT_EN]}],
        [[SYSTEM, USER, ASSISTANT], [USER_ZH, ASSISTANT_EN]],
    ),
    "alpaca": (
        [{"instruction": "What is 2 + 3?", "input": "", "output": "2 + 3 = 5.",
          "system": "Be brief."},
         {"instruction": "Translate into English.", "input": "谢谢", "output": "Thank you.",
          "system": ""}],
        [[SYSTEM, USER, ASSISTANT],
         [{"role": "user", "content": "Translate into English.\n\n谢谢"}, ASSISTANT_EN]],
    ),
    "sharegpt": (
        [{"conversations": [{"from": "system", "value": "Be brief."},
                            {"from": "human", "value": "What is 2 + 3?"},
                            {"from": "gpt", "value": "2 + 3 = 5."}]},
         {"conversations": [{"from": "user", "value": USER_ZH["content"]},
                            {"from": "assistant", "value": "Thank you."}]}],
        [[SYSTEM, USER, ASSISTANT], [USER_ZH, ASSISTANT_EN]],
    ),
    "prompt_completion": (
        [{"prompt": "What is 2 + 3?", "completion": "2 + 3 = 5.", "system": "Be brief."},
         {"prompt": USER_ZH["content"], "completion": "Thank you.", "system": ""}],
        [[SYSTEM, USER, ASSISTANT], [USER_ZH, ASSISTANT_EN]],
    ),
}


def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_csv(path: Path, records: list) -> Path:
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in records:  # list cells (messages, conversations) are JSON text
            w.writerow([json.dumps(r[c], ensure_ascii=False) if isinstance(r.get(c), list)
                        else r.get(c, "") for c in columns])
    return path


def write_parquet(path: Path, records: list) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


WRITERS = {"jsonl": write_jsonl, "json": write_json, "csv": write_csv, "parquet": write_parquet}


@pytest.mark.parametrize("schema", list(SCHEMAS))
@pytest.mark.parametrize("ext", list(WRITERS))
def test_every_format_and_file_type_normalises(tmp_path, schema, ext):
    records, expected = SCHEMAS[schema]
    path = WRITERS[ext](tmp_path / f"data.{ext}", records)
    assert load_conversations(str(path)) == expected  # detected
    assert load_conversations(str(path), format=schema) == expected  # forced


def test_json_with_data_key(tmp_path):
    records, expected = SCHEMAS["alpaca"]
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"data": records}), encoding="utf-8")
    assert load_conversations(str(path)) == expected


def test_trl_conversational_prompt_completion(tmp_path):
    path = write_jsonl(tmp_path / "pc.jsonl", [
        {"prompt": [SYSTEM, USER], "completion": [ASSISTANT]},
        {"prompt": [USER, ASSISTANT, USER_ZH], "completion": [ASSISTANT_EN]},
    ])
    assert load_conversations(str(path)) == [[SYSTEM, USER, ASSISTANT],
                                             [USER, ASSISTANT, USER_ZH, ASSISTANT_EN]]


def test_system_prompt_added_only_where_missing(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", SCHEMAS["messages"][0])
    convs = load_conversations(str(path), system_prompt="You are kind.")
    assert convs[0][0] == SYSTEM
    assert convs[1][0] == {"role": "system", "content": "You are kind."}
    _, report = prepare_dataset(str(path), system_prompt="You are kind.")
    assert report.n_system_added == 1 and report.n_with_system == 2


def test_multiline_csv_cell_keeps_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion\n"two\nlines",ok\nfine,ok\n"bad\nrow",\n',
                    encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    # header line 1, a row on lines 2-3, line 4, then the bad row on lines 5-6: its first
    assert err.value.line == 5 and err.value.field == "completion"


# --- bad input: file, line and field in the message ----------------------------------

GOOD = {"messages": [USER, ASSISTANT]}


def _bad_jsonl(second: dict) -> str:
    return json.dumps(GOOD) + "\n" + json.dumps(second, ensure_ascii=False) + "\n"


BAD_JSONL = {
    "missing_field": ({"mesages": [USER, ASSISTANT]}, "messages", "missing field"),
    "unknown_field": ({**GOOD, "source": "web"}, "source", "unknown field(s) ['source']"),
    "unknown_turn_field": ({"messages": [{**USER, "name": "x"}, ASSISTANT]},
                           "messages[0].name", "allowed: ['role', 'content']"),
    "unknown_role": ({"messages": [{"role": "bot", "content": "hi"}, ASSISTANT]},
                     "messages[0].role", "unknown role 'bot'"),
    "empty_content": ({"messages": [USER, {"role": "assistant", "content": "  "}]},
                      "messages[1].content", "empty content"),
    "non_string_content": ({"messages": [USER, {"role": "assistant", "content": 5}]},
                           "messages[1].content", "must be a string, got int"),
    "not_alternating": ({"messages": [USER, USER, ASSISTANT]}, "messages[1].role",
                        "must alternate"),
    "system_not_first": ({"messages": [USER, SYSTEM, ASSISTANT]}, "messages[1].role",
                         "only allowed first"),
    "no_assistant": ({"messages": [SYSTEM, USER]}, "messages", "no assistant turn"),
    "ends_with_user": ({"messages": [USER, ASSISTANT, USER]}, "messages[2].role",
                       "ends with a user turn"),
    "no_turns": ({"messages": []}, "messages", "no turns"),
}


@pytest.mark.parametrize("case", list(BAD_JSONL))
def test_bad_record_names_file_line_field(tmp_path, case):
    record, field, text = BAD_JSONL[case]
    path = tmp_path / f"{case}.jsonl"
    path.write_text(_bad_jsonl(record), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{display_path(path)}, line 2, field '{field}': "), msg
    assert text in msg
    assert (err.value.line, err.value.field) == (2, field)


def test_bad_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + '\n{"messages": [}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: invalid JSON: .*column 15"):
        load_conversations(str(path))


def test_bad_json_file_gives_its_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c",,}\n]')
    with pytest.raises(DataError, match=r"d\.json, line 3: invalid JSON: Expecting"):
        load_conversations(str(path))


def test_bad_encoding_names_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.jsonl"
    first = (json.dumps(GOOD) + "\n").encode()
    path.write_bytes(first + '{"messages": [{"role": "user", "content": "café"}]}\n'
                     .encode("latin-1"))
    offset = len(first) + len('{"messages": [{"role": "user", "content": "caf')
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    assert err.value.line == 2
    assert f"not valid UTF-8: byte 0xe9 at byte offset {offset}" in str(err.value)
    assert "latin1.jsonl, line 2" in str(err.value)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "prompt,completion\nhi,hello\n".encode())
    assert load_conversations(str(path))[0][0] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize("name, content, text", [
    ("empty.jsonl", "", "the file is empty"),
    ("blank.json", "  \n\n", "the file is empty"),
    ("empty_list.json", "[]", "no records"),
    ("header_only.csv", "prompt,completion\n", "no rows after the header"),
    ("notes.txt", "hello", "unsupported file type '.txt'"),
    ("object.json", '{"rows": []}', "expected a list of records or {\"data\": [...]}"),
])
def test_file_level_problems(tmp_path, name, content, text):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    assert str(err.value).startswith(f"{display_path(path)}: ") and text in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothing.jsonl: file not found"):
        load_conversations(str(tmp_path / "nothing.jsonl"))


def test_json_record_errors_say_record_index(tmp_path):
    path = write_json(tmp_path / "a.json", [{"instruction": "a", "output": "b"},
                                            {"instruction": "c"}])
    with pytest.raises(RecordError) as err:
        load_conversations(str(path))
    assert str(err.value).startswith(f"{display_path(path)}, record 1 (0-based), field 'output': missing")
    assert err.value.record == 1 and err.value.field == "output"


def test_parquet_record_errors_say_record_index(tmp_path):
    path = write_parquet(tmp_path / "m.parquet", [
        {"messages": [USER, ASSISTANT]}, {"messages": [USER, ASSISTANT]},
        {"messages": [{"role": "robot", "content": "x"}, ASSISTANT]}])
    with pytest.raises(DataError, match=r"m\.parquet, record 2 \(0-based\), field "
                       r"'messages\[0\]\.role': unknown role 'robot'"):
        load_conversations(str(path))


def test_sharegpt_unknown_speaker(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [
        {"from": "narrator", "value": "x"}, {"from": "gpt", "value": "y"}]}])
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    assert err.value.field == "conversations[0].from" and err.value.line == 1
    assert "allowed: ['system', 'human', 'user', 'gpt', 'assistant']" in str(err.value)


def test_record_in_another_format_says_so(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl",
                       [GOOD, {"instruction": "Say hi.", "output": "Hi."}])
    with pytest.raises(DataError) as err:
        load_conversations(str(path))
    msg = str(err.value)
    assert "line 2, field 'messages': missing field 'messages'" in msg
    assert "looks like alpaca, but the file's format is messages" in msg


def test_forced_format_that_does_not_fit(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [GOOD])
    with pytest.raises(DataError, match="line 1, field 'instruction': missing field"):
        load_conversations(str(path), format="alpaca")


def test_undetectable_format(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "just text"}])
    with pytest.raises(DataError, match=r"t\.jsonl, line 1: cannot tell the format from the "
                       r"fields \['text'\]"):
        load_conversations(str(path))


def test_unknown_format_argument(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [GOOD])
    with pytest.raises(UserFacingError, match="unknown format 'chatml'"):
        load_conversations(str(path), format="chatml")


def test_several_problems_are_all_counted_and_listed(tmp_path):
    bad_role = {"messages": [{"role": "bot", "content": "x"}, ASSISTANT]}
    lines = [json.dumps(GOOD)] + [json.dumps(bad_role)] * 12 + ["{oops"]
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        load_conversations(str(path))
    msg = str(err.value)
    first_line = msg.splitlines()[0]
    assert first_line.startswith(f"{display_path(path)}, line 2, field 'messages[0].role': unknown role")
    assert "13 invalid records" in msg and f"the first {MAX_ERRORS_SHOWN}:" in msg
    assert len(err.value.problems) == 13 and err.value.problems[-1].line == 14
    assert (err.value.line, err.value.field) == (2, "messages[0].role")


# --- filters: counted and reported -------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    """A word-level tokenizer with a chat template: every word and symbol is one token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]",
        chat_template="{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} "
                      "{% endfor %}")


def test_length_statistics_counts_template_tokens(tokenizer):
    # "user : a b c assistant : d" -> 8 tokens; every extra word adds one
    base = [{"role": "user", "content": "a b c"}, {"role": "assistant", "content": "d"}]
    longer = [base[0], {"role": "assistant", "content": "d e f g"}]
    assert length_statistics([base, longer], tokenizer) == [8, 11]


def test_length_statistics_needs_a_chat_template(tokenizer):
    plain = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, unk_token="[UNK]")
    with pytest.raises(UserFacingError, match="no chat template"):
        length_statistics([[USER, ASSISTANT]], plain)


def test_duplicates_and_too_long_are_counted_with_lines(tmp_path, tokenizer):
    long_answer = {"role": "assistant", "content": " ".join(["word"] * 50)}
    records = [GOOD, {"messages": [USER_ZH, ASSISTANT_EN]}, GOOD,
               {"messages": [USER, long_answer]}, GOOD]
    path = write_jsonl(tmp_path / "d.jsonl", records)
    ds, report = prepare_dataset(str(path), tokenizer=tokenizer, max_length=40)
    assert report.n_read == 5 and report.n_kept == 2 == len(ds)
    assert report.filtered == {"duplicate": 2, "too_long": 1}
    assert report.examples == {"duplicate": [3, 5], "too_long": [4]}
    assert report.n_read == report.n_kept + sum(report.filtered.values())
    assert ds.column_names == ["messages"]
    assert ds[0]["messages"] == [USER, ASSISTANT] and ds[1]["messages"] == [USER_ZH, ASSISTANT_EN]
    text = str(report)
    assert "filtered, duplicate: 2 (lines 3, 5)" in text
    assert "filtered, longer than 40 tokens: 1 (line 4)" in text
    assert report.token_lengths["max"] <= 40


def test_deduplicate_off_keeps_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD])
    ds, report = prepare_dataset(str(path), deduplicate=False)
    assert len(ds) == 2 and report.filtered == {} and "filtered: none" in str(report)


def test_max_length_without_tokenizer_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD])
    with pytest.raises(UserFacingError, match="needs a tokenizer"):
        prepare_dataset(str(path), max_length=10)


def test_report_dict_is_json(tmp_path):
    path = write_json(tmp_path / "d.json", SCHEMAS["alpaca"][0] * 2)
    report = check_data(str(path))
    assert isinstance(report, DataReport)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["format"] == "alpaca" and d["unit"] == "record" and d["filtered"] == {"duplicate": 2}
    assert d["examples"] == {"duplicate": [2, 3]}
    assert "records (0-based) 2, 3" in str(report)


# --- hub ids: told apart from paths, loaded through datasets (mocked) --------------


def test_hub_id_goes_to_load_dataset_and_extra_columns_are_reported(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, split))
        return datasets.Dataset.from_list([{"prompt": "Hi", "completion": "Hello.", "prompt_id": "a1"}])

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # online, with the hub mocked
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds, report = prepare_dataset("someone/chat-data", split="train_sft")
    assert calls == [("someone/chat-data", "train_sft")]
    assert ds[0]["messages"][1] == {"role": "assistant", "content": "Hello."}
    assert report.ignored_fields == ["prompt_id"] and "ignored fields: prompt_id" in str(report)


def test_hub_failure_is_a_data_error(monkeypatch):
    import datasets

    def offline(name, config=None, split=None, revision=None):
        raise ConnectionError("no network")

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="someone/x, split train: could not load the hub dataset"
                                        ".*no network"):
        load_conversations("someone/x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline, a bare id has no fixture to fall back on
    with pytest.raises(DataError, match=r"offline \(HF_HUB_OFFLINE=1\) and this hub source has no "
                                        "fixture"):
        load_conversations("someone/x")


def test_is_local():
    assert is_local("data/instructions/train.jsonl")
    assert is_local("my_file.jsonl")  # a missing local file, not a hub id
    assert not is_local("HuggingFaceH4/ultrachat_200k")


# --- the check-data command ---------------------------------------------------------


@pytest.mark.parametrize("name", ["train.jsonl", "heldout.jsonl", "examples/alpaca.json",
                                  "examples/sharegpt.jsonl", "examples/prompt_completion.csv",
                                  "examples/messages.parquet"])
def test_check_data_cli_accepts_shipped_files(capsys, name):
    assert main(["check-data", f"data/instructions/{name}"]) == 0
    out = capsys.readouterr().out
    assert f"data/instructions/{name}: " in out and "kept" in out


def test_check_data_cli_json(capsys):
    assert main(["check-data", "data/instructions/examples/sharegpt.jsonl", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "sharegpt" and report["n_kept"] == report["n_read"] == 4


def test_check_data_cli_rejects_broken_file(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text(_bad_jsonl(BAD_JSONL["unknown_role"][0]), encoding="utf-8")
    assert main(["check-data", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {display_path(path)}, line 2, field 'messages[0].role': "
                                   "unknown role 'bot'")
    assert "Traceback" not in captured.err and captured.out == ""


def test_check_data_cli_with_config_counts_long_examples(tmp_path, tokenizer, capsys):
    tokenizer.save_pretrained(tmp_path / "tok")
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  name_or_path: {tmp_path / 'tok'}\n  max_length: 30\n")
    long_answer = {"role": "assistant", "content": " ".join(["word"] * 40)}
    data = write_jsonl(tmp_path / "d.jsonl", [GOOD, {"messages": [USER, long_answer]}])
    assert main(["check-data", str(data), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 kept" in out and "longer than 30 tokens: 1 (line 2)" in out


def test_check_data_cli_config_without_model_folder(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  name_or_path: {tmp_path / 'no-model'}\n")
    assert main(["check-data", "data/instructions/heldout.jsonl", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --config ") and "cannot load the tokenizer" in err
    assert "does not exist" in err and "Traceback" not in err


def test_check_data_subprocess(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,completion\nHi,Hello\nHow are you?,\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "ift_tutorial.cli", "check-data"]
    bad = subprocess.run(cmd + [str(path)], capture_output=True, text=True, cwd=PROJECT_ROOT,
                         timeout=120)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip() == (f"error: {path.name}, line 3, field 'completion': empty content")
    good = subprocess.run(cmd + ["data/instructions/heldout.jsonl"], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=120)
    assert good.returncode == 0 and "conversations read (messages format)" in good.stdout


# --- the shipped data ---------------------------------------------------------------


def _user_turns(convs: list) -> set[str]:
    return {m["content"] for c in convs for m in c if m["role"] == "user"}


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_shipped_splits_are_valid_bilingual_and_disjoint():
    train = load_conversations(str(INSTRUCTIONS / "train.jsonl"))
    heldout = load_conversations(str(INSTRUCTIONS / "heldout.jsonl"))
    assert 150 <= len(train) <= 300 and 40 <= len(heldout) <= 60
    for convs in (train, heldout):
        prompts = [c[-2]["content"] for c in convs]
        assert sum(map(_has_chinese, prompts)) >= len(convs) // 4  # Chinese
        assert sum(not _has_chinese(p) for p in prompts) >= len(convs) // 4  # English
        assert any(c[0]["role"] == "system" for c in convs)
        assert any(len(c) > 3 for c in convs if c[0]["role"] != "system")  # multi-turn
        # answers stay short for a model with a 256-token context
        assert max(len(m["content"]) for c in convs for m in c) < 200
    as_text = lambda convs: {json.dumps(c, ensure_ascii=False) for c in convs}  # noqa: E731
    assert not as_text(train) & as_text(heldout)
    assert not _user_turns(train) & _user_turns(heldout)
    assert check_data(str(INSTRUCTIONS / "train.jsonl")).filtered == {}  # no duplicates


def test_shipped_examples_match_their_formats():
    expected = {"alpaca.json": ("alpaca", 5), "sharegpt.jsonl": ("sharegpt", 4),
                "prompt_completion.csv": ("prompt_completion", 4),
                "messages.parquet": ("messages", 3)}
    for name, (fmt, n) in expected.items():
        report = check_data(str(INSTRUCTIONS / "examples" / name))
        assert (report.format, report.n_kept) == (fmt, n), name
