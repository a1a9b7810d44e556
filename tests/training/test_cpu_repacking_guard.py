"""The guard against bitsandbytes' CPU repacking bug holds on every CPU (FINDINGS §1).

On a CPU with AVX512-BF16, bitsandbytes 0.50.2 repacks a ``Linear4bit`` weight during
an eval/no_grad pass into a layout whose kernel has no autograd: gradients stop
flowing through the frozen 4-bit layers. The test makes bitsandbytes believe this CPU
has AVX512-BF16, whatever it really has, so the guard is tested everywhere.
"""

from __future__ import annotations

import bitsandbytes as bnb
import bitsandbytes.nn.modules as bnb_modules
import pytest
import torch
from helpers import tiny_config

from ift_tutorial.loading import load_model, load_tokenizer


@pytest.fixture
def avx512bf16_cpu(monkeypatch) -> None:
    # Linear4bit.__init__ sets support_avx512bf16_for_cpu = has_avx512bf16() from this
    # module's namespace; that flag is what enables the repacking in forward().
    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    assert bnb.nn.Linear4bit(8, 8).support_avx512bf16_for_cpu  # the patch took


def test_eval_pass_then_train_step_keeps_input_gradients(avx512bf16_cpu) -> None:
    cfg = tiny_config()
    model, tok = load_model(cfg.model), load_tokenizer(cfg.model)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 7 * model.config.num_hidden_layers  # q k v o gate up down
    assert all(m.support_avx512bf16_for_cpu is False for m in layers)

    ids = tok("Zandor lives in", return_tensors="pt").input_ids
    model.eval()
    with torch.no_grad():  # as the "before tuning" evaluation runs
        model(input_ids=ids)
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)

    model.train()
    for m in layers:  # a training step's backward through each frozen 4-bit layer
        x = torch.randn(2, 3, m.in_features, requires_grad=True)
        m(x).sum().backward()  # the pytest config turns the no-autograd warning into an error
        assert x.grad is not None
        # d(sum of outputs)/dx is the column sum of the (dequantised) weight: the exact gradient
        w = bnb.functional.dequantize_4bit(m.weight.data, m.weight.quant_state).float()
        torch.testing.assert_close(x.grad, w.sum(0).expand_as(x), rtol=1e-4, atol=1e-5)

def test_the_guard_reports_what_it_changed(avx512bf16_cpu) -> None:
    from ift_tutorial.loading import disable_cpu_weight_repacking

    model = torch.nn.Sequential(bnb.nn.Linear4bit(64, 64), torch.nn.ReLU(),
                                bnb.nn.Linear4bit(64, 64))
    assert disable_cpu_weight_repacking(model) == 2
    assert disable_cpu_weight_repacking(model) == 0  # nothing left to change
