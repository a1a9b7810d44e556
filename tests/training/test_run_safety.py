"""One live run per output folder, and ranks that die with their launcher."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import small_train_file, tiny_config

from ift_tutorial.training import runlock
from ift_tutorial.training.checkpoints import check_complete, list_checkpoints
from ift_tutorial.paths import PROJECT_ROOT
from ift_tutorial.training.runlock import RunFolderBusy, RunLock, die_with_launcher, holder_pid

CPU_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}


def _torchrun_train(out: Path, *overrides: str) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ift_tutorial.cli", "train", "--config", "tiny", "--output-dir", str(out),
           "--no-eval"]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def _complete_steps(out: Path) -> list[int]:
    return [step for step, folder in list_checkpoints(out) if check_complete(folder) is None]


# --- the lock, in this process ---------------------------------------------------------


def test_lock_holds_the_pid_and_is_released_for_a_second_run(tmp_path: Path) -> None:
    # Chapter 7 resumes a run in the same kernel: the same process locks the folder again.
    with RunLock(tmp_path) as first:
        assert first.locked and holder_pid(tmp_path) == os.getpid()
        with pytest.raises(RunFolderBusy, match=f"PID {os.getpid()}"):
            RunLock(tmp_path).__enter__()  # a second holder at the same time is refused
    assert holder_pid(tmp_path) is None  # released: no PID left behind
    with pytest.raises(KeyError):
        with RunLock(tmp_path):
            raise KeyError("a run that fails")
    with RunLock(tmp_path) as again:  # ...still released
        assert again.locked


def test_no_lock_file_system_warns_once_and_goes_on(tmp_path: Path, monkeypatch, capsys) -> None:
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    monkeypatch.setattr(runlock, "_warned_no_locks", False)
    with RunLock(tmp_path / "drive") as lock:
        assert not lock.locked
        lock.share_verdict()  # nothing to refuse
    err = capsys.readouterr().err
    assert "has no file locks" in err and "drive" in err and str(tmp_path) not in err
    with RunLock(tmp_path / "drive"):
        pass
    assert capsys.readouterr().err == ""  # once per process


def test_other_lock_errors_are_not_swallowed(tmp_path: Path, monkeypatch) -> None:
    import fcntl

    def broken(fd: int, op: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(fcntl, "flock", broken)
    with pytest.raises(OSError, match="I/O error"):
        RunLock(tmp_path).__enter__()


HOLDER = """
import sys
from ift_tutorial.training.runlock import RunLock
RunLock(sys.argv[1]).__enter__()
print("held", flush=True)
sys.stdin.read()  # hold until killed
"""


def test_second_train_on_a_held_folder_exits_2_naming_the_holder(tmp_path: Path, capsys) -> None:
    from ift_tutorial import cli

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # the live run
    try:
        assert holder.stdout.readline() == "held\n"
        code = cli.main(["train", "--config", "tiny", "--output-dir", str(out), "--no-eval"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
        assert f"PID {holder.pid}" in err[0] and "in use by another training run" in err[0]
        assert {p.name for p in out.iterdir()} == {".lock"}  # the refused run wrote nothing
    finally:
        holder.kill()  # SIGKILL: no handler, no cleanup; the kernel drops the lock
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    with RunLock(out) as lock:  # no stale lock
        assert lock.locked


def test_train_releases_the_lock_when_it_fails(tmp_path: Path, monkeypatch) -> None:
    from ift_tutorial.training import trainer as training

    def fails(settings):
        assert holder_pid(tmp_path / "run") == os.getpid()  # held while the run works
        raise RuntimeError("the run fails")

    monkeypatch.setattr(training, "load_tokenizer", fails)
    with pytest.raises(RuntimeError, match="the run fails"):
        training.train(tiny_config(), tmp_path / "run", evaluate=False)
    with RunLock(tmp_path / "run") as lock:
        assert lock.locked


RANK = """
import os, sys
import torch.distributed as dist
from ift_tutorial.training.runlock import RunLock
dist.init_process_group("gloo", init_method="file://" + sys.argv[2],
                        rank=int(os.environ["RANK"]), world_size=2)
try:
    with RunLock(sys.argv[1]) as lock:  # rank 0 tries the lock, rank 1 only waits
        lock.share_verdict()
        print("trained", flush=True)
