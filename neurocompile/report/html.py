"""The report as one self-contained HTML page (figures embedded as base64 PNGs).

One file a user can mail or archive: no scripts, no external assets. Every
energy figure is shown with the labels of the constants behind it (measured /
pre-silicon / estimated, and "uncertain"), because a joule estimated from a
calibrated model and a joule measured on silicon should never look alike.

Every section is optional except the title: a report from a run that skipped
Lava, or never mapped the network, still renders.
"""
from __future__ import annotations

import base64
import io
import math
from html import escape
from typing import Any, Callable, Iterable, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .figures import draw_core_map, draw_firing_rates, draw_raster

STAGE_NAMES = {
    "ann": "ANN (float)",
    "dense_float": "dense RSNN, float",
    "snn_float": "SNN, float",
    "finetune": "SNN, fine-tuned",
    "snn_quantized": "SNN, fixed point",
    "lava": "Lava",
}
TERM_COLORS = {
    "synop": "#4c72b0",
    "neuron_update": "#55a868",
    "spike_message": "#c44e52",
    "input_event": "#8172b2",
    "static": "#937860",
    "mac": "#dd8452",
    "sram_read_64b": "#da8bc3",
    "neuron_update_idle": "#8fd19e",
    "mesh_hop": "#e88b8d",
    "x86_step": "#ccb974",
    "board_overhead": "#8c8c8c",
}
LABEL_COLORS = {"measured": "#2e7d32", "pre-silicon": "#1565c0", "specified": "#616161", "estimated": "#ef6c00"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.badge{display:inline-block;padding:0 .45em;border-radius:.6em;color:#fff;font-size:.8em;margin-right:.2em}
.uncertain{background:#b71c1c}.note{color:#555;font-size:.9em}img{max-width:100%}
details{margin:.4em 0}summary{cursor:pointer}code{font-size:.9em}
"""


# -- formatting helpers --------------------------------------------------------------
def _si(x: float | None, unit: str) -> str:
    """``7.28e-05, "J"`` -> ``72.8 µJ``."""
    if x is None:
        return "–"
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return escape(str(x))


def _pct(x: Any) -> str:
    return f"{100 * x:.2f} %" if isinstance(x, (int, float)) else "–"


def _badge(label: str) -> str:
    color = LABEL_COLORS.get(label, "#616161")
    return f'<span class="badge" style="background:{color}">{escape(label)}</span>'


def _badges(labels: Iterable[str], uncertain: bool = False) -> str:
    out = "".join(_badge(lb) for lb in labels)
    return out + ('<span class="badge uncertain">uncertain</span>' if uncertain else "")


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """Cells are already-escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(draw: Callable[[Figure], None], size: tuple[float, float] = (7.0, 3.4)) -> str:
    """Draw on a fresh Agg figure (no pyplot, no global backend) and return an <img> tag."""
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    draw(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _plain_log(axis, fmt: Callable[[float], str]) -> None:
    """Readable log-axis labels ("1 µJ", "8") without mathtext."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(NullFormatter())


def _acc(stage: Mapping | None) -> float | None:
    return _score(stage, "accuracy")


# -- sections -------------------------------------------------------------------------
def _header(report: Mapping) -> str:
    model = report.get("model") or {}
    bits = [f"<h1>neurocompile report: {escape(str(report.get('target', 'unknown target')))}</h1>"]
    meta = []
    if model.get("file"):
        meta.append(f"model <code>{escape(str(model['file']))}</code>")
    if model.get("sha256"):
        meta.append(f"sha256 <code>{escape(str(model['sha256']))}</code>")
    if report.get("timesteps") is not None:
        meta.append(f"T = {_num(report['timesteps'])} time steps")
    if meta:
        bits.append(f'<p class="meta">{" · ".join(meta)}</p>')
    return "\n".join(bits)


def _agreement(stage: Mapping) -> str:
    """Share of predictions equal to the stage before (Lava: to the reference on the same samples)."""
    a = stage.get("agreement")
    if isinstance(a, Mapping):
        a = a.get("predictions")
    if a is None:
        a = stage.get("prediction_agreement_vs_float")
    return _pct(a) if a is not None else "–"


def _other(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "; ".join(escape(str(v)) for v in value)
    return _num(value)


def _score(stage: Mapping | None, metric: str) -> float | None:
    """A stage's score in the build's metric: ``accuracy`` (classification) or ``nrmse`` (an RSNN's time-series prediction)."""
    if not isinstance(stage, Mapping):
        return None
    a = stage.get(metric)
    return float(a) if isinstance(a, (int, float)) else None


def _accuracy(report: Mapping) -> str:
    stages = report.get("stages") or {}
    if not stages:
        return ""
    metric = "nrmse" if report.get("metric") == "nrmse" else "accuracy"
    order = [k for k in STAGE_NAMES if k in stages] + [k for k in stages if k not in STAGE_NAMES]
    rows = []
    for k in order:
        st = stages[k] if isinstance(stages[k], Mapping) else {}
        agreement = st.get("agreement")
        flags = {a: b for a, b in agreement.items() if a != "predictions"} if isinstance(agreement, Mapping) else {}
        skip = (metric, "samples", "agreement", "prediction_agreement_vs_float", "history", "settings", "initial_val_accuracy")
        extra = ", ".join(f"{escape(str(a))}: {_other(b)}" for a, b in {**flags, **st, **_finetune_summary(st)}.items() if a not in skip)
        score = _score(st, metric)
        rows.append([
            escape(STAGE_NAMES.get(k, k)),
            _pct(score) if metric == "accuracy" else (f"{score:.4f}" if score is not None else "–"),
            _num(st.get("samples", "–")),
            _agreement(st),
            extra,
        ])
    title = "Accuracy" if metric == "accuracy" else "Prediction error (NRMSE, lower is better)"
    out = [f"<h2>{title} after every stage</h2>"]
    measured = [(STAGE_NAMES.get(k, k), _score(stages[k], metric)) for k in order if _score(stages[k], metric) is not None]
    if measured:
        def draw(fig: Figure) -> None:
            ax = fig.add_subplot()
            names, scores = zip(*measured)
            shown = [100 * a for a in scores] if metric == "accuracy" else list(scores)
            bars = ax.bar(names, shown, color="#4c72b0")
            for b, a in zip(bars, scores):
                label = f"{100 * a:.2f} %" if metric == "accuracy" else f"{a:.4f}"
                ax.annotate(label, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=9)
            if metric == "nrmse":
                ax.set_ylabel("test NRMSE")
                return
            lo = min(shown)
            floor = max(0.0, math.floor(lo / 10) * 10 - 10)
            ax.set_ylim(floor, 100.5)
            ax.set_ylabel("accuracy (%)" if floor == 0 else f"accuracy (%, axis from {floor:g})")
        out.append(_png(draw))
    out.append(_table(["stage", metric if metric == "accuracy" else "NRMSE", "samples", "agreement with previous stage", "other"],
                      rows, {1, 2, 3}))
    return "\n".join(out)


def _finetune_summary(st: Mapping) -> dict:
    """A fine-tuning stage in a few words (the full per-epoch history stays in report.json)."""
    settings, history = st.get("settings"), st.get("history")
    if not isinstance(settings, Mapping) or not isinstance(history, list):
        return {}
    last = history[-1] if history and isinstance(history[-1], Mapping) else {}
    before, after = st.get("initial_val_accuracy"), last.get("val_accuracy")
    out = {k: settings[k] for k in ("timesteps", "surrogate", "lr", "reset") if k in settings and settings[k] is not None}
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        out["validation accuracy"] = f"{100 * before:.2f} % → {100 * after:.2f} %"
    return out


def _accuracy_vs_t(report: Mapping) -> str:
    curve = report.get("accuracy_vs_T")
    if not curve:
        return ""
    pts = sorted((int(t), float(a)) for t, a in curve.items())
    tuned = sorted((int(t), float(a)) for t, a in (report.get("accuracy_vs_T_finetuned") or {}).items())

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.plot([t for t, _ in pts], [100 * a for _, a in pts], marker="o", label="converted")
        if tuned:
            ax.plot([t for t, _ in tuned], [100 * a for _, a in tuned], marker="s", label="fine-tuned")
        ann = _acc((report.get("stages") or {}).get("ann"))
        if ann is not None:
            ax.axhline(100 * ann, color="#888", linestyle="--", label="ANN")
        ax.legend()
        ax.set_xscale("log", base=2)
        _plain_log(ax.xaxis, lambda v: f"{v:g}")
        ax.set_xlabel("time steps T")
        ax.set_ylabel("accuracy (%)")

    after = dict(tuned)
    rows = [[_num(t), _pct(a)] + ([_pct(after.get(t))] if tuned else []) for t, a in pts]
    header = ["T", "accuracy"] + (["after fine-tuning"] if tuned else [])
    return "<h2>Accuracy vs time steps</h2>\n" + _png(draw) + _table(header, rows, {0, 1, 2})


def _layers(report: Mapping) -> str:
    layers = [dict(l) for l in report.get("layers") or []]
    if not layers:
        return ""
    out = ["<h2>Layers and spikes</h2>"]
    spiking = [l for l in layers if isinstance(l.get("firing_rate"), (int, float)) and l.get("kind") != "readout"]
    if spiking:
        out.append("<h3>Firing rate per layer</h3>")
        out.append(_png(lambda fig: draw_firing_rates(fig, [str(l["name"]) for l in spiking], [float(l["firing_rate"]) for l in spiking])))
    steps = report.get("timesteps")
    rows = []
    for l in layers:
        s, n = l.get("spikes_per_sample"), l.get("neurons")
        rate = s / n / steps if isinstance(s, (int, float)) and n and steps else None
        fr = l.get("firing_rate")
        rows.append([escape(str(l.get("name", "?"))), _num(l.get("kind", "")), _num(n if n is not None else "–"),
                     _num(l.get("synapses", "–")), _num(s if s is not None else "–"),
                     f"{rate:.4f}" if rate is not None else "–", f"{fr:.4f}" if isinstance(fr, (int, float)) else "–"])
    out.append(_table(["layer", "kind", "neurons", "incoming synapses", "spikes per sample", "spikes per neuron per step (over T)",
                       "firing rate (over the period)"], rows, {2, 3, 4, 5, 6}))
    raster = report.get("raster")
    if raster and raster.get("populations"):
        out.append("<h3>Spike raster of one sample</h3>")
        out.append(_png(lambda fig: draw_raster(fig, raster), (9.0, 4.0)))
    return "\n".join(out)


def _energy_figure(energy: Mapping[str, Mapping]) -> str:
    items = [(name, e) for name, e in energy.items() if isinstance(e.get("joules_per_sample"), (int, float)) and e["joules_per_sample"] > 0]
    if not items:
        return ""
    items.sort(key=lambda kv: kv[1]["joules_per_sample"])
    terms: list[str] = []
    for _, e in items:
        terms += [t for t in (e.get("breakdown") or {}) if t not in terms]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = list(range(len(items)))
        bottom = [0.0] * len(items)
        smallest = min(v for _, e in items for v in (e.get("breakdown") or {}).values() if v > 0)
        for t in terms:
            vals = [float((e.get("breakdown") or {}).get(t, 0.0)) for _, e in items]
            ax.bar(xs, vals, bottom=bottom, label=t, color=TERM_COLORS.get(t))
            bottom = [b + v for b, v in zip(bottom, vals)]
        for x, (_, e) in zip(xs, items):
            rng = e.get("range_j")
            if rng:
                j = e["joules_per_sample"]
                ax.errorbar([x], [j], yerr=[[max(j - rng[0], 0.0)], [max(rng[1] - j, 0.0)]], color="k", capsize=4, lw=0.8)
                bottom[x] = max(bottom[x], rng[1])
            ax.annotate(_si(e["joules_per_sample"], "J"), (x, e["joules_per_sample"]), ha="center", va="bottom", fontsize=8)
        ax.set_yscale("log")
        _plain_log(ax.yaxis, lambda v: _si(v, "J"))
        ax.set_ylim(smallest / 3, max(bottom) * 4)
        ax.set_xticks(xs)
        ax.set_xticklabels([
            f"{n}\n{', '.join(e.get('labels') or ['?'])}" + ("\nuncertain" if e.get("uncertain") else "") + ("\nDOES NOT FIT" if e.get("fits") is False else "")
            for n, e in items
        ], fontsize=8)
        ax.set_ylabel("joules per sample (log)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _png(draw, (9.0, 4.2))


def _with_range(x: float | None, rng: Any, unit: str) -> str:
    if x is None:
        return "–"
    if isinstance(rng, (list, tuple)) and len(rng) == 2:
        return f"{_si(x, unit)}<br><span class=\"note\">({_si(rng[0], unit)} – {_si(rng[1], unit)})</span>"
    return _si(x, unit)


def _traffic(energy: Mapping[str, Mapping]) -> str:
    """Cores, chips and spike messages by where they go, per neuromorphic profile."""
    rows = []
    for name, e in energy.items():
        t = e.get("traffic")
        if not isinstance(t, Mapping):
            continue
        rows.append([escape(name), _num(e.get("cores_used", "–")), _num(e.get("chips_used", "–")), _num(float(t.get("within_tile", 0.0))),
                     _num(float(t.get("mesh", 0.0))), _num(float(t.get("mesh_hops", 0.0))), _num(float(t.get("between_chips", 0.0)))])
    if not rows:
        return ""
    return ("<h3>Cores, chips and spike traffic per inference</h3>"
            + _table(["profile", "cores", "chips", "messages within a tile", "messages across the mesh", "mesh hops", "messages between chips"],
                     rows, {1, 2, 3, 4, 5, 6}))


def _fits(e: Mapping) -> str:
    fits, cores = e.get("fits"), e.get("cores_used")
    if fits is True:
        return f"yes ({_num(cores)} cores)" if cores is not None else "yes"
    if fits is False:
        return '<span class="badge uncertain">no</span> (see notes)'
    return "–"


def _energy(report: Mapping) -> str:
    energy = report.get("energy") or {}
    if not energy:
        return ""
    anns = [e["joules_per_sample"] for e in energy.values() if e.get("kind") == "ann" and e.get("joules_per_sample")]
    ref = min(anns) if anns else None
    rows = []
    for name, e in sorted(energy.items(), key=lambda kv: kv[1].get("joules_per_sample") or math.inf):
        j = e.get("joules_per_sample")
        parts = ", ".join(f"{escape(t)} {_si(v, 'J')}" for t, v in (e.get("breakdown") or {}).items())
        if e.get("latency_breakdown"):
            parts += "<br><span class=\"note\">time: " + ", ".join(f"{escape(t)} {_si(v, 's')}" for t, v in e["latency_breakdown"].items()) + "</span>"
        rows.append([
            escape(name), escape(str(e.get("kind", ""))), _fits(e), _with_range(j, e.get("range_j"), "J"),
            f"{j / ref:.3g}×" if ref and j else "–",
            _with_range(e.get("latency_s"), e.get("latency_range_s"), "s"), parts, _badges(e.get("labels") or [], bool(e.get("uncertain"))),
        ])
    out = ["<h2>Energy per sample, per hardware profile</h2>",
           '<p class="note">Modelled from counted operations and each profile\'s per-operation costs '
           "(neuromorphic profiles: the cost model checked against measured Loihi and Loihi 2 workloads; dynamic energy + static power × latency). "
           "The range in brackets (error bars) puts every constant at its label's bounds and every neuron update as active. "
           "Labels say how the charged constants are known; an estimated or uncertain figure is not a measurement.</p>",
           _energy_figure(energy),
           _table(["profile", "kind", "fits the chip", "energy per inference (range)", "vs cheapest ANN baseline", "latency per inference (range)", "breakdown", "constants"], rows, {3, 4, 5}),
           _traffic(energy)]
    for name, e in energy.items():
        prov = e.get("provenance") or {}
        prow = [[escape(k), f"{_num(p.get('value'))} {escape(str(p.get('unit', '')))}", _badges([p.get("label", "?")], bool(p.get("uncertain"))),
                 escape(str(p.get("source", ""))), escape(str(p.get("note", "")))] for k, p in prov.items()]
        notes = "".join(f"<li>{escape(str(n))}</li>" for n in e.get("notes") or [])
        out.append(f"<details><summary>{escape(name)}: constants and notes</summary>"
                   + (_table(["constant", "value", "label", "source", "note"], prow) if prow else "")
                   + (f'<ul class="note">{notes}</ul>' if notes else "") + "</details>")
    return "\n".join(out)


def _core_map(m: Mapping) -> str:
    if not m.get("cores") or not m.get("layout"):
        return ""
    lay = m["layout"]
    chips = min(int(m.get("chips_used", 1)), 4)
    more = f" (first 4 of {m['chips_used']} chips)" if m.get("chips_used", 1) > 4 else ""
    return (f'<p class="note">Core map{more}: tiles of {lay["cores_per_tile"]} cores on a {lay["tiles_x"]}×{lay["tiles_y"]} mesh; '
            "each square is a core, coloured by population and shaded by its most used limit.</p>"
            + _png(lambda fig: draw_core_map(fig, m), (min(12.0, 3.2 * chips + 2.5), 3.2)))


def _core_table(m: Mapping) -> str:
    cores, lim = m.get("cores") or [], m.get("limits") or {}
    if not cores:
        return ""
    def pct(v, cap):
        return f"{100 * v / cap:.0f} %" if cap else "–"
    rows = [[_num(c["core"]), escape(str(c["population"])), f"{c['run'][0]}–{c['run'][1] - 1}", _num(c["chip"]), _num(c["tile"]),
             pct(c["neurons_per_core"], lim.get("neurons")), pct(c["synaptic_memory_bits_per_core"], lim.get("memory_bits")),
             pct(c["fan_in_axons_per_core"], lim.get("fan_in")), pct(c["fan_out_axons_per_core"], lim.get("fan_out"))] for c in cores]
    return (f"<details><summary>utilisation of each of the {len(cores)} cores</summary>"
            + _table(["core", "population", "neurons", "chip", "tile", "neurons", "memory", "fan-in", "fan-out"], rows, {0, 3, 4, 5, 6, 7, 8})
            + "</details>")


def _one_mapping(m: Mapping) -> str:
    lim = m.get("limits") or {}
    used = f"{_num(m['chips_used'])} of " if "chips_used" in m else ""
    head = (f"<p>{escape(str(m.get('profile', '?')))}: {_num(m.get('cores_used', '?'))} of {_num(m.get('cores_available', '?'))} cores "
            f"({_pct(m.get('utilisation'))}) on {used}{_num(m.get('chips', 1))} chip(s); checked: {escape(', '.join(m.get('checked') or []))}</p>")
    mem_cap = lim.get("memory_bits")
    rows = []
    for name, r in (m.get("populations") or {}).items():
        mem = r.get("max_memory_bits")
        mem_s = _num(mem) + (f" ({100 * mem / mem_cap:.0f} %)" if isinstance(mem, (int, float)) and mem_cap else "")
        first, cores = r.get("first_core"), r.get("cores")
        span = f"{first}–{first + cores - 1}" if isinstance(first, int) and isinstance(cores, int) else "–"
        rows.append([escape(name), _num(r.get("neurons", "–")), _num(cores if cores is not None else "–"), span,
                     escape(str(r.get("binding", ""))), mem_s, _num(r.get("max_fan_in", "–")), _num(r.get("max_fan_out", "–"))])
    notes = "".join(f"<li>{escape(str(n))}</li>" for n in m.get("notes") or [])
    return (head + _core_map(m)
            + _table(["population", "neurons", "cores", "core ids", "limited by", "max memory bits/core", "max fan-in", "max fan-out"], rows, {1, 2, 5, 6, 7})
            + _core_table(m) + (f'<ul class="note">{notes}</ul>' if notes else ""))


def _mapping(report: Mapping) -> str:
    m = report.get("mapping")
    if not m:
        return ""
    maps = [m] if "populations" in m else [v for v in m.values() if isinstance(v, Mapping) and "populations" in v]
    if not maps:
        return ""
    return "<h2>Mapping onto cores</h2>\n" + "\n".join(_one_mapping(x) for x in maps)


def _lowering(report: Mapping) -> str:
    low = report.get("lowering")
    if not low:
        return ""
    rows = []
    for r in low:
        stock = r.get("stock_loihi2")
        stock_s = "yes" if stock is True else "no" if stock is False else escape(str(stock))
        rows.append([escape(str(r.get("process", "?"))), _num(r.get("count", "–")), stock_s, escape(str(r.get("note", "")))])
    return "<h2>Lava processes used</h2>\n" + _table(["process", "count", "runs on stock Loihi 2", "note"], rows, {1})


def _notes(report: Mapping) -> str:
    notes = report.get("notes")
    if not notes:
        return ""
    return "<h2>Notes</h2>\n<ul>" + "".join(f"<li>{escape(str(n))}</li>" for n in notes) + "</ul>"


SECTIONS: tuple[Callable[[Mapping], str], ...] = (_header, _accuracy, _accuracy_vs_t, _layers, _energy, _mapping, _lowering, _notes)


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML string; missing optional parts are left out."""
    body = "\n".join(s for s in (section(report) for section in SECTIONS) if s)
    title = escape(f"neurocompile report: {report.get('target', '')}")
    return f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n'
