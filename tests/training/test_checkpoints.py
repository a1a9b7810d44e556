"""Crash-safe resume and reproducibility of ``ift-tutorial train`` on the tiny preset.

One uninterrupted run is the reference. A second run is killed with SIGKILL right after
its first checkpoint is marked complete, a half-written checkpoint is planted after it,
and the same command resumes: it must skip the half-written one, end at the same step,
and give the same loss curve and the *bit-identical* adapter (CPU, fixed seed, fp32
adapter weights). A third, independent run with the same config gives the same curve.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

from ift_tutorial.training import checkpoints
from ift_tutorial.training.checkpoints import (
    MARKER,
    check_complete,
    find_resume_checkpoint,
    mark_complete,
    resolve_resume,
    train_resuming,
    write_atomic,
)
from ift_tutorial.errors import UserFacingError
from ift_tutorial.paths import PROJECT_ROOT, display_path

STEPS = 6
# Small and fast: 8 examples a step, one thread, checkpoints every 2 steps, no evaluation.
OVERRIDES = [
    f"training.max_steps={STEPS}",
    "training.save_steps=2",
    "training.save_total_limit=3",
    "training.per_device_train_batch_size=8",
    "training.logging_steps=1",
    "training.num_threads=1",
]


def _cli(output_dir: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "ift_tutorial.cli", "train", "--config", "tiny",
            "--output-dir", str(output_dir), "--no-eval"]
    for o in OVERRIDES:
        args += ["--set", o]
    return args + list(extra)


def _train_in_process(output_dir: Path, resume: str = "auto") -> dict:
    from ift_tutorial.training.trainer import train

    return train(tiny_config(*OVERRIDES), output_dir, resume=resume, evaluate=False)


def _losses(output_dir: Path) -> list[float]:
    log = json.loads((output_dir / "log.json").read_text())
    return [e["loss"] for e in log if "loss" in e]


def _adapter(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "adapter" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run (in this process)."""
    out = tmp_path_factory.mktemp("reference")
    metrics = _train_in_process(out)
    assert metrics["steps"] == STEPS and metrics["resumed_from_step"] == 0
    return out


def test_killed_run_resumes_to_the_same_adapter(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli(out), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    first = out / "checkpoint-2" / MARKER
    deadline = time.monotonic() + 300
    while not first.exists():
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before its first checkpoint:\n"
                        + proc.stderr.read()[-3000:])
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists(), "the run finished before it was killed"

    # Plant what a kill in the middle of a save leaves behind: a newer checkpoint folder
    # with some of its files and no completion marker.
    newest = find_resume_checkpoint(out).checkpoint
    assert newest is not None
    done = int(Path(newest).name.split("-")[1])
    partial = out / f"checkpoint-{done + 2}"
    shutil.rmtree(partial, ignore_errors=True)  # the kill may have left a real one
    shutil.copytree(newest, partial)
    (partial / MARKER).unlink()
    (partial / "optimizer.pt").write_bytes(b"\0" * 10)

    metrics = _train_in_process(out)  # resume="auto", the command's default

    assert metrics["resumed_from_step"] == done
    assert metrics["steps"] == STEPS
    # The half-written folder was set aside, and the resumed run wrote that step afresh.
    assert (out / f"incomplete-checkpoint-{done + 2}").is_dir()
    assert check_complete(partial) is None
    assert _losses(out) == _losses(reference)
    a, b = _adapter(reference), _adapter(out)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == torch.float32
        assert torch.equal(a[name], b[name]), name


FAKE_TOKEN = "hf_fakeTOKEN123"


