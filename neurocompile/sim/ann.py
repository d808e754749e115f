"""The IR evaluated as the ANN it came from (ReLU populations, affine readout).

Used to check the front end against the original model and to collect the
activations that threshold balancing calibrates on.
"""
from __future__ import annotations

import torch

from ..ir import Network
from .ops import project, weight_tensor


@torch.no_grad()
def ann_forward(net: Network, x: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
    """Activations of every population, (B, size) each; the output holds the logits."""
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    ws = {pr.name: weight_tensor(pr, torch.float64) for pr in net.projections}
    chunks: dict[str, list[torch.Tensor]] = {p.name: [] for p in net.populations}
    for start in range(0, x.shape[0], batch_size):
        act = {net.input: x[start : start + batch_size]}
        for pop in net.neurons:
            z = sum(project(pr, ws[pr.name], act[pr.source]) for pr in net.incoming(pop.name))
            z = z + torch.from_numpy(pop.bias).to(z.dtype)
            act[pop.name] = torch.relu(z) if pop.kind == "spiking" else z
        for k, v in act.items():
            chunks[k].append(v)
    return {k: torch.cat(v) for k, v in chunks.items()}
