"""The stand-ins of a rehearsal: a 7B preset's tokenizer and model, shrunk, random, offline.

* **Model.** Random weights in the preset's real architecture class and config
  (:mod:`ift_tutorial.planning.architectures`, offline), shrunk in depth, width and
  vocabulary: 2 layers, width 64, and the stand-in tokenizer's vocabulary instead of
  152k rows (a full-size output head alone takes minutes per step on two cores).
  The token ids in its ``config.json`` and ``generation_config.json`` are remapped
  to the stand-in tokenizer. The folder is written once per process, as safetensors,
  to a temporary folder (never into the project's ``data/``), and loaded by the real
  :func:`ift_tutorial.loading.load_model`: 4-bit NF4 through bitsandbytes.
* **Tokenizer.** The tiny tokenizer plus the preset's special tokens (BOS, EOS, pad,
  end-of-turn), carrying the preset's chat template.

:mod:`ift_tutorial.rehearsal.preset` puts the stand-in folder into a rehearsed config.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy imports wait until a rehearsal really starts
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

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


def hub_tokenizer(name_or_path: str) -> tuple[str, HubTokenizer] | None:
    """The canonical hub id and tokenizer facts of ``name_or_path`` (case-insensitive), if known."""
    by_lower = {k.lower(): k for k in HUB_TOKENIZERS}
    key = by_lower.get(str(name_or_path).lower())
    return (key, HUB_TOKENIZERS[key]) if key else None


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

    from ..paths import TINY_MODEL_DIR

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
    from ..planning.architectures import architecture_config

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


def model_class_name(hub_id: str) -> str:
    """The transformers class of a hub model's architecture (``Qwen2ForCausalLM``...)."""
    from ..planning.architectures import architecture_config

    return _causal_lm_class(architecture_config(hub_id)).__name__


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
