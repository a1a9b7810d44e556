"""What the package prints for a reader names files without the machine's prefixes."""

from __future__ import annotations

import re

from ift_tutorial.checkpoints import resolve_resume
from ift_tutorial.instruction_data import DataReport
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
