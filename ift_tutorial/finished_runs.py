"""Finished runs, kept so that a second build of the book does not train the same thing twice.

The Chinese edition runs the same code cells as the English one. When chapter 7 asks
for a fresh run (``train(config, run_dir, fresh=True)``), :func:`ift_tutorial.training.train`
keeps a copy of the finished run folder under ``<runs>/.finished/<key>/``, where the key
is a hash of everything that decides the result: the whole config, whether it was
evaluated, and the package's own source code. With ``IFT_REUSE_RUNS=1`` in the
environment (``make book`` sets it for the Chinese build only), a fresh run whose key
is already there is copied from that folder instead of being trained again, and says so
in one printed line. Without the variable nothing is ever reused: the tests and the
English build always train.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .errors import UserFacingError
from .formatting import seconds
from .paths import PACKAGE_DIR, runs_dir

REUSE_ENV = "IFT_REUSE_RUNS"
LOCK_NAME = ".lock"  # the run lock (ift_tutorial.runlock) stays where it is


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
    print(f"reused the finished run of the same config and code ({REUSE_ENV}=1): "
          f"{metrics.get('steps')} steps, trained earlier in {seconds(metrics.get('train_seconds') or 0)}",
          flush=True)
    return metrics
