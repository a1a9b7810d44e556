"""A small encoder–decoder transformer, to see cross-attention at work (chapter 3).

The toy task is reversing a sequence of digits (``3 1 4 1 5`` -> ``5 1 4 1 3``).
Three models share the same building blocks from :mod:`ift_tutorial.scratch.attention`:

- the **encoder** reads the whole source with (non-causal) self-attention;
- the **decoder** writes the target with causal self-attention plus
  **cross-attention** whose queries come from the target and whose keys and values
  come from the encoder's output;
- a **decoder-only** model, for comparison, reads ``source SEP target`` as one
  sequence with causal self-attention only, the way 7B chat models do.

Sequences have 4 to 8 digits; shorter ones are padded, and the padding masks keep
every query away from padding keys. Everything trains in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import CrossAttention, MultiHeadAttention, causal_mask, padding_mask

Tensor = torch.Tensor

# Vocabulary: the digits 0-9, then the special tokens.
BOS, EOS, PAD, SEP = 10, 11, 12, 13
VOCAB_SIZE = 14
MAX_DIGITS = 8


@dataclass
class ReversalBatch:
    """Source (B, S), decoder input (B, T) = BOS + reversed, decoder target (B, T) = reversed + EOS.

    Masks are 1 for real tokens, 0 for padding; padded targets are -100 (ignored by the loss).
    """

    src: Tensor
    src_mask: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    tgt_mask: Tensor
    lengths: Tensor


def reversal_batch(batch_size: int, generator: torch.Generator, min_digits: int = 4) -> ReversalBatch:
    """Random digit sequences of 4..8 digits and their reversals, right-padded with PAD."""
    lengths = torch.randint(min_digits, MAX_DIGITS + 1, (batch_size,), generator=generator)
    digits = torch.randint(0, 10, (batch_size, MAX_DIGITS), generator=generator)
    positions = torch.arange(MAX_DIGITS)
    src_mask = (positions < lengths[:, None]).long()  # (B, S)
    src = digits.masked_fill(src_mask == 0, PAD)
    # Reverse only the real digits: position i of the answer is digit n - 1 - i.
    index = (lengths[:, None] - 1 - positions).clamp(min=0)
    reversed_digits = torch.gather(digits, 1, index).masked_fill(src_mask == 0, PAD)
    T = MAX_DIGITS + 1
    tgt_in = torch.full((batch_size, T), PAD)
    tgt_in[:, 0] = BOS
    tgt_in[:, 1:] = reversed_digits
    tgt_out = torch.full((batch_size, T), -100)
    tgt_out[:, :MAX_DIGITS] = reversed_digits.masked_fill(src_mask == 0, -100)
    tgt_out[torch.arange(batch_size), lengths] = EOS
    tgt_mask = (torch.arange(T) <= lengths[:, None]).long()  # BOS + n digits
    return ReversalBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, lengths)


class FeedForward(nn.Module):
    """Position-wise MLP: (B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(self, d_model: int, num_heads: int, cross: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = CrossAttention(d_model, num_heads) if cross else None
        self.norm_cross = nn.LayerNorm(d_model) if cross else None
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = FeedForward(d_model)

    def forward(
        self, x: Tensor, self_mask: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """x (B, T, d); masks bool, broadcastable to (B, H, T, T) and (B, H, T, S).

        Returns:
            x (B, T, d), self-attention weights (B, H, T, T), cross-attention weights
            (B, H, T, S) or None.
        """
        h, self_weights = self.self_attn(self.norm1(x), attn_mask=self_mask)
        x = x + h
        cross_weights = None
        if self.cross_attn is not None:
            h, cross_weights = self.cross_attn(self.norm_cross(x), context, attn_mask=context_mask)
            x = x + h
        return x + self.mlp(self.norm2(x)), self_weights, cross_weights


class EncoderDecoder(nn.Module):
    """Encoder (bidirectional self-attention) + decoder (causal self- and cross-attention)."""

    def __init__(self, d_model: int = 64, num_heads: int = 4, num_layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        # Attention itself ignores order (see chapter 3), so positions are added to the inputs.
        self.pos = nn.Embedding(MAX_DIGITS + 2, d_model)
        self.encoder = nn.ModuleList(Block(d_model, num_heads) for _ in range(num_layers))
        self.decoder = nn.ModuleList(Block(d_model, num_heads, cross=True) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB_SIZE)

    def _embed(self, tokens: Tensor) -> Tensor:
        return self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))

    def encode(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) -> (B, S, d). Every source token sees every other real source token."""
        x = self._embed(src)
        for block in self.encoder:
            x, _, _ = block(x, padding_mask(src_mask))
        return x

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, T) target so far + encoder output -> logits (B, T, vocab), cross-attention weights."""
        T = tgt_in.shape[1]
        x = self._embed(tgt_in)
        cross = []
        for block in self.decoder:
            # Causal among target tokens; cross-attention may look at every real source token.
            x, _, w = block(x, causal_mask(T, device=x.device), memory, padding_mask(src_mask))
            cross.append(w)
        return self.head(self.norm(x)), cross

    def forward(self, batch: ReversalBatch) -> tuple[Tensor, list[Tensor]]:
        return self.decode(batch.tgt_in, self.encode(batch.src, batch.src_mask), batch.src_mask)

    @torch.no_grad()
    def generate(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """Greedy decoding: (B, S) -> (B, MAX_DIGITS + 1) tokens, stopping tokens after EOS."""
        memory = self.encode(src, src_mask)
        out = torch.full((src.shape[0], 1), BOS, device=src.device)
        for _ in range(MAX_DIGITS + 1):
            logits, _ = self.decode(out, memory, src_mask)
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return out[:, 1:]


class DecoderOnly(nn.Module):
    """Causal self-attention only, on ``source SEP reversed EOS`` as one sequence."""

    def __init__(self, d_model: int = 64, num_heads: int = 4, num_layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos = nn.Embedding(2 * MAX_DIGITS + 2, d_model)
        self.blocks = nn.ModuleList(Block(d_model, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB_SIZE)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, T) -> logits (B, T, vocab) and self-attention weights per layer (B, H, T, T)."""
        T = tokens.shape[1]
        x = self.embed(tokens) + self.pos(torch.arange(T, device=tokens.device))
        attn_mask = causal_mask(T, device=tokens.device) & padding_mask(mask)
        weights = []
        for block in self.blocks:
            x, w, _ = block(x, attn_mask)
            weights.append(w)
        return self.head(self.norm(x)), weights


def as_one_sequence(batch: ReversalBatch) -> tuple[Tensor, Tensor, Tensor]:
    """``source SEP reversed EOS`` for the decoder-only model, left-padded.

    Returns:
        tokens (B, T), attention mask (B, T), labels (B, T): the next token where it
        is part of the answer (the loss ignores the prompt, as in instruction tuning).
    """
    rows, labels = [], []
    for i in range(batch.src.shape[0]):
        n = int(batch.lengths[i])
        prompt = batch.src[i, :n].tolist() + [SEP]
        answer = batch.tgt_in[i, 1 : n + 1].tolist() + [EOS]
        rows.append(prompt + answer[:-1])
        labels.append([-100] * (len(prompt) - 1) + answer)
    T = max(len(r) for r in rows)
    tokens = torch.full((len(rows), T), PAD)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    target = torch.full((len(rows), T), -100)
    for i, (r, y) in enumerate(zip(rows, labels)):
        tokens[i, T - len(r) :] = torch.tensor(r)  # left padding, as for generation
        mask[i, T - len(r) :] = 1
        target[i, T - len(y) :] = torch.tensor(y)
    return tokens, mask, target


def train_reversal(
    model: nn.Module, steps: int = 120, batch_size: int = 64, lr: float = 1e-2, seed: int = 0
) -> list[float]:
    """Train either model on random reversal batches; returns the loss of every step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    losses = []
    model.train()
    for _ in range(steps):
        batch = reversal_batch(batch_size, gen)
        if isinstance(model, EncoderDecoder):
            logits, _ = model(batch)
            loss = loss_fn(logits.flatten(0, 1), batch.tgt_out.flatten())
        else:
            tokens, mask, target = as_one_sequence(batch)
            logits, _ = model(tokens, mask)
            loss = loss_fn(logits.flatten(0, 1), target.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def exact_match(model: nn.Module, n: int = 500, seed: int = 1) -> float:
    """Share of fresh sequences reversed exactly (digits and the EOS after them)."""
    model.eval()
    batch = reversal_batch(n, torch.Generator().manual_seed(seed))
    if isinstance(model, EncoderDecoder):
        pred = model.generate(batch.src, batch.src_mask)
        target = batch.tgt_out.masked_fill(batch.tgt_out == -100, PAD)
        ok = [(pred[i, : int(batch.lengths[i]) + 1] == target[i, : int(batch.lengths[i]) + 1]).all()
              for i in range(n)]
        return float(torch.stack(ok).float().mean())
    # Decoder-only: teacher-forced argmax equals greedy decoding when every step is right.
    tokens, mask, target = as_one_sequence(batch)
    logits, _ = model(tokens, mask)
    pred = logits.argmax(-1)
    ok = ((pred == target) | (target == -100)).all(dim=1)
    return float(ok.float().mean())


@torch.no_grad()
def attention_maps(model: nn.Module, batch: ReversalBatch) -> list[Tensor]:
    """Per example, the head-averaged weights that connect answer and source.

    For the encoder–decoder: its cross-attention, rows = the n + 1 decoder positions,
    columns = the n real source digits. For the decoder-only model: its last layer's
    self-attention restricted to the rows that predict the answer (the separator and
    the answer digits) and the columns of the prompt's digits. Row ``i`` predicts the
    answer's ``i``-th token, which copies source digit ``n - 1 - i``.

    Returns:
        One (n + 1, n) tensor per example.
    """
    model.eval()
    maps = []
    if isinstance(model, EncoderDecoder):
        _, cross = model(batch)
        avg = cross[-1].mean(1)  # (B, T, S)
        for i, n in enumerate(batch.lengths.tolist()):
            maps.append(avg[i, : n + 1, :n])
        return maps
    tokens, mask, _ = as_one_sequence(batch)
    _, weights = model(tokens, mask)
    avg = weights[-1].mean(1)  # (B, T, T)
    for i, n in enumerate(batch.lengths.tolist()):
        real = mask[i].bool()
        w = avg[i][real][:, real]  # prompt = n digits + SEP, then the answer
        maps.append(w[n : 2 * n + 1, :n])
    return maps


def copy_alignment(maps: list[Tensor]) -> float:
    """Share of answer digits whose most-attended source position is the digit to copy."""
    hits, total = 0, 0
    for w in maps:
        n = w.shape[1]
        hits += int((w[:n].argmax(-1) == torch.arange(n - 1, -1, -1)).sum())
        total += n
    return hits / total
