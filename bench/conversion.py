"""Conversion accuracy vs time steps: threshold method × input encoding, on the example models.

    python bench/conversion.py [--models mlp,cnn] [--steps 4,8,16,32,64]

Prints the float-SNN test accuracy on digits for each combination next to
the ANN's, and the smallest T within 1 pp of the ANN. This is the measurement
behind the default threshold method (README).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from neurocompile.cli import _quiet_torch  # noqa: E402
from neurocompile.data import load_dataset, shape_for_model  # noqa: E402
from neurocompile.frontend.capture import capture  # noqa: E402
from neurocompile.passes.convert import convert  # noqa: E402
from neurocompile.sim.run import evaluate  # noqa: E402
from train_example import MODELS, example_input, train_example  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--steps", default="4,8,16,32,64")
    args = ap.parse_args()
    _quiet_torch()
    steps = [int(s) for s in args.steps.split(",")]
    ds = load_dataset("digits")
    for name in args.models.split(","):
        module, ann_acc = train_example(name)
        net = capture(torch.export.export(module, (example_input(name),)))
        shape = MODELS[name][1]
        x_tr, x_te = shape_for_model(ds.x_train, shape), shape_for_model(ds.x_test, shape)
        print(f"\n{name}: ANN accuracy {ann_acc:.4f} on {len(x_te)} digits test samples")
        print(f"{'method':12s} {'encoding':9s} " + " ".join(f"T={T:<5d}" for T in steps) + "  first T within 1 pp")
        for method in ("percentile", "max"):
            for encoding in ("direct", "rate"):
                accs = []
                for T in steps:
                    snn = convert(net, x_tr[:512], timesteps=T, encoding=encoding, method=method)
                    accs.append(evaluate(snn, x_te, "float").accuracy(ds.y_test))
                ok = [T for T, a in zip(steps, accs) if a >= ann_acc - 0.01]
                print(f"{method:12s} {encoding:9s} " + " ".join(f"{a:.4f} " for a in accs) + f"  {ok[0] if ok else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
