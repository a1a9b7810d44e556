"""Runs that start from an SFT adapter: load it trainable, keep its weights exact, record it.

Reinforcement learning (:mod:`~ift_tutorial.training.grpo`) goes on training the adapter that
supervised tuning made (``ift-tutorial train`` writes ``OUTPUT_DIR/adapter``). Such a run
needs three things that :mod:`~ift_tutorial.training.trainer` does not:

* :func:`check_adapter_folder`: the folder is a PEFT adapter, said before anything loads;
* :func:`load_trainable_adapter`: the 4-bit base with the adapter on top, its LoRA weights
  trainable; bitsandbytes' CPU repacking stays off (:func:`ift_tutorial.loading.load_model`),
  since these trainers generate in eval/no_grad passes between their training steps;
* :func:`snapshot_trainable` / :func:`restore_trainable`: TRL casts trainable LoRA weights of
  a quantised model to bf16 when it builds a trainer. For a fresh adapter that is only a
  coarser start; for a tuned adapter it rounds away what SFT learnt. Restoring the exact
  weights (in :func:`~ift_tutorial.planning.hardware.trainable_dtype`) undoes it;
* :func:`adapter_fingerprint`: what shapes the run's weights (the base, the adapter's
  digest, the section's settings), recorded in ``run_config.json`` and checked on resume.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path
from typing import Any

import torch

from .provenance import file_sha256
from .run_config import fingerprint
from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..paths import display_path, resolve_path

#: The adapter's weights file in a PEFT folder.
WEIGHTS = "adapter_model.safetensors"
#: Settings of a ``dpo:``/``grpo:`` section that may change between a run and its resume.
SECTION_MAY_CHANGE = ("max_steps", "logging_steps", "save_steps", "save_total_limit", "eval",
                      "max_eval_examples", "num_threads")


def check_adapter_folder(adapter: str | os.PathLike[str] | None, option: str = "--adapter") -> Path:
    """The adapter folder as a path, or a one-line error saying what is wrong with it.

    Example:
        >>> check_adapter_folder("data/adapters/tiny-sft").name
        'tiny-sft'
    """
    if adapter is None or not str(adapter).strip():
        raise UserFacingError(f"{option}: give the SFT adapter to start from (a folder that "
                              "`ift-tutorial train` wrote as OUTPUT_DIR/adapter)")
    path = resolve_path(adapter)
    if not path.exists():
        raise UserFacingError(f"{option} {adapter}: no such folder")
    if not path.is_dir():
        raise UserFacingError(f"{option} {adapter}: a file, not an adapter folder")
    if not (path / "adapter_config.json").is_file():
        raise UserFacingError(f"{option} {adapter}: not a PEFT adapter folder "
                              "(no adapter_config.json)")
    if not (path / WEIGHTS).is_file():
        raise UserFacingError(f"{option} {adapter}: no {WEIGHTS} in it (safetensors only)")
    return path


def load_trainable_adapter(config: ExperimentConfig, adapter: str | os.PathLike[str]):
    """The config's 4-bit base with ``adapter`` on top, its LoRA weights trainable.

    Returns:
        ``(model, tokenizer)``; the model is a ``PeftModel`` in train mode.
    """
    from ..inference.generation import apply_adapter
    from ..loading import load_model, load_tokenizer, resolve_model_path
    from ..planning.ledger import add_adapter

    path = check_adapter_folder(adapter)
    tokenizer = load_tokenizer(config.model)
    base = load_model(config.model)
    model = apply_adapter(base, path, config, trainable=True)
    add_adapter(model, base)  # a GPU-memory ledger (a rehearsal's), if any, counts it too
    # The shipped adapter names its base relative to the checkout ("data/tiny-llama"); saving
    # would look for that folder from the working directory (and warn when it is elsewhere).
    # The run's adapter names the base it was trained on (its folder), as `train` writes it.
    for settings in model.peft_config.values():
        settings.base_model_name_or_path = resolve_model_path(config.model)
    model.train()
    return model, tokenizer


def snapshot_trainable(model: torch.nn.Module, dtype: torch.dtype = torch.float32
                       ) -> dict[str, torch.Tensor]:
    """A copy of every trainable parameter, in ``dtype``, by name."""
    return {n: p.detach().to(dtype).clone() for n, p in model.named_parameters() if p.requires_grad}


def restore_trainable(model: torch.nn.Module, snapshot: dict[str, torch.Tensor]) -> int:
    """Put the snapshot's values (and dtype) back; returns how many parameters it changed.

    A trainer may have wrapped the model since the snapshot, so names are matched by their
    ending (a wrapper adds a prefix).
    """
    n = 0
    for name, p in model.named_parameters():
        key = next((k for k in (name, *[name.split(".", i)[-1] for i in range(1, 3)])
                    if k in snapshot), None)
        if key is None or not p.requires_grad:
            continue
        value = snapshot[key]
        if p.dtype != value.dtype or not torch.equal(p.data.to(value.dtype), value):
            n += 1
        p.data = value.clone().to(p.device)
    return n


def adapter_fingerprint(config: ExperimentConfig, section: str, chat_template: str | None,
                        adapter: Path, data_file: str | None) -> dict[str, Any]:
    """What shapes a run after SFT: the model section, the chat template, the adapter it
    starts from (its weights' digest), the section's settings and its train file's digest.

    Example:
        >>> from ift_tutorial.config import load_config
        >>> a = adapter_fingerprint(load_config("tiny"), "grpo", None,
        ...                         Path("data/adapters/tiny-sft"), None)
        >>> a["grpo.num_generations"], "grpo.max_steps" in a, len(a["adapter (sha256)"])
        (8, False, 16)
    """
    base = fingerprint(config, chat_template)
    out = {k: v for k, v in base.items() if k.startswith("model.") or k.startswith("chat template")}
    settings = dataclasses.asdict(getattr(config, section))
    for key, value in settings.items():
        if not any(fnmatch.fnmatchcase(key, p) for p in SECTION_MAY_CHANGE):
            out[f"{section}.{key}"] = display_path(value) if key == "train" and \
                isinstance(value, str) else value
    out["adapter (sha256)"] = file_sha256(adapter / WEIGHTS)[:16]
    if data_file is not None and Path(data_file).is_file():
        out[f"{section}.train (sha256)"] = file_sha256(data_file)[:16]
    return dict(sorted(out.items()))
