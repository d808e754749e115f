"""Training a recurrent SNN on a task: a ridge readout, or the whole network through time.

Both helpers are deterministic (numpy and torch generators seeded from
``seed``; nothing reads global random state) and show a tqdm bar unless
``progress=False``. Predictions are always made by the model itself in the chip's
schedule: :func:`train_readout` writes the fitted readout into ``model.readout``,
so the scores it reports are the model's, as it would be ingested into the IR.

Readout states: the readout population's ``v`` per unit weight
(``LeakyReadout.traces``: hidden spikes leakily accumulated with the readout's
leak), so a ridge fit on them is a weight matrix the chip's readout computes.
Prediction tasks stream the whole series through one period and read every
step (``decode(v, 1) = v + bias``); classification reads the last step, with the
IR decoder ``(v + T · bias) / T`` (the fitted bias is stored divided by T).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import NeurocompileError
from ..nn.models import RecurrentSNN, RSNNOutput
from .encoding import DirectEncoding
from .metrics import accuracy, nrmse
from .prediction import SPLITS, PredictionTask
from .ridge import DEFAULT_ALPHAS, RidgeReadout, select_ridge
from .sequences import ClassificationTask

Task = PredictionTask | ClassificationTask


@dataclass(frozen=True)
class ReadoutSettings:
    """Ridge penalties swept on the validation split; states collected ``batch_size`` sequences at a time."""

    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    batch_size: int = 256
    encoding: DirectEncoding = DirectEncoding()
    progress: bool = True


@dataclass(frozen=True)
class EndToEndSettings:
    """Adam on every parameter that requires a gradient, through time (surrogate gradient).

    Prediction tasks train on windows of ``window`` samples whose first ``window_washout`` are not scored.
    """

    lr: float = 5e-3
    batch_size: int = 64
    seed: int = 0
    window: int = 64
    window_washout: int = 16
    grad_clip: float | None = 1.0
    encoding: DirectEncoding = DirectEncoding()
    progress: bool = True


@dataclass
class TrainingResult:
    """Scores per split (``accuracy`` for classification, ``nrmse`` for prediction) and how training went.

    ``baseline``: the persistence forecast's NRMSE per split (prediction tasks only).
    ``alpha_scores``: validation loss per ridge penalty; ``losses``: mean training loss per epoch.
    """

    metric: str
    scores: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    readout: RidgeReadout | None = None
    alpha_scores: dict[float, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


# -- running the model -----------------------------------------------------------


def _dtype(model: RecurrentSNN) -> torch.dtype:
    return model.hidden.threshold.dtype


def _batches(n: int, size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    idx = np.arange(n) if order is None else order
    for i in range(0, n, size):
        yield idx[i : i + size]


@torch.no_grad()
def _final_states(model: RecurrentSNN, x: np.ndarray, settings: ReadoutSettings, bar: tqdm) -> np.ndarray:
    """Readout traces at the last step, (N, n_hidden)."""
    out = []
    for b in _batches(len(x), settings.batch_size):
        run = model(settings.encoding(x[b], _dtype(model)))
        out.append(model.readout.traces(run.spikes)[:, -1].double().numpy())
        bar.update(len(b))
    return np.concatenate(out)


@torch.no_grad()
def _stream(model: RecurrentSNN, task: PredictionTask, encoding: DirectEncoding) -> RSNNOutput:
    """The whole series as one period (a batch of one)."""
    return model(encoding(task.inputs, _dtype(model)))


def _aligned(model: RecurrentSNN, per_step: torch.Tensor) -> np.ndarray:
    """(1, P, ·) per-step values → (L, ·): row t has seen input samples 0..t."""
    return per_step[0, model.depth:].detach().double().numpy()


def _class_scores(model: RecurrentSNN, task: ClassificationTask, encoding: DirectEncoding, batch_size: int) -> dict[str, float]:
    scores = {}
    with torch.no_grad():
        for split in SPLITS:
            x, y = task.split(split)
            logits = [model.logits(encoding(x[b], _dtype(model))).double().numpy() for b in _batches(len(x), batch_size)]
            scores[split] = accuracy(np.concatenate(logits), y)
    return scores


def _prediction_scores(model: RecurrentSNN, task: PredictionTask, encoding: DirectEncoding) -> tuple[dict[str, float], dict[str, float]]:
    pred = _aligned(model, model.readout.decode(_stream(model, task, encoding).readouts, 1))
    scores = {s: nrmse(pred[task.rows[s]], task.targets[task.rows[s]]) for s in SPLITS}
    baseline = {s: nrmse(task.persistence(s), task.targets[task.rows[s]]) for s in SPLITS}
    return scores, baseline


def _check(model: RecurrentSNN, task: Task) -> None:
    n_in = task.n_in
    n_out = task.n_out if isinstance(task, PredictionTask) else task.n_classes
    if model.config.n_in != n_in or model.config.n_out != n_out:
        raise NeurocompileError(f"the model maps {model.config.n_in} inputs to {model.config.n_out} outputs; "
                                f"task {task.name!r} needs {n_in} to {n_out}")


# -- ridge readout ---------------------------------------------------------------


def _set_readout(model: RecurrentSNN, fit: RidgeReadout, timesteps: int) -> None:
    with torch.no_grad():
        model.readout.weight.copy_(torch.as_tensor(fit.weight))
        model.readout.bias.copy_(torch.as_tensor(fit.bias / timesteps))


def train_readout(model: RecurrentSNN, task: Task, settings: ReadoutSettings = ReadoutSettings()) -> TrainingResult:
    """Fit the readout by ridge regression on the hidden states (penalty chosen on validation) and write it in.

    Only ``model.readout`` changes. The readout's leak sets the states (see the module docstring).
    """
    _check(model, task)
    if isinstance(task, PredictionTask):
        with tqdm(total=1, desc="states", disable=not settings.progress, file=sys.stderr, leave=False) as bar:
            traces = _aligned(model, model.readout.traces(_stream(model, task, settings.encoding).spikes))
            bar.update(1)
        xs = {s: traces[task.rows[s]] for s in SPLITS}
        ys = {s: task.targets[task.rows[s]] for s in SPLITS}
        fit, alpha_scores = select_ridge(xs["train"], ys["train"], xs["val"], ys["val"], nrmse, settings.alphas)
        _set_readout(model, fit, 1)
        scores, baseline = _prediction_scores(model, task, settings.encoding)
        return TrainingResult("nrmse", scores, baseline, fit, alpha_scores)
    total = sum(len(task.split(s)[0]) for s in ("train", "val"))
    with tqdm(total=total, desc="states", unit="seq", disable=not settings.progress, file=sys.stderr, leave=False) as bar:
        xs = {s: _final_states(model, task.split(s)[0], settings, bar) for s in ("train", "val")}
    onehot = np.eye(task.n_classes)[task.y_train]
    fit, alpha_scores = select_ridge(xs["train"], onehot, xs["val"], task.y_val,
                                     lambda p, y: 1.0 - accuracy(p, y), settings.alphas)
    _set_readout(model, fit, task.timesteps)
    scores = _class_scores(model, task, settings.encoding, settings.batch_size)
    return TrainingResult("accuracy", scores, readout=fit, alpha_scores=alpha_scores)


# -- end to end ------------------------------------------------------------------


def _training_pairs(task: Task, settings: EndToEndSettings) -> tuple[np.ndarray, np.ndarray, int]:
    """Training inputs, targets and the number of leading unscored steps (0: classification, target per sequence)."""
    if isinstance(task, PredictionTask):
        return task.windows("train", settings.window, settings.window_washout)
    return task.x_train, task.y_train, 0


def _loss(model: RecurrentSNN, task: Task, x: torch.Tensor, y: torch.Tensor, washout: int) -> torch.Tensor:
    if isinstance(task, ClassificationTask):
        return F.cross_entropy(model.logits(x), y)
    pred = model.readout.decode(model(x).readouts[:, model.depth:], 1)
    return F.mse_loss(pred[:, washout:], y[:, washout:])


def train_end_to_end(model: RecurrentSNN, task: Task, epochs: int,
                     settings: EndToEndSettings = EndToEndSettings()) -> TrainingResult:
    """Train every parameter that requires a gradient by BPTT with the model's surrogate spike function (Adam).

    After each step the parameters are put back into the chip's ranges
    (``clamp_to_chip_ranges_``: fractions in (0, 1], masked synapses stay absent).
    """
    _check(model, task)
    if not (isinstance(epochs, int) and epochs >= 0):
        raise NeurocompileError(f"epochs {epochs!r} must be a non-negative integer")
    x_all, y_all, washout = _training_pairs(task, settings)
    dtype = _dtype(model)
    x_t = settings.encoding(x_all, dtype)
    y_t = torch.as_tensor(y_all) if isinstance(task, ClassificationTask) else torch.as_tensor(y_all).to(dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    losses: list[float] = []
    n_batches = -(-len(x_t) // settings.batch_size)
    with tqdm(total=epochs * n_batches, desc="training", unit="batch", disable=not settings.progress, file=sys.stderr,
              leave=False) as bar:
        for _ in range(epochs):
            total = 0.0
            for b in _batches(len(x_t), settings.batch_size, rng.permutation(len(x_t))):
                idx = torch.as_tensor(b)
                opt.zero_grad()
                loss = _loss(model, task, x_t[idx], y_t[idx], washout)
                loss.backward()
                if settings.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                opt.step()
                model.clamp_to_chip_ranges_()
                value = loss.item()
                total += value * len(b)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
            losses.append(total / len(x_t))
    if isinstance(task, PredictionTask):
        scores, baseline = _prediction_scores(model, task, settings.encoding)
        return TrainingResult("nrmse", scores, baseline, losses=losses)
    return TrainingResult("accuracy", _class_scores(model, task, settings.encoding, settings.batch_size), losses=losses)
