"""Where the project's own files live, and how a path in a config is resolved.

The project ships two folders beside the package, at the root of the repository:

* ``configs/``: the presets, chat templates and accelerate configs;
* ``data/``: the tiny model, its task files, the instruction data, the evaluation sets,
  the hub sources' local fixtures and the shipped adapter.

A wheel carries both inside the package (``ift_tutorial/configs``, ``ift_tutorial/data``:
``pyproject.toml`` maps them there), so that a checkout, an editable install, a Colab
clone and an installed wheel find them through one function, :func:`shipped_dir`. In
both layouts ``configs/`` and ``data/`` are siblings, so a preset's ``../data/tiny-llama``
means the same file everywhere.

A relative path in a YAML config is relative to *that file* (a preset's
``../data/tiny-llama`` is the project's tiny model; a user's ``my_data.jsonl`` sits
next to the user's YAML). A relative path given on the command line or in Python is
relative to the working directory, with the project's own files as a fallback, so
that ``read_tasks("data/tasks/heldout.jsonl")`` finds the shipped file anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The installed package folder (inside site-packages for a wheel).
PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository checkout that holds the package, or None for an installed wheel.
PROJECT_ROOT: Path | None = (
    PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file()
    and (PACKAGE_DIR.parent / "book").is_dir() else None
)
#: The folder that holds ``configs/`` and ``data/``: the checkout, or the installed package.
SHIPPED_ROOT = PROJECT_ROOT if PROJECT_ROOT is not None else PACKAGE_DIR


def shipped_dir(name: str) -> Path:
    """The project's own folder ``name`` (``"data"`` or ``"configs"``), wherever it is installed.

    At the root of a checkout (an editable install, a Colab clone); inside the package for
    an installed wheel.

    Example:
        >>> shipped_dir("data").name, (shipped_dir("data") / "tiny-llama").is_dir()
        ('data', True)
    """
    if name not in ("data", "configs"):
        raise ValueError(f"the project ships 'data' and 'configs', not {name!r}")
    return SHIPPED_ROOT / name


CONFIGS_DIR = shipped_dir("configs")
DATA_DIR = shipped_dir("data")
#: The tiny Llama preset that the project pretrains and ships.
TINY_MODEL_DIR = DATA_DIR / "tiny-llama"

#: Suffixes that mark a config value as a file, never a hub id.
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".jinja", ".yaml", ".yml", ".txt")


def resolve_path(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a relative path against ``base``, or the working directory and the package.

    Args:
        path: an absolute path, or a relative one such as ``data/tasks/train.jsonl``.
        base: the folder the path is relative to (a config file's folder). When given,
            nothing else is tried.

    Returns:
        With ``base``: ``base / path``. Without: the working-directory candidate if it
        exists, else the package-data candidate if that exists, else the
        working-directory candidate (so that an error names where a file was expected).
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if base is not None:
        return (Path(base) / p).resolve()
    here = Path.cwd() / p
    if here.exists():
        return here
    shipped = SHIPPED_ROOT / p
    return shipped if shipped.exists() else here


def looks_like_local_path(name_or_path: str, base: str | os.PathLike[str] | None = None) -> bool:
    """True when ``name_or_path`` names a local file or folder rather than a hub id.

    Explicitly relative or absolute paths (``./x``, ``../x``, ``/x``, ``~/x``) and names
    with a file suffix are local; ``org/name`` is a hub id unless it exists on disk.
    """
    s = str(name_or_path)
    if s.startswith((".", "/", "~")) or s.endswith(FILE_SUFFIXES):
        return True
    return resolve_path(s, base).exists()


#: A model from this many parameters up is a "7B-scale" model: it needs a CUDA GPU to
#: train in useful time, and the chapters assert what tuning a real base does.
LARGE_MODEL_PARAMS = 1_000_000_000
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _params_from_config(config: dict) -> int:
    """A rough parameter count of a decoder from its ``config.json`` (embeddings, blocks)."""
    hidden = int(config.get("hidden_size") or config.get("n_embd") or 0)
    layers = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
    inter = int(config.get("intermediate_size") or 4 * hidden)
    vocab = int(config.get("vocab_size") or 0)
    return 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inter)


def is_large_model(name_or_path: str, base: str | os.PathLike[str] | None = None) -> bool:
    """True for a 7B-scale model: a hub id, or a local folder of one.

    A hub id (``Qwen/Qwen2.5-7B``) counts as large: the presets name 7-8B models. A local
    folder (a ModelScope download, ``--set model.name_or_path=./Qwen2.5-7B``) counts by
    its size: its weight files hold at least :data:`LARGE_MODEL_PARAMS` parameters at
    2 bytes each, or, without weights yet, its ``config.json`` describes that many.

    Example:
        >>> from ift_tutorial.paths import TINY_MODEL_DIR
        >>> is_large_model("Qwen/Qwen2.5-7B"), is_large_model(str(TINY_MODEL_DIR))
        (True, False)
    """
    if not looks_like_local_path(name_or_path, base):
        return True
    folder = resolve_path(str(name_or_path), base)
    if not folder.is_dir():
        return False
    weights = sum(p.stat().st_size for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES)
    if weights:
        return weights >= 2 * LARGE_MODEL_PARAMS
    config = folder / "config.json"
    if config.is_file():
        import json

        raw = json.loads(config.read_text(encoding="utf-8"))
        return _params_from_config(raw.get("text_config", raw)) >= LARGE_MODEL_PARAMS
    return False


def runs_dir(config: object | None = None) -> Path:
    """The folder that training runs go to by default.

    ``IFT_RUNS_DIR`` wins (on Colab, a folder on Google Drive survives the session).
    Otherwise ``runs/`` at the root of the checkout when working inside one (the book's
    notebooks run in ``book/chapters``), else ``runs/`` under the working directory:
    never inside the installed package. The runs of a rehearsal's ``config``
    (``config.rehearsal``) go to its ``rehearsal/`` subfolder, so that their shrunk random
    models never pass for real runs.

    Example:
        >>> import os
        >>> from ift_tutorial import runs_dir
        >>> os.environ["IFT_RUNS_DIR"] = "/content/drive/MyDrive/ift-runs"
        >>> str(runs_dir())
        '/content/drive/MyDrive/ift-runs'
    """
    env = os.environ.get("IFT_RUNS_DIR")
    if env:
        base = Path(env).expanduser()
    else:
        cwd = Path.cwd().resolve()
        inside = PROJECT_ROOT is not None and (cwd == PROJECT_ROOT or PROJECT_ROOT in cwd.parents)
        base = (PROJECT_ROOT if inside else cwd) / "runs"
    return base / "rehearsal" if getattr(config, "rehearsal", False) else base


def local_runs_dir(config: object | None = None) -> Path:
    """Like :func:`runs_dir`, on this machine's own disk: for outputs too large for Drive.

    ``IFT_LOCAL_RUNS_DIR`` wins (the Colab setup sets it when runs go to Google Drive,
    whose free quota of 15 GB a merged 7B model fills); otherwise :func:`runs_dir`.
    """
    env = os.environ.get("IFT_LOCAL_RUNS_DIR")
    if not env:
        return runs_dir(config)
    base = Path(env).expanduser()
    return base / "rehearsal" if getattr(config, "rehearsal", False) else base


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as a reader should see it: no machine-specific prefix.

    Relative to the working directory when under it; ``data/...`` and ``configs/...`` for
    the project's own files; ``<ift_tutorial>/...`` for the package's; relative to the
    checkout when inside it; else ``~/...`` or the folder's name.
    """
    p = Path(path).expanduser()
    if not p.is_absolute():
        return str(p)
    p = p.resolve()
    roots = ((Path.cwd().resolve(), ""), (DATA_DIR, "data/"), (CONFIGS_DIR, "configs/"),
             (PACKAGE_DIR, "<ift_tutorial>/"), (PROJECT_ROOT, ""), (Path.home().resolve(), "~/"))
    for root, prefix in roots:
        if root is not None and (p == root or root in p.parents):
            rel = p.relative_to(root).as_posix()
            return prefix + rel if rel != "." else (prefix.rstrip("/") or ".")
    return p.name


