"""STDB fine-tuning of a converted network through the float simulator (Rathi et al., ICLR 2020).

The network is trained on exactly the schedule the chip runs (``FloatSimulator``:
the network's schedule -- periodic: T + depth steps, the reset step, one step of
delay per projection; pipelined: T steps in window coordinates, ``neurocompile/ir/graph.py``
-- the accumulated-membrane readout and its decoder), so what is trained is what runs.
Loss: cross-entropy on the decoded logits. Optimiser: Adam (amsgrad) with the
authors' learning-rate steps. The last ``quant_aware_epochs`` epochs run on the
target's fixed-point values (:mod:`.quant_aware`). Every epoch ends with a
checkpoint when a folder is given; a run resumed from it ends identical to an
uninterrupted one, because every random draw (the order of samples, dropout
masks, rate-coded input) is a function of (seed, epoch, sample index), not of
a generator's history.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import NeurocompileError
from ...ir import Network
from ...sim.encoding import encode, input_scale
from ...sim.float_sim import FloatSimulator
from ...sim.run import period
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import World, all_sum, current_world, epoch_indices, per_rank_batch, wrap_module
from .dropout import dropout_applied, sample_masks
from .quant_aware import quantised_parameters
from .settings import FinetuneSettings
from .surrogates import make_surrogate
from .units import rescale, threshold_scales

__all__ = ["EpochRecord", "FinetuneResult", "finetune", "prepare_network", "build_simulator", "accuracy"]

EVAL_BATCH = 256


@dataclass
class EpochRecord:
    """One epoch's figures; accuracies in [0, 1]."""

    epoch: int  # 1-based
    loss: float  # mean training cross-entropy
    train_accuracy: float  # on the training batches as they were trained (dropout, fixed point where on)
    val_accuracy: float | None  # float simulator, after the epoch
    val_accuracy_fixed: float | None  # on the fixed-point values (quant-aware epochs only)
    lr: float
    quant_aware: bool
    seconds: float


@dataclass
class FinetuneResult:
    network: Network  # the fine-tuned network, at ``settings.timesteps``
    history: list[EpochRecord]
    settings: FinetuneSettings
    initial_val_accuracy: float | None = None  # before the first epoch
    resumed_from_epoch: int = 0  # epochs a checkpoint already held

    @property
    def final_val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy if self.history else self.initial_val_accuracy

    def record(self) -> dict[str, Any]:
        """Plain values (numbers, strings, lists, dicts) for the report and the build's records."""
        return {
            "settings": self.settings.as_record(),
            "initial_val_accuracy": self.initial_val_accuracy,
            "history": [dataclasses.asdict(r) for r in self.history],
        }


# -- set-up ----------------------------------------------------------------------


def prepare_network(net: Network, settings: FinetuneSettings) -> Network:
    """``net`` at the training T, re-targeted to ``settings.reset`` and ``settings.schedule`` (see FinetuneSettings)."""
    if not net.converted:
        raise NeurocompileError("finetune needs a converted spiking network; run `neurocompile convert` first")
    net = net.with_settings(timesteps=settings.timesteps).replace(fixed=None)
    if settings.reset is not None:
        net = net.replace(populations=tuple(dataclasses.replace(p, reset=settings.reset) if p.kind == "spiking" else p
                                            for p in net.populations))
    schedule = settings.schedule
    if schedule is None:
        stock = all(p.reset == "zero" for p in net.populations if p.kind == "spiking") and net.pipeline_problem() is None
        schedule = "pipelined" if stock else "periodic"  # a graph or reset LIFReset cannot run needs PeriodicLIF
    net = net.with_settings(schedule=schedule)
    net.validate()  # a pipelined schedule asked for on a graph that cannot run it: one line saying why
    return net


def _tie_per_population(param: torch.nn.Parameter) -> None:
    """Keep a per-neuron parameter one value per population: every neuron gets the gradient of the shared value.

    Equal values, equal gradients and an element-wise optimiser keep them equal.
    """
    if param.requires_grad:
        param.register_hook(lambda g: g.sum().expand_as(g).clone())


def build_simulator(net: Network, settings: FinetuneSettings) -> FloatSimulator:
    """The trainable float simulator of ``net`` with the chosen surrogate, on the chosen device."""
    params = {"alpha": settings.alpha, "beta": settings.beta} if settings.surrogate == "stdb" else {"gamma": settings.alpha}
    sim = FloatSimulator(net, trainable=settings.trainable, spike_fn=make_surrogate(settings.surrogate, **params))
    for p in sim.parameters():  # the module may share memory with the network's float32 arrays: training must not write there
        p.data = p.data.clone()
    for p in sim.neurons:
        _tie_per_population(p.threshold)
        _tie_per_population(p.leak)
    return sim.to(settings.resolved_device())


