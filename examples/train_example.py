"""Train the bundled example models on scikit-learn's digits and export them for neurocompile.

    python examples/train_example.py --model mlp|cnn --format pt2|pt --out PATH [--epochs N] [--seed S]

Two small models cover both frontends' main cases: an MLP (Linear + bias, ReLU, Dropout) and
a CNN (Conv2d, BatchNorm2d to be folded, ReLU, AvgPool2d, Flatten, Linear). Training is seeded
and uses deterministic algorithms, so the same command gives the same weights on one machine;
it takes a few seconds on two CPU cores. Progress goes to stderr; stdout gets one summary line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from neurocompile.data import Dataset, load_dataset, shape_for_model
from neurocompile.errors import NeurocompileError

FORMATS = ("pt2", "pt")
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4


def build_mlp() -> nn.Module:
    """64 -> 128 -> 64 -> 10 with ReLU; Dropout exercises a train-only op the frontend must drop."""
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def build_cnn() -> nn.Module:
    """Two conv blocks on 1x8x8 digits; BatchNorm and AvgPool are what conversion must handle."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 10),
    )


# name -> (builder, input shape without batch axis, default epochs)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int]] = {
    "mlp": (build_mlp, (64,), 40),
    "cnn": (build_cnn, (1, 8, 8), 40),
}


def train_example(model: str, epochs: int | None = None, seed: int = 0) -> tuple[nn.Module, float]:
    """Train one example model on digits; return it in eval mode with its test accuracy (0..1).

    ``epochs`` defaults to a count that reaches >= 96 % test accuracy for both models.
    """
    if model not in MODELS:
        raise NeurocompileError(f"unknown example model {model!r}: expected one of {', '.join(MODELS)}")
    builder, input_shape, default_epochs = MODELS[model]
    data = load_dataset("digits", seed=seed)
    x_train, y_train = _tensors(data.x_train, data.y_train, input_shape)
    x_test, y_test = _tensors(data.x_test, data.y_test, input_shape)
    with _deterministic(seed):
        module = builder()
        optimiser = torch.optim.AdamW(module.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(1, (epochs or default_epochs) + 1):
            loss = _train_epoch(module, optimiser, x_train, y_train, generator)
            accuracy = evaluate(module, x_test, y_test)
            print(f"[{model}] epoch {epoch:3d}  loss {loss:.4f}  test accuracy {accuracy:.4f}", file=sys.stderr)
    module.eval()
    return module, evaluate(module, x_test, y_test)


def example_input(model: str, seed: int = 0) -> torch.Tensor:
    """A batch of one real test sample, shaped for the model: what export traces with."""
    data: Dataset = load_dataset("digits", seed=seed)
    return torch.from_numpy(shape_for_model(data.x_test[:1], MODELS[model][1]).copy())


def evaluate(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode (Dropout off, BatchNorm on running stats)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        accuracy = (module(x).argmax(dim=1) == y).float().mean().item()
    module.train(was_training)
    return accuracy


def export_model(module: nn.Module, path: Path | str, fmt: str, example_input: torch.Tensor) -> Path:
    """Save ``module`` as a torch.export program (pt2) or TorchScript trace (pt), atomically.

    The file is written in a temporary folder beside ``path`` and renamed into place, so an
    interrupted export never leaves a truncated model where the compiler would pick it up.
    """
    if fmt not in FORMATS:
        raise NeurocompileError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        staged = Path(folder) / path.name
        _save(module, staged, fmt, example_input)
        os.replace(staged, path)
    return path


def _save(module: nn.Module, path: Path, fmt: str, example_input: torch.Tensor) -> None:
    """Write one format; both capture the eval-mode graph at the example's shape."""
    with torch.no_grad():
        if fmt == "pt2":
            torch.export.save(torch.export.export(module, (example_input,)), str(path))
        else:
            torch.jit.save(torch.jit.trace(module, example_input), str(path))


def _train_epoch(
    module: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled mini-batches; returns the mean training loss."""
    module.train()
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for batch in order.split(BATCH_SIZE):
        if len(batch) < 2:  # BatchNorm cannot normalise a batch of one
            continue
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(module(x[batch]), y[batch])
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / len(x)


def _tensors(x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """numpy split -> torch tensors shaped for the model."""
    return torch.from_numpy(shape_for_model(x, input_shape).copy()), torch.from_numpy(y)


@contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seeded RNG and deterministic kernels, so a rerun reproduces the weights.

    The caller's RNG state and determinism setting are restored afterwards: importing and
    calling train_example (as the tests do) must not change how the rest of the process runs.
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    parser.add_argument("--out", type=Path, required=True, help="where to write the exported model")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's own count")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: train, export, print one summary line; user errors are one line, exit 2."""
    args = _parse_args(argv)
    started = time.perf_counter()
    try:
        module, accuracy = train_example(args.model, epochs=args.epochs, seed=args.seed)
        export_model(module, args.out, args.fmt, example_input(args.model, seed=args.seed))
    except NeurocompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"{args.model}: test accuracy {accuracy:.4f}, {seconds:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
