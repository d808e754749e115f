"""The report's pictures of one build: the spike raster, firing rate per layer, the core map.

Each ``draw_*`` function draws on a matplotlib Figure it is given (no pyplot,
no global state) from report.json's plain numbers, so a figure is always a
picture of numbers the JSON keeps.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
MAX_CHIPS_DRAWN = 4


def draw_raster(fig: Figure, raster: Mapping) -> None:
    """One sample: a dot per spike, populations stacked bottom-up, each in its own colour."""
    ax = fig.add_subplot()
    offset = 0
    ticks, labels = [], []
    for i, (name, rec) in enumerate((raster.get("populations") or {}).items()):
        pts = rec.get("spikes") or []
        if pts:
            ax.scatter([p[0] for p in pts], [offset + p[1] for p in pts], s=2, color=PALETTE[i % len(PALETTE)], linewidths=0)
        shown = int(rec.get("shown", 0))
        ticks.append(offset + shown / 2)
        labels.append(f"{name}" + (f"\n(first {shown} of {rec['neurons']})" if shown < rec.get("neurons", shown) else ""))
        offset += shown
        ax.axhline(offset, color="#ddd", lw=0.6)
    ax.set_xlim(-0.5, max(1, int(raster.get("steps", 1))) - 0.5)
    ax.set_ylim(0, max(offset, 1))
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlabel("time step")
    ax.set_title(f"spikes of test sample {raster.get('sample', 0)}", fontsize=10)


def draw_firing_rates(fig: Figure, names: Sequence[str], rates: Sequence[float]) -> None:
    ax = fig.add_subplot()
    ax.bar(list(names), [100 * r for r in rates], color="#c44e52")
    for x, r in enumerate(rates):
        ax.annotate(f"{100 * r:.2f} %", (x, 100 * r), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("spikes per neuron per step (%)")
    ax.tick_params(axis="x", rotation=30)


def core_utilisation(core: Mapping, limits: Mapping) -> float:
    """The most used of a core's limits, as a fraction (neurons, memory, fan-in, fan-out)."""
    pairs = (("neurons_per_core", "neurons"), ("synaptic_memory_bits_per_core", "memory_bits"),
             ("fan_in_axons_per_core", "fan_in"), ("fan_out_axons_per_core", "fan_out"))
    return max((core.get(k, 0) / limits[lim] for k, lim in pairs if limits.get(lim)), default=0.0)


def draw_core_map(fig: Figure, mapping: Mapping) -> None:
    """Chips side by side; in each, the tile mesh, each core a square coloured by population, shaded by utilisation."""
    lay, limits, cores = mapping["layout"], mapping.get("limits") or {}, mapping.get("cores") or []
    per_tile, tx, ty = lay["cores_per_tile"], lay["tiles_x"], lay["tiles_y"]
    side = max(1, int(round(per_tile ** 0.5)))
    rows_in_tile = -(-per_tile // side)
    chips = sorted({c["chip"] for c in cores})[:MAX_CHIPS_DRAWN]
    pops = list((mapping.get("populations") or {}).keys())
    colour = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(pops)}
    ax = fig.add_subplot()
    gap = 1
    for k, chip in enumerate(chips):
        x0 = k * (tx * (side + 0.3) + gap)
        ax.add_patch(Rectangle((x0 - 0.2, -0.2), tx * (side + 0.3) + 0.1, ty * (rows_in_tile + 0.3) + 0.1, fill=False, lw=1.2))
        ax.annotate(f"chip {chip}", (x0, ty * (rows_in_tile + 0.3) + 0.1), fontsize=8)
        for tile in range(tx * ty):
            r, c = tile // tx, tile % tx
            c = tx - 1 - c if r % 2 else c
            ax.add_patch(Rectangle((x0 + c * (side + 0.3) - 0.05, r * (rows_in_tile + 0.3) - 0.05), side + 0.1, rows_in_tile + 0.1,
                                   fill=False, lw=0.4, color="#999"))
    for core in cores:
        if core["chip"] not in chips:
            continue
        k = chips.index(core["chip"])
        local = core["core"] % lay["cores_per_chip"] % per_tile
        x = k * (tx * (side + 0.3) + gap) + (core["x"] % tx) * (side + 0.3) + local % side
        y = (core["y"] % ty) * (rows_in_tile + 0.3) + local // side
        u = core_utilisation(core, limits)
        ax.add_patch(Rectangle((x, y), 0.9, 0.9, color=colour.get(core["population"], "#888"), alpha=0.25 + 0.75 * min(1.0, u)))
    ax.set_xlim(-0.5, len(chips) * (tx * (side + 0.3) + gap))
    ax.set_ylim(-0.5, ty * (rows_in_tile + 0.3) + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, color=colour[p]) for p in pops]
    ax.legend(handles, pops, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="population (shade: utilisation)", title_fontsize=7)
