"""The architectures of the 7B models the book talks about, written down once.

A 7B model's *shape* (layers, widths, heads, vocabulary) is a handful of numbers
from its ``config.json`` on the Hugging Face Hub. They are copied here so that
the book can build these models on PyTorch's ``meta`` device (no memory, no
download) to count parameters and plan memory. Every other module that needs a
7B architecture calls :func:`architecture_config`.

Values are those of the published ``config.json`` files. Chat/instruct variants
share their base model's architecture (only tokenizer details and generation
defaults differ), so they map to the same numbers. Chapter 4 compares the presets'
models (Qwen2.5-7B, Llama-3.1-8B, OLMo-2-7B); two 2023 models stay for chapter 2's
key/value-cache comparison and chapter 11's licences: Llama-2-7B (plain multi-head
attention, a 32k vocabulary) and Mistral-7B-v0.1 (sliding-window attention).

Sources of the numbers: the models' ``config.json`` files on the Hugging Face Hub
(``Qwen/Qwen2.5-7B``, ``meta-llama/Llama-3.1-8B``, ``allenai/OLMo-2-1124-7B``), the OLMo 2
model card (32 layers, width 4096, 32 heads, context 4096) and, for the block layout,
the OLMo 2 report (arXiv 2501.00656, section 3: norms on the sublayers' outputs, QK-norm).
"""

from __future__ import annotations

from typing import Any, Callable

from transformers import AutoConfig, LlamaConfig, MistralConfig, Olmo2Config, PretrainedConfig, Qwen2Config

from ..paths import CONFIGS_DIR, looks_like_local_path, resolve_path


def _qwen2_5_7b() -> PretrainedConfig:
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,  # grouped-query attention: 7 query heads per key/value head
        hidden_act="silu",
        max_position_embeddings=131072,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=False,
        use_sliding_window=False,
        sliding_window=131072,
        max_window_layers=28,
        bos_token_id=151643,
        eos_token_id=151643,
    )  # Qwen2 puts biases on the q/k/v projections (fixed in the modelling code)


def _qwen2_5_0_5b() -> PretrainedConfig:
    return Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,  # small models share the input and output embedding
        use_sliding_window=False,
        sliding_window=32768,
        max_window_layers=24,
        bos_token_id=151643,
        eos_token_id=151643,
    )


def _mistral_7b_v0_1() -> PretrainedConfig:
    return MistralConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        sliding_window=4096,  # each token attends to at most the 4096 tokens before it
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )


def _llama_2_7b() -> PretrainedConfig:
    return LlamaConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,  # classic multi-head attention (GQA came with the 70B)
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=1,
        eos_token_id=2,
    )


def _llama_3_1_8b() -> PretrainedConfig:
    return LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        # "llama3" RoPE: the 8k-trained frequencies stretched 8x for a 128k context
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=128000,  # <|begin_of_text|>
        eos_token_id=128001,  # <|end_of_text|> (the base model's config; Instruct adds <|eot_id|>)
    )


def _olmo_2_7b() -> PretrainedConfig:
    return Olmo2Config(
        vocab_size=100352,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,  # plain multi-head attention
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        tie_word_embeddings=False,
        attention_bias=False,
        bos_token_id=None,  # config.json has none; the tokenizer's BOS is <|endoftext|>
        eos_token_id=100257,  # <|endoftext|>
        pad_token_id=100277,  # <|pad|>
    )  # not a Llama block: RMSNorm on each sublayer's output, and on q and k (block_layout)


#: Hub id -> a function building its architecture config. Keys are canonical hub ids.
KNOWN_ARCHITECTURES: dict[str, Callable[[], PretrainedConfig]] = {
    "Qwen/Qwen2.5-7B": _qwen2_5_7b,
    "Qwen/Qwen2.5-7B-Instruct": _qwen2_5_7b,
    "Qwen/Qwen2.5-0.5B": _qwen2_5_0_5b,
    "Qwen/Qwen2.5-0.5B-Instruct": _qwen2_5_0_5b,
    "mistralai/Mistral-7B-v0.1": _mistral_7b_v0_1,
    "mistralai/Mistral-7B-Instruct-v0.1": _mistral_7b_v0_1,
    "meta-llama/Llama-2-7b-hf": _llama_2_7b,
    "meta-llama/Llama-2-7b-chat-hf": _llama_2_7b,
    "meta-llama/Llama-3.1-8B": _llama_3_1_8b,
    "meta-llama/Llama-3.1-8B-Instruct": _llama_3_1_8b,
    "allenai/OLMo-2-1124-7B": _olmo_2_7b,
    "allenai/OLMo-2-1124-7B-Instruct": _olmo_2_7b,
}

