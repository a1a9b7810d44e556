"""A run knows what it is: ``run_config.json`` records what shapes its weights, and a resume
with other values is refused, naming each difference (ift_tutorial.training.run_config).

One base run (2 steps, a checkpoint at each) is copied for each case; a refused resume
stops right after the tokenizer loads, before the model does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import small_train_file, tiny_config

from ift_tutorial.errors import UserFacingError
from ift_tutorial.paths import TINY_MODEL_DIR
from ift_tutorial.training.checkpoints import MARKER, check_complete, list_checkpoints, mark_complete
from ift_tutorial.training.run_config import (
    DATA_KEY,
    FILE,
    TEMPLATE_KEY,
    RunConfigMismatch,
    differences,
    fingerprint,
    read_record,
)

FAST = ["training.per_device_train_batch_size=4", "training.save_steps=1",
        "training.save_total_limit=2", "training.logging_steps=1", "training.num_threads=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return small_train_file(tmp_path_factory.mktemp("data") / "train.jsonl", 16)


def _cfg(data: Path, *overrides: str):
    return tiny_config(f"data.train={data}", *FAST, "training.max_steps=2", *overrides)


def _train(cfg, out: Path, resume: str = "auto") -> dict:
    from ift_tutorial.training.trainer import train

    return train(cfg, out, resume=resume, evaluate=False)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    metrics = _train(_cfg(data), out)
    assert metrics["steps"] == 2 and metrics["resumed_from_step"] == 0
    return out


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A copy of the base run, for one test to resume or refuse."""
    out = tmp_path / "run"
    shutil.copytree(base_run, out, ignore=shutil.ignore_patterns(".lock"))
    return out


def _refused(cfg, out: Path) -> str:
    def files() -> dict[Path, int]:
        return {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")
                if p.is_file() and p.name != ".lock"}

    before = files()
    with pytest.raises(RunConfigMismatch) as info:
        _train(cfg, out)
    after = files()
    assert after == before  # nothing written, nothing set aside
    message = str(info.value)
    assert "--resume never" in message and "--output-dir" in message
    return message


# --- what is recorded ------------------------------------------------------------------------


def test_the_record_holds_what_shapes_the_weights_and_nothing_else(tmp_path):
    fp = fingerprint(tiny_config(), "{{ messages }}")
    for key in ("model.name_or_path", "model.revision", "model.load_in_4bit", "model.quant_type",
                "model.double_quant", "model.compute_dtype", "model.max_length",
                "model.chat_template", "lora.r", "lora.alpha", "lora.dropout",
                "lora.target_modules", "data.train", "data.system_prompt", "data.deduplicate",
                "training.learning_rate", "training.per_device_train_batch_size",
                "training.gradient_accumulation_steps", "training.lr_scheduler_type",
                "training.warmup_ratio", "training.weight_decay", "training.seed",
                "training.optim", "rehearsal", TEMPLATE_KEY, DATA_KEY):
        assert key in fp, key
    for key in ("training.max_steps", "training.save_steps", "training.logging_steps",
                "training.num_threads", "training.max_new_tokens", "training.eval_batch_size",
                "data.eval_exact_match", "data.max_eval_examples", "model.load_from", "name"):
        assert key not in fp, key
    # The project's own files are recorded relative to it: no machine path, and a moved
    # checkout still matches.
    assert fp["model.name_or_path"] == "data/tiny-llama" and fp["data.train"] == "data/tasks/train.jsonl"
    allowed = tiny_config("training.max_steps=7", "training.save_steps=3", "training.logging_steps=2",
                          "training.num_threads=1", "data.max_eval_examples=5",
                          "data.eval_gsm8k=null", "training.eval_batch_size=2",
                          "training.max_new_tokens=4")
    assert differences(fp, fingerprint(allowed, "{{ messages }}")) == []
    # The content counts: the same file with other conversations is another data set.
    own = small_train_file(tmp_path / "train.jsonl", 8)
    a = fingerprint(tiny_config(f"data.train={own}"), "t")
    small_train_file(own, 9)
    b = fingerprint(tiny_config(f"data.train={own}"), "t")
    assert differences(a, b) == [f"{DATA_KEY}: {a[DATA_KEY]} -> {b[DATA_KEY]}"]


def test_a_rehearsals_stand_in_folder_is_not_recorded_but_the_rehearsal_is(monkeypatch):
    from ift_tutorial.config import load_config
    from ift_tutorial.rehearsal import preset as edge, standins

    monkeypatch.setenv(edge.ENV, "1")
    first = load_config("olmo-2-7b")
    monkeypatch.setattr(standins, "_ROOT", None)  # as in another process: another temporary folder
    monkeypatch.setattr(standins, "_BUILT", {})
    second = load_config("olmo-2-7b")
    assert first.model.load_from != second.model.load_from
    a, b = fingerprint(first, "t"), fingerprint(second, "t")
    assert a == b and a["rehearsal"] is True and a["model.name_or_path"] == "allenai/OLMo-2-1124-7B"
    monkeypatch.delenv(edge.ENV)
    real = differences(a, fingerprint(load_config("olmo-2-7b"), "t"))  # the real run: not the same
    assert "rehearsal: true -> false" in real and "data.train.offline: true -> false" in real


