"""Inputs go to the model's device: the helper, and the package's model calls through it.

There is no GPU here, so PyTorch's ``meta`` device plays "the other device": a
tensor that is moved there cannot be mistaken for one left on the CPU.
"""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from torch import nn
from transformers import BatchEncoding

from ift_tutorial.training.devices import model_device, to_model_device
from ift_tutorial.loading import load_tokenizer

META = torch.device("meta")


class ElsewhereModel(nn.Module):
    """A model whose input embedding lives on ``meta``; every call checks its inputs and stops."""

    class Reached(Exception):
        """The model was called with every input tensor on its device."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)  # first parameter: on the CPU
        self.embed = nn.Embedding(4, 2, device="meta")

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def get_decoder(self) -> nn.Module:  # the body the chunked perplexity runs first
        return self

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def _check(self, kwargs: dict) -> None:
        tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        assert tensors and all(v.device == META for v in tensors.values()), \
            {k: v.device for k, v in tensors.items()}
        raise self.Reached

    def forward(self, **kwargs):
        self._check(kwargs)

    def generate(self, **kwargs):
        self._check(kwargs)


def test_model_device_is_the_input_embeddings_device():
    model = ElsewhereModel()
    assert next(model.parameters()).device.type == "cpu"
    assert model_device(model) == META
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")  # no embedding: first parameter
    assert model_device(nn.ReLU()) == torch.device("cpu")  # no parameters at all


def test_to_model_device_moves_tensors_and_keeps_the_rest():
    model = ElsewhereModel()
    ids = torch.tensor([[1, 2, 3]])  # (B, T)
    assert to_model_device(ids, model).device == META

    enc = BatchEncoding({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    moved = to_model_device(enc, model)
    assert isinstance(moved, BatchEncoding)
    assert {v.device for v in moved.values()} == {META}
    assert enc["input_ids"].device.type == "cpu"  # the caller's batch is unchanged

    plain = to_model_device({"input_ids": ids, "n": 3, "past": None}, model)
    assert plain["input_ids"].device == META and plain["n"] == 3 and plain["past"] is None
    pair = to_model_device((ids, [ids]), model)
    assert isinstance(pair, tuple) and pair[0].device == META and pair[1][0].device == META

    here = torch.zeros(2)
    assert to_model_device(here, nn.Linear(2, 2)) is here  # already there: no copy


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(tiny_config().model)


def test_generation_moves_its_inputs(tokenizer):
    from ift_tutorial.evaluation.exact_match import complete
    from ift_tutorial.inference.generation import generate_responses

    with pytest.raises(ElsewhereModel.Reached):
        generate_responses(ElsewhereModel(), tokenizer, [[{"role": "user", "content": "1 + 1"}]])
    with pytest.raises(ElsewhereModel.Reached):
        complete(ElsewhereModel(), tokenizer, ["1 + 1 ="])


def test_perplexity_moves_its_inputs(tokenizer):
    from ift_tutorial.evaluation.perplexity import perplexity

    conversation = [{"role": "user", "content": "1 + 1"}, {"role": "assistant", "content": "2"}]
    with pytest.raises(ElsewhereModel.Reached):
        perplexity(ElsewhereModel(), tokenizer, [conversation])
