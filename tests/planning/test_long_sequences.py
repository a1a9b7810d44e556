"""Long sequences: no data-parallel strategy shrinks the activations; the remedies do."""

from __future__ import annotations

from ift_tutorial.config import load_config
from ift_tutorial.planning.memory import plan_for_config
from ift_tutorial.planning.sharding import STRATEGIES

OWN = ("activations", "logits and loss (fp32)")


def _own(plan) -> int:
    return sum(plan.components[k] for k in OWN)


def test_sharding_leaves_every_gpu_its_activations_and_the_remedies_shrink_them():
    qwen = load_config("qwen2.5-7b")
    seq = 8 * qwen.model.max_length
    one = plan_for_config(qwen, seq_len=seq)
    for strategy in STRATEGIES:  # FSDP, ZeRO-3 included: the weights shrink, these do not
        sharded = plan_for_config(qwen, seq_len=seq, strategy=strategy, num_gpus=4)
        assert _own(sharded) == _own(one), strategy
    batch = qwen.training.per_device_train_batch_size
    assert batch > 1
    assert _own(plan_for_config(qwen, seq_len=seq, batch_size=1)) * batch == _own(one)
    assert _own(plan_for_config(qwen, seq_len=seq // 4)) * 4 == _own(one)  # a quarter each
    no_checkpointing = plan_for_config(qwen, seq_len=seq, gradient_checkpointing=False)
    assert no_checkpointing.components["activations"] > 5 * one.components["activations"]
