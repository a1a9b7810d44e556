"""Putting inputs where the model is: one helper for every model call.

A model loaded with a single-device ``device_map`` (``{"": 0}``, what
:func:`ift_tutorial.loading.load_model` uses on a GPU) has no hooks that move its
inputs: a CPU tensor fed to a model on ``cuda:0`` fails with "Expected all tensors
to be on the same device". The tokenizer always returns CPU tensors, so every call
of a model goes through :func:`to_model_device` first::

    enc = to_model_device(tokenizer(texts, return_tensors="pt"), model)
    logits = model(**enc).logits

A model spread over several devices (``device_map="auto"`` on two GPUs) takes its
inputs on the device of its input embedding, which is what :func:`model_device`
returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn
from transformers import BatchEncoding

T = TypeVar("T")


def model_device(model: nn.Module) -> torch.device:
    """The device a model's inputs must be on: that of its input embedding.

    Falls back to the first parameter's device for modules without an input
    embedding (a plain ``nn.Module``).

    Example:
        >>> model_device(nn.Linear(2, 2))
        device(type='cpu')
    """
    get_embeddings = getattr(model, "get_input_embeddings", None)
    if callable(get_embeddings):
        try:
            embeddings = get_embeddings()
        except (NotImplementedError, AttributeError):
            embeddings = None
        weight = getattr(embeddings, "weight", None)
        if isinstance(weight, torch.Tensor):
            return weight.device
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def to_model_device(batch: T, model: nn.Module) -> T:
    """``batch`` with every tensor in it moved to :func:`model_device` of ``model``.

    Args:
        batch: a tensor (e.g. ``input_ids`` of shape (B, T)), a ``BatchEncoding`` or a
            dict of tensors (what a tokenizer returns), or a list/tuple of those.
            Values that are not tensors (``None``, ints) are kept as they are.
        model: the model the batch is for.

    Returns:
        The same kind of object (a plain dict for other mappings), its tensors on the
        model's device; a tensor already there is returned as is, without a copy. The
        caller's batch is not changed.

    Example:
        >>> enc = {"input_ids": torch.tensor([[1, 2]]), "n": 2}
        >>> to_model_device(enc, nn.Linear(2, 2))["input_ids"].device
        device(type='cpu')
    """
    return _move(batch, model_device(model))


def _move(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, BatchEncoding):  # a new one: BatchEncoding.to would change the caller's
        return BatchEncoding({k: _move(v, device) for k, v in value.items()},
                             encoding=value.encodings, n_sequences=value.n_sequences)
    if isinstance(value, Mapping):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value
