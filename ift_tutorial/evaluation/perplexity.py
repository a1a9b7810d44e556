"""Answer-token perplexity: ``exp`` of the mean negative log-likelihood per assistant token
on held-out conversations, counting only the tokens that training puts a loss on.

A batch is right-padded: ``input_ids``, ``labels`` and ``attention_mask`` are (B, T) and the
logits (B, T, V); labels are -100 on every token that is not the assistant's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from ..inference.generation import Conversation
from ..instructions.sources import HubSource
from ..loading import disable_cpu_weight_repacking
from ..paths import display_path, resolve_path
from ..training.devices import to_model_device


def _assistant_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A chat template with generation markers: the tokenizer's own, else TRL's training one."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if tokenizer.chat_template and has_generation_markers(tokenizer.chat_template):
        return None  # use the tokenizer's own
    return get_training_chat_template(tokenizer)


def assistant_labels(
    tokenizer: PreTrainedTokenizerBase, conversation: Conversation, max_length: int | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and labels that are -100 except on assistant tokens.

    The assistant tokens are the ones inside the template's ``{% generation %}`` blocks,
    EOS included: exactly the tokens that training puts a loss on.

    Returns:
        ``(input_ids, labels)``, both of length <= ``max_length``.
    """
    out = tokenizer.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
        chat_template=_assistant_template(tokenizer),
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    return ids, [t if m else -100 for t, m in zip(ids, mask)]


@torch.no_grad()
def perplexity(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    batch_size: int = 16,
    max_length: int | None = 256,
) -> dict[str, float]:
    """Perplexity of the assistant turns: ``exp(total NLL / number of assistant tokens)``.

    Returns:
        ``perplexity``, ``nll`` (mean per token), ``tokens`` counted, ``n`` conversations.
    """
    was_training = model.training
    model.eval()
    disable_cpu_weight_repacking(model)
    total_nll, total_tokens = 0.0, 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    try:
        for start in range(0, len(conversations), batch_size):
            pairs = [assistant_labels(tokenizer, list(c), max_length)
                     for c in conversations[start:start + batch_size]]
            width = max(len(ids) for ids, _ in pairs)
            # Right padding: positions match those seen in training; padded labels are -100.
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in pairs])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in pairs])
            attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in pairs])
            inputs = to_model_device({"input_ids": input_ids, "attention_mask": attention}, model)
            logits = model(**inputs).logits
            # Token t predicts token t+1: shift logits left, labels right.
            logits = logits[:, :-1].float()  # (B, T-1, V)
            targets = labels[:, 1:].to(logits.device)  # (B, T-1)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                ignore_index=-100, reduction="sum",
            )
            total_nll += nll.item()
            total_tokens += int((targets != -100).sum())
    finally:
        model.train(was_training)
    if total_tokens == 0:
        raise ValueError("no assistant tokens to score: do the conversations have assistant turns?")
    mean = total_nll / total_tokens
    return {"perplexity": math.exp(mean), "nll": mean, "tokens": total_tokens, "n": len(conversations)}


def load_perplexity_conversations(path: str | HubSource, limit: int | None = None
                                  ) -> list[Conversation]:
    """Held-out conversations (any format or hub source the data loader reads), at most ``limit``."""
    return read_perplexity_set(path, limit)[0]


def read_perplexity_set(source: str | HubSource, limit: int | None = None
                        ) -> tuple[list[Conversation], list[str]]:
    """Held-out conversations (the first ``limit``) and notes on where they came from."""
    from ..instructions.dataset import _load

    loaded = _load(source if isinstance(source, HubSource) else str(resolve_path(source)),
                   "auto", "train", None, False)
    convs = loaded.conversations[:limit] if limit else loaded.conversations
    notes = loaded.source.notes or [f"read {display_path(loaded.source.path)}"]
    return convs, notes + ([f"first {len(convs)} of {len(loaded.conversations)} conversations"]
                           if len(convs) < len(loaded.conversations) else [])
