"""Experiment configuration: YAML files under ``configs/`` parsed into dataclasses.

One config drives every command (``train``, ``evaluate``, ``generate``, ``merge``).
A preset is a config file by name: ``load_config("tiny")`` reads the package's
``configs/tiny.yaml``. Your own YAML file can start from a preset and change what
differs::

    base: qwen2.5-7b          # a preset name, or a path relative to this file
    data:
      train: my_data.jsonl    # relative to this file
    training:
      max_steps: 100

A mapping merges into the base's mapping; anything else (a number, a list) replaces
it. Command-line overrides use dotted keys, for example ``training.max_steps=50`` or
``lora.r=8``; values are parsed as YAML scalars.

Relative paths are resolved when the config is read: in a file, relative to that
file; in an override, relative to the working directory.

Unknown keys are an error (with the file and the key), never silently ignored: a
typo such as ``learnig_rate`` would otherwise train with the default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import UserFacingError
from .paths import CONFIGS_DIR, is_large_model, looks_like_local_path, model_path_override, resolve_path
from .rehearsal.preset import rehearse
from .instructions.sources import parse_source, parse_sources
from .settings import (DataSettings, DPOSettings, GRPOSettings, LoraSettings, ModelSettings,
                       TrainingSettings)


class ConfigError(UserFacingError):
    """A config file or override is invalid; the message names the file and the key."""


@dataclass
class ExperimentConfig:
    """A whole experiment: one YAML file.

    Example:
        >>> from ift_tutorial import load_config
        >>> cfg = load_config("qwen2.5-7b")
        >>> cfg.name, cfg.lora.r
        ('qwen2.5-7b', 16)
    """

    name: str = "tiny"
    description: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    dpo: DPOSettings = field(default_factory=DPOSettings)  # preference tuning after SFT
    grpo: GRPOSettings = field(default_factory=GRPOSettings)  # RL with a verifiable reward
    source: str | None = None  # the file this config was read from
    # Made by a rehearsal (IFT_REHEARSAL=1, ift_tutorial.rehearsal): model.load_from is a
    # shrunk random stand-in of model.name_or_path, and the outputs say so.
    rehearsal: bool = False

    def marker(self) -> dict[str, bool]:
        """``{"rehearsal": True}`` for the outputs of a rehearsed run, else ``{}``."""
        return {"rehearsal": True} if self.rehearsal else {}

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for saving next to the outputs); ``source`` is left out."""
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d


_SECTIONS = {
    "model": ModelSettings,
    "lora": LoraSettings,
    "data": DataSettings,
    "training": TrainingSettings,
    "dpo": DPOSettings,
    "grpo": GRPOSettings,
}


#: Config values that name files or folders: resolved relative to the file they are in.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("name_or_path", "chat_template", "load_from"),
    "data": ("train", "eval_exact_match", "eval_perplexity", "eval_ifeval", "eval_gsm8k",
             "eval_multiple_choice", "eval_refusal"),
    "dpo": ("train", "eval"),
    "grpo": ("train", "eval"),
}
#: How deep ``base:`` chains may go (a cycle is reported before this).
MAX_BASE_DEPTH = 8


def available_presets() -> list[str]:
    """Names of the experiment presets shipped in the package's ``configs/`` folder.

    Other YAML files there (the pretraining config, accelerate configs) are not presets.

    Example:
        >>> from ift_tutorial import available_presets
        >>> "tiny" in available_presets()
        True
    """
    names = []
    for p in sorted(CONFIGS_DIR.glob("*.yaml")):
        try:
            config_from_dict(read_config_file(p), where=str(p))
        except (ConfigError, TypeError):
            continue
        names.append(p.stem)
    return names


