"""The planner's FSDP1 assumption on real FSDP1: the root unit stays gathered through backward.

``memory.plan_memory(strategy="fsdp")`` counts the parameters outside the wrapped decoder
layers (embeddings, final norm, head) whole on every GPU. Two gloo ranks on the CPU show
why: after the forward pass FSDP1 frees a layer's gathered copy but not the root's. This
module imports only torch, so that the spawned ranks start quickly.
"""

from __future__ import annotations

import os

import torch


def _fsdp1_root_probe(rank: int, world_size: int, init_file: str, queue) -> None:
    """One rank: FSDP1 with a unit per layer; the unsharded sizes after forward and backward."""
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    torch.manual_seed(0)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(16, 16)

        def forward(self, x):
            return x + self.linear(x)

    class Net(nn.Module):  # embeddings, two layers, head: the shape of a decoder
        def __init__(self):
            super().__init__()
            self.embed, self.head = nn.Embedding(100, 16), nn.Linear(16, 100, bias=False)
            self.layers = nn.ModuleList([Layer(), Layer()])

        def forward(self, ids):
            h = self.embed(ids)
            for layer in self.layers:
                h = layer(h)
            return self.head(h)

    model = FSDP(Net(), auto_wrap_policy=ModuleWrapPolicy({Layer}),
                 sharding_strategy=ShardingStrategy.FULL_SHARD, device_id=torch.device("cpu"))

    def unsharded_bytes(unit) -> int:  # the gathered copy of a unit's flat parameter (0: freed)
        return unit._handle.flat_param._full_param_padded.untyped_storage().nbytes()

    out = model(torch.randint(0, 100, (2, 4)))
    after_forward = (unsharded_bytes(model), unsharded_bytes(model.layers[0]))
    out.sum().backward()
    queue.put((rank, after_forward, unsharded_bytes(model)))
    dist.barrier()
    dist.destroy_process_group()
    # gloo's threads can abort the interpreter's teardown ("terminate called without an
    # active exception", SIGABRT, about 1 run in 10): once the result is flushed to the
    # parent, leave without it
    queue.close()
    queue.join_thread()
    os._exit(0)


def test_fsdp1_keeps_the_root_unit_gathered_between_forward_and_backward(tmp_path):
    """What the planner assumes, on real FSDP1 (two gloo ranks on the CPU)."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_fsdp1_root_probe, args=(2, str(tmp_path / "init"), queue), nprocs=2,
                       start_method="spawn")
    results = sorted(queue.get(timeout=60) for _ in range(2))
    root_bytes = (100 * 16 + 16 * 100) * 4  # embeddings and head, fp32
    for _, (root_after_forward, layer_after_forward), root_after_backward in results:
        assert root_after_forward == root_bytes  # the root stays whole for the backward pass
        assert layer_after_forward == 0  # a layer's gathered copy is freed after its forward
        assert root_after_backward == 0  # resharded once the backward pass is done
