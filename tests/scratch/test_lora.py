"""The teaching LoRA layer gives the same outputs as PEFT's."""

import copy
import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from ift_tutorial.scratch.lora import LoRALinear, add_lora, lora_parameter_count


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(12, 20)
        self.down = nn.Linear(20, 6, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


@pytest.mark.parametrize("use_rslora", [False, True])
def test_matches_peft(use_rslora):
    torch.manual_seed(0)
    base = TwoLayer()
    ours = add_lora(copy.deepcopy(base), ["up", "down"], r=4, alpha=8, use_rslora=use_rslora)
    peft_model = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["up", "down"],
                   use_rslora=use_rslora),
    )
    for name in ("up", "down"):
        theirs = getattr(peft_model.base_model.model, name)
        mine = getattr(ours, name)
        assert mine.scaling == theirs.scaling["default"]
        assert mine.scaling == (8 / math.sqrt(4) if use_rslora else 8 / 4)
        # B starts at zero in both; give it values so that the update is not trivially 0
        assert torch.count_nonzero(mine.lora_B) == 0
        with torch.no_grad():
            theirs.lora_B["default"].weight.normal_()
            mine.lora_A.copy_(theirs.lora_A["default"].weight)
            mine.lora_B.copy_(theirs.lora_B["default"].weight)
    x = torch.randn(5, 3, 12)
    expected = peft_model(x)
    assert not torch.allclose(expected, base(x), atol=1e-3)  # the update matters
    assert torch.allclose(ours(x), expected, atol=1e-6)
    trainable = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    assert trainable == peft_model.get_nb_trainable_parameters()[0]
    assert trainable == lora_parameter_count(12, 20, 4) + lora_parameter_count(20, 6, 4)


def test_init_like_peft():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(64, 32), r=8, alpha=16)
    # kaiming_uniform(a=sqrt(5)) draws from U(-1/sqrt(in), 1/sqrt(in))
    assert layer.lora_A.abs().max() <= 1 / math.sqrt(64)
    assert layer.lora_A.std() > 0.5 / math.sqrt(3 * 64)
    x = torch.randn(4, 64)
    assert torch.equal(layer(x), layer.base(x))  # B = 0: the adapter starts as a no-op


def test_base_frozen_and_adapter_learns():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 16), r=2, alpha=4)
    w0 = layer.base.weight.clone()
    opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(32, 16), torch.randn(32, 16)
    losses = []
    for _ in range(20):
        loss = (layer(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert layer.base.weight.grad is None and torch.equal(layer.base.weight, w0)
    assert losses[-1] < losses[0]


def test_merge_equals_unmerged():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(10, 7), r=3, alpha=6, dropout=0.1)
    nn.init.normal_(layer.lora_B)
    layer.eval()  # dropout off: merging is exact only without it
    x = torch.randn(4, 10)
    before = layer(x)
    layer.merge()
    assert layer.merged
    assert torch.allclose(layer(x), before, atol=1e-6)
    assert torch.allclose(layer.base(x), before, atol=1e-6)  # a plain Linear now
    layer.unmerge()
    assert torch.allclose(layer(x), before, atol=1e-6)


def test_bad_rank_and_no_target():
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=1)
    with pytest.raises(ValueError, match="no nn.Linear"):
        add_lora(TwoLayer(), ["q_proj"], r=2, alpha=4)
