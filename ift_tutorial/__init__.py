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

The package holds three kinds of code, kept apart:

* **the production pipeline** (what ``ift-tutorial`` runs, built on transformers, peft,
  trl, bitsandbytes, datasets and accelerate): ``config``, ``loading``,
  ``instruction_data``, ``training``, ``checkpoints``, ``runlock``, ``evaluation``,
  ``generation``, ``merging``, ``memory`` (the planner), ``dry_run``, ``distributed``,
  ``hardware``, ``devices`` (inputs to the model's device), ``paths``, ``errors``, ``cli``;
* **from-scratch teaching code**, each module checked against the production library
  it explains and never imported by the pipeline: ``attention`` and ``seq2seq``
  (chapters 2-3), ``llama`` (chapter 4), ``quantization`` (NF4) and ``lora`` (chapter 6),
  ``diagrams`` (the book's figures);
* **the tiny world's generators**, which made the shipped tiny preset: ``corpus``
  (the made-up bilingual world), ``tokenizer``, ``pretrain``, ``tasks``.

Chapters map to modules: 1 ``corpus``/``pretrain``/``tasks``; 2-4 ``attention``,
``seq2seq``, ``llama``, ``architectures``; 5 ``instruction_data``; 6 ``quantization``,
``lora``, ``memory``, ``dry_run``; 7 ``training``, ``checkpoints``, ``plots``;
8 ``evaluation``, ``generation``, ``merging``; 10 ``distributed``. ``notebook`` is the
chapters' setup cell; ``i18n`` says which edition runs (English, or the Chinese one in
``book/zh``) and holds the Chinese figure labels, ``fonts`` draws them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .quiet import silence_known_messages as _silence_known_messages

# Before anything imports bitsandbytes: it logs a known-harmless line at import time on
# CPUs with AVX512-BF16 (see ift_tutorial/quiet.py). Only logging/warnings filters.
_silence_known_messages()

__version__ = "0.1.0"

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
    "load_conversations": "instruction_data",
    "check_data": "instruction_data",
    "prepare_dataset": "instruction_data",
    # training, evaluation, use
    "train": "training",
    "evaluate_model": "evaluation",
    "evaluate_config": "evaluation",
    "generate": "generation",
    "merge_adapter": "merging",
    "score_ifeval": "ifeval",
    # planning
    "plan_memory": "memory",
    "plan_for_config": "memory",
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
