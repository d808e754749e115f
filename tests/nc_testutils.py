"""Helpers shared by the tests (importable: pytest runs with pythonpath = tests)."""
from __future__ import annotations

import torch
import torch.nn as nn


def export_pt2(module: nn.Module, path, shape) -> str:
    torch.export.save(torch.export.export(module.eval(), (torch.zeros(1, *shape),)), str(path))
    return str(path)


def export_ts(module: nn.Module, path, shape) -> str:
    torch.jit.save(torch.jit.trace(module.eval(), torch.zeros(1, *shape)), str(path))
    return str(path)


def randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return module.eval()
