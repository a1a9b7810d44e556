"""OLMo 2's decoder block, from scratch: the Llama block with its norms moved (chapter 4).

OLMo 2 (Team OLMo, "2 OLMo 2 Furious", arXiv 2501.00656) keeps every piece of
:mod:`~ift_tutorial.scratch.llama` (RMSNorm, RoPE, SwiGLU, the same projections) and
changes two things for training stability:

1. **Norms on the sublayers' outputs.** Llama normalises what *enters* a sublayer,
   ``x + Attn(RMSNorm(x))``; OLMo 2 normalises what *leaves* it,
   ``x + RMSNorm(Attn(x))`` and ``x + RMSNorm(MLP(x))``. The residual stream itself is
   still never normalised (unlike the original post-norm Transformer,
   ``RMSNorm(x + Attn(x))``), so gradients still pass straight through the additions.
2. **QK-norm.** Queries and keys are RMS-normalised right after their projections,
   before RoPE, which bounds the attention logits. As in ``transformers``' ``Olmo2``,
   the norm runs over the whole projection (all heads together, width ``H * head_dim``),
   not over each head separately.

Parameter names match ``transformers``' ``Olmo2ForCausalLM`` (``q_norm``, ``k_norm``,
``post_attention_layernorm``, ``post_feedforward_layernorm``), so :func:`from_hf` copies
weights one to one and the tests compare both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .llama import Llama, LlamaArgs, LlamaAttention, RMSNorm, SwiGLU, _load_weights, apply_rope

Tensor = torch.Tensor


def olmo2_args(config: Any) -> LlamaArgs:
    """Read a ``transformers`` ``Olmo2Config``: the Llama fields, read (and refused) as
    :meth:`LlamaArgs.from_hf_config` reads them."""
    return LlamaArgs.from_hf_config(config, model_types=("olmo2",))


class Olmo2Attention(LlamaAttention):
    """Llama's attention with QK-norm: ``q = RMSNorm(W_q x)``, ``k = RMSNorm(W_k x)``."""

    def __init__(self, args: LlamaArgs) -> None:
        super().__init__(args.hidden_size, args.num_heads, args.num_kv_heads, head_dim=args.head_dim,
                         bias=args.qkv_bias, out_bias=args.o_bias)
        self.q_norm = RMSNorm(args.num_heads * args.head_dim, args.rms_norm_eps)
        self.k_norm = RMSNorm(args.num_kv_heads * args.head_dim, args.rms_norm_eps)

    def project(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, T, E), k and v (B, H_kv, T, E); q and k normalised before the head split."""
        q = self.split_heads(self.q_norm(self.q_proj(x)), self.num_heads)  # norm over H * E
        k = self.split_heads(self.k_norm(self.k_proj(x)), self.num_kv_heads)
        v = self.split_heads(self.v_proj(x), self.num_kv_heads)
        return q, k, v

    def forward(  # type: ignore[override]
        self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`LlamaAttention.forward`: RoPE turns the *normalised* q and k."""
        q, k, v = self.project(x)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return self.attend(q, k, v, attn_mask, is_causal=False)


class Olmo2Block(nn.Module):
    """One OLMo 2 block: each sublayer's output is normalised, then added to the stream."""

    def __init__(self, args: LlamaArgs) -> None:
        super().__init__()
        self.self_attn = Olmo2Attention(args)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = SwiGLU(args.hidden_size, args.intermediate_size, bias=args.mlp_bias)
        self.post_feedforward_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, attn_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, hidden) -> (B, T, hidden), plus the attention weights (B, H, T, T)."""
        h, weights = self.self_attn(x, cos, sin, attn_mask)  # no norm on the way in
        x = x + self.post_attention_layernorm(h)
        x = x + self.post_feedforward_layernorm(self.mlp(x))
        return x, weights


class Olmo2(Llama):
    """The whole OLMo 2 model: :class:`Llama` with :class:`Olmo2Block` in place of its blocks."""

    block_class = Olmo2Block


def from_hf(hf_model: nn.Module) -> Olmo2:
    """Copy a ``transformers`` ``Olmo2ForCausalLM`` into our :class:`Olmo2`, in fp32."""
    if getattr(hf_model, "is_loaded_in_4bit", False) or getattr(hf_model, "is_quantized", False):
        raise ValueError("from_hf needs unquantised weights: load the model with load_in_4bit=False")
    model = Olmo2(olmo2_args(hf_model.config))
    _load_weights(model, dict(hf_model.state_dict()), type(hf_model).__name__)
    return model.eval()
