"""What a fine-tuning run is told: one frozen dataclass, validated once, recorded in checkpoints and reports."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...errors import NeurocompileError
from ...ir import MAX_SEED, MAX_TIMESTEPS
from .surrogates import SURROGATES

ResetMode = Literal["subtract", "zero"]
Schedule = Literal["periodic", "pipelined"]


@dataclass(frozen=True)
class FinetuneSettings:
    """STDB fine-tuning of a converted network; defaults are the authors' (Rathi et al., ICLR 2020) unless noted.

    ``timesteps``: the T the network is trained for and keeps (its period is T + depth, or T pipelined).
    ``lr_milestones``: fractions of ``epochs`` after which the learning rate is divided by 10.
    ``dropout``: probability of silencing a spiking neuron's output for a whole sample
    (one mask per sample, reused on every step, as the authors do).
    ``surrogate``: ``"linear"`` by default, not the paper's ``"stdb"``. STDB gives a
    neuron that has not fired yet ``alpha·e^-10``; at T ≤ 2 almost nothing has
    fired when the loss needs it, so the error dies within a layer or two and
    learning stalls (digits MLP, 6 epochs, lr 1e-3, bit-exact accuracy: T = 1
    STDB 9.7 %, linear 95.6 %; T = 2 10.3 % vs 96.7 %; at T = 4 both reach
    97.8 %, the ANN 97.2 %; bench/latency_accuracy.py).
    ``train_threshold`` / ``train_leak``: also learn one threshold / leak per population
    (DIET-SNN's extension; one per population, as Lava's LIF holds one ``vth``).
    Thresholds train by default; on the digits MLP the effect was within ±1 pp
    (T = 1: 95.6 vs 94.4 %, T = 2: 96.7 vs 97.2 %, T = 4: equal).
    ``lr``: the paper's 1e-4 suits long runs; a few epochs at T ≤ 2 need 1e-3
    (digits MLP at T = 2 after 6 epochs: 83 % with 1e-4, 96.7 % with 1e-3).
    ``train_bias``: the affine layers' biases train with their weights.
    ``quant_aware_epochs``: the last this many epochs run the forward pass with the
    target's fixed-point values (what ``passes/quantize.py`` will produce), gradients
    passing straight through to the float parameters.
    ``reset``: re-target the spiking populations to this reset before training
    (``"zero"``: Lava's stock LIF); None keeps the network's.
    ``schedule``: the step layout trained for (``neurocompile/ir/graph.py``).
    None: ``pipelined`` when every spiking population resets to zero and the
    graph is layered (then the network lowers to Lava's stock ``LIFReset``,
    with ``P = T`` steps per sample), else ``periodic`` (PeriodicLIF).
    ``device``: ``"auto"`` picks CUDA where present, else the CPU.
    """

    epochs: int = 20
    timesteps: int = 4
    lr: float = 1e-4
    weight_decay: float = 5e-4
    batch: int = 64
    lr_milestones: tuple[float, ...] = (0.6, 0.8, 0.9)
    lr_factor: float = 0.1
    amsgrad: bool = True
    dropout: float = 0.0
    surrogate: str = "linear"  # not the paper's "stdb": see the docstring
    alpha: float = 0.3  # STDB's α (the linear surrogate's γ)
    beta: float = 0.01  # STDB's β
    train_threshold: bool = True
    train_leak: bool = False
    train_bias: bool = True
    quant_aware_epochs: int = 1
    reset: ResetMode | None = None
    schedule: Schedule | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = (
            (self.epochs >= 0, f"epochs must be ≥ 0 (got {self.epochs})"),
            (1 <= self.timesteps <= MAX_TIMESTEPS, f"timesteps must lie in [1, {MAX_TIMESTEPS}] (got {self.timesteps})"),
            (self.lr > 0, f"lr must be > 0 (got {self.lr})"),
            (self.weight_decay >= 0, f"weight_decay must be ≥ 0 (got {self.weight_decay})"),
            (self.batch >= 1, f"batch must be ≥ 1 (got {self.batch})"),
            (all(0 < m <= 1 for m in self.lr_milestones), f"lr_milestones must be fractions in (0, 1] (got {self.lr_milestones})"),
            (0 <= self.dropout < 1, f"dropout must lie in [0, 1) (got {self.dropout})"),
            (self.surrogate in SURROGATES, f"unknown surrogate {self.surrogate!r}; accepted: {', '.join(SURROGATES)}"),
            (self.alpha > 0 and self.beta >= 0, f"alpha must be > 0 and beta ≥ 0 (got {self.alpha}, {self.beta})"),
            (0 <= self.quant_aware_epochs <= max(self.epochs, 0), f"quant_aware_epochs must lie in [0, epochs] (got {self.quant_aware_epochs})"),
            (self.reset in (None, "subtract", "zero"), f"reset must be 'subtract', 'zero' or None (got {self.reset!r})"),
            (self.schedule in (None, "periodic", "pipelined"), f"schedule must be 'periodic', 'pipelined' or None (got {self.schedule!r})"),
            (0 <= self.seed < MAX_SEED, f"seed must lie in [0, {MAX_SEED}) (got {self.seed})"),
        )
        for ok, why in checks:
            if not ok:
                raise NeurocompileError(f"finetune: {why}")
        object.__setattr__(self, "lr_milestones", tuple(float(m) for m in self.lr_milestones))

    # -- derived -------------------------------------------------------------------
    @property
    def trainable(self) -> frozenset[str]:
        """The FloatSimulator parameter kinds that get gradients."""
        kinds = {"weight"}
        kinds |= {"threshold"} if self.train_threshold else set()
        kinds |= {"leak"} if self.train_leak else set()
        kinds |= {"bias"} if self.train_bias else set()
        return frozenset(kinds)

    @property
    def milestone_epochs(self) -> list[int]:
        """Epochs after which the learning rate drops (the authors' 60/80/90 % of the run)."""
        return sorted({max(1, round(m * self.epochs)) for m in self.lr_milestones})

    def is_quant_aware(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) runs the fixed-point forward."""
        return epoch >= self.epochs - self.quant_aware_epochs

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def as_record(self) -> dict[str, Any]:
        """Plain values (for checkpoints and reports)."""
        rec = dataclasses.asdict(self)
        rec["lr_milestones"] = list(self.lr_milestones)
        return rec
