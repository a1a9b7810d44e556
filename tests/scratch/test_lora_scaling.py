"""One optimizer step on a fresh LoRA layer: the output change the module docstring derives."""

import math

import pytest
import torch
from torch import nn

from ift_tutorial.scratch.lora import LoRALinear
from ift_tutorial.scratch.lora_scaling import first_step_changes, output_change


def _layer_and_data(r: int, d: int = 32, use_rslora: bool = False):
    torch.manual_seed(r)
    layer = LoRALinear(nn.Linear(d, d, bias=False), r=r, alpha=8, use_rslora=use_rslora)
    return layer, torch.randn(1, d), torch.randn(1, d)


@pytest.mark.parametrize("r", [1, 6])
def test_sgd_moves_the_output_by_lr_s2_times_the_squared_norm_of_ax(r):
    layer, x, target = _layer_and_data(r)
    ax = (x @ layer.lora_A.T).detach()  # (1, r)
    g = 2 * (layer.base(x) - target).detach()  # dL/dh at B = 0
    delta = output_change(layer, x, target, "SGD", lr=1e-3)
    expected = -1e-3 * layer.scaling**2 * ax.pow(2).sum() * g
    assert torch.allclose(delta, expected, rtol=1e-3, atol=1e-6)  # float32 difference
    assert torch.count_nonzero(layer.lora_B) == layer.lora_B.numel()


@pytest.mark.parametrize("use_rslora", [False, True])
def test_adams_first_step_is_a_sign_step(use_rslora):
    layer, x, target = _layer_and_data(6, use_rslora=use_rslora)
    a_before = layer.lora_A.detach().clone()
    ax = (x @ layer.lora_A.T).detach()
    g = (layer.base(x) - target).detach()
    delta = output_change(layer, x, target, "Adam", lr=1e-3)
    # every entry of B moved by lr, so |Δh| = lr * s * ‖Ax‖₁ in every output
    expected = -1e-3 * layer.scaling * ax.abs().sum() * g.sign()
    assert torch.allclose(delta, expected, rtol=1e-3, atol=1e-6)  # float32 difference
    assert torch.allclose(layer.lora_B.abs(), torch.full_like(layer.lora_B, 1e-3), rtol=1e-4)
    assert torch.equal(layer.lora_A, a_before)  # A's gradient is 0 while B is 0


def test_the_rank_trend_of_both_optimizers():
    rows = first_step_changes(ranks=(4, 64), d=256, seeds=6)
    ratio = {(row["optimizer"], row["rslora"]): row["changes"][64] / row["changes"][4]
             for row in rows}
    assert 1 / 32 < ratio["SGD", False] < 1 / 8  # alpha^2 / r: 16 times the rank, ~1/16
    assert 2 / 3 < ratio["SGD", True] < 1.5  # alpha^2: flat
    assert 2 / 3 < ratio["Adam", False] < 1.5  # alpha: flat
    assert 2 < ratio["Adam", True] < 8  # alpha * sqrt(r): ~ sqrt(16) = 4
    assert math.isclose(ratio["Adam", True] / ratio["Adam", False], 4, rel_tol=1e-4)


def test_an_unknown_optimizer_is_named():
    layer, x, target = _layer_and_data(2)
    with pytest.raises(ValueError, match="'Lion'.*SGD, Adam"):
        output_change(layer, x, target, "Lion", lr=1e-3)
