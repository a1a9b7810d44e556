"""A Llama-style decoder-only transformer, from scratch (chapter 4 of the book).

The pieces, in the order a token meets them:

1. ``embed_tokens``: token id -> vector of width ``hidden_size``.
2. ``num_layers`` decoder blocks, each
   ``x = x + Attention(RMSNorm(x))`` then ``x = x + SwiGLU(RMSNorm(x))``
   (pre-norm residual blocks); attention is causal self-attention with rotary
   position embeddings (RoPE) and grouped-query heads.
3. a final RMSNorm and ``lm_head``: vector -> one logit per vocabulary entry.

Parameter names match ``transformers``' ``LlamaForCausalLM`` (without its
``model.`` prefix), so :func:`from_hf` copies weights one to one and the tests
check that both produce the same logits. Qwen2 differs from Llama only by biases
on the q/k/v projections, which this module supports too. OLMo 2 is not this block:
it normalises the sublayers' outputs and its queries and keys (:mod:`.olmo2`).

The helpers at the end count the parameters of real 7B architectures built on
PyTorch's ``meta`` device (shapes only, no memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .attention import MultiHeadAttention, causal_mask, padding_mask

Tensor = torch.Tensor

#: Model types whose architecture this module reproduces exactly.
SUPPORTED_MODEL_TYPES = ("llama", "qwen2")


@dataclass
class LlamaArgs:
    """The numbers that define a Llama-style model (a subset of ``config.json``)."""

    vocab_size: int
    hidden_size: int  # width of the residual stream, d_model
    intermediate_size: int  # width inside the SwiGLU MLP
    num_layers: int
    num_heads: int  # query heads
    num_kv_heads: int  # key/value heads (< num_heads: grouped-query attention)
    head_dim: int | None = None  # default hidden_size // num_heads
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0  # base of RoPE's wavelengths
    tie_word_embeddings: bool = False  # lm_head reuses embed_tokens' matrix
    qkv_bias: bool = False  # Qwen2: True
    o_bias: bool = False
    mlp_bias: bool = False

    def __post_init__(self) -> None:
        self.head_dim = self.head_dim or self.hidden_size // self.num_heads

    @classmethod
    def from_hf_config(cls, config: Any,
                       model_types: tuple[str, ...] = SUPPORTED_MODEL_TYPES) -> "LlamaArgs":
        """Read a ``transformers`` Llama or Qwen2 config (or another of ``model_types`` with
        the same fields, e.g. OLMo 2's); refuse what we do not reproduce."""
        model_type = getattr(config, "model_type", None)
        if model_type not in model_types:
            raise ValueError(f"model_type {model_type!r} is not supported; supported: {model_types}")
        rope = getattr(config, "rope_parameters", None) or {}
        rope_type = rope.get("rope_type", "default")
        if rope_type != "default":
            raise ValueError(f"only the default RoPE is implemented, this config uses {rope_type!r}")
        if getattr(config, "hidden_act", "silu") != "silu":
            raise ValueError(f"SwiGLU needs hidden_act='silu', got {config.hidden_act!r}")
        if model_type == "qwen2" and getattr(config, "use_sliding_window", False):
            raise ValueError("sliding-window attention is not implemented")
        is_qwen2 = model_type == "qwen2"
        attention_bias = bool(getattr(config, "attention_bias", False))
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads or config.num_attention_heads,
            head_dim=getattr(config, "head_dim", None),
            rms_norm_eps=config.rms_norm_eps,
            rope_theta=float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))),
            tie_word_embeddings=bool(config.tie_word_embeddings),
            qkv_bias=is_qwen2 or attention_bias,
            o_bias=attention_bias and not is_qwen2,
            mlp_bias=bool(getattr(config, "mlp_bias", False)),
        )