except Exception as err:
    print(f"{type(err).__name__}: {err}", flush=True)
"""


def test_a_refused_distributed_run_stops_every_rank(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunLock(out):  # this test process is the live run
        procs = [subprocess.Popen([sys.executable, "-c", RANK, str(out), str(tmp_path / "store")],
                                  env={**CPU_ENV, "RANK": str(r), "LOCAL_RANK": str(r),
                                       "WORLD_SIZE": "2"}, stdout=subprocess.PIPE, text=True)
                 for r in range(2)]
        said = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert said[0] == said[1], said  # the same message on both ranks
    assert said[0].startswith("RunFolderBusy: ") and f"PID {os.getpid()}" in said[0]


# --- parent-death signal ---------------------------------------------------------------


def test_die_with_launcher_is_a_no_op_without_a_launcher(monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert die_with_launcher() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_rank_whose_launcher_is_already_gone_exits(monkeypatch) -> None:
    # The race: the launcher dies before the request takes effect. Then the kernel has
    # already reparented us, getppid() changes, and the rank must stop by itself.
    class Libc:  # the real prctl would arm the signal on the test runner itself
        def __init__(self, *args, **kwargs) -> None:
            self.calls: list[tuple[int, ...]] = []

        def prctl(self, *args: int) -> int:
            self.calls.append(args)
            return 0

    libc = Libc()
    parents = iter([4242, 1])
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(runlock.ctypes, "CDLL", lambda *a, **k: libc)
    monkeypatch.setattr(os, "getppid", lambda: next(parents))
    with pytest.raises(SystemExit, match="launcher of this rank has exited"):
        die_with_launcher()
    assert libc.calls == [(runlock.PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)]


# --- two ranks under torchrun ----------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_ranks_die_with_a_killed_launcher_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    data = small_train_file(tmp_path / "train.jsonl", 64)  # 64 conversations: the ranks start sooner
    settings = [f"data.train={data}", "training.per_device_train_batch_size=2"]
    log = (tmp_path / "stderr.txt").open("w+")  # a file, not a pipe that could fill and block
    launcher = subprocess.Popen(
        _torchrun_train(out, *settings, "training.max_steps=1000", "training.save_steps=1",
                        "training.save_total_limit=2", "training.logging_steps=1",
                        "training.num_threads=2"),
        cwd=PROJECT_ROOT, env=CPU_ENV, stdout=subprocess.DEVNULL, stderr=log,
        start_new_session=True)
    ranks: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while not _complete_steps(out):  # the ranks are training and checkpointing
            assert launcher.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "no complete checkpoint in 240 s"
            time.sleep(0.2)
        ranks = psutil.Process(launcher.pid).children(recursive=True)
        assert len(ranks) == 2 and all("ift_tutorial.cli" in r.cmdline() for r in ranks)

        launcher.send_signal(signal.SIGKILL)  # as the OOM killer would: no handler runs
        killed = time.monotonic()
        launcher.wait(timeout=10)
        _, alive = psutil.wait_procs(ranks, timeout=10)
        assert not alive, f"ranks still running 10 s after the launcher died: {alive}"
        print(f"ranks gone {time.monotonic() - killed:.2f} s after the launcher was killed")
    finally:  # only if the test failed: leave no orphans behind
        if launcher.poll() is None:
            ranks = ranks or psutil.Process(launcher.pid).children(recursive=True)
            launcher.kill()
            launcher.wait()
        for r in ranks:
            with contextlib.suppress(psutil.NoSuchProcess):
                r.kill()
        log.close()

    # The newest complete checkpoint is usable: a new run (one process) resumes from it.
    from ift_tutorial.training.trainer import train

    last = max(_complete_steps(out))
    cfg = tiny_config(*settings, f"training.max_steps={last + 1}", f"training.save_steps={last + 1}",
                      "training.num_threads=1")
    metrics = train(cfg, out, resume="auto", evaluate=False)  # the dead run's lock is gone
    assert metrics["resumed_from_step"] == last and metrics["steps"] == last + 1
    history = json.loads((out / "log.json").read_text())
    assert [e["step"] for e in history if "loss" in e][-1] == last + 1
    assert all(check_complete(folder) is None for _, folder in list_checkpoints(out))
