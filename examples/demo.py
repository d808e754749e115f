"""The main job on the embedded default: train the example CNN on digits, build it for Loihi 2, run it on Lava.

    python examples/demo.py [--model cnn|mlp] [--out build-demo] [--lava-samples N]

Writes OUT/model.pt2 (the trained, exported ANN) and OUT/build/ (report.json,
report.html, network.ncnet), and prints where the report is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import neurocompile  # noqa: E402
from neurocompile.cli import _quiet_torch  # noqa: E402
from neurocompile.errors import NeurocompileError  # noqa: E402
from train_example import example_input, export_model, train_example  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--out", type=Path, default=Path("build-demo"))
    ap.add_argument("--lava-samples", type=int, default=20)
    ap.add_argument("--timesteps", type=int, default=32)
    args = ap.parse_args(argv)
    _quiet_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / f"{args.model}.pt2"
    module, acc = train_example(args.model)
    export_model(module, model_path, "pt2", example_input(args.model))
    print(f"trained the example {args.model} on digits: test accuracy {acc:.4f} -> {model_path}", file=sys.stderr)
    try:
        report = neurocompile.build(
            model_path, target="loihi2", data="digits", out=args.out / "build", timesteps=args.timesteps, lava_samples=args.lava_samples
        )
    except NeurocompileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, st in report["stages"].items():
        print(f"{name:14s} accuracy {st['accuracy']:.4f} on {st['samples']} samples")
    e = report["energy"]
    print("energy per sample: " + ", ".join(f"{k} {v['joules_per_sample']:.3g} J" for k, v in e.items()))
    print(f"report: {(args.out / 'build' / 'report.html').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
