"""The MNIST models the benchmarks share, and one seeded way to train them (not timed anywhere).

The CNN is the architecture issue's: Conv5x16-BN-ReLU-AvgPool2-Conv5x32-ReLU-AvgPool2-Linear64-ReLU-Linear10.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from train_example import _deterministic  # noqa: E402


def mnist_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def mnist_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def train(module: nn.Module, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, epochs: int,
          seed: int = 0) -> tuple[nn.Module, float]:
    """AdamW, batch 64, one thread, seeded: the same weights on every run; returns (eval module, test accuracy)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _deterministic(seed):
            opt = torch.optim.AdamW(module.parameters(), lr=2e-3, weight_decay=1e-4)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            g = torch.Generator().manual_seed(seed)
            for _ in range(epochs):
                module.train()
                for b in torch.randperm(len(xt), generator=g).split(64):
                    opt.zero_grad()
                    nn.functional.cross_entropy(module(xt[b]), yt[b]).backward()
                    opt.step()
            module.eval()
            with torch.no_grad():
                acc = float((module(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    finally:
        torch.set_num_threads(old)
    return module, acc
