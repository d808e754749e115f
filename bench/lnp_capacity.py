"""How much task score a reservoir loses with its neurons, whatever removes them (issue 10's target (a)).

    python bench/lnp_capacity.py [--seeds 2] [--samples 3000] [--out bench/out/]

Target (a) asks for 60 % of the neurons pruned with the score within 2 % of the dense network's.
This bench measures the ceiling any pruning method faces on ``bench/lnp.py``'s study, with no
pruning at all, so the answer does not depend on LNP:

1. **Dense NRMSE against size.** Fresh HRSNNs (bench/lnp.py's ``ModelSettings``) of 100 … 1,600
   neurons, ridge readout, one-step Lorenz and Rössler forecasts. A network pruned to 40 % of its
   neurons is, at best, a well-chosen network of that size; if the score keeps falling with size,
   the pruned one cannot stay within 2 %.
2. **The best small network.** 200-neuron HRSNNs over a grid of mean τ and input gain -- what a
   τ search (LNP's step 5) or any other re-tuning of the kept neurons could reach -- against the
   500-neuron dense network with the study's settings.

It prints both tables and the ratio of the best 200-neuron network to the dense 500, and plots
NRMSE against size (``--out``/lnp_capacity.png).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lnp import READOUT, ModelSettings, make_task  # noqa: E402

from neurocompile.tasks import train_readout  # noqa: E402

SIZES = (100, 200, 400, 800, 1600)
TAU_MEANS = (1.5, 2.5, 5.0, 10.0, 20.0)
GAINS = (1.0, 2.0, 4.0)
TASKS = ("lorenz", "rossler")


def score(model: ModelSettings, task: str, samples: int, seed: int) -> float:
    return train_readout(model.build(seed), make_task(task, samples, seed), READOUT).scores["test"]


def mean_score(model: ModelSettings, task: str, samples: int, seeds: int) -> float:
    return float(np.mean([score(model, task, samples, s) for s in range(seeds)]))


def plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for task, values in curves.items():
        ax.loglog(SIZES, values, "o-", label=task)
    ax.set_xlabel("recurrent neurons (dense, untrained, ridge readout)")
    ax.set_ylabel("test NRMSE (one step ahead)")
    ax.set_title("What neurons are worth: dense HRSNN score against size")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    a = p.parse_args()
    torch.set_num_threads(1)
    base = ModelSettings()
    curves: dict[str, list[float]] = {}
    print(f"dense NRMSE against size (mean of {a.seeds} seeds)")
    print(f"{'task':<8s} " + " ".join(f"{n:>8d}" for n in SIZES) + "   fit exponent")
    for task in TASKS:
        curves[task] = [mean_score(dataclasses.replace(base, neurons=n), task, a.samples, a.seeds) for n in SIZES]
        slope = np.polyfit(np.log(SIZES), np.log(curves[task]), 1)[0]
        print(f"{task:<8s} " + " ".join(f"{v:8.4f}" for v in curves[task]) + f"   NRMSE ∝ N^{slope:.2f}", flush=True)
    print("\nthe best 200-neuron network over mean τ × input gain, against the dense 500 of the study")
    for task in TASKS:
        dense = mean_score(base, task, a.samples, a.seeds)
        grid = {(t, g): mean_score(dataclasses.replace(base, neurons=200, tau_mean=t, input_gain=g), task, a.samples, a.seeds)
                for t in TAU_MEANS for g in GAINS}
        (t, g), best = min(grid.items(), key=lambda kv: kv[1])
        print(f"{task:<8s} dense 500: {dense:.4f}; best 200 (τ mean {t}, gain {g}): {best:.4f} = {best / dense:.3f}× dense "
              f"({'within' if best <= 1.02 * dense else 'not within'} 2 %)", flush=True)
    plot(curves, a.out / "lnp_capacity.png")
    print(f"\nplot: {a.out / 'lnp_capacity.png'}")


if __name__ == "__main__":
    main()
