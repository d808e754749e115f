"""The loop under ``torch.distributed`` (DDP, launched by torchrun), and the same code path on one process.

One process is a world of size 1: the same sampler, the same sums, no
wrapper. Under DDP each rank runs ``batch / world`` samples of every global
batch (a ``DistributedSampler`` over one permutation per epoch), gradients are
averaged by DDP, metrics summed across ranks, and only rank 0 writes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ...errors import NeurocompileError

__all__ = ["World", "current_world", "wrap_module", "epoch_indices", "all_sum"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current_world() -> World:
    """The process group's rank and size, or a world of one when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def wrap_module(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP around ``module`` in a multi-process world (it averages gradients), the module itself otherwise."""
    if not world.distributed:
        return module
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def per_rank_batch(batch: int, world: World) -> int:
    if batch % world.size:
        raise NeurocompileError(f"finetune: the batch ({batch}) must be a multiple of the number of processes ({world.size})")
    return batch // world.size


def epoch_indices(n: int, world: World, seed: int, epoch: int) -> list[int]:
    """This rank's sample indices for ``epoch``: a seeded permutation, dealt out rank by rank.

    The permutation depends on (seed, epoch) alone, so rank r's k-th batch of
    ``batch / world`` samples and the other ranks' k-th batches together are
    the one-process run's k-th batch.
    """
    sampler = DistributedSampler(range(n), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def all_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """``values`` summed over the ranks, as float64 on the CPU (NCCL reduces on the GPU only)."""
    values = values.detach().to("cpu", torch.float64)
    if world.distributed:
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else values.device
        values = values.to(on)
        dist.all_reduce(values)
    return values.cpu()