#: Published total parameter counts, for checking the configs above. The model pages of
#: Llama-3.1-8B and OLMo-2-1124-7B round theirs (8.03 B, 7.3 B); the exact figures are the
#: sums of their config.json shapes, which those roundings confirm.
PUBLISHED_PARAMETER_COUNTS: dict[str, int] = {
    "Qwen/Qwen2.5-7B": 7_615_616_512,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Llama-3.1-8B": 8_030_261_248,
    "allenai/OLMo-2-1124-7B": 7_298_617_344,
}


def architecture_config(name: str) -> PretrainedConfig:
    """The ``transformers`` config of a model's architecture, without downloading anything.

    Args:
        name: a known hub id (``Qwen/Qwen2.5-7B``, case-insensitive), a shipped preset's
            name whose ``model.name_or_path`` is one (``qwen2.5-7b``, ``tiny``), or a local
            model folder holding a ``config.json`` (``data/tiny-llama``).

    Raises:
        KeyError: the name is none of these; the message lists the known hub ids.
    """
    by_lower = {k.lower(): k for k in KNOWN_ARCHITECTURES}
    if name.lower() in by_lower:
        return KNOWN_ARCHITECTURES[by_lower[name.lower()]]()
    folder = resolve_path(name)
    if folder.is_dir() and (folder / "config.json").is_file():
        return AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    target = _preset_model(name)
    if target is not None and target != name:
        return architecture_config(target)
    raise KeyError(
        f"no known architecture for {name!r}: pass one of {sorted(KNOWN_ARCHITECTURES)}, "
        "a preset whose model.name_or_path is one of them, or a local model folder"
    )


def _preset_model(name: str) -> str | None:
    """``model.name_or_path`` of a shipped preset (``configs/NAME.yaml``), or None.

    Read from the YAML file itself: the presets name their model directly, and this
    module sits below :mod:`ift_tutorial.config` (which plans and rehearsals use).
    """
    path = CONFIGS_DIR / f"{name}.yaml"
    if "/" in name or not path.is_file():
        return None
    import yaml

    model = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("model") or {}
    value = model.get("name_or_path")
    if isinstance(value, str) and looks_like_local_path(value, path.parent):
        return str(resolve_path(value, path.parent))
    return value if isinstance(value, str) else None


def describe(config: Any) -> dict[str, Any]:
    """The numbers that make up an architecture, for a table in the book."""
    n_heads = config.num_attention_heads
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "intermediate": config.intermediate_size,
        "heads": n_heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or n_heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // n_heads,
        "vocab": config.vocab_size,
        "tied_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
    }


#: Model types whose blocks normalise each sublayer's *output* (``x + RMSNorm(f(x))``)
#: and RMS-normalise queries and keys (QK-norm), instead of Llama's pre-norm.
POST_SUBLAYER_NORM_TYPES = ("olmo2",)


def block_layout(config: Any) -> dict[str, Any]:
    """How a block is wired, beyond its sizes: where the norms sit, QK-norm, biases, RoPE.

    Returns:
        ``norm``: ``"input"`` (pre-norm, ``x + f(RMSNorm(x))``: Llama, Qwen2) or
        ``"output"`` (``x + RMSNorm(f(x))``: OLMo 2); ``qk_norm``: queries and keys
        RMS-normalised after their projections; ``qkv_bias``: biases on q, k, v (Qwen2);
        ``rope_base``: RoPE's theta; ``rope_scaling``: ``"default"`` or the stretch a
        long-context model applies (``"llama3"``).
    """
    model_type = getattr(config, "model_type", "")
    rope = getattr(config, "rope_parameters", None) or {}
    post = model_type in POST_SUBLAYER_NORM_TYPES
    return {
        "norm": "output" if post else "input",
        "qk_norm": post,
        "qkv_bias": model_type == "qwen2" or bool(getattr(config, "attention_bias", False)),
        "rope_base": float(rope.get("rope_theta", 10000.0)),
        "rope_scaling": rope.get("rope_type", "default"),
    }
