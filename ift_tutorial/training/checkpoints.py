"""Crash-safe checkpoints: resume only from a checkpoint that was written completely.

The trainer writes ``OUTPUT_DIR/checkpoint-N/`` file by file (adapter, optimizer,
scheduler, RNG states, ``trainer_state.json``). A run killed in the middle of that
(out of memory, a Colab session ending, Ctrl-C twice, ``kill -9``) leaves a folder
that *looks* like a checkpoint but is not one: the newest-folder rule of
``transformers.trainer_utils.get_last_checkpoint`` would resume from it and fail,
or worse, resume from a truncated optimizer state.

The fix is the one databases use: write everything, flush it to disk, then write a
small marker file ``COMPLETE`` *atomically* (write a temporary file, then rename it:
a rename is all-or-nothing). The marker lists each file with its size. On resume,
only folders whose marker exists and whose files still match it count; the others
are reported and moved out of the way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

from . import distributed
from ..paths import display_path

if TYPE_CHECKING:
    from transformers import Trainer
    from transformers.trainer_utils import TrainOutput

logger = logging.getLogger(__name__)

MARKER = "COMPLETE"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory entry itself is on disk.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _listing(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file under ``folder`` except the marker."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MARKER and not p.name.startswith(f".{MARKER}"):
            files[p.relative_to(folder).as_posix()] = p.stat().st_size
    return files


def mark_complete(checkpoint_dir: str | os.PathLike[str], step: int | None = None) -> Path:
    """Flush every file of a finished checkpoint to disk, then write its marker atomically."""
    folder = Path(checkpoint_dir)
    files = _listing(folder)
    for rel in files:
        _fsync_file(folder / rel)
    _fsync_dir(folder)
    marker = folder / MARKER
    write_atomic(marker, json.dumps({"step": step, "files": files}, indent=1) + "\n")
    return marker


def check_complete(checkpoint_dir: str | os.PathLike[str]) -> str | None:
    """``None`` if the checkpoint is complete, else the reason it is not."""
    folder = Path(checkpoint_dir)
    marker = folder / MARKER
    if not marker.is_file():
        return f"no {MARKER} marker (the save was interrupted)"
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return f"unreadable {MARKER} marker"
    if not files:
        return f"{MARKER} marker lists no files"
    for rel, size in files.items():
        p = folder / rel
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != size:
            return f"{rel} has {p.stat().st_size} bytes, the marker says {size}"
    return None


@dataclass
class ResumeChoice:
    """Which checkpoint to resume from, and which ones were passed over and why."""

    checkpoint: str | None  # None: start from scratch
    skipped: dict[str, str] = field(default_factory=dict)  # folder -> reason


def list_checkpoints(output_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder, newest first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = []
    for p in out.iterdir():
        m = _CHECKPOINT_RE.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def find_resume_checkpoint(output_dir: str | os.PathLike[str]) -> ResumeChoice:
    """The newest COMPLETE checkpoint under ``output_dir``; incomplete newer ones are listed."""
    choice = ResumeChoice(checkpoint=None)
    for _, folder in list_checkpoints(output_dir):
        reason = check_complete(folder)
        if reason is None:
            choice.checkpoint = str(folder)
            break
        choice.skipped[str(folder)] = reason
    return choice


def set_aside(folder: str | os.PathLike[str]) -> Path:
    """Rename an incomplete checkpoint so that neither resume nor rotation ever picks it up.

    The training run that resumes will write ``checkpoint-N`` again from scratch; the
    old partial files must not mix into it. They are kept (renamed) rather than deleted
    so that nothing a user might want disappears without a trace.
    """
    folder = Path(folder)
    target = folder.with_name(f"incomplete-{folder.name}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"incomplete-{folder.name}-{n}")
    shutil.move(str(folder), str(target))
    return target


def resolve_resume(output_dir: str | os.PathLike[str], resume: str) -> ResumeChoice:
    """Turn the ``--resume`` option into a checkpoint path (or None) for ``trainer.train``.

    Args:
        output_dir: the run's output folder.
        resume: "auto" (newest complete checkpoint, if any), "never", or a checkpoint folder
            (which must be complete).

    With "auto", incomplete checkpoints newer than the chosen one are reported (warning)
    and, on the main process, renamed to ``incomplete-checkpoint-N``.
    """
    if resume == "never":
        return ResumeChoice(checkpoint=None)
    if resume != "auto":
        reason = check_complete(resume)
        if reason is not None:
            from ..errors import UserFacingError

            raise UserFacingError(f"cannot resume from {resume}: {reason}")
        return ResumeChoice(checkpoint=str(resume))
    choice = find_resume_checkpoint(output_dir)
    for folder, reason in choice.skipped.items():
        logger.warning("skipping incomplete checkpoint %s: %s", display_path(folder), reason)
        print(f"skipping incomplete checkpoint {display_path(folder)}: {reason}", flush=True)
    distributed.barrier()  # every rank decides before rank 0 renames anything
    if distributed.is_main_process():
        for folder in choice.skipped:
            set_aside(folder)
    distributed.barrier()
    return choice


def train_resuming(trainer: Trainer, checkpoint: str | None) -> tuple[TrainOutput, int, float]:
    """``trainer.train()`` from ``checkpoint`` (None: from scratch), said and timed.

    Args:
        trainer: a ``transformers.Trainer`` (TRL's trainers are ones), callbacks in place.
        checkpoint: what :func:`resolve_resume` chose (``ResumeChoice.checkpoint``).

    Returns:
        ``(result, step_at_start, train_seconds)``: what ``train`` returned, the step the
        checkpoint had reached (its ``trainer_state.json``; 0 from scratch), and the seconds
        ``train`` took.
    """
    step_at_start = 0
    if checkpoint:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
        step_at_start = int(state.get("global_step", 0))
        print(f"resuming from {display_path(checkpoint)} (step {step_at_start})", flush=True)
    train_start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    return result, step_at_start, time.perf_counter() - train_start


class CompleteMarkerCallback(TrainerCallback):
    """After the trainer saves ``checkpoint-N``, mark it complete (rank 0, after all ranks).

    ``on_save`` runs right after ``Trainer._save_checkpoint`` returns, on every rank. Each
    rank writes its own RNG state file into the checkpoint, so rank 0 waits for all of
    them (barrier) before it writes the marker.
    """

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        distributed.barrier()
        if distributed.is_main_process() and folder.is_dir():
            mark_complete(folder, step=state.global_step)
        distributed.barrier()
