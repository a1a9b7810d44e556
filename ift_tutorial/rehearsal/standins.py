"""Rehearsal: a 7B preset's whole code path on a CPU, in seconds (``IFT_REHEARSAL=1``).

A 7B run needs a GPU and a 15 GB download, so without help nothing on a CPU would
ever execute the 7B branches of the CLI and the notebooks. A rehearsal runs them
with two substitutions, and nothing else changed:

* **Model.** Random weights in the preset's real architecture class and config
  (:mod:`ift_tutorial.architectures`, offline), shrunk in depth, width and
  vocabulary: 2 layers, width 64, and the stand-in tokenizer's vocabulary instead of
  152k rows (a full-size output head alone takes minutes per step on two cores).
  The token ids in its ``config.json`` and ``generation_config.json`` are remapped
  to the stand-in tokenizer. The folder is written once per process, as safetensors,
  to a temporary folder (never into the package's ``data/``), and loaded by the real
  :func:`ift_tutorial.loading.load_model`: 4-bit NF4 through bitsandbytes.
* **Tokenizer.** The tiny tokenizer plus the preset's special tokens (BOS, EOS, pad,
  end-of-turn), carrying the preset's chat template.

It caps what a CPU cannot afford: training steps, evaluation examples and
``max_new_tokens`` (a random model never stops), and uses one CPU thread; it skips the GPU requirement and
the gated-model token check (the stand-in is a local folder), and computes in
fp32. Everything else is the preset's own: template, data paths, evaluation code,
the notebooks' 7B branches. Outputs say ``"rehearsal": true``. The scores of a
random model mean nothing; a rehearsal checks that the pipeline runs.

Example::

    IFT_REHEARSAL=1 ift-tutorial train --config qwen2.5-7b --output-dir runs/r --set training.max_steps=2
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy imports wait until a rehearsal really starts
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from .config import ExperimentConfig, ModelSettings

#: The environment variable that turns rehearsal on ("1", "true", "yes").
ENV = "IFT_REHEARSAL"

# What a rehearsal caps. An explicit override (--set training.max_steps=5) still wins.
MAX_STEPS = 3  # training steps
MAX_EVAL_EXAMPLES = 16  # per held-out set
MAX_NEW_TOKENS = 8  # per generated answer

# The shrunk architecture: same class, same kind of attention (grouped or not), tiny sizes.
LAYERS = 2
WIDTH = 64  # a multiple of 64: bitsandbytes quantises in blocks of 64 values
HEADS = 4  # head dimension 16
INTERMEDIATE = 128


@dataclass(frozen=True)
class HubTokenizer:
    """What a stand-in needs to know about a hub model's tokenizer (from its hub files).

    ``ids`` maps the special-token ids of the real ``config.json`` to their text, so
    that they can be remapped to the stand-in's ids.
    """

    eos: str
    bos: str | None = None
    pad: str | None = None
    extra: tuple[str, ...] = ()  # chat tokens (end-of-turn ...), special in the real tokenizer
    ids: dict[int, str] = field(default_factory=dict)
    template: str | None = None  # the name of the template the hub tokenizer ships, if any


#: The base models of the 7B presets (tokenizer_config.json / special_tokens_map.json).
HUB_TOKENIZERS: dict[str, HubTokenizer] = {
    "Qwen/Qwen2.5-7B": HubTokenizer(
        eos="<|endoftext|>", pad="<|endoftext|>", extra=("<|im_start|>", "<|im_end|>"),
        ids={151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"},
        template="qwen2.5-base"),
    "meta-llama/Llama-3.1-8B": HubTokenizer(
        bos="<|begin_of_text|>", eos="<|end_of_text|>",
        extra=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        ids={128000: "<|begin_of_text|>", 128001: "<|end_of_text|>", 128006: "<|start_header_id|>",
             128007: "<|end_header_id|>", 128009: "<|eot_id|>"}),
    "allenai/OLMo-2-1124-7B": HubTokenizer(
        bos="<|endoftext|>", eos="<|endoftext|>", pad="<|pad|>",
        ids={100257: "<|endoftext|>", 100277: "<|pad|>"}),
}

_BUILT: dict[str, Path] = {}  # hub id -> stand-in folder, once per process
_ANNOUNCED: set[str] = set()
_ROOT: Path | None = None


def requested() -> bool:
    """True when ``IFT_REHEARSAL`` is set to 1/true/yes."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def hub_tokenizer(name_or_path: str) -> tuple[str, HubTokenizer] | None:
    """The canonical hub id and tokenizer facts of ``name_or_path`` (case-insensitive), if known."""
    by_lower = {k.lower(): k for k in HUB_TOKENIZERS}
    key = by_lower.get(str(name_or_path).lower())
    return (key, HUB_TOKENIZERS[key]) if key else None