def _optimiser(sim: FloatSimulator, settings: FinetuneSettings):
    """Adam (amsgrad); weight decay on weights and biases only (decaying thresholds would make every layer fire more)."""
    decayed = [p for n, p in sim.named_parameters() if p.requires_grad and n.endswith(("weight", "bias"))]
    others = [p for n, p in sim.named_parameters() if p.requires_grad and not n.endswith(("weight", "bias"))]
    groups = [{"params": decayed, "weight_decay": settings.weight_decay}]
    if others:
        groups.append({"params": others, "weight_decay": 0.0})
    opt = torch.optim.Adam(groups, lr=settings.lr, amsgrad=settings.amsgrad)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, settings.milestone_epochs, gamma=settings.lr_factor)
    return opt, sched


# -- data ----------------------------------------------------------------------------


class _Frames:
    """Frames for any subset of samples, identical whichever batch or process asks.

    ``fixed``: the input as the chip receives it (8-bit payloads times their
    unit), for the quant-aware forward; rate-coded spikes are drawn per
    (seed, epoch, sample index), so each epoch sees fresh ones.
    """

    def __init__(self, net: Network, x: np.ndarray, seed: int, device: torch.device) -> None:
        self.x = np.asarray(x).reshape(len(x), -1)
        self.encoding = net.settings.encoding
        self.period, self.seed, self.device = period(net), seed, device

    def __call__(self, indices: np.ndarray, fixed: bool, epoch: int = 0) -> torch.Tensor:
        x = self.x[indices]
        if self.encoding == "rate":
            frames = torch.cat([encode(x[k : k + 1], "rate", self.period, fixed=fixed, seed=self.seed + epoch,
                                       first_index=int(i)) for k, i in enumerate(indices)])
        else:
            frames = encode(x, self.encoding, self.period, fixed=fixed)
        if fixed:
            frames = frames.to(torch.float32) * input_scale(self.encoding, fixed=True)
        return frames.to(self.device)


@torch.no_grad()
def accuracy(sim: FloatSimulator, net: Network, x: np.ndarray, y: np.ndarray, *, fixed: bool = False,
             world: World = World()) -> float:
    """Accuracy of ``sim`` on (x, y) at ``net``'s T; ``fixed``: on the target's fixed-point values.

    Under DDP each rank runs every ``world.size``-th sample and the counts are summed.
    """
    device = next(sim.parameters()).device
    frames_of = _Frames(net, x, net.settings.seed, device)
    T = net.timesteps
    mine = np.arange(world.rank, len(x), world.size)
    correct = 0
    with quantised_parameters(sim, net) if fixed else ExitStack():
        for start in range(0, len(mine), EVAL_BATCH):
            idx = mine[start : start + EVAL_BATCH]
            logits = sim.logits(sim(frames_of(idx, fixed)).readout, T)
            correct += int((logits.argmax(1).cpu().numpy() == np.asarray(y)[idx]).sum())
    return float(all_sum(torch.tensor([correct]), world)[0]) / len(x)


# -- the loop -------------------------------------------------------------------------


def _batches(indices: list[int], size: int) -> list[np.ndarray]:
    idx = np.asarray(indices, dtype=np.int64)
    return [idx[s : s + size] for s in range(0, len(idx), size)]


def _train_epoch(model: torch.nn.Module, sim: FloatSimulator, net: Network, frames_of: _Frames, y: torch.Tensor,
                 opt: torch.optim.Optimizer, settings: FinetuneSettings, epoch: int, world: World,
                 progress: bool) -> tuple[float, float]:
    """One pass over this rank's share of the training set; returns (mean loss, accuracy) over all ranks."""
    from tqdm import tqdm

    quant = settings.is_quant_aware(epoch)
    T = settings.timesteps
    batches = _batches(epoch_indices(len(y), world, settings.seed, epoch), per_rank_batch(settings.batch, world))
    device = y.device
    sums = torch.zeros(3, dtype=torch.float64)  # loss · n, correct, n
    desc = f"finetune {epoch + 1}/{settings.epochs}" + (" (fixed point)" if quant else "")
    with tqdm(batches, desc=desc, unit="batch", file=sys.stderr, leave=False, mininterval=0.5,
              disable=not (progress and world.is_main)) as bar:
        for idx in bar:
            frames = frames_of(idx, quant, epoch)
            target = y[torch.as_tensor(idx, device=device)]
            with ExitStack() as stack:
                if settings.dropout > 0:
                    stack.enter_context(dropout_applied(sim, sample_masks(sim, settings.dropout, settings.seed, epoch, idx, device)))
                if quant:
                    stack.enter_context(quantised_parameters(sim, net))
                opt.zero_grad(set_to_none=True)
                logits = sim.logits(model(frames).readout, T)
                loss = F.cross_entropy(logits, target)
                loss.backward()  # inside: autograd reads the (quantised) values it saved
            opt.step()
            n = len(idx)
            sums += torch.tensor([float(loss.detach()) * n, float((logits.argmax(1) == target).sum()), n], dtype=torch.float64)
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{sums[1] / sums[2]:.4f}", refresh=False)
    total = all_sum(sums, world)
    return float(total[0] / total[2]), float(total[1] / total[2])