# --- the notebooks' preset and its model folder (IFT_PRESET, IFT_MODEL_PATH) ----------


def preset_from_env(default: str = "tiny") -> str:
    """The preset a notebook should use: ``IFT_PRESET`` if set, else ``default``."""
    return os.environ.get("IFT_PRESET", default)


MODEL_PATH_ENV = "IFT_MODEL_PATH"
_active_preset: str | None = None  # the notebook's preset, set by setup_notebook


def set_active_preset(name: str | None) -> None:
    """Name the preset that ``IFT_MODEL_PATH`` applies to (the notebooks' setup cell)."""
    global _active_preset
    _active_preset = name


def model_path_override(name: str) -> list[str]:
    """``IFT_MODEL_PATH``: a local folder of the active preset's model, as an override.

    Where the hub is slow or blocked, a reader downloads the model (from ModelScope, say)
    and sets ``IFT_MODEL_PATH=/path/to/Qwen2.5-7B``: every chapter then loads that folder
    for the notebook's preset (``IFT_PRESET``, or the setup cell's), and only for it, the
    way ``--set model.name_or_path=/path`` does on the command line.

    Example:
        >>> import os
        >>> os.environ.update(IFT_PRESET="qwen2.5-7b", IFT_MODEL_PATH="/models/Qwen2.5-7B")
        >>> model_path_override("qwen2.5-7b"), model_path_override("tiny")
        (['model.name_or_path=/models/Qwen2.5-7B'], [])
        >>> for k in ("IFT_PRESET", "IFT_MODEL_PATH"): del os.environ[k]
    """
    folder = os.environ.get(MODEL_PATH_ENV)
    if not folder or name not in {os.environ.get("IFT_PRESET"), _active_preset} - {None}:
        return []
    return [f"model.name_or_path={Path(folder).expanduser().absolute()}"]
