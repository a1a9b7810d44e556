"""Answer-token perplexity: ``exp`` of the mean negative log-likelihood per assistant token
on held-out conversations, counting only the tokens that training puts a loss on.

A batch is right-padded: ``input_ids``, ``labels`` and ``attention_mask`` are (B, T); labels
are -100 on every token that is not the assistant's. The logits of a whole batch, (B, T, V),
are never built: with a 152k-word vocabulary they alone would outgrow a T4. The model's
body runs once and its head only on the answer positions, a slice at a time.
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
from ..planning.ledger import charge, eval_batch_bytes
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


#: Answer positions whose logits are built at once. The peak of :func:`perplexity` grows
#: with this, not with batch x length x vocabulary: 512 rows of Qwen2.5's 152,064 words are
#: 0.29 GiB in fp32, where a whole batch of 8 x 1,024 would be 4.6 GiB (twice that with the
#: log-softmax). ``ift_tutorial.planning.memory.eval_logits_bytes`` plans the same figure.
LOGITS_CHUNK = 512


def _decoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The transformer body and the output head of a causal LM (through a PEFT wrapper).

    The LoRA layers sit inside the body's modules, so the body computes the adapted model.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if any(getattr(config, k, None) for k in ("final_logit_softcapping", "logit_scale")):
        raise ValueError(f"{type(base).__name__} post-processes its logits: not supported here")
    return base.get_decoder(), base.get_output_embeddings()


def answer_nll(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               labels: torch.Tensor, chunk: int = LOGITS_CHUNK) -> tuple[float, int]:
    """Summed negative log-likelihood of the labelled tokens of a batch, and their count.

    The body runs once over the batch; the head runs only on the positions that predict a
    labelled token, ``chunk`` of them at a time, so the logits never exist whole.

    Args:
        input_ids, attention_mask, labels: (B, T), on the model's device; labels are -100
            where there is no loss.
        chunk: positions per slice of logits, (chunk, V) in fp32.
    """
    body, head = _decoder_and_head(model)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    # Token t predicts token t+1: the hidden state at t against the label at t+1.
    targets = labels[:, 1:]  # (B, T-1)
    keep = targets != -100
    states, wanted = hidden[:, :-1][keep], targets[keep]  # (N, H), (N,)
    del hidden
    total = 0.0
    for start in range(0, len(wanted), chunk):
        logits = head(states[start:start + chunk]).float()  # (chunk, V)
        total += torch.nn.functional.cross_entropy(logits, wanted[start:start + chunk],
                                                   reduction="sum").item()
    return total, int(len(wanted))


@torch.no_grad()
def perplexity(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    batch_size: int = 16,
    max_length: int | None = 256,
    chunk: int = LOGITS_CHUNK,
) -> dict[str, float]:
    """Perplexity of the assistant turns: ``exp(total NLL / number of assistant tokens)``.

    Each batch runs the model's body once; the logits are built ``chunk`` answer positions
    at a time (:func:`answer_nll`), so the memory it needs beyond the model is the batch's
    hidden states, (B, T, H), and one (chunk, V) slice of fp32 logits.

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
            charge(model, f"perplexity batch of {len(pairs)}", lambda tag: eval_batch_bytes(
                tag.arch, len(pairs), max_length or tag.max_length, chunk, tag.compute_bytes))
            batch = to_model_device({"input_ids": input_ids, "attention_mask": attention,
                                     "labels": labels}, model)
            nll, tokens = answer_nll(model, batch["input_ids"], batch["attention_mask"],
                                     batch["labels"], chunk)
            total_nll += nll
            total_tokens += tokens
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