class RMSNorm(nn.Module):
    """Root-mean-square norm: ``x / sqrt(mean(x^2) + eps) * weight``.

    Unlike LayerNorm it neither subtracts the mean nor adds a bias: cheaper, and
    works as well in practice. Computed in fp32 for stability, as ``transformers`` does.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """(..., dim) -> (..., dim)."""
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_inverse_frequencies(head_dim: int, theta: float = 10000.0) -> Tensor:
    """Angular speed of each rotated pair: ``theta^(-2i/head_dim)`` for i < head_dim/2.

    Returns:
        (head_dim // 2,) fp32. The first pairs turn fast (fine position), the last
        ones slowly (coarse position).
    """
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))


def rope_cos_sin(positions: Tensor, inv_freq: Tensor) -> tuple[Tensor, Tensor]:
    """Cosines and sines of the rotation angles ``position * inv_freq``.

    Args:
        positions: (..., T) integer positions.
        inv_freq: (head_dim // 2,).

    Returns:
        cos, sin: (..., T, head_dim); each angle appears twice, once for each half
        of the head (see :func:`rotate_half`).
    """
    angles = positions[..., None].float() * inv_freq  # (..., T, head_dim/2)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension.

    ``transformers`` pairs dimension ``i`` with ``i + head_dim/2`` (not neighbours
    ``2i, 2i+1`` as in the RoPE paper); the converted checkpoints' q/k weights are
    permuted to match, so both describe the same rotations.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each pair of dimensions of ``x`` by its position's angle.

    Args:
        x: (B, H, T, head_dim) queries or keys.
        cos, sin: (T, head_dim) or (B, 1, T, head_dim).

    The dot product of a rotated query at position m and a rotated key at n then
    depends on m - n only: attention sees relative positions.
    """
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Holds RoPE's inverse frequencies and produces cos/sin for given positions."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", rope_inverse_frequencies(head_dim, theta), persistent=False)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """positions (T,) -> cos, sin (T, head_dim)."""
        return rope_cos_sin(positions, self.inv_freq.to(positions.device))


class SwiGLU(nn.Module):
    """The Llama MLP: ``down(silu(gate(x)) * up(x))``.

    The gate decides, per hidden unit, how much of ``up(x)`` passes. Three
    matrices instead of two, so ``intermediate_size`` is about 8/3 of the width
    (instead of 4) to keep the same parameter count as a classic MLP.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=bias)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, hidden) -> (B, T, hidden)."""
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(MultiHeadAttention):
    """Causal grouped-query self-attention with RoPE applied to queries and keys."""

    def forward(  # type: ignore[override]
        self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Args: x (B, T, hidden); cos, sin (T, head_dim); attn_mask bool, broadcastable
        to (B, H, T, T).

        Returns:
            output (B, T, hidden) and weights (B, H, T, T).
        """
        q, k, v = self.project(x)
        # Positions enter here, by rotating q and k; values are not rotated.
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return self.attend(q, k, v, attn_mask, is_causal=False)


class DecoderBlock(nn.Module):
    """One pre-norm transformer block: attention then MLP, each added to the residual."""

    def __init__(self, args: LlamaArgs) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = LlamaAttention(
            args.hidden_size,
            args.num_heads,
            args.num_kv_heads,
            head_dim=args.head_dim,
            bias=args.qkv_bias,
            out_bias=args.o_bias,
        )
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = SwiGLU(args.hidden_size, args.intermediate_size, bias=args.mlp_bias)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, hidden) -> (B, T, hidden), plus the attention weights (B, H, T, T)."""
        h, weights = self.self_attn(self.input_layernorm(x), cos, sin, attn_mask)
        x = x + h
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, weights


class LlamaOutput(NamedTuple):
    logits: Tensor  # (B, T, vocab)
    attentions: list[Tensor] | None  # one (B, H, T, T) per layer, if asked for


class Llama(nn.Module):
    """A decoder-only causal language model: token ids in, next-token logits out."""

    #: the block it stacks; a variant (``scratch.olmo2``) swaps in its own
    block_class: type[nn.Module] = DecoderBlock

    def __init__(self, args: LlamaArgs) -> None:
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(self.block_class(args) for _ in range(args.num_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.rotary = RotaryEmbedding(args.head_dim, args.rope_theta)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, output_attentions: bool = False
    ) -> LlamaOutput:
        """Args: input_ids (B, T); attention_mask (B, T) of 1 = token, 0 = padding.

        Returns:
            logits (B, T, vocab) and, if ``output_attentions``, each layer's weights.
        """
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)
        mask = causal_mask(T, device=input_ids.device)  # (T, T)
        if attention_mask is not None:
            mask = mask & padding_mask(attention_mask)  # (B, 1, T, T)
        cos, sin = self.rotary(positions)
        x = self.embed_tokens(input_ids)
        attentions = []
        for layer in self.layers:
            x, weights = layer(x, cos, sin, mask)
            attentions.append(weights)
        logits = self.lm_head(self.norm(x))
        return LlamaOutput(logits, attentions if output_attentions else None)


def _hf_state_dict_to_ours(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``model.layers.0...`` -> ``layers.0...``; RoPE buffers are recomputed, not copied."""
    out = {}
    for name, tensor in state.items():
        if "rotary_emb" in name:
            continue
        out[name.removeprefix("model.")] = tensor.float()
    return out


def _load_weights(model: Llama, state: dict[str, Tensor], where: str) -> Llama:
    state = _hf_state_dict_to_ours(state)
    if model.args.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as embed_tokens.weight
        state["lm_head.weight"] = state["embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{where}: weights do not fit the architecture; missing {missing}, unexpected {unexpected}")
    return model


def from_hf(hf_model: nn.Module) -> Llama:
    """Copy a ``transformers`` ``LlamaForCausalLM`` (or Qwen2) into our :class:`Llama`, in fp32.

    The model must hold real weights: a 4-bit model's packed weights are not
    matrices (load it with ``load_in_4bit=False``).
    """
    if getattr(hf_model, "is_loaded_in_4bit", False) or getattr(hf_model, "is_quantized", False):
        raise ValueError("from_hf needs unquantised weights: load the model with load_in_4bit=False")
    args = LlamaArgs.from_hf_config(hf_model.config)
    model = Llama(args)
    return _load_weights(model, dict(hf_model.state_dict()), type(hf_model).__name__).eval()


def load_from_pretrained(path: str | Path) -> Llama:
    """Build our :class:`Llama` from a local model folder (``config.json`` + safetensors).

    Only safetensors are read (pickle files can run code when loaded); nothing is
    downloaded.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from ..paths import resolve_path

    folder = resolve_path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json (expected a model folder)")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors weights")
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    state: dict[str, Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return _load_weights(Llama(LlamaArgs.from_hf_config(config)), state, str(folder)).eval()


# --- Parameter counts of real architectures, on the meta device -------------------------

COMPONENTS = ("embeddings", "attention", "mlp", "norms", "lm_head")


def meta_model(config: Any) -> nn.Module:
    """Build a ``transformers`` causal LM from ``config`` on the meta device.

    Parameters have shapes but no storage, so a 7B model costs no memory and
    nothing is downloaded. Tied embeddings are tied explicitly (the meta
    initialisation skips it), so shared matrices are counted once.
    """
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model.tie_weights()
    return model


def component_of(name: str) -> str:
    """Which part of the model a parameter name belongs to (one of ``COMPONENTS``)."""
    if "embed_tokens" in name:
        return "embeddings"
    if "lm_head" in name:
        return "lm_head"
    if "self_attn" in name:
        return "attention"
    if "mlp" in name:
        return "mlp"
    if "norm" in name:
        return "norms"
    raise ValueError(f"parameter {name!r} belongs to no known component")


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per component plus ``total``; a tied ``lm_head`` counts 0.

    Works for ``transformers`` Llama/Qwen2/Mistral models and for :class:`Llama`.
    """
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, p in model.named_parameters():  # shared tensors are listed once
        counts[component_of(name)] += p.numel()
    counts["total"] = sum(counts[c] for c in COMPONENTS)
    return counts


def architecture_parameter_counts(name: str) -> dict[str, int]:
    """:func:`parameter_breakdown` of a known architecture (hub id or preset name)."""
    from ..planning.architectures import architecture_config

    return parameter_breakdown(meta_model(architecture_config(name)))
