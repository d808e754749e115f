"""Latency vs accuracy: plain conversion against conversion + STDB fine-tuning, float and bit-exact (issue 9).

    .venv/bin/python bench/latency_accuracy.py [--quick] [--models cnn,mlp] [--steps 1,2,4,...] [--finetune-steps 1,2,4]
        [--epochs 6] [--lr 1e-3] [--surrogate linear|stdb] [--no-train-threshold] [--resets subtract,zero] [--progressive]
        [--plot PATH] [--time-epoch]

For the MNIST CNN (bench/mnist_models.py, 8,000/2,000 split) and the digits MLP
(examples/train_example.py), prints accuracy vs T for the ANN, plain conversion
(float simulator and bit-exact fixed point after quantisation), and conversion
+ fine-tuning at each small T (float and bit-exact), with spikes per inference,
then the smallest T within 1 pp and 0.5 pp of the ANN for each method, and for
each fine-tuned T the smallest conversion T that reaches its accuracy (the
ratio of time steps, and of steps between streamed samples: a periodic
period is T + depth steps, a pipelined one T; one inference alone lasts
T + depth either way); writes a plot. Fine-tuning runs for the
subtractive reset (PeriodicLIF) and for reset to zero (``--resets``; Lava's
stock LIFReset, pipelined). ``--quick``: the digits MLP only, T ≤ 32, fine-tuned at 2 and 4.
``--time-epoch``: the time of one fine-tuning epoch of the MNIST CNN on 8,000
samples at T = 8 (the issue's target: under 60 s on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neurocompile.data import load_dataset, shape_for_model  # noqa: E402
from neurocompile.frontend.capture import capture  # noqa: E402
from neurocompile.ir import Network  # noqa: E402
from neurocompile.passes.convert import convert  # noqa: E402
from neurocompile.passes.quantize import quantize  # noqa: E402
from neurocompile.sim.run import evaluate, period  # noqa: E402
from neurocompile.passes.finetune import FinetuneSettings, finetune  # noqa: E402

ALL_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)


def mnist_cnn_model(epochs: int = 3):
    """The issue's MNIST CNN trained on the 8,000-sample split; (module, data, ANN accuracy)."""
    from mnist_models import mnist_cnn, train

    ds = load_dataset("mnist")
    torch.manual_seed(0)
    module, acc = train(mnist_cnn(), ds.x_train, ds.y_train, ds.x_test, ds.y_test, epochs)
    return module, ds, acc


def digits_mlp_model():
    from train_example import MODELS, train_example

    module, acc = train_example("mlp")
    ds = load_dataset("digits")
    shape = MODELS["mlp"][1]
    return module, _reshaped(ds, shape), acc


def _reshaped(ds, shape):
    import dataclasses

    return dataclasses.replace(ds, x_train=shape_for_model(ds.x_train, shape), x_test=shape_for_model(ds.x_test, shape))


def measure(net: Network, ds, mode: str) -> tuple[float, float]:
    """(accuracy, spikes per inference) on the test split, in ``mode`` ("float" or "fixed" after quantisation)."""
    ev = evaluate(quantize(net) if mode == "fixed" else net, ds.x_test, mode)
    spikes = float(sum(c.mean() for c in ev.spike_counts.values()))
    return ev.accuracy(ds.y_test), spikes


def first_within(accs: dict[int, float], ann: float, pp: float) -> int | None:
    ok = [T for T, a in sorted(accs.items()) if a >= ann - pp / 100]
    return ok[0] if ok else None


Rows = dict[str, dict[int, tuple[float, float]]]  # method → T → (accuracy, spikes per inference)


def study(name: str, module, ds, ann: float, args) -> tuple[Rows, dict[str, int]]:
    """The rows of the table, and per method the steps a streamed sample's period adds to T (periodic: depth; pipelined: 0)."""
    net = capture(torch.export.export(module.eval(), (torch.from_numpy(ds.x_test[:1].copy()),)))
    tuned = {reset: f"fine-tuned/{args.surrogate}" + ("" if reset == "subtract" else " zero-reset stock") for reset in args.resets}
    rows: Rows = {"conversion (float)": {}, "conversion (fixed)": {}}
    extra: dict[str, int] = {}
    for label in tuned.values():
        rows[f"{label} (float)"], rows[f"{label} (fixed)"] = {}, {}
    for T in args.steps:
        snn = convert(net, ds.x_train[:512], timesteps=T)
        rows["conversion (float)"][T] = measure(snn, ds, "float")
        rows["conversion (fixed)"][T] = measure(snn, ds, "fixed")
        extra["conversion"] = period(snn) - T
        print(f"  [{name}] T={T}: conversion {rows['conversion (float)'][T][0]:.4f} float, {rows['conversion (fixed)'][T][0]:.4f} fixed",
              file=sys.stderr, flush=True)
    previous: dict[str, Network] = {}
    # --progressive: each T starts from the network fine-tuned at the T before it (largest first), the
    # iterative time-step reduction of Chowdhury, Rathi & Roy (2021, "One timestep is all you need")
    for T in sorted(args.finetune_steps, reverse=args.progressive):
        snn = convert(net, ds.x_train[:512], timesteps=T)
        for reset, label in tuned.items():
            start = previous.get(reset, snn) if args.progressive else snn
            # reset "zero" on a layered network: the pipelined schedule, lowered to Lava's stock LIFReset (P = T steps)
            settings = FinetuneSettings(epochs=args.epochs, timesteps=T, lr=args.lr, surrogate=args.surrogate, reset=reset,
                                        train_threshold=args.train_threshold, quant_aware_epochs=args.quant_aware_epochs, seed=0)
            t0 = time.perf_counter()
            result = finetune(start, (ds.x_train, ds.y_train), None, settings, progress=args.progress)
            previous[reset] = result.network
            rows[f"{label} (float)"][T] = measure(result.network, ds, "float")
            rows[f"{label} (fixed)"][T] = measure(result.network, ds, "fixed")
            extra[label] = period(result.network) - T
            print(f"  [{name}] T={T} {label}: {args.epochs} epochs in {time.perf_counter() - t0:.0f} s: "
                  f"{rows[label + ' (float)'][T][0]:.4f} float, {rows[label + ' (fixed)'][T][0]:.4f} fixed", file=sys.stderr, flush=True)
    return rows, extra


