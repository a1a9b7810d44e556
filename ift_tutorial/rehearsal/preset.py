"""What a rehearsal changes in a 7B preset's config, applied once where the config is made.

:func:`rehearse` works on the raw config (the YAML's dict, before command-line
overrides, which win) and returns an ordinary config for the rest of the package:

* ``model.load_from``: the stand-in folder (:func:`~ift_tutorial.rehearsal.standins.model_folder`),
  loaded instead of ``model.name_or_path``, which stays the real hub id (plans and reports
  use it); ``rehearsal: true`` says so;
* every hub data source is marked ``offline``: it reads its local fixture;
* training steps and evaluation examples are capped, and so are decoded answers
  (``model.max_new_tokens_cap``: a random model never stops), one CPU thread, fp32 on a GPU
  too. The lengths the config asks for stay the preset's own, so the ledger charges them;
* ``model.ledger_gpu``: the real model's GPU memory is charged against a T4 as the rehearsal
  runs (:mod:`ift_tutorial.planning.ledger`), and a flow that would not fit stops.

The scores of a random model mean nothing; a rehearsal checks that the pipeline runs.

Example::

    IFT_REHEARSAL=1 ift-tutorial train --config qwen2.5-7b --output-dir runs/r --set training.max_steps=2
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .standins import LAYERS, WIDTH, hub_tokenizer, model_class_name, model_folder

#: The environment variable that turns rehearsal on ("1", "true", "yes").
ENV = "IFT_REHEARSAL"

#: The GPU whose memory a rehearsal charges the real preset's against: the presets plan for
#: a free Colab T4 (``--set model.ledger_gpu=l4`` checks another).
TARGET_GPU = "t4"

# What a rehearsal caps. An explicit override (--set training.max_steps=5) still wins.
MAX_STEPS = 3  # training steps
MAX_EVAL_EXAMPLES = 16  # per held-out set
MAX_NEW_TOKENS = 8  # decoded per answer (model.max_new_tokens_cap)

# The defaults of the fields a rehearsal caps when the preset does not set them
# (ift_tutorial.config's TrainingSettings; tests/rehearsal checks that they agree).
DEFAULT_MAX_STEPS = 600
DEFAULT_SAVE_STEPS = 200

#: Data settings that may hold hub sources (a mapping, or a list of them).
SOURCE_KEYS = ("train", "eval_perplexity", "eval_ifeval", "eval_gsm8k", "eval_multiple_choice")
#: The sections after SFT (preference tuning, RL): their sources read fixtures, their steps
#: are capped like training's. Defaults of their max_steps as in ift_tutorial.settings.
POST_SFT_SECTIONS = {"dpo": 60, "grpo": 40}

_ANNOUNCED: set[str] = set()


def requested() -> bool:
    """True when ``IFT_REHEARSAL`` is set to 1/true/yes/on."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def applies_to(raw: dict[str, Any]) -> bool:
    """True when rehearsal is on and the raw config's model is a hub model it can stand in for.

    The tiny preset (a local folder) and unknown hub ids run as they are.
    """
    name = str((raw.get("model") or {}).get("name_or_path", ""))
    return requested() and hub_tokenizer(name) is not None


def rehearse(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw config as its rehearsal, when :func:`applies_to` it; else ``raw`` unchanged.

    Logging and checkpoints follow the capped steps, so that a run still logs each step
    and ends on a checkpoint. Prints one line, once per preset and process, that says so.

    Example:
        >>> import os
        >>> os.environ[ENV] = "1"
        >>> raw = rehearse({"model": {"name_or_path": "Qwen/Qwen2.5-7B"}, "training": {"max_steps": 90}})
        >>> raw["rehearsal"], raw["model"]["load_from"].endswith("Qwen--Qwen2.5-7B"), raw["training"]["max_steps"]
        (True, True, 3)
        >>> del os.environ[ENV]
    """
    if not applies_to(raw):
        return raw
    model = dict(raw["model"])
    hub_id, _ = hub_tokenizer(str(model["name_or_path"]))
    training, data = dict(raw.get("training") or {}), dict(raw.get("data") or {})
    steps = min(int(training.get("max_steps", DEFAULT_MAX_STEPS)), MAX_STEPS)
    training.update(
        max_steps=steps, logging_steps=1,
        save_steps=min(int(training.get("save_steps", DEFAULT_SAVE_STEPS)), steps),
    )
    if training.get("eval_steps"):  # the validation loss is measured after a step too
        training["eval_steps"] = min(int(training["eval_steps"]), steps)
    if not training.get("num_threads"):
        training["num_threads"] = 1  # matrices of width 64: more threads only wait for each other
    limit = data.get("max_eval_examples")
    data["max_eval_examples"] = MAX_EVAL_EXAMPLES if limit is None else min(int(limit), MAX_EVAL_EXAMPLES)
    for key in SOURCE_KEYS:
        if key in data:
            data[key] = _offline(data[key])
    post_sft = {name: _capped(dict(raw.get(name) or {}), default)
                for name, default in POST_SFT_SECTIONS.items()}
    model["load_from"] = str(model_folder(hub_id))  # local: no download, no hub token
    if model.get("instruct_reference"):  # the maker's Instruct model: the same stand-in
        model["instruct_reference_load_from"] = model["load_from"]
    model.setdefault("ledger_gpu", TARGET_GPU)  # the real model's bytes, charged as it runs
    model.setdefault("max_new_tokens_cap", MAX_NEW_TOKENS)
    import torch

    if torch.cuda.is_available():  # on a CPU "auto" is fp32 already
        model["compute_dtype"] = "fp32"
    announce(raw.get("name") or hub_id, hub_id)
    return {**raw, "rehearsal": True, "model": model, "training": training, "data": data,
            **post_sft}


def _capped(section: dict[str, Any], default_steps: int) -> dict[str, Any]:
    """A ``dpo:``/``grpo:`` section with its steps capped and its hub sources offline."""
    steps = min(int(section.get("max_steps", default_steps)), MAX_STEPS)
    section.update(max_steps=steps, logging_steps=1,
                   save_steps=min(int(section.get("save_steps", default_steps)), steps))
    for key in ("train", "eval"):
        if key in section:
            section[key] = _offline(section[key])
    limit = section.get("max_eval_examples")
    section["max_eval_examples"] = MAX_EVAL_EXAMPLES if limit is None else min(
        int(limit), MAX_EVAL_EXAMPLES)
    return section


def _offline(value: Any) -> Any:
    """A data setting with each hub source mapping marked ``offline: true`` (its fixture is read)."""
    if isinstance(value, list):
        return [_offline(v) for v in value]
    if isinstance(value, dict) and "hub" in value:
        return {**value, "offline": True}
    return value


def announce(preset: str, hub_id: str) -> None:
    """The one line that says a run is a rehearsal (once per preset and process, on stderr)."""
    if preset in _ANNOUNCED:
        return
    _ANNOUNCED.add(preset)
    print(f"REHEARSAL ({ENV}=1): {preset} runs as random weights of its real {model_class_name(hub_id)} "
          f"shrunk to {LAYERS} layers of width {WIDTH}, with a stand-in tokenizer "
          "(the tiny one plus the preset's special tokens and chat template); at most "
          f"{MAX_STEPS} training steps, {MAX_EVAL_EXAMPLES} evaluation examples per set and "
          f"{MAX_NEW_TOKENS} new tokens; fp32; no GPU and no hub token needed. Its scores mean "
          "nothing: it checks the pipeline.", file=sys.stderr, flush=True)
