"""The cost model against four measured silicon workloads, side by side, with a plot.

    .venv/bin/python bench/energy_vs_silicon.py [--out bench/out/]

For each workload of tests/silicon_workloads.py (PilotNet LIF on Loihi 2,
keyword spotting, LSNN and Braille on Loihi): dynamic energy per inference and
time per step, model (nominal activity) vs measured, their ratio, whether it
is within 2x, and the model's range (low activity and low constants .. high
activity and high constants; see neurocompile/report/cost_model.py). Writes
``energy_vs_silicon.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the published workloads live with the tests that check them

import silicon_workloads as sw  # noqa: E402
from neurocompile.profiles import load_profile  # noqa: E402

SCALE = {"J": (1e6, "uJ"), "s": (1e6, "us")}


def rows() -> list[sw.Comparison]:
    out: list[sw.Comparison] = []
    for case in sw.CASES:
        out.extend(sw.compare(case, load_profile(case.profile)))
    return out


def table(comparisons: list[sw.Comparison]) -> str:
    head = ("workload", "profile", "metric", "model", "measured", "ratio", "within 2x", "model range", "range width", "measured in range")
    profile = {c.name: c.profile + (" (calibration)" if c.calibration else "") for c in sw.CASES}
    lines = [head]
    for c in comparisons:
        k, unit = SCALE[c.unit]
        lines.append((c.case, profile[c.case], c.metric, f"{c.model * k:.4g} {unit}", f"{c.measured * k:.4g} {unit}",
                      f"{c.ratio:.2f}", "yes" if c.within_2x else "NO", f"{c.low * k:.3g} .. {c.high * k:.3g}",
                      f"x{c.width:.0f}", "yes" if c.in_range else "NO"))
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def plot(comparisons: list[sw.Comparison], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("dynamic energy per inference", "time per step")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, metrics):
        cs = [c for c in comparisons if c.metric == metric]
        k, unit = SCALE[cs[0].unit]
        x = range(len(cs))
        ax.errorbar(x, [c.model * k for c in cs], yerr=[[(c.model - c.low) * k for c in cs], [(c.high - c.model) * k for c in cs]],
                    fmt="o", capsize=4, label="model (range: activity bounds x constant labels)")
        ax.scatter(x, [c.measured * k for c in cs], marker="x", s=70, color="k", zorder=3, label="measured")
        for i, c in enumerate(cs):
            ax.plot([i - 0.25, i + 0.25], [c.measured * k / 2] * 2, color="grey", lw=0.8)
            ax.plot([i - 0.25, i + 0.25], [c.measured * k * 2] * 2, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(list(x), [c.case for c in cs], rotation=15)
        ax.set_ylabel(f"{metric} ({unit})")
        ax.set_title(f"{metric}: grey ticks = measured / 2 and x 2", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="folder for energy_vs_silicon.png (default bench/out/)")
    args = ap.parse_args(argv)
    comparisons = rows()
    print(table(comparisons))
    print("\nActivity is bounded, not simulated (tests/silicon_workloads.py: ACTIVITY). The x86 step constants are "
          "calibrated on the LSNN run only; the other three are out-of-sample checks.")
    png = args.out / "energy_vs_silicon.png"
    plot(comparisons, png)
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
