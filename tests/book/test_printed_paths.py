"""What the package prints for a reader names files without the machine's prefixes."""

from __future__ import annotations

import re

import pytest

from ift_tutorial.training.checkpoints import resolve_resume
from ift_tutorial.instructions.dataset import DataReport
from ift_tutorial.paths import DATA_DIR

MACHINE = re.compile(r"/root/|/home/|/tmp/|/content/|/work/|site-packages")


def test_data_report_names_the_file_without_a_machine_prefix():
    path = DATA_DIR / "instructions" / "train.jsonl"
    text = str(DataReport(path=str(path), format="messages", n_read=3, n_kept=3))
    first = text.splitlines()[0]
    assert first.endswith("instructions/train.jsonl: 3 conversations read (messages format), 3 kept")
    assert not MACHINE.search(text), text


def test_hub_ids_stay_as_they_are():
    text = str(DataReport(path="tatsu-lab/alpaca", format="alpaca", n_read=1, n_kept=1))
    assert text.startswith("tatsu-lab/alpaca: 1 conversations read")


def test_skipped_checkpoint_is_named_without_a_machine_prefix(tmp_path, capsys):
    (tmp_path / "checkpoint-4").mkdir()  # no COMPLETE marker: skipped and set aside
    choice = resolve_resume(tmp_path, "auto")
    assert choice.checkpoint is None and len(choice.skipped) == 1
    out = capsys.readouterr()
    assert "skipping incomplete checkpoint checkpoint-4: " in out.out
    assert not MACHINE.search(out.out + out.err), out
    assert (tmp_path / "incomplete-checkpoint-4").is_dir()


def test_data_errors_name_file_line_and_field_without_a_machine_prefix(tmp_path):
    from ift_tutorial.errors import DataError
    from ift_tutorial.instructions.dataset import load_conversations

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "x"}]}\n'
                      '{"messages": [{"role": "user", "content": "cut in half\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_conversations(str(broken))
    message, path = str(caught.value), caught.value.path
    assert message.startswith("broken.jsonl, line 1, field 'messages[1].role': unknown role 'bot'")
    assert "2 invalid records in broken.jsonl" in message and not MACHINE.search(message), message
    assert path == str(broken)  # the attribute keeps the full path, for code
