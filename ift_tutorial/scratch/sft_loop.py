"""QLoRA instruction tuning in plain PyTorch: the loop that ``SFTTrainer`` runs for us.

Everything comes from earlier chapters, nothing from a trainer:

* the data: each conversation as token ids and labels that are -100 except on the
  assistant's tokens (chapter 5, :func:`ift_tutorial.evaluation.perplexity.assistant_labels`),
  right-padded into batches in a seeded random order;
* the model: the base model's linear layers stored as NF4 codes with double-quantised
  block scales (chapter 6, :mod:`ift_tutorial.scratch.quantization`), each wrapped in a
  :class:`~ift_tutorial.scratch.lora.LoRALinear` whose two small matrices are the only
  trainable weights;
* the step: forward, cross-entropy on the labelled tokens, backward, gradient clipping,
  an AdamW step and the learning-rate schedule.

:func:`trainer_losses` trains the same adapter, from the same initial weights
(:func:`adapter_state`), on the same batches with TRL's ``SFTTrainer`` as the package
builds it (:func:`ift_tutorial.training.trainer.build_trainer`), so that the two loss
curves can be laid side by side (:data:`MATCH_TOLERANCE`). Teaching code: the pipeline
never imports it.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from ..evaluation.perplexity import assistant_labels
from ..i18n import t
from .lora import LoRALinear
from .quantization import (DoubleQuantState, double_dequantize, double_quantize,
                           dequantize_nf4, pack_4bit, quantize_nf4, unpack_4bit)

#: The linear layers of a Llama block: what ``target_modules="all-linear"`` adapts.
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class NF4Linear(nn.Module):
    """A frozen linear layer kept as packed NF4 codes, dequantised for each forward pass.

    Storage per weight: 4 bits of code plus the block scales, themselves quantised to
    8 bits in blocks of 256 (double quantisation), as bitsandbytes stores them.
    """

    def __init__(self, linear: nn.Linear, blocksize: int = 64):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.shape, self.blocksize = tuple(linear.weight.shape), blocksize
        codes, absmax = quantize_nf4(linear.weight.data, blocksize)  # (n,), (n / 64,)
        self.register_buffer("packed", pack_4bit(codes))  # (n / 2, 1) uint8
        self.scales: DoubleQuantState = double_quantize(absmax)
        self.bias = None if linear.bias is None else linear.bias.detach()

    @property
    def weight(self) -> torch.Tensor:
        """The dequantised weight, (out, in) float32: built anew at every call."""
        n = self.in_features * self.out_features
        absmax = double_dequantize(self.scales)
        return dequantize_nf4(unpack_4bit(self.packed, n), absmax, self.shape, self.blocksize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> (..., out)."""
        return F.linear(x, self.weight.to(x.dtype), self.bias)


def qlora_model(model: nn.Module, r: int, alpha: float, dropout: float = 0.0,
                targets: tuple[str, ...] = LLAMA_LINEARS) -> nn.Module:
    """Freeze ``model``, store its target layers in NF4, put a LoRA adapter on each.

    Returns the same model, changed in place; only the LoRA matrices train.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            parent, _, child = name.rpartition(".")
            adapted = LoRALinear(NF4Linear(module), r, alpha, dropout)
            setattr(model.get_submodule(parent), child, adapted)
    return model


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``(input_ids, labels)`` pairs: ``input_ids``, ``labels``, ``attention_mask``,
    each (B, T); padding gets label -100 and attention 0."""
    width = max(len(ids) for ids, _ in examples)
    batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "attention_mask": []}
    for ids, labels in examples:
        pad = width - len(ids)
        batch["input_ids"].append(ids + [pad_id] * pad)
        batch["labels"].append(labels + [-100] * pad)
        batch["attention_mask"].append([1] * len(ids) + [0] * pad)
    return {k: torch.tensor(v) for k, v in batch.items()}


