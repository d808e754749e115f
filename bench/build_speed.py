"""Build wall time and Lava steps/s for the demo model (issue: end-to-end build).

    python bench/build_speed.py [--model cnn|mlp] [--lava-samples N]

Trains the example model (not timed), then times one full `neurocompile build`
and prints its wall time and the Lava run's steps per second. The reference
backend's speed against Lava is measured properly (large batches, several
networks) by bench/sim_speed.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import neurocompile  # noqa: E402
from neurocompile.cli import _quiet_torch  # noqa: E402
from train_example import example_input, export_model, train_example  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--lava-samples", type=int, default=20)
    args = ap.parse_args()
    _quiet_torch()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.model}.pt2"
        module, _ = train_example(args.model)
        export_model(module, path, "pt2", example_input(args.model))
        t0 = time.perf_counter()
        report = neurocompile.build(path, target="loihi2", data="digits", out=Path(tmp) / "build", lava_samples=args.lava_samples)
        wall = time.perf_counter() - t0
    lava = report["stages"]["lava"]
    print(f"model: example {args.model} on digits, T={report['timesteps']}, period {report['period_steps']} steps")
    print(f"build wall time: {wall:.1f} s (report says {report['build_seconds']} s)")
    print(f"lava: {lava['samples']} samples, {lava['steps']} steps in {lava['wall_s']:.2f} s (incl. start-up) = {lava['steps_per_s']:.0f} steps/s")
    for note in lava.get("notes", []):
        print(f"  {note}")
    print(f"agreement lava vs reference: {lava['agreement']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
