"""Scaling out: the same training command on one device or on N processes.

``ift-tutorial train`` runs unchanged under a launcher::

    torchrun --nproc_per_node 2 -m ift_tutorial.cli train --config tiny --output-dir runs/ddp
    accelerate launch --config_file configs/accelerate/ddp.yaml -m ift_tutorial.cli train ...

A launcher starts one process per device and tells each who it is through
environment variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``). Every process
loads its own copy of the 4-bit base model on its own device, trains on a
different slice of each batch, and averages the LoRA gradients with the others
before each optimizer step (data parallelism, DDP). The adapters therefore stay
identical on every rank; only rank 0 writes files.

This module holds the small pieces that make that work: who am I, how big is the
global batch, which settings the trainer needs for several CPU processes, and a
callback that *checks* that the ranks really hold the same adapter.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from transformers import TrainerCallback

# --- who am I ------------------------------------------------------------------


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    """How many training processes there are (1 without a launcher)."""
    if _dist_ready():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's global index, 0 .. world_size-1 (0 without a launcher)."""
    if _dist_ready():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def local_rank() -> int:
    """This process's index on its own machine: which GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_distributed() -> bool:
    """True when a launcher started more than one process."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, the only process that writes outputs (and on a single process)."""
    return rank() == 0


def launcher() -> str:
    """Which launcher started this process: "accelerate", "torchrun" or "none"."""
    if any(k.startswith("ACCELERATE_") for k in os.environ) and "LOCAL_RANK" in os.environ:
        return "accelerate"
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:
        return "torchrun"
    return "none"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def sharding_strategy() -> str:
    """"fsdp", "zero3" or "none": whether parameters are split across ranks (set by
    ``accelerate launch`` from the config file's ``distributed_type``)."""
    if _env_true("ACCELERATE_USE_FSDP"):
        return "fsdp"
    if _env_true("ACCELERATE_USE_DEEPSPEED") and os.environ.get(
        "ACCELERATE_DEEPSPEED_ZERO_STAGE"
    ) == "3":
        return "zero3"
    return "none"


def barrier() -> None:
    """Wait for every rank (no-op on a single process)."""
    if _dist_ready():
        torch.distributed.barrier()


