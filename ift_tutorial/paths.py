"""Where the project's own files live: configs, shipped data and artefacts.

Paths in YAML configs are written relative to the project root (the folder that
holds ``configs/`` and ``data/``), so that a config works from any working
directory: a notebook in ``book/``, a terminal at the root, or a Colab runtime.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The project root. ``IFT_TUTORIAL_HOME`` overrides it (e.g. a clone elsewhere).
PROJECT_ROOT = Path(os.environ.get("IFT_TUTORIAL_HOME", Path(__file__).resolve().parents[1]))
CONFIGS_DIR = PROJECT_ROOT / "configs"
DATA_DIR = PROJECT_ROOT / "data"
#: The tiny Llama preset that the project pretrains and ships.
TINY_MODEL_DIR = DATA_DIR / "tiny-llama"


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` against the working directory first, then the project root.

    Args:
        path: an absolute path, a path relative to the working directory, or a path
            relative to the project root such as ``data/tasks/train.jsonl``.

    Returns:
        The first candidate that exists, else the project-root candidate (so that an
        error message names the place the project expected the file to be).
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


def looks_like_local_path(name_or_path: str) -> bool:
    """True when ``name_or_path`` names a local folder rather than a hub id."""
    return (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.startswith("data/")
        or resolve_path(name_or_path).exists()
    )
