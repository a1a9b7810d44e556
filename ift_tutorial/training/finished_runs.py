"""Finished runs, kept so that a second build of the book does not train the same thing twice.

Both editions of the book run the same code cells. When chapter 7 asks for a fresh run
(``train(config, run_dir, fresh=True)``), :func:`ift_tutorial.training.trainer.train` keeps a
copy of a finished small run (the tiny preset, a rehearsal; never a 7B run) under
``<runs>/.finished/<key>/``, where the key is a hash of everything that decides the
result: the whole config, whether it was evaluated, and the package's own source code.

With ``IFT_REUSE_RUNS=1`` in the environment, a fresh run whose key is already there is
copied from that folder instead of being trained again; it prints what the run printed
when it was trained, and one line that says it was copied. Without the variable nothing
is ever reused: the tests always train. ``make book`` sets it for both editions, so the
pages show a run of the same config and code trained earlier (by ``make test``'s
notebook run, or by the English build for the Chinese one), or train it themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..formatting import seconds
from ..paths import PACKAGE_DIR, is_large_model, runs_dir

REUSE_ENV = "IFT_REUSE_RUNS"
LOCK_NAME = ".lock"  # the run lock (ift_tutorial.training.runlock) stays where it is
TRANSCRIPT = "transcript.txt"  # what the run printed, shown again when it is reused


def reuse_enabled() -> bool:
    """True when ``IFT_REUSE_RUNS=1``: fresh runs may be copied from finished ones.

    Example:
        >>> import os
        >>> os.environ.pop("IFT_REUSE_RUNS", None) and None
        >>> reuse_enabled()
        False
    """
    value = os.environ.get(REUSE_ENV, "0")
    if value not in ("0", "1"):
        raise UserFacingError(f"{REUSE_ENV}={value!r}: use 1 (reuse finished runs) or 0 (train)")
    return value == "1"


@cache
def package_fingerprint() -> str:
    """A hash of the package's Python sources: a changed package trains again."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_key(config: ExperimentConfig, evaluate: bool) -> str:
    """What decides a fresh run's result, hashed (the config, evaluation, the code).

    Example:
        >>> from ift_tutorial.config import load_config
        >>> a = run_key(load_config("tiny"), evaluate=True)
        >>> a == run_key(load_config("tiny"), evaluate=True)
        True
        >>> a == run_key(load_config("tiny", ["training.max_steps=3"]), evaluate=True)
        False
    """
    recipe = {"config": config.to_dict(), "evaluate": evaluate, "code": package_fingerprint()}
    blob = json.dumps(recipe, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def store_dir() -> Path:
    """Where finished runs are kept: ``<runs>/.finished``."""
    return runs_dir() / ".finished"


def empty_folder(folder: Path) -> None:
    """Remove everything in ``folder`` but the run lock (held by the caller)."""
    for child in folder.iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _copy_contents(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir():
            shutil.copytree(child, dst / child.name)
        else:
            shutil.copy2(child, dst / child.name)


class _Tee(io.TextIOBase):
    """Writes to a stream and keeps a copy."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def recording(run_dir: Path) -> Iterator[None]:
    """Print as usual, and save what was printed as the run's transcript."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    (run_dir / TRANSCRIPT).write_text(tee.copy.getvalue(), encoding="utf-8")


def worth_keeping(config: ExperimentConfig) -> bool:
    """Only small runs are kept: a 7B run's checkpoints would double its disk (or Drive) use."""
    return not is_large_model(config.model.name_or_path)


def keep_finished(config: ExperimentConfig, evaluate: bool, run_dir: Path) -> Path:
    """Copy a finished fresh run into the store (replacing an older copy of the same key)."""
    target = store_dir() / run_key(config, evaluate)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _copy_contents(run_dir, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # a half-written copy is never taken for a finished run
    return target


def reuse_finished(config: ExperimentConfig, evaluate: bool, run_dir: Path) -> dict[str, Any] | None:
    """With ``IFT_REUSE_RUNS=1``: fill ``run_dir`` from the finished run of the same key.

    Returns its metrics, or None (nothing reused: the caller trains).
    """
    if not reuse_enabled():
        return None
    source = store_dir() / run_key(config, evaluate)
    if not (source / "metrics.json").is_file():
        return None
    empty_folder(run_dir)
    _copy_contents(source, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    transcript = run_dir / TRANSCRIPT
    if transcript.is_file():  # the same lines as when it was trained
        print(transcript.read_text(encoding="utf-8"), end="", flush=True)
    print(f"(an identical earlier run, trained in {seconds(metrics.get('train_seconds') or 0)}, "
          f"copied instead of training again: {REUSE_ENV}=1)", flush=True)
    return metrics