def find_config(name_or_path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """Turn a preset name (``tiny``) or a file path into the YAML file's path.

    A path is relative to ``base`` if given (the folder of the file that names it),
    else to the working directory. A bare name is a preset unless such a file exists.
    """
    s = str(name_or_path)
    candidates = [resolve_path(s, base) if base is not None else Path(s).expanduser()]
    if not s.endswith((".yaml", ".yml")) and "/" not in s and os.sep not in s:
        candidates.append(CONFIGS_DIR / f"{s}.yaml")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(
        f"config {s!r} not found: neither a file nor a preset; "
        f"presets: {', '.join(available_presets()) or 'none'}"
    )


_NUMBER_TYPES = {"float": float, "float | None": float, "int": int, "int | None": int}


def _number(value: Any, kind: type, key: str, where: str) -> Any:
    """A numeric field's value as a number: YAML reads ``2e-5`` (no dot) as text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise ConfigError(f"{where}: {key} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


#: The sensible range of a numeric field: a count of steps or examples of 0 or less, or a
#: negative rate, is a typo that would otherwise run (``max_steps=-1`` trains for 3 epochs).
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    ">=1": (lambda v: v >= 1, "at least 1"),
    ">0": (lambda v: v > 0, "greater than 0"),
    ">=0": (lambda v: v >= 0, "at least 0"),
    "[0,1)": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "[0,1]": (lambda v: 0 <= v <= 1, "between 0 and 1"),
}
_FIELD_RANGES: dict[type, dict[str, str]] = {
    ModelSettings: {"max_length": ">=1"},
    LoraSettings: {"r": ">=1", "alpha": ">0", "dropout": "[0,1)"},
    DataSettings: {"eval_ifeval_examples": ">=1", "eval_ifeval_max_new_tokens": ">=1",
                   "eval_gsm8k_examples": ">=1", "eval_gsm8k_max_new_tokens": ">=1",
                   "max_eval_examples": ">=1", "near_duplicate_threshold": "[0,1]",
                   "eval_multiple_choice_examples": ">=1", "eval_refusal_max_new_tokens": ">=1"},
    TrainingSettings: {"max_steps": ">=1", "per_device_train_batch_size": ">=1",
                       "gradient_accumulation_steps": ">=1", "learning_rate": ">0",
                       "warmup_ratio": "[0,1]", "weight_decay": ">=0", "max_grad_norm": ">=0",
                       "save_steps": ">=1", "save_total_limit": ">=1", "logging_steps": ">=1",
                       "num_threads": ">=1", "max_new_tokens": ">=1", "eval_batch_size": ">=1",
                       "eval_steps": ">=1", "eval_examples": ">=1"},
    DPOSettings: {"beta": ">0", "learning_rate": ">0", "max_steps": ">=1", "max_length": ">=1",
                  "per_device_train_batch_size": ">=1", "gradient_accumulation_steps": ">=1",
                  "warmup_ratio": "[0,1]", "logging_steps": ">=1", "save_steps": ">=1",
                  "save_total_limit": ">=1", "max_eval_examples": ">=1"},
    GRPOSettings: {"num_generations": ">=1", "max_completion_length": ">=1", "temperature": ">0",
                   "beta": ">=0", "learning_rate": ">0", "max_steps": ">=1",
                   "per_device_train_batch_size": ">=1", "logging_steps": ">=1",
                   "save_steps": ">=1", "max_eval_examples": ">=1"},
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    values = dict(values)
    for key, value in values.items():
        kind = _NUMBER_TYPES.get(str(fields[key].type))
        if kind is not None:
            values[key] = _number(value, kind, key, where)
        limit = _FIELD_RANGES.get(cls, {}).get(key)
        if limit is not None and values[key] is not None:
            ok, text = _RANGES[limit]
            if not ok(values[key]):
                raise ConfigError(f"{where}: {key} must be {text}, got {values[key]!r}")
    return cls(**values)


def config_from_dict(raw: dict[str, Any], where: str = "<dict>") -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a nested dict, rejecting unknown keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping, got {type(raw).__name__}")
    top = {k: v for k, v in raw.items() if k not in _SECTIONS and k != "base"}
    cfg = _build(ExperimentConfig, top, where)
    for name, cls in _SECTIONS.items():
        section = raw.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{where}: section '{name}' must be a mapping")
        setattr(cfg, name, _build(cls, section, f"{where}: section '{name}'"))
    _parse_data_sources(cfg, where)
    return cfg


def _parse_data_sources(cfg: ExperimentConfig, where: str) -> None:
    """Hub source mappings of the data, dpo and grpo sections as :class:`HubSource` objects."""
    data = cfg.data
    try:
        for key in ("train", "eval_perplexity", "eval_gsm8k"):
            setattr(data, key, parse_source(getattr(data, key), f"data.{key}"))
        data.eval_ifeval = parse_sources(data.eval_ifeval, "data.eval_ifeval")
        data.eval_multiple_choice = parse_sources(data.eval_multiple_choice,
                                                  "data.eval_multiple_choice")
        for name in ("dpo", "grpo"):
            section = getattr(cfg, name)
            for key in ("train", "eval"):
                setattr(section, key, parse_source(getattr(section, key), f"{name}.{key}"))
    except UserFacingError as err:
        raise ConfigError(f"{where}: {err}") from None


def merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config_paths(raw: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """Make the file and folder values of ``raw`` absolute (hub ids stay as they are).

    Args:
        raw: one layer of a config (a file's contents or the overrides).
        base: the folder of that file; None for overrides (the working directory, with
            the package's own files as a fallback).
    """
    for section, keys in PATH_FIELDS.items():
        values = raw.get(section)
        if not isinstance(values, dict):
            continue
        for key in keys:
            value = values.get(key)
            if isinstance(value, str) and value and looks_like_local_path(value, base):
                values[key] = str(resolve_path(value, base))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and isinstance(item.get("fixture"), str):
                    item["fixture"] = str(resolve_path(item["fixture"], base))  # a hub source's
            if isinstance(value, list):
                values[key] = [str(resolve_path(v, base)) if isinstance(v, str)
                               and looks_like_local_path(v, base) else v for v in value]
    return raw


def read_config_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a raw dict, its ``base:`` chain merged in and its paths resolved."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: 'base' chain loops back to itself ({chain})")
    if len(_seen) >= MAX_BASE_DEPTH:
        raise ConfigError(f"{path}: 'base' chain deeper than {MAX_BASE_DEPTH} files")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not raw:
        raise ConfigError(f"{path}: the config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(raw).__name__}")
    raw = resolve_config_paths(raw, path.parent)
    parent = raw.pop("base", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'base' must be a preset name or a file path, got {parent!r}")
    try:
        parent_path = find_config(parent, base=path.parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: base: {err}") from None
    return merge_dicts(read_config_file(parent_path, (*_seen, path)), raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a raw config dict (values parsed as YAML)."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. training.max_steps=50")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    return raw


def load_config(
    name_or_path: str | os.PathLike[str] = "tiny", overrides: list[str] | None = None
) -> ExperimentConfig:
    """Read a preset or YAML file, apply overrides, and validate every key.

    Args:
        name_or_path: a preset name (``tiny``, ``qwen2.5-7b``) or a path to a YAML file,
            which may start from a preset with ``base: NAME``.
        overrides: ``section.key=value`` strings, applied after the file is read.

    Returns:
        The validated config; its paths are absolute and ``source`` names the file.

    Example:
        >>> from ift_tutorial import load_config
        >>> cfg = load_config("tiny", ["training.max_steps=3"])
        >>> cfg.training.max_steps, cfg.model.load_in_4bit
        (3, True)
    """
    path = find_config(name_or_path)
    raw = read_config_file(path)
    raw = rehearse(raw)  # IFT_REHEARSAL=1 on a 7B preset: its stand-in (ift_tutorial.rehearsal)
    overrides = [*model_path_override(str(name_or_path)), *(overrides or [])]
    override_raw = resolve_config_paths(apply_overrides({}, overrides), None)
    raw = merge_dicts(raw, override_raw)
    cfg = config_from_dict(raw, where=str(path))
    cfg.source = str(path)
    return cfg


def scale(config: ExperimentConfig) -> str:
    """Which code path a run takes: ``"tiny"`` (the local tiny model) or ``"7b"`` (a 7B-scale
    model: a hub id, or a local folder of one, :func:`ift_tutorial.paths.is_large_model`).

    A rehearsal of a 7B preset is ``"7b"`` too: it exists to run the 7B path on a CPU.
    ``config.rehearsal`` says that its scores, those of a random stand-in, mean nothing, so
    the chapters branch on the scale and relax only their assertions about scores.

    Example:
        >>> scale(load_config("tiny")), scale(load_config("qwen2.5-7b"))
        ('tiny', '7b')
    """
    if config.rehearsal:
        return "7b"
    return "7b" if is_large_model(config.model.name_or_path) else "tiny"