def applies_to(model: ModelSettings | ExperimentConfig | str) -> bool:
    """True when rehearsal is on and ``model`` names a hub model it can stand in for.

    The tiny preset (a local folder) and unknown hub ids run as they are.
    """
    name = getattr(getattr(model, "model", model), "name_or_path", model)
    return requested() and hub_tokenizer(str(name)) is not None


# --- the config: caps ---------------------------------------------------------------


def cap_raw_config(raw: dict[str, Any]) -> dict[str, Any]:
    """Cap a raw config dict (before command-line overrides) when rehearsal applies.

    ``load_config`` calls this; explicit overrides are applied afterwards and win.
    Logging and checkpoints follow the capped steps, so that a run still logs each
    step and ends on a checkpoint.
    """
    from .config import DataSettings, TrainingSettings

    model = raw.get("model") or {}
    if not applies_to(str(model.get("name_or_path", ""))):
        return raw
    training, data = dict(raw.get("training") or {}), dict(raw.get("data") or {})
    t, d = TrainingSettings(), DataSettings()
    steps = min(int(training.get("max_steps", t.max_steps)), MAX_STEPS)
    training.update(
        max_steps=steps, logging_steps=1,
        save_steps=min(int(training.get("save_steps", t.save_steps)), steps),
        max_new_tokens=min(int(training.get("max_new_tokens", t.max_new_tokens)), MAX_NEW_TOKENS),
    )
    if not training.get("num_threads"):
        training["num_threads"] = 1  # matrices of width 64: more threads only wait for each other
    limit = data.get("max_eval_examples", d.max_eval_examples)
    data["max_eval_examples"] = MAX_EVAL_EXAMPLES if limit is None else min(int(limit), MAX_EVAL_EXAMPLES)
    out = {**raw, "training": training, "data": data}
    import torch

    if torch.cuda.is_available():  # on a CPU "auto" is fp32 already
        out["model"] = {**model, "compute_dtype": "fp32"}
    announce(raw.get("name") or model.get("name_or_path"), str(model["name_or_path"]))
    return out


def cap_max_new_tokens(config: ExperimentConfig, max_new_tokens: int) -> int:
    """A command-line ``--max-new-tokens``, capped when rehearsal applies."""
    return min(max_new_tokens, MAX_NEW_TOKENS) if applies_to(config) else max_new_tokens


def scale(config: ExperimentConfig) -> str:
    """What a run can show: ``"tiny"`` (the local tiny model), ``"7b"`` (a 7B-scale model:
    a hub id, or a local folder of one, :func:`ift_tutorial.paths.is_large_model`) or
    ``"rehearsal"`` (a 7B preset's code path with a random stand-in: the pipeline, no scores).

    The chapters assert per scale: the tiny world's numbers at ``tiny``, what tuning a real
    base does at ``7b``, and that every step ran at ``rehearsal``.

    Example:
        >>> from ift_tutorial.config import load_config
        >>> scale(load_config("tiny"))
        'tiny'
    """
    from .paths import is_large_model

    if applies_to(config):
        return "rehearsal"
    return "7b" if is_large_model(config.model.name_or_path) else "tiny"


def marker(config: ExperimentConfig | ModelSettings) -> dict[str, bool]:
    """``{"rehearsal": True}`` for the outputs of a rehearsed run, else ``{}``."""
    return {"rehearsal": True} if applies_to(config) else {}


def announce(preset: str, name_or_path: str) -> None:
    """The one line that says a run is a rehearsal (once per preset and process, on stderr)."""
    if preset in _ANNOUNCED:
        return
    _ANNOUNCED.add(preset)
    from .architectures import architecture_config

    model_class = _causal_lm_class(architecture_config(name_or_path)).__name__
    print(f"REHEARSAL ({ENV}=1): {preset} runs as random weights of its real {model_class} "
          f"shrunk to {LAYERS} layers of width {WIDTH}, with a stand-in tokenizer (the tiny one plus "
          f"the preset's special tokens and chat template); at most {MAX_STEPS} training steps, "
          f"{MAX_EVAL_EXAMPLES} evaluation examples per set and {MAX_NEW_TOKENS} new tokens; fp32; "
          "no GPU and no hub token needed. Its scores mean nothing: it checks the pipeline.",
          file=sys.stderr, flush=True)


# --- the stand-in tokenizer -------------------------------------------------------------


def hub_template(name: str | None) -> str | None:
    """The chat template a hub tokenizer ships, for the names in :data:`HUB_TOKENIZERS`.

    Qwen2.5's base tokenizer ships the Instruct model's ChatML template with a shorter
    default system line ("You are a helpful assistant."), and no generation markers.
    """
    if name is None:
        return None
    if name == "qwen2.5-base":
        from trl.chat_template_utils import qwen2_5_chat_template

        instruct = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        assert instruct in qwen2_5_chat_template, "TRL's Qwen2.5 template changed"
        return qwen2_5_chat_template.replace(instruct, "You are a helpful assistant.")
    raise KeyError(f"unknown hub template {name!r}")


