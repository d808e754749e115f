"""Build wall time against the targets, and the Lava run's speed (architecture issue).

    python bench/build_speed.py                 # MNIST CNN and MLP, --backend none, default sweep
    python bench/build_speed.py --lava 20       # also the demo CNN on digits with 20 samples on Lava

Trains each model briefly on the 8,000 MNIST training samples (not timed: the
accuracy is not the point here), then times one ``neurocompile build`` with the
default accuracy-vs-T sweep and ``--backend none``, and prints the wall time
against its target with the stages' own timings (``timings.json``):

* MNIST CNN (Conv5x16-BN-ReLU-AvgPool-Conv5x32-ReLU-AvgPool-Linear64-Linear10): < 30 s
* MNIST MLP 784-256-128-10: < 15 s
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "bench")]

import neurocompile  # noqa: E402
from neurocompile.cli import _quiet_torch  # noqa: E402
from mnist_models import mnist_cnn, mnist_mlp, train  # noqa: E402
from neurocompile.data import load_dataset  # noqa: E402

TARGETS_S = {"mnist-cnn": 30.0, "mnist-mlp": 15.0}


def timed_build(name: str, model: nn.Module, tmp: Path, **kw) -> tuple[float, dict, dict]:
    path = tmp / f"{name}.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 28, 28),)), str(path))
    out = tmp / f"build-{name}"
    t0 = time.perf_counter()
    report = neurocompile.build(path, target="loihi2", data="mnist", out=out, **kw)
    wall = time.perf_counter() - t0
    return wall, report, json.loads((out / "timings.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lava", type=int, default=0, help="also build the demo CNN on digits with N samples on Lava")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    _quiet_torch()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset("mnist", seed=0)
        for name, make in (("mnist-cnn", mnist_cnn), ("mnist-mlp", mnist_mlp)):
            model, _ = train(make(), ds.x_train, ds.y_train, ds.x_test, ds.y_test, args.epochs)
            wall, report, timings = timed_build(name, model, Path(tmp), backend="none", lava_samples=0)
            acc = {k: v["accuracy"] for k, v in report["stages"].items()}
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k.endswith("_s") and isinstance(v, float))
            verdict = "PASS" if wall < TARGETS_S[name] else "MISS"
            rows.append(f"{name}: build {wall:.1f} s (target < {TARGETS_S[name]:.0f} s: {verdict}); {stages}; accuracy {acc}; "
                        f"vs T {report['accuracy_vs_T']}")
        if args.lava:
            from train_example import example_input, export_model, train_example

            module, _ = train_example("cnn")
            path = Path(tmp) / "demo-cnn.pt2"
            export_model(module, path, "pt2", example_input("cnn"))
            out = Path(tmp) / "build-demo"
            t0 = time.perf_counter()
            report = neurocompile.build(path, target="loihi2", data="digits", out=out, lava_samples=args.lava)
            wall = time.perf_counter() - t0
            timings = json.loads((out / "timings.json").read_text())
            lava = report["stages"]["lava"]
            rows.append(f"demo CNN on digits with Lava: build {wall:.1f} s; lava {lava['samples']} samples, {lava['steps']} steps "
                        f"in {timings['lava_wall_s']:.2f} s (incl. start-up) = {timings['lava_steps_per_s']:.0f} steps/s; "
                        f"agreement {lava['agreement']}")
            rows += [f"  {note}" for note in timings.get("lava_notes", [])]
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
