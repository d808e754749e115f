"""One rank of the 2-process DDP fine-tuning test (tests/test_finetune.py); a module of its own so spawned processes can import it."""
from __future__ import annotations

import datetime

import torch
import torch.distributed as dist


def run_rank(rank: int, world: int, rendezvous: str, net, train, val, settings, out: str) -> None:
    from neurocompile.passes.finetune import finetune

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        finetune(net, train, val, settings, checkpoint_dir=out, progress=False)
    finally:
        dist.destroy_process_group()