# --- resuming ---------------------------------------------------------------------------------


def test_the_run_and_each_checkpoint_hold_the_record(base_run, data):
    recorded = read_record(base_run)
    assert recorded is not None and recorded["lora.r"] == 16
    for _, folder in list_checkpoints(base_run):
        assert read_record(folder) == recorded
        listed = json.loads((folder / MARKER).read_text())["files"]
        assert FILE in listed  # written before the marker: part of the complete checkpoint
    assert recorded["model.name_or_path"] == "data/tiny-llama" and recorded["data.train"] == str(data)


def test_the_same_config_resumes_with_other_steps_logging_evaluation_and_threads(run, data):
    metrics = _train(_cfg(data, "training.max_steps=3", "training.logging_steps=2",
                          "training.save_steps=3", "training.num_threads=null",
                          "data.max_eval_examples=4", "training.eval_batch_size=2"), run)
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 3


@pytest.mark.parametrize("change, named", [
    (["lora.r=8"], ["lora.r: 16 -> 8"]),
    (["training.learning_rate=1e-3"], ["training.learning_rate: 0.002 -> 0.001"]),
    (["data.system_prompt=Be brief."], ["data.system_prompt: null -> Be brief."]),
])
def test_other_settings_refuse_naming_each_difference(run, data, change, named):
    message = _refused(_cfg(data, *change), run)
    assert message.startswith("cannot resume run from checkpoint-2: it was trained with other settings")
    for line in named:
        assert line in message
    assert message.count(" -> ") == len(named)  # nothing else is named
    assert str(run.parent) not in message  # no machine path in what the CLI prints


def test_another_base_model_refuses(run, data, tmp_path):
    other = tmp_path / "other-llama"
    shutil.copytree(TINY_MODEL_DIR, other)
    message = _refused(_cfg(data, f"model.name_or_path={other}"), run)
    assert "model.name_or_path: data/tiny-llama -> other-llama" in message


def test_another_data_file_refuses(run, data, tmp_path):
    other = small_train_file(tmp_path / "more.jsonl", 24)
    message = _refused(_cfg(data, f"data.train={other}"), run)
    assert f"data.train: {data.name} -> more.jsonl" in message and f"{DATA_KEY}: " in message


def test_another_chat_template_refuses(run, data, tmp_path):
    template = tmp_path / "mine.jinja"
    template.write_text((TINY_MODEL_DIR / "chat_template.jinja").read_text().replace(
        "<|assistant|>", "<|assistant|> "), encoding="utf-8")
    message = _refused(_cfg(data, f"model.chat_template={template}"), run)
    assert "model.chat_template: null -> mine.jinja" in message and f"{TEMPLATE_KEY}: " in message


def test_the_cli_prints_the_refusal_as_one_line_and_exits_2(run, data, capsys):
    from ift_tutorial import cli

    args = ["train", "--config", "tiny", "--output-dir", str(run), "--no-eval"]
    for o in [f"data.train={data}", *FAST, "training.max_steps=3", "lora.r=8", "lora.alpha=8"]:
        args += ["--set", o]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot resume"), err
    assert "lora.alpha: 32 -> 8; lora.r: 16 -> 8" in err[0]


def test_a_folder_without_a_record_resumes_as_before(run, data):
    (run / FILE).unlink()
    for _, folder in list_checkpoints(run):  # as a checkpoint saved before records existed
        (folder / FILE).unlink()
        mark_complete(folder, step=int(folder.name.split("-")[1]))
    metrics = _train(_cfg(data, "training.max_steps=3"), run)
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 3
    assert read_record(run)["lora.r"] == 16  # recorded from now on


def test_resume_never_starts_over_and_a_leftover_checkpoint_still_refuses(run, data):
    """--resume never trains from step 0 in the same folder: it replaces the record, and a
    checkpoint of the old run that was not yet overwritten still says what made it."""
    metrics = _train(_cfg(data, "lora.r=8", "training.max_steps=1"), run, resume="never")
    assert metrics["resumed_from_step"] == 0 and read_record(run)["lora.r"] == 8
    assert read_record(run / "checkpoint-1")["lora.r"] == 8  # overwritten by the new run
    assert read_record(run / "checkpoint-2")["lora.r"] == 16  # the old run's, still there
    assert check_complete(run / "checkpoint-2") is None
    message = _refused(_cfg(data, "lora.r=8", "training.max_steps=3"), run)
    assert "checkpoint-2" in message and "lora.r: 16 -> 8" in message
