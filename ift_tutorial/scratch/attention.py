"""Attention from the formula: softmax(Q K^T / sqrt(d_k)) V.

Chapter 2 (self-attention) and chapter 3 (cross-attention) of the book. The
function :func:`scaled_dot_product_attention` follows the conventions of
``torch.nn.functional.scaled_dot_product_attention`` (same arguments, same masks,
same causal alignment) so that the tests can check it against PyTorch, but it is
written out step by step and also returns the attention weights, which the book
draws. It is slower than PyTorch's fused kernels (see
``benchmarks/bench_attention.py``): it is for reading, not for training 7B models.

Shape names used throughout:

- ``B`` batch, ``H`` query heads, ``H_kv`` key/value heads,
- ``L`` target (query) length, ``S`` source (key/value) length,
- ``E`` query/key head dimension (``d_k``), ``E_v`` value head dimension.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

Tensor = torch.Tensor


def causal_mask(target_len: int, source_len: int | None = None, device: Any = None) -> Tensor:
    """The causal (look-back-only) mask: query ``i`` may attend to keys ``0..i``.

    Like PyTorch's ``is_causal=True`` the triangle is aligned to the top left
    (``ones(L, S).tril(0)``), also when ``L != S``. When a cache already holds
    earlier keys (``S > L``) the new queries sit at the *end* of the sequence and
    need the bottom-right aligned triangle instead: pass an explicit mask then.

    Returns:
        Bool tensor (L, S); True = this query may attend to this key.
    """
    source_len = target_len if source_len is None else source_len
    return torch.ones(target_len, source_len, dtype=torch.bool, device=device).tril(0)


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a tokenizer's ``attention_mask`` (1 = real token, 0 = padding) into a key mask.

    Args:
        attention_mask: (B, S) of 0/1 (or bool).

    Returns:
        Bool tensor (B, 1, 1, S) that broadcasts over heads and queries: no query
        attends to a padding key.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (B, S), got {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """Grouped-query attention: let ``n_rep`` query heads share each key/value head.

    Args:
        x: (..., H_kv, S, E).

    Returns:
        (..., H_kv * n_rep, S, E); head ``h`` of the result is head ``h // n_rep`` of ``x``.
    """
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=-3)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T * scale + mask) V, with the weights returned for inspection.

    PyTorch's ``dropout_p`` is left out: the models in this book use no attention dropout.

    Args:
        query: (..., H, L, E) or (..., L, E).
        key: (..., H_kv, S, E); ``H_kv == H`` unless ``enable_gqa``.
        value: (..., H_kv, S, E_v).
        attn_mask: broadcastable to (..., H, L, S). A bool mask says which pairs take
            part (True = attend, as in PyTorch); a float mask is added to the scores
            (0 = attend, ``-inf`` = blocked, anything else biases the score).
        is_causal: apply :func:`causal_mask` (top-left aligned). Cannot be combined
            with ``attn_mask``: combine the masks yourself and pass the result.
        scale: multiplies the scores; default ``1 / sqrt(E)``.
        enable_gqa: allow ``H_kv < H`` (``H`` a multiple of ``H_kv``): each key/value
            head serves ``H / H_kv`` consecutive query heads.

    Returns:
        ``(output, weights)``: output (..., H, L, E_v) and weights (..., H, L, S); each
        row of weights sums to 1, except a query whose keys are all masked: its
        weights and output are 0 (PyTorch's choice too, instead of NaN).
    """
    if attn_mask is not None and is_causal:
        raise ValueError("pass either attn_mask or is_causal=True, not both (combine the masks yourself)")
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    if key.shape[-1] != E:
        raise ValueError(f"query and key need the same last dimension, got {E} and {key.shape[-1]}")
    if enable_gqa and query.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        n_heads, n_kv_heads = query.shape[-3], key.shape[-3]
        if n_heads % n_kv_heads or value.shape[-3] != n_kv_heads:
            raise ValueError(f"{n_heads} query heads cannot share {n_kv_heads} key/value heads")
        key = repeat_kv(key, n_heads // n_kv_heads)
        value = repeat_kv(value, n_heads // n_kv_heads)
    scale = 1.0 / math.sqrt(E) if scale is None else scale

    # (..., L, E) @ (..., E, S) -> (..., L, S): one similarity score per query/key pair.
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        attn_mask = causal_mask(L, S, device=query.device)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    # A row that is -inf everywhere would give 0/0 = NaN; give it zero weights instead.
    all_blocked = torch.isneginf(scores).all(dim=-1, keepdim=True)
    scores = scores.masked_fill(all_blocked, 0.0)
    weights = torch.softmax(scores, dim=-1).masked_fill(all_blocked, 0.0)
    return weights @ value, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention with optional grouped-query heads and an optional context.

    Self-attention when ``context`` is None (queries, keys and values all come from
    ``x``); cross-attention when it is given (queries from ``x``, keys and values from
    ``context``). The projections are named like those of Llama in ``transformers``
    (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``).

    Args:
        d_model: width of ``x`` (and of the output).
        num_heads: query heads ``H``.
        num_kv_heads: key/value heads ``H_kv`` (default ``H``: classic multi-head
            attention; 1: multi-query attention; in between: grouped-query attention).
        head_dim: per-head width ``E`` (default ``d_model // num_heads``).
        context_dim: width of ``context`` for cross-attention (default ``d_model``).
        bias: biases on the q/k/v projections (Qwen2 has them, Llama does not).
        out_bias: a bias on the output projection ``o_proj``.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        context_dim: int | None = None,
        bias: bool = False,
        out_bias: bool = False,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}")
        self.head_dim = head_dim or d_model // num_heads
        context_dim = context_dim or d_model
        self.q_proj = nn.Linear(d_model, num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(context_dim, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(context_dim, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(num_heads * self.head_dim, d_model, bias=out_bias)

    def split_heads(self, x: Tensor, n_heads: int) -> Tensor:
        """(B, T, n_heads * E) -> (B, n_heads, T, E)."""
        B, T, _ = x.shape
        return x.view(B, T, n_heads, self.head_dim).transpose(1, 2)

    def project(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from ``x``; keys and values from ``context`` (or ``x``).

        Returns:
            q (B, H, L, E), k (B, H_kv, S, E), v (B, H_kv, S, E).
        """
        source = x if context is None else context
        q = self.split_heads(self.q_proj(x), self.num_heads)
        k = self.split_heads(self.k_proj(source), self.num_kv_heads)
        v = self.split_heads(self.v_proj(source), self.num_kv_heads)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, is_causal: bool) -> tuple[Tensor, Tensor]:
        """Attention over the heads, then merge them and mix them with ``o_proj``.

        Returns:
            output (B, L, d_model) and weights (B, H, L, S).
        """
        out, weights = scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, enable_gqa=True
        )
        B, _, L, _ = out.shape
        # (B, H, L, E) -> (B, L, H * E): the heads side by side, then one linear map.
        out = out.transpose(1, 2).reshape(B, L, self.num_heads * self.head_dim)
        return self.o_proj(out), weights

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Args: x (B, L, d_model); context (B, S, context_dim) or None; attn_mask
        broadcastable to (B, H, L, S).

        Returns:
            output (B, L, d_model) and weights (B, H, L, S).
        """
        q, k, v = self.project(x, context)
        return self.attend(q, k, v, attn_mask, is_causal)


class CrossAttention(MultiHeadAttention):
    """Queries from one sequence, keys and values from another (``context``).

    The formula is the same as self-attention; what differs is where K and V come
    from. An encoder–decoder translator uses it to let each target token look at
    the whole source sentence, so it is not causal: every query sees all of
    ``context`` (only padding is masked).
    """

    def forward(  # type: ignore[override]
        self, x: Tensor, context: Tensor, attn_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Args: x (B, L, d_model); context (B, S, context_dim).

        Returns:
            output (B, L, d_model) and weights (B, H, L, S).
        """
        if context is None:
            raise ValueError("cross-attention needs a context sequence to take keys and values from")
        return super().forward(x, context=context, attn_mask=attn_mask)


_DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "bfloat16": 2, "bf16": 2, "int8": 1, "fp8": 1}


def dtype_bytes(dtype: torch.dtype | str) -> int:
    """Bytes per element of a dtype given as ``torch.bfloat16`` or ``"bf16"``."""
    if isinstance(dtype, torch.dtype):
        return torch.empty((), dtype=dtype).element_size()
    key = dtype.removeprefix("torch.").lower()
    if key not in _DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(_DTYPE_BYTES)}")
    return _DTYPE_BYTES[key]


def kv_cache_bytes(
    config: Any,
    batch_size: int,
    seq_len: int,
    dtype: torch.dtype | str = torch.bfloat16,
    num_kv_heads: int | None = None,
) -> int:
    """Memory of the key/value cache during generation.

    Every layer keeps one key and one value vector per token and per key/value head:
    ``2 * layers * batch * tokens * H_kv * head_dim * bytes``. Grouped-query
    attention shrinks it by ``H / H_kv`` compared with classic multi-head attention.
    A model with sliding-window attention (Mistral-7B-v0.1: 4096 tokens) never looks
    further back than its window, so its cache holds at most that many tokens
    (``transformers`` keeps ``window - 1`` between steps and adds the new token's).

    Args:
        config: a ``transformers`` config (``num_hidden_layers``, ``num_attention_heads``,
            ``num_key_value_heads``, ``hidden_size``, optional ``head_dim`` and
            ``sliding_window``).
        batch_size, seq_len: sequences in the batch and tokens per sequence.
        dtype: the cache's dtype (the model's compute dtype, usually bf16/fp16).
        num_kv_heads: override ``H_kv`` (pass ``num_attention_heads`` to see what
            the same model would need without GQA).
    """
    n_heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    if num_kv_heads is None:
        num_kv_heads = getattr(config, "num_key_value_heads", None) or n_heads
    tokens = min(seq_len, sliding_window(config) or seq_len)
    per_token = 2 * config.num_hidden_layers * num_kv_heads * head_dim * dtype_bytes(dtype)
    return batch_size * tokens * per_token


def sliding_window(config: Any) -> int | None:
    """How far back every layer attends, if the model limits it (None: the whole context)."""
    window = getattr(config, "sliding_window", None)
    if not window or not getattr(config, "use_sliding_window", True):
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(t != "sliding_attention" for t in layer_types):
        return None  # some layers see everything: they need the whole cache
    return int(window)
