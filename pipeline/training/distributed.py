"""distributed: what training needs to run in several processes (torchrun): the trainer's arguments,
a barrier, and a value every process takes from rank 0. Each is a no-op in a single process."""

from __future__ import annotations

import torch


def distributed_args() -> dict:
    """Trainer arguments for several processes: split each global batch between them (so the no-duplicates
    sampler sees the whole batch), and on CPUs accelerate's multi-CPU mode over gloo."""
    args = {"accelerator_config": {"split_batches": True}}
    if not torch.cuda.is_available():
        args |= {"use_cpu": True, "ddp_backend": "gloo"}
    return args


def barrier() -> None:
    """Wait for every process of a torchrun launch (a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def from_rank0(value):
    """``value`` as rank 0 has it, in every process of a torchrun launch (itself in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return value