def stand_in_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tiny tokenizer with a hub model's special tokens and the hub's own chat template.

    The preset's ``model.chat_template`` (if any) is applied on top by ``load_tokenizer``,
    exactly as for the real tokenizer.

    Example:
        >>> tok = stand_in_tokenizer("Qwen/Qwen2.5-7B")
        >>> tok.eos_token, tok.bos_token, "<|im_end|>" in tok.get_added_vocab()
        ('<|endoftext|>', None, True)
    """
    from transformers import AutoTokenizer

    from .paths import TINY_MODEL_DIR

    found = hub_tokenizer(name_or_path)
    if found is None:
        raise KeyError(f"no stand-in tokenizer for {name_or_path!r}: known {sorted(HUB_TOKENIZERS)}")
    _, facts = found
    tok = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    roles = {"eos_token": facts.eos}
    if facts.pad:
        roles["pad_token"] = facts.pad
    if facts.bos:
        roles["bos_token"] = facts.bos
    tok.add_special_tokens(roles)
    if facts.extra:
        tok.add_special_tokens({"additional_special_tokens": list(facts.extra)})
    if not facts.bos:
        tok.bos_token = None  # Qwen2.5 has no BOS
    if not facts.pad:
        tok.pad_token = None  # load_tokenizer reuses EOS, as for the real one
    tok.chat_template = hub_template(facts.template)  # not the tiny model's template
    return tok


# --- the stand-in model ------------------------------------------------------------------


def shrunk_config(name_or_path: str, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The hub model's architecture config, shrunk, with the tokenizer's vocabulary and ids.

    Grouped-query attention stays grouped: the number of key/value heads keeps its ratio
    to the query heads where it can (Qwen2.5 28:4 becomes 4:1, OLMo 2's 32:32 becomes 4:4).
    """
    from .architectures import architecture_config

    key, facts = hub_tokenizer(name_or_path)
    arch = architecture_config(key)
    heads, kv = arch.num_attention_heads, getattr(arch, "num_key_value_heads", None) or arch.num_attention_heads
    values = arch.to_dict()
    for derived in ("layer_types", "head_dim", "transformers_version", "_name_or_path"):
        values.pop(derived, None)  # re-derived from the new sizes
    values.update(num_hidden_layers=LAYERS, hidden_size=WIDTH, num_attention_heads=HEADS,
                  num_key_value_heads=max(1, round(HEADS * kv / heads)),
                  intermediate_size=INTERMEDIATE, vocab_size=len(tokenizer))
    if "max_window_layers" in values:
        values["max_window_layers"] = LAYERS
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        values[name] = _remap(values.get(name), facts, tokenizer, f"{key} {name}")
    config = type(arch)(**values)
    config.architectures = [_causal_lm_class(config).__name__]
    return config


def _remap(value: int | list[int] | None, facts: HubTokenizer, tokenizer: PreTrainedTokenizerBase,
           what: str) -> int | list[int] | None:
    """Real special-token ids -> the stand-in tokenizer's ids for the same tokens."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_remap(v, facts, tokenizer, what) for v in value]
    if value not in facts.ids:
        raise KeyError(f"{what}: id {value} has no known token text to remap")
    new = tokenizer.convert_tokens_to_ids(facts.ids[value])
    if new is None or new == tokenizer.unk_token_id:
        raise KeyError(f"{what}: {facts.ids[value]!r} is not in the stand-in tokenizer")
    return new


def _causal_lm_class(config: PretrainedConfig) -> type:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM._model_mapping[type(config)]


def _root() -> Path:
    """This process's folder for stand-ins, outside the package; removed at exit."""
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="ift-rehearsal-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def model_folder(name_or_path: str, seed: int = 0) -> Path:
    """The stand-in model folder for a hub id: built on first use in this process.

    It holds ``model.safetensors`` (random fp32 weights, seeded: every process builds
    the same model, so an adapter trained in one fits the stand-in of another),
    ``config.json``, ``generation_config.json`` and the stand-in tokenizer.
    """
    key, _ = hub_tokenizer(name_or_path) or (None, None)
    if key is None:
        raise KeyError(f"no rehearsal stand-in for {name_or_path!r}: known {sorted(HUB_TOKENIZERS)}")
    if key in _BUILT and (_BUILT[key] / "config.json").is_file():
        return _BUILT[key]
    import torch
    from transformers import GenerationConfig

    tokenizer = stand_in_tokenizer(key)
    config = shrunk_config(key, tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _causal_lm_class(config)(config).to(torch.float32)
    model.generation_config = GenerationConfig.from_model_config(config)
    folder = _root() / key.replace("/", "--")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Writing model shards" for a 1 MB file is noise
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    _BUILT[key] = folder
    return folder


def resolve(name_or_path: str) -> str | None:
    """The stand-in folder to load instead of ``name_or_path``, or None (load the real one)."""
    return str(model_folder(name_or_path)) if applies_to(name_or_path) else None