def _state(sim, opt, sched, epochs_done: int, history: list[EpochRecord], initial: float | None,
           settings: FinetuneSettings) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "epochs_done": epochs_done,
        "model": {k: v.detach().cpu() for k, v in sim.state_dict().items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": rng,
        "history": [dataclasses.asdict(r) for r in history],
        "initial_val_accuracy": initial,
        "settings": _comparable(settings),
    }


def _comparable(settings: FinetuneSettings) -> dict[str, Any]:
    """The settings a resumed run must share with the checkpoint's (the device may differ)."""
    rec = settings.as_record()
    rec.pop("device")
    return rec


def _restore(state: dict[str, Any], sim, opt, sched, settings: FinetuneSettings, folder: Path) -> tuple[int, list[EpochRecord], float | None]:
    if state["settings"] != _comparable(settings):
        now = _comparable(settings)
        changed = sorted(k for k in set(state["settings"]) | set(now) if state["settings"].get(k) != now.get(k))
        raise NeurocompileError(f"the checkpoint in {folder} was made with other settings ({', '.join(changed)}); "
                                "resume with the same settings or delete it to start over")
    sim.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return int(state["epochs_done"]), [EpochRecord(**r) for r in state["history"]], state["initial_val_accuracy"]


def finetune(net: Network, train_data: tuple[np.ndarray, np.ndarray], val_data: tuple[np.ndarray, np.ndarray] | None,
             settings: FinetuneSettings, *, checkpoint_dir: str | Path | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune converted ``net`` with STDB on ``train_data`` = (x, y); returns the trained network and its history.

    ``val_data``: measured after every epoch (never used to choose anything).
    ``checkpoint_dir``: a checkpoint there is resumed (same settings required)
    and rewritten after every epoch, by rank 0 only under ``torch.distributed``.
    """
    world = current_world()
    net = prepare_network(net, settings)
    scales = threshold_scales(net)
    net = rescale(net, scales)  # trained in threshold units (units.py), returned in the converted ones
    sim = build_simulator(net, settings)
    device = next(sim.parameters()).device
    model = wrap_module(sim, world, device)
    opt, sched = _optimiser(sim, settings)
    x_train, y_train = train_data
    frames_of = _Frames(net, x_train, net.settings.seed, device)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.int64, device=device)

    def validate(fixed: bool = False) -> float | None:
        return None if val_data is None else accuracy(sim, net, *val_data, fixed=fixed, world=world)

    done, history, initial = 0, [], None
    state = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if state is not None:
        done, history, initial = _restore(state, sim, opt, sched, settings, Path(checkpoint_dir))
    else:
        initial = validate()
    for epoch in range(done, settings.epochs):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        sim.train()
        loss, acc = _train_epoch(model, sim, net, frames_of, y, opt, settings, epoch, world, progress)
        sched.step()
        sim.eval()
        quant = settings.is_quant_aware(epoch)
        history.append(EpochRecord(epoch + 1, loss, acc, validate(), validate(fixed=True) if quant else None, lr, quant,
                                   time.perf_counter() - t0))
        if progress and world.is_main:
            r = history[-1]
            val = "" if r.val_accuracy is None else f", val {r.val_accuracy:.4f}"
            val += "" if r.val_accuracy_fixed is None else f" (fixed point {r.val_accuracy_fixed:.4f})"
            print(f"finetune epoch {r.epoch}/{settings.epochs}: loss {r.loss:.4f}, train {r.train_accuracy:.4f}{val}, "
                  f"{r.seconds:.1f} s", file=sys.stderr)
        if checkpoint_dir is not None and world.is_main:
            save_checkpoint(checkpoint_dir, _state(sim, opt, sched, epoch + 1, history, initial, settings))
    trained = rescale(sim.to_network(net), scales, inverse=True)
    return FinetuneResult(trained, history, settings, initial, done)
