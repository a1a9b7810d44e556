"""Finished runs, kept so that a second build of the book does not train the same thing twice.

Both editions of the book run the same code cells. When chapter 7 asks for a fresh run
(``train(config, run_dir, fresh=True)``), :func:`ift_tutorial.training.trainer.train` keeps a
copy of a finished small run (the tiny preset, a rehearsal; never a 7B run) under
``<runs>/.finished/<key>/``, where the key is a hash of everything that decides the
result: the whole config, whether it was evaluated, and the package's own source code.

With ``IFT_REUSE_RUNS=1`` in the environment, a fresh run whose key is already there is
copied from that folder instead of being trained again; it prints the same summary lines
as a run trained now (:func:`ift_tutorial.training.progress.run_lines`, written from the
stored metrics), and nothing about being copied: a page never shows how the book was
built. Without the variable nothing
is ever reused: the tests always train. ``make book`` sets it for both editions, so the
pages show a run of the same config and code trained earlier (by ``make test``'s
notebook run, or by the English build for the Chinese one), or train it themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..paths import PACKAGE_DIR, is_large_model, runs_dir
from .progress import run_lines

REUSE_ENV = "IFT_REUSE_RUNS"
LOCK_NAME = ".lock"  # the run lock (ift_tutorial.training.runlock) stays where it is


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


def run_key(config: ExperimentConfig, evaluate: bool, extra: dict[str, Any] | None = None) -> str:
    """What decides a fresh run's result, hashed (the config, evaluation, the code, and
    ``extra``: what else a step after SFT starts from, such as its adapter's digest).

    Example:
        >>> from ift_tutorial.config import load_config
        >>> a = run_key(load_config("tiny"), evaluate=True)
        >>> a == run_key(load_config("tiny"), evaluate=True)
        True
        >>> a == run_key(load_config("tiny", ["training.max_steps=3"]), evaluate=True)
        False
    """
    recipe = {"config": config.to_dict(), "evaluate": evaluate, "code": package_fingerprint()}
    if extra:
        recipe["extra"] = extra
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


def worth_keeping(config: ExperimentConfig) -> bool:
    """Only small runs are kept: a 7B run's checkpoints would double its disk (or Drive) use."""
    return not is_large_model(config.model.name_or_path)


def keep_finished(config: ExperimentConfig, evaluate: bool, run_dir: Path,
                  extra: dict[str, Any] | None = None) -> Path:
    """Copy a finished fresh run into the store (replacing an older copy of the same key)."""
    target = store_dir() / run_key(config, evaluate, extra)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _copy_contents(run_dir, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # a half-written copy is never taken for a finished run
    return target


def reuse_finished(config: ExperimentConfig, evaluate: bool, run_dir: Path,
                   extra: dict[str, Any] | None = None,
                   lines: Callable[[dict[str, Any]], list[str]] = run_lines) -> dict[str, Any] | None:
    """With ``IFT_REUSE_RUNS=1``: fill ``run_dir`` from the finished run of the same key.

    Returns its metrics, or None (nothing reused: the caller trains). ``lines`` writes the
    summary lines the run printed from its metrics (DPO's differ from SFT's).
    """
    if not reuse_enabled():
        return None
    source = store_dir() / run_key(config, evaluate, extra)
    if not (source / "metrics.json").is_file():
        return None
    empty_folder(run_dir)
    _copy_contents(source, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    print("\n".join(lines(metrics)), flush=True)  # what the run printed when trained
    return metrics


def run_fresh(config: ExperimentConfig, evaluate: bool, run_dir: Path,
              body: Callable[[], dict[str, Any]], extra: dict[str, Any] | None = None,
              lines: Callable[[dict[str, Any]], list[str]] = run_lines) -> dict[str, Any]:
    """A fresh run: copied from an identical finished one (``IFT_REUSE_RUNS=1``), or ``body()``
    run in the emptied ``run_dir`` (its lock held by the caller), then kept.

    ``extra`` goes into the key (:func:`run_key`): what the run starts from besides its
    config; ``lines`` as in :func:`reuse_finished`.
    """
    reused = reuse_finished(config, evaluate, run_dir, extra, lines)
    if reused is not None:
        return reused
    empty_folder(run_dir)
    metrics = body()
    if worth_keeping(config):
        keep_finished(config, evaluate, run_dir, extra)
    return metrics