def local_world_size() -> int:
    """How many training processes share this machine."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))


def threads_per_rank(requested: int | None) -> int | None:
    """CPU threads for this rank: the requested number shared among the ranks of a machine.

    Two ranks that each ask for all the cores fight over them (and gloo's all-reduce waits
    for the slowest), so ``training.num_threads`` is a budget for the whole machine.
    """
    if requested is None:
        return None
    return max(1, requested // local_world_size())


# --- where the model goes, how big the batch is ---------------------------------


def device_map() -> dict[str, int | str]:
    """Per-rank placement for a 4-bit model: all of it on this rank's GPU, or on the CPU.

    Each rank loads the model straight onto its own device: ``{"": local_rank}``.
    (``loading.default_device_map`` makes the same choice.) A bitsandbytes 4-bit model can
    be moved with ``.to(device)`` (transformers 5 refuses only a dtype cast, and
    bitsandbytes' ``Params4bit.to`` carries the quantisation state along), but loading
    each rank's copy where it computes saves the trip: loaded on GPU 0, all N copies would
    sit there at once. FSDP and ZeRO-3 shard it afterwards.
    """
    if torch.cuda.is_available():
        return {"": local_rank()}
    return {"": "cpu"}


def global_batch_size(
    per_device_batch_size: int, gradient_accumulation_steps: int = 1, num_processes: int | None = None
) -> int:
    """Examples per optimizer step: per-rank batch x accumulation steps x number of ranks.

    This is the batch size the learning rate "sees". Going from 1 GPU to 4 with the same
    per-device settings makes it 4x larger; keep it fixed by dividing
    ``gradient_accumulation_steps`` by 4 instead.
    """
    n = world_size() if num_processes is None else num_processes
    return per_device_batch_size * gradient_accumulation_steps * n


def trainer_kwargs() -> dict[str, Any]:
    """Settings for ``trl.SFTConfig`` that make multi-process training work on CPU and GPU.

    - ``use_cpu`` on a machine without CUDA: without it, accelerate sees ``LOCAL_RANK`` but
      no GPU and silently runs every rank as an independent single process (no gradient
      averaging at all). With it, the ranks form a ``gloo`` process group.
    - ``ddp_backend``: "gloo" for CPU ranks; on GPUs accelerate picks NCCL itself.
    - ``ddp_find_unused_parameters=False``: every LoRA parameter gets a gradient every
      step, so the extra graph traversal is wasted, and it conflicts with gradient
      checkpointing.
    """
    on_cpu = not torch.cuda.is_available()
    kwargs: dict[str, Any] = {"ddp_find_unused_parameters": False}
    if on_cpu:
        kwargs["use_cpu"] = True
        if is_distributed():
            kwargs["ddp_backend"] = "gloo"
    return kwargs


def summary(per_device_batch_size: int, gradient_accumulation_steps: int) -> dict[str, Any]:
    """What to record in metrics and logs about the process layout."""
    n = world_size()
    return {
        "world_size": n,
        "launcher": launcher(),
        "backend": torch.distributed.get_backend() if _dist_ready() else None,
        "per_device_batch_size": per_device_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "global_batch_size": global_batch_size(
            per_device_batch_size, gradient_accumulation_steps, n
        ),
    }


# --- checking that the ranks agree ----------------------------------------------


def trainable_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every trainable parameter (names, shapes and exact bytes), in name order.

    Two ranks whose adapters differ in a single bit get different digests.
    """
    h = hashlib.sha256()
    params = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
    for name, p in params:
        # DDP wraps the model as `module.`; strip it so digests compare across wrappers.
        h.update(name.removeprefix("module.").encode())
        t = p.detach().to("cpu").contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def gather_digests(model: torch.nn.Module) -> list[str]:
    """The trainable digest of every rank, in rank order (a collective: all ranks call it)."""
    digest = trainable_digest(model)
    if not _dist_ready() or world_size() == 1:
        return [digest]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, digest)
    return [str(d) for d in out]


class RankSyncCallback(TrainerCallback):
    """A trainer callback that compares the adapters of all ranks after step 1 and at the end.

    ``summary`` (filled on every rank) goes into ``metrics.json`` under ``distributed``:
    the world size, the global batch and the per-rank digests. With DDP the digests must be
    equal; if they are not, training raises instead of saving a silently diverged adapter.
    Under FSDP or ZeRO-3 each rank holds a different shard, so the digests are recorded
    but not compared.
    """

    def __init__(self, check_steps: tuple[int, ...] = (1,)) -> None:
        self.check_steps = check_steps
        self.summary: dict[str, Any] = {}

    def _check(self, model: torch.nn.Module, when: str) -> list[str]:
        digests = gather_digests(model)
        if sharding_strategy() == "none" and len(set(digests)) != 1:
            raise RuntimeError(
                f"ranks hold different adapters {when}: {digests}; gradients were not averaged "
                "(is the process group initialised? on CPU, use_cpu=True and ddp_backend='gloo')"
            )
        return digests

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        launched = int(os.environ.get("WORLD_SIZE", 1))
        if args.world_size != launched:
            # Each rank would train alone on the same batches: identical adapters, but a
            # wasted process and a global batch that is not what the logs say.
            raise RuntimeError(
                f"the launcher started {launched} processes but the trainer sees "
                f"world_size={args.world_size}: no process group was formed. On a machine "
                "without a GPU pass use_cpu=True (distributed.trainer_kwargs() does)."
            )
        self.summary = summary(args.per_device_train_batch_size, args.gradient_accumulation_steps)
        self.summary["sharding"] = sharding_strategy()

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        if model is not None and state.global_step in self.check_steps:
            self.summary[f"adapter_sha256_step{state.global_step}"] = self._check(
                model, f"after step {state.global_step}"
            )

    def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        if model is not None:
            self.summary["adapter_sha256_final"] = self._check(model, "at the end of training")
