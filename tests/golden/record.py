"""Record the golden values of the example models' builds (run once, before a change that must keep them).

    python tests/golden/record.py          # writes tests/golden/{mlp,cnn}.pt2 and examples.json

The models are stored (not retrained in the test) so that the values do not
depend on floating-point training on a particular CPU; the build from a stored
model is what must stay bit for bit: every stage's accuracy, the per-layer spike
counts and a digest of the fixed-point readouts of the whole test set.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples"))


def summary(model: Path) -> dict:
    """What the golden test compares: the report's figures and the fixed-point readouts' digest."""
    import neurocompile
    from neurocompile import ir
    from neurocompile.data import load_dataset, shape_for_model
    from neurocompile.sim.run import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build"
        report = neurocompile.build(model, target="loihi2", data="digits", out=out, timesteps=16, lava_samples=0,
                                    backend="none", t_sweep=(4, 8, 32))
        net = ir.load(out / "network.ncnet")
    ds = load_dataset("digits", seed=0)
    ev = evaluate(net, shape_for_model(ds.x_test, net.population(net.input).shape), "fixed")
    return {
        "accuracy": {k: v["accuracy"] for k, v in report["stages"].items()},
        "accuracy_vs_T": report["accuracy_vs_T"],
        "spikes_per_sample": {l["name"]: l["spikes_per_sample"] for l in report["layers"]},
        "synapses": {l["name"]: l["synapses"] for l in report["layers"]},
        "logits_sha256": hashlib.sha256(np.ascontiguousarray(ev.logits, dtype=np.float64).tobytes()).hexdigest(),
    }


def main() -> None:
    from train_example import example_input, export_model, train_example

    golden = {}
    for name in ("mlp", "cnn"):
        path = HERE / f"{name}.pt2"
        if not path.exists():
            module, _ = train_example(name)
            export_model(module, path, "pt2", example_input(name))
        golden[name] = summary(path)
    (HERE / "examples.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
