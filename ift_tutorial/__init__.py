"""ift_tutorial: the companion package of the book *Instruction fine-tuning a 7B LLM with QLoRA*.

The public API is what ``__all__`` lists; it is re-exported here, so that a project
that reuses the package writes ``from ift_tutorial import load_config, train``.
Everything else may change between versions. The names are imported on first use,
so ``import ift_tutorial`` stays light (the command line starts fast, and a bad
config fails before torch is imported).

A typical run, the same for the tiny preset on a CPU and a 7B preset on a GPU::

    from ift_tutorial import load_config, train, evaluate_config, generate

    config = load_config("my_config.yaml")      # may start from a preset: base: qwen2.5-7b
    metrics = train(config, "runs/mine")         # adapter in runs/mine/adapter
    report = evaluate_config(config, adapter="runs/mine/adapter")
    print(generate(config, ["What is 7 + 8?"], adapter="runs/mine/adapter"))

The package's layout shows the three kinds of code the book has, and the stages of a run.
At the top sit the concepts every stage uses: ``config`` (presets and YAML files, where a
rehearsal is applied), ``loading`` (a 4-bit base model and its tokenizer), ``paths``,
``errors``, ``i18n`` (the edition's language) and ``formatting`` (numbers for people),
``jsonl``, ``quiet`` and the ``cli``. Around them, one subpackage per stage or kind:

* **the production pipeline**, built on transformers, peft, trl, bitsandbytes, datasets
  and accelerate: ``instructions`` (formats, files, hub sources, checks: chapter 5),
  ``training`` (the trainer, checkpoints, the run lock, distributed launch: chapters 7
  and 10), ``evaluation`` (one module per suite, a runner and a report: chapter 8),
  ``inference`` (generation and merging: chapter 8), ``planning`` (architectures,
  hardware, the memory planner and the dry run: chapter 6);
* **from-scratch teaching code**, each module checked against the production library it
  explains and never imported by the pipeline: ``scratch`` (attention and seq2seq,
  chapters 2-3; the Llama block, chapter 4; NF4 and LoRA, chapter 6);
* **what makes the two scales**: ``tinyworld`` (the bilingual world, tokenizer,
  pretraining and tasks behind the tiny preset: chapter 1) and ``rehearsal`` (a 7B
  preset's stand-ins, so that its code path runs on a CPU);
* **the book's own helpers**: ``book`` (the notebooks' setup cell, plots, diagrams, fonts,
  Colab).

Each subpackage's docstring lists its modules. Nothing imports in a circle, and nothing
below ``config`` asks whether a run is a rehearsal.
"""

from __future__ import annotations

import importlib
from typing import Any

from .quiet import silence_known_messages as _silence_known_messages

# Before anything imports bitsandbytes: it logs a known-harmless line at import time on
# CPUs with AVX512-BF16 (see ift_tutorial/quiet.py). Only logging/warnings filters.
_silence_known_messages()

__version__ = "0.3.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # configs and presets
    "load_config": "config",
    "available_presets": "config",
    "ExperimentConfig": "config",
    # loading a base model
    "load_model": "loading",
    "load_tokenizer": "loading",
    # instruction data
    "load_conversations": "instructions.dataset",
    "check_data": "instructions.dataset",
    "prepare_dataset": "instructions.dataset",
    # training, evaluation, use
    "train": "training.trainer",
    "evaluate_model": "evaluation.runner",
    "evaluate_config": "evaluation.runner",
    "generate": "inference.generation",
    "merge_adapter": "inference.merging",
    "score_ifeval": "evaluation.ifeval.scoring",
    # planning
    "plan_memory": "planning.memory",
    "plan_for_config": "planning.memory",
    # where runs go
    "runs_dir": "paths",
    # the book's two editions: figure labels in English or Chinese
    "edition": "i18n",
    "set_edition": "i18n",
    "t": "i18n",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