def equal_accuracy_ratio(rows: Rows, extra: dict[str, int]) -> list[str]:
    """For each fine-tuned T: the smallest conversion T reaching its accuracy, as ratios of time steps and of the
    steps between streamed samples (the period); "≥" where conversion never reaches it (ratio to its best T)."""
    conv = rows["conversion (fixed)"]
    lines = []
    for method, accs in rows.items():
        if not method.startswith("fine-tuned") or not method.endswith("(fixed)"):
            continue
        label = method.removesuffix(" (fixed)")
        for T, (acc, spikes) in sorted(accs.items()):
            reached = [Tc for Tc, (a, _) in sorted(conv.items()) if a >= acc]
            Tc = reached[0] if reached else max(conv, key=lambda t: conv[t][0])
            at_least = "" if reached else "≥ "
            how = f"first reaches it at T={Tc}" if reached else f"never reaches it (best {conv[Tc][0] * 100:.2f} % at T={Tc})"
            lines.append(f"{label} T={T} ({acc * 100:.2f} %, {spikes:.0f} spikes): conversion {how} ({conv[Tc][1]:.0f} spikes): "
                         f"{at_least}{Tc / T:.1f}x fewer time steps, {at_least}"
                         f"{(Tc + extra['conversion']) / (T + extra[label]):.1f}x fewer steps between streamed samples")
    return lines


def print_table(name: str, ann: float, rows, steps: list[int]) -> None:
    print(f"\n{name}: ANN {ann * 100:.2f} %  (accuracy % / spikes per inference; '-' not run; fixed: bit-exact after quantisation)")
    print(f"{'method':26s} " + " ".join(f"{'T=' + str(T):>15s}" for T in steps) + "  ≤1pp  ≤0.5pp")
    for method, accs in rows.items():
        cells = [f"{accs[T][0] * 100:6.2f}/{accs[T][1]:8.0f}" if T in accs else f"{'-':>15s}" for T in steps]
        acc = {T: a for T, (a, _) in accs.items()}
        w1, w05 = first_within(acc, ann, 1.0), first_within(acc, ann, 0.5)
        print(f"{method:26s} " + " ".join(cells) + f"  {w1 or '-':>4}  {w05 or '-':>5}")


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (name, (ann, rows)) in zip(axes[0], results.items()):
        ax.axhline(ann * 100, color="k", ls="--", label="ANN")
        for method, accs in rows.items():
            if accs:
                Ts = sorted(accs)
                ax.plot(Ts, [accs[T][0] * 100 for T in Ts], marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("time steps T")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(max(0, ann * 100 - 30), 100)
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nplot: {path}")


def time_epoch(args) -> None:
    """One fine-tuning epoch of the MNIST CNN on its 8,000 training samples at T = 8."""
    module, ds, ann = mnist_cnn_model(args.cnn_epochs)
    net = capture(torch.export.export(module.eval(), (torch.from_numpy(ds.x_test[:1].copy()),)))
    snn = convert(net, ds.x_train[:512], timesteps=8)
    settings = FinetuneSettings(epochs=1, timesteps=8, quant_aware_epochs=0, surrogate=args.surrogate)
    t0 = time.perf_counter()
    finetune(snn, (ds.x_train, ds.y_train), None, settings, progress=args.progress)
    dt = time.perf_counter() - t0
    print(f"one epoch, MNIST CNN, {len(ds.x_train)} samples, T = 8, batch 64, {torch.get_num_threads()} threads: {dt:.1f} s "
          f"(target < 60 s; load average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--steps", default=",".join(map(str, ALL_STEPS)))
    ap.add_argument("--finetune-steps", default="1,2,4")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--surrogate", default="linear")
    ap.add_argument("--resets", default="subtract,zero", help="fine-tune for these resets (zero: the stock LIFReset lowering)")
    ap.add_argument("--progressive", action="store_true", help="fine-tune each T from the network fine-tuned at the next larger T")
    ap.add_argument("--no-train-threshold", dest="train_threshold", action="store_false")
    ap.add_argument("--quant-aware-epochs", type=int, default=1)
    ap.add_argument("--cnn-epochs", type=int, default=3, help="ANN training epochs of the MNIST CNN")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default="latency_accuracy.png")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--time-epoch", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.time_epoch:
        time_epoch(args)
        return 0
    if args.quick:
        args.models, args.steps, args.finetune_steps, args.epochs = "mlp", "1,2,4,8,16,32", "2,4", min(args.epochs, 4)
    args.steps = [int(s) for s in args.steps.split(",")]
    args.resets = [r for r in args.resets.split(",") if r]
    args.finetune_steps = [int(s) for s in args.finetune_steps.split(",") if s]
    results = {}
    for name in args.models.split(","):
        module, ds, ann = mnist_cnn_model(args.cnn_epochs) if name == "cnn" else digits_mlp_model()
        title = "MNIST CNN" if name == "cnn" else "digits MLP"
        rows, extra = study(title, module, ds, ann, args)
        results[title] = (ann, rows)
        print_table(title, ann, rows, sorted(set(args.steps) | set(args.finetune_steps)))
        print("\n".join(equal_accuracy_ratio(rows, extra)))
    plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
