"""``ift-tutorial dpo`` refuses bad input with exit status 2 and one line that names what
and where, before anything is loaded or written."""

from __future__ import annotations

import json

import pytest

from ift_tutorial import cli

GOOD = {"prompt": [{"role": "user", "content": "What is 7 + 5?"}],
        "chosen": [{"role": "assistant", "content": "12"}],
        "rejected": [{"role": "assistant", "content": "13"}]}


def _pairs(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("what, adapter, records, fragments", [
    ("a missing adapter", "{tmp}/no-adapter", [GOOD], ["--adapter", "no-adapter", "no such folder"]),
    ("a folder that is not an adapter", "{tmp}", [GOOD],
     ["--adapter", "not a PEFT adapter folder"]),
    ("a pair whose chosen and rejected are the same", "data/adapters/tiny-sft",
     [GOOD, {**GOOD, "rejected": GOOD["chosen"]}],
     ["pairs.jsonl, line 2, field 'rejected'", "the same answer"]),
    ("an empty prompt", "data/adapters/tiny-sft", [{**GOOD, "prompt": ""}],
     ["pairs.jsonl, line 1, field 'prompt'", "empty"]),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, what, adapter, records, fragments):
    data = _pairs(tmp_path / "pairs.jsonl", *records)
    out = tmp_path / "run"
    code = cli.main(["dpo", "--config", "tiny", "--adapter", adapter.format(tmp=tmp_path),
                     "--output-dir", str(out), "--set", f"dpo.train={data}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2, what
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(f in lines[0] for f in fragments), lines[0]
    assert not out.exists()  # nothing written