@pytest.fixture(scope="module")
def second_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The same command again, in a separate process (nothing left in this one can help),
    with a hub token in its environment."""
    out = tmp_path_factory.mktemp("again") / "run"
    env = {**os.environ, "HF_TOKEN": FAKE_TOKEN, "HUGGING_FACE_HUB_TOKEN": FAKE_TOKEN}
    proc = subprocess.run(_cli(out, "--resume", "never"), cwd=PROJECT_ROOT, env=env,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return out, proc


def test_token_never_reaches_outputs(second_run) -> None:
    # Secure default: a hub token is used, never printed or written (logs, configs,
    # checkpoints, metrics, the adapter folder).
    out, proc = second_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "metrics.json" for p in files) and len(files) > 20
    secret = FAKE_TOKEN.encode()
    assert [str(p.relative_to(out)) for p in files if secret in p.read_bytes()] == []
    assert secret not in proc.stdout and secret not in proc.stderr


def test_same_seed_same_loss_curve(reference: Path, second_run) -> None:
    out, _ = second_run
    assert len(_losses(out)) == STEPS
    assert _losses(out) == _losses(reference)
    a, b = _adapter(reference), _adapter(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_seed_gives_a_different_curve(reference: Path, tmp_path: Path) -> None:
    # The control for the test above: the comparison is able to tell runs apart.
    from ift_tutorial.training.trainer import train

    cfg = tiny_config(*OVERRIDES, "training.max_steps=2", "training.seed=1")
    train(cfg, tmp_path, resume="never", evaluate=False)
    assert _losses(tmp_path) != _losses(reference)[:2]


# --- the completion marker itself -----------------------------------------------------


def _copy_checkpoints(reference: Path, dest: Path) -> list[Path]:
    dest.mkdir()
    copies = []
    for step in (2, 4, 6):
        src = reference / f"checkpoint-{step}"
        if src.is_dir():
            copies.append(Path(shutil.copytree(src, dest / src.name)))
    return copies


def test_reference_checkpoints_are_marked_complete(reference: Path) -> None:
    found = checkpoints.list_checkpoints(reference)
    assert [s for s, _ in found] == [6, 4, 2]
    for _, folder in found:
        assert check_complete(folder) is None
        listed = json.loads((folder / MARKER).read_text())["files"]
        assert "adapter_model.safetensors" in listed and "optimizer.pt" in listed


@pytest.mark.parametrize("damage", ["no_marker", "truncated", "missing_file", "garbled_marker"])
def test_damaged_checkpoint_is_skipped(reference: Path, tmp_path: Path, damage: str, capsys) -> None:
    out = tmp_path / "out"
    _copy_checkpoints(reference, out)
    newest = out / "checkpoint-6"
    if damage == "no_marker":
        (newest / MARKER).unlink()
    elif damage == "truncated":
        data = (newest / "adapter_model.safetensors").read_bytes()
        (newest / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "missing_file":
        (newest / "trainer_state.json").unlink()
    else:
        (newest / MARKER).write_text("{not json")

    choice = resolve_resume(out, "auto")

    assert choice.checkpoint == str(out / "checkpoint-4")
    assert list(choice.skipped) == [str(newest)]
    assert "skipping incomplete checkpoint" in capsys.readouterr().out
    assert not newest.exists() and (out / "incomplete-checkpoint-6").is_dir()


def test_no_complete_checkpoint_means_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "adapter_model.safetensors").write_bytes(b"x")
    choice = resolve_resume(tmp_path, "auto")
    assert choice.checkpoint is None and len(choice.skipped) == 1


def test_explicit_resume_refuses_an_incomplete_checkpoint(tmp_path: Path) -> None:
    ck = tmp_path / "checkpoint-5"
    ck.mkdir()
    (ck / "trainer_state.json").write_text("{}")
    with pytest.raises(UserFacingError, match="no COMPLETE marker"):
        resolve_resume(tmp_path, str(ck))
    mark_complete(ck, step=5)
    assert resolve_resume(tmp_path, str(ck)).checkpoint == str(ck)
    assert resolve_resume(tmp_path, "never").checkpoint is None


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left behind


class _RecordingTrainer:
    """Stands in for a Trainer: records what ``train`` was asked to resume from."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def train(self, resume_from_checkpoint: str | None = None) -> str:
        self.asked.append(resume_from_checkpoint)
        return f"trained from {resume_from_checkpoint}"


def test_train_resuming_says_the_step_it_resumes_from(tmp_path: Path, capsys) -> None:
    ck = tmp_path / "checkpoint-4"
    ck.mkdir()
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    trainer = _RecordingTrainer()
    result, step, seconds = train_resuming(trainer, str(ck))
    assert (result, step) == (f"trained from {ck}", 4) and seconds >= 0
    assert capsys.readouterr().out == f"resuming from {display_path(ck)} (step 4)\n"
    result, step, _ = train_resuming(trainer, None)  # a fresh start: step 0, nothing said
    assert (result, step) == ("trained from None", 0) and capsys.readouterr().out == ""
    assert trainer.asked == [str(ck), None]