def batches(conversations: list[Any], tokenizer: Any, batch_size: int, seed: int,
            max_length: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches: every epoch the conversations in a new seeded order.

    The order of epoch e is ``torch.randperm(n)`` from a generator seeded with
    ``seed + e``: the order in which the Trainer's sampler (accelerate's seedable sampler,
    ``data_seed=seed``) reads them.
    """
    encoded = [assistant_labels(tokenizer, c, max_length) for c in conversations]
    for epoch in range(10**9):
        order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(0, len(order), batch_size):
            yield collate([encoded[j] for j in order[i:i + batch_size]], tokenizer.pad_token_id)


def sft_step(model: nn.Module, batch: dict[str, torch.Tensor],
             optimizer: torch.optim.Optimizer, schedule: Any,
             max_grad_norm: float = 1.0) -> float:
    """One optimizer step on one batch; its loss (the mean over the answer tokens)."""
    logits = model(input_ids=batch["input_ids"],
                   attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    # the logits at position t predict token t + 1; -100 marks prompt and padding
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                           batch["labels"][:, 1:].flatten(), ignore_index=-100)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], max_grad_norm)
    optimizer.step()
    schedule.step()  # the learning rate of the next step
    optimizer.zero_grad()
    return loss.item()


def sft_loop(model: nn.Module, data: Iterator[dict[str, torch.Tensor]], steps: int,
             lr: float, warmup_steps: int = 0,
             max_grad_norm: float = 1.0) -> list[float]:
    """Train the adapter of ``model`` on ``steps`` batches; the loss of each step."""
    params = [p for p in model.parameters() if p.requires_grad]  # the LoRA matrices
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup_steps, steps)
    model.train()
    return [sft_step(model, batch, optimizer, schedule, max_grad_norm)
            for _, batch in zip(range(steps), data)]


def warmup_steps(config: Any, steps: int) -> int:
    """The Trainer's warm-up: a ``warmup_ratio`` below 1 is a fraction of the steps, rounded up."""
    ratio = config.training.warmup_ratio
    return math.ceil(ratio * steps) if ratio < 1 else int(ratio)


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every LoRA matrix of ``model`` (name -> tensor): the adapter as it is now."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _load_adapter(peft_model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy :func:`adapter_state`'s matrices into the matching LoRA weights of a PEFT model."""
    loaded = 0
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            key = name.replace("base_model.model.", "", 1).replace(".default.weight", "")
            p.data.copy_(state[key])
            loaded += 1
    if loaded != len(state):
        raise ValueError(f"{len(state)} LoRA matrices given, {loaded} in the PEFT model")


#: How far (relative) a step's loss of :func:`sft_loop` may lie from ``SFTTrainer``'s on the
#: same start, batches and settings. Measured on the tiny preset over 30 steps (2-core x86,
#: torch 2.13, bitsandbytes 0.50): 3e-5 at the first step, before any update, where the two
#: differ only in how the same NF4 weights are dequantised and multiplied; 1.2e-4 at most
#: later. The bound is ten times that, and still far below the few percent by which one step
#: moves the loss.
MATCH_TOLERANCE = 1e-3


def trainer_losses(config: Any, steps: int,
                   start: dict[str, torch.Tensor]) -> tuple[list[float], dict[str, str]]:
    """``steps`` steps of TRL's ``SFTTrainer``, built as
    :func:`~ift_tutorial.training.trainer.train` builds it, from the adapter ``start``
    (:func:`adapter_state` of a :func:`qlora_model`).

    The hyper-parameters are ``config``'s, as :func:`sft_loop` is given them: LoRA dropout 0
    (no random mask tells the two apart), a cosine schedule, one loss logged per step, no
    validation. The data are ``config``'s training conversations in the Trainer's order.

    Returns:
        The loss of each step, and :func:`trainer_summary` of the trainer.
    """
    from ..instructions.dataset import prepare_dataset
    from ..loading import load_model, load_tokenizer
    from ..planning.hardware import detect_precision
    from ..training.progress import replace_progress
    from ..training.trainer import build_trainer, sft_config

    config = copy.deepcopy(config)
    t, m = config.training, config.model
    t.max_steps, t.save_steps, t.logging_steps, t.eval_steps = steps, steps, 1, None
    t.lr_scheduler_type, config.lora.dropout = "cosine", 0.0
    tokenizer = load_tokenizer(m)
    data, _ = prepare_dataset(config.data.train, tokenizer, max_length=m.max_length, strict=False)
    precision = detect_precision(m.compute_dtype, t.optim)
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(config, load_model(m), tokenizer, data,
                                sft_config(config, out, precision), precision)
        replace_progress(trainer, summary=False)
        _load_adapter(trainer.model, start)
        trainer.train()
    return [e["loss"] for e in trainer.state.log_history if "loss" in e], trainer_summary(trainer)


def trainer_summary(trainer: Any) -> dict[str, str]:
    """What an ``SFTTrainer`` runs for each part of :func:`sft_loop`, in a few words
    (in the edition's language: :func:`ift_tutorial.i18n.t`)."""
    args, model = trainer.args, trainer.model
    adapted = sum(hasattr(m, "lora_A") for m in model.modules())  # PEFT's LoRA layers
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    return {
        "model": t("{model}, LoRA on {adapted} 4-bit layers", model=type(model).__name__,
                   adapted=adapted),
        "batches": t("{collator}, {size} conversations, order from data_seed={seed}",
                     collator=type(trainer.data_collator).__name__,
                     size=args.per_device_train_batch_size, seed=args.data_seed),
        "labels": t("assistant_masks, from the chat template's generation blocks")
                  if args.assistant_only_loss else "input_ids",
        "optimizer": t("{name}, learning rate {lr}", name=type(optimizer).__name__,
                       lr=f"{args.learning_rate:g}"),
        "schedule": t("{name}, {warmup} warm-up steps", name=schedule,
                      warmup=args.get_warmup_steps(args.max_steps)),
        "clipping": t("gradient norm at most {norm}", norm=f"{args.max_grad_norm:g}"),
    }
