"""Field-by-field validation of an unpacked artifact, before it becomes a Network a simulator trusts.

An artifact is user input: every field's type, range and shape is checked
here so that a damaged or hostile file fails with one line naming the field,
never deep inside a pass.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from .codec import Corrupt, is_int
from .fixed import FixedPoint, NeuronFixed, SynapseFixed
from .graph import NEURON_FIELDS, ConvSpec, Population, Projection
from .limits import MAX_CONV_TAPS, MAX_POPULATION_SIZE, MAX_SEED, MAX_TIMESTEPS
from .records import ENCODINGS, SCHEDULES, ConversionRecord, PruningRecord, RunSettings


def is_num(v: Any) -> bool:
    return (is_int(v) or isinstance(v, (float, np.floating))) and math.isfinite(float(v))


def check_array(a: Any, where: str, ndim: int | None = None, kinds: str = "biuf", finite: bool = True) -> None:
    if not isinstance(a, np.ndarray):
        raise Corrupt(f"{where}: expected an array, got {type(a).__name__}")
    if a.dtype.kind not in kinds:
        raise Corrupt(f"{where}: array has dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise Corrupt(f"{where}: array has shape {a.shape}, expected {ndim} dimensions")
    if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise Corrupt(f"{where}: array holds NaN or infinite values")


def _check_per_neuron(v: Any, n: int, where: str, lo: float, hi: float, integer: bool = False) -> None:
    """One value or one per neuron, each in [lo, hi]."""
    if isinstance(v, np.ndarray):
        check_array(v, where, ndim=1, kinds="iu" if integer else "biuf")
        if v.shape != (n,):
            raise Corrupt(f"{where}: {v.shape[0]} values for {n} neurons")
        if v.size and not (lo <= v.min() and v.max() <= hi):
            raise Corrupt(f"{where}: values must lie in [{lo}, {hi}]")
        return
    ok = is_int(v) if integer else is_num(v)
    if not ok or not lo <= v <= hi:
        raise Corrupt(f"{where} must be {'an integer' if integer else 'a finite number'} in [{lo}, {hi}], got {v!r}"[:200])


def check_population(p: Any, i: int) -> None:
    where = f"population {i}"
    if not isinstance(p, Population):
        raise Corrupt(f"{where} is not a Population")
    if not isinstance(p.name, str) or not p.name:
        raise Corrupt(f"{where}: name must be a non-empty string")
    where = f"population {p.name!r}"
    if not (isinstance(p.shape, tuple) and 1 <= len(p.shape) <= 3 and all(is_int(d) and d > 0 for d in p.shape)):
        raise Corrupt(f"{where}: shape {p.shape!r} is not 1 to 3 positive sizes")
    if p.size > MAX_POPULATION_SIZE:
        raise Corrupt(f"{where}: {p.size} neurons, over the limit of {MAX_POPULATION_SIZE}")
    if p.kind not in ("input", "spiking", "readout"):
        raise Corrupt(f"{where}: unknown kind {p.kind!r}")
    if p.reset not in ("subtract", "zero"):
        raise Corrupt(f"{where}: unknown reset {p.reset!r}")
    bounds = {"threshold": (-math.inf, math.inf), "leak": (0, 1), "current_decay": (0, 1)}
    for f in NEURON_FIELDS:
        _check_per_neuron(getattr(p, f), p.size, f"{where}: {f}", *bounds[f])
    if p.bias is not None:
        check_array(p.bias, f"{where}: bias", ndim=1)
        if p.bias.shape != (p.size,):
            raise Corrupt(f"{where}: bias has {p.bias.shape[0]} values for {p.size} neurons")


def _check_weight(w: Any, kind: str, want: tuple[int, int], where: str, kinds: str) -> None:
    if kind == "sparse":
        if not sp.issparse(w):
            raise Corrupt(f"{where} of a sparse projection is not a sparse matrix")
        if w.dtype.kind not in kinds or (w.dtype.kind == "f" and not np.all(np.isfinite(w.data))):
            raise Corrupt(f"{where} has dtype {w.dtype} or non-finite values")
        if w.shape != want:
            raise Corrupt(f"{where} has shape {w.shape}, expected {want}")
    elif kind == "dense":
        check_array(w, where, ndim=2, kinds=kinds)
        if w.shape != want:
            raise Corrupt(f"{where} has shape {w.shape}, expected {want}")
    else:
        check_array(w, where, ndim=4, kinds=kinds)


def check_projection(pr: Any, i: int, pops: dict[str, Population]) -> None:
    where = f"projection {i}"
    if not isinstance(pr, Projection):
        raise Corrupt(f"{where} is not a Projection")
    for f in ("name", "source", "target"):
        if not isinstance(getattr(pr, f), str):
            raise Corrupt(f"{where}: {f} must be a string")
    where = f"projection {pr.name!r}"
    for f in ("source", "target"):
        if getattr(pr, f) not in pops:
            raise Corrupt(f"{where}: {f} {getattr(pr, f)!r} is not a population")
    if pr.kind not in ("dense", "sparse", "conv"):
        raise Corrupt(f"{where}: unknown kind {pr.kind!r}")
    if not isinstance(pr.recurrent, bool):
        raise Corrupt(f"{where}: recurrent must be true or false, got {pr.recurrent!r}")
    if not is_int(pr.delay):
        raise Corrupt(f"{where}: delay must be an integer, got {pr.delay!r}")
    if pr.weight is None:
        raise Corrupt(f"{where}: weight is missing")
    _check_weight(pr.weight, pr.kind, (pops[pr.target].size, pops[pr.source].size), f"{where}: weight", "biuf")
    if pr.kind == "conv":
        check_conv(pr, pr.weight, where, pops)
    elif pr.conv is not None:
        raise Corrupt(f"{where}: a {pr.kind} projection has a conv spec")


def check_conv(pr: Projection, w: np.ndarray, where: str, pops: dict[str, Population]) -> None:
    c = pr.conv
    if not isinstance(c, ConvSpec):
        raise Corrupt(f"{where}: a conv projection lacks its ConvSpec")
    ok = all(isinstance(t, tuple) and len(t) == n and all(is_int(v) and v >= lo for v in t)
             for t, n, lo in ((c.in_shape, 3, 1), (c.out_shape, 3, 1), (c.stride, 2, 1), (c.padding, 2, 0)))
    if not ok or not (is_int(c.groups) and c.groups >= 1):
        raise Corrupt(f"{where}: malformed conv spec {c!r}")
    cin, h, wd = c.in_shape
    cout, ho, wo = c.out_shape
    src, tgt = pops[pr.source].shape, pops[pr.target].shape
    if c.in_shape != tuple(src) or c.out_shape != tuple(tgt):
        raise Corrupt(f"{where}: conv shapes {c.in_shape} -> {c.out_shape} do not match its populations {src} -> {tgt}")
    if cin % c.groups or cout % c.groups or w.shape[0] != cout or w.shape[1] != cin // c.groups:
        raise Corrupt(f"{where}: kernel shape {w.shape} does not fit {cin} -> {cout} channels in {c.groups} groups")
    kh, kw = w.shape[2:]
    if (h + 2 * c.padding[0] - kh) // c.stride[0] + 1 != ho or (wd + 2 * c.padding[1] - kw) // c.stride[1] + 1 != wo:
        raise Corrupt(f"{where}: output size {ho}x{wo} does not follow from input {h}x{wd}, kernel {kh}x{kw}, "
                      f"stride {c.stride} and padding {c.padding}")
    if math.prod(w.shape) * ho * wo > MAX_CONV_TAPS:
        raise Corrupt(f"{where}: {math.prod(w.shape) * ho * wo} kernel taps, over the limit of {MAX_CONV_TAPS}")


def check_settings(s: Any) -> None:
    if not isinstance(s, RunSettings):
        raise Corrupt("settings is not a RunSettings record")
    if s.timesteps is not None and not (is_int(s.timesteps) and 0 < s.timesteps <= MAX_TIMESTEPS):
        raise Corrupt(f"settings.timesteps must be an integer in [1, {MAX_TIMESTEPS}], got {s.timesteps!r}"[:200])
    if not (is_int(s.seed) and 0 <= s.seed < MAX_SEED):
        raise Corrupt(f"settings.seed must be an integer in [0, {MAX_SEED}), got {s.seed!r}"[:200])
    if s.encoding not in ENCODINGS:
        raise Corrupt(f"settings.encoding must be one of {', '.join(ENCODINGS)}, got {s.encoding!r}"[:200])
    if s.schedule not in SCHEDULES:
        raise Corrupt(f"settings.schedule must be one of {', '.join(SCHEDULES)}, got {s.schedule!r}"[:200])
    for f in ("data", "model", "source_format"):
        if getattr(s, f) is not None and not isinstance(getattr(s, f), str):
            raise Corrupt(f"settings.{f} must be a string")


def check_conversion(c: Any) -> None:
    if c is None:
        return
    if not isinstance(c, ConversionRecord):
        raise Corrupt("conversion is not a ConversionRecord")
    if not isinstance(c.threshold_method, str) or not is_num(c.threshold_scale):
        raise Corrupt("conversion.threshold_method must be a string and threshold_scale a number")
    if not isinstance(c.activation_scales, dict) or not all(isinstance(k, str) and is_num(v) for k, v in c.activation_scales.items()):
        raise Corrupt("conversion.activation_scales must map population names to numbers")


def check_pruning(r: Any, pops: dict[str, Population]) -> None:
    if r is None:
        return
    if not isinstance(r, PruningRecord):
        raise Corrupt("pruning is not a PruningRecord")
    if not (isinstance(r.method, str) and isinstance(r.population, str) and is_num(r.neuron_sparsity) and is_num(r.synapse_sparsity)
            and is_int(r.seed) and is_int(r.added_synapses)):
        raise Corrupt("pruning: method and population must be strings, sparsities numbers, seed and added_synapses integers")
    if not isinstance(r.kept, list) or not all(is_int(k) and k >= 0 for k in r.kept):
        raise Corrupt("pruning.kept must be a list of neuron indices")
    if r.population in pops and len(r.kept) != pops[r.population].size:
        raise Corrupt(f"pruning.kept has {len(r.kept)} indices for population {r.population!r} of {pops[r.population].size} neurons")
    for d in (r.before, r.after):
        if not isinstance(d, dict) or not all(isinstance(k, str) and is_num(v) for k, v in d.items()):
            raise Corrupt("pruning.before and pruning.after must map names to numbers")


def check_mapping(m: Any, pops: dict[str, Population]) -> None:
    """What the report and the energy model read from a placement: its profile, cores, layout and each population's core chunks."""
    if m is None:
        return
    if not isinstance(m, dict):
        raise Corrupt("mapping must be an object")
    if not (isinstance(m.get("profile"), str) and is_int(m.get("cores_used")) and m["cores_used"] >= 0
            and isinstance(m.get("layout"), dict) and isinstance(m.get("cores"), list) and isinstance(m.get("populations"), dict)):
        raise Corrupt("mapping lacks its profile, cores_used, layout, cores or populations; map the network again")
    for name, p in pops.items():
        if p.kind == "input":
            continue
        rec = m["populations"].get(name)
        chunks = rec.get("chunks") if isinstance(rec, dict) else None
        at = 0
        for c in chunks if isinstance(chunks, list) else [None]:
            if not (isinstance(c, list) and len(c) == 2 and all(is_int(v) for v in c) and c[0] == at and c[1] > at):
                raise Corrupt(f"mapping.populations[{name!r}] does not split its {p.size} neurons into consecutive core chunks")
            at = c[1]
        if at != p.size:
            raise Corrupt(f"mapping.populations[{name!r}] covers {at} of its {p.size} neurons")


def check_fixed(fx: Any, pops: dict[str, Population], projs: dict[str, Projection]) -> None:
    if fx is None:
        return
    if not isinstance(fx, FixedPoint) or not isinstance(fx.neurons, dict) or not isinstance(fx.synapses, dict):
        raise Corrupt("fixed is not a FixedPoint layer")
    for d in (fx.format, fx.v_units_per_float):
        if not isinstance(d, dict) or not all(isinstance(k, str) and is_num(v) for k, v in d.items()):
            raise Corrupt("fixed.format and fixed.v_units_per_float must map names to numbers")
    want = {n for n, p in pops.items() if p.kind != "input"}
    if set(fx.neurons) != want or set(fx.synapses) != set(projs):
        raise Corrupt("quantised fields are present on only part of the network (fixed.neurons / fixed.synapses)")
    for name, q in fx.neurons.items():
        where, n = f"population {name!r}: fixed", pops[name].size
        if not isinstance(q, NeuronFixed):
            raise Corrupt(f"{where} is not a NeuronFixed")
        _check_per_neuron(q.vth, n, f"{where}.vth", 0, 1 << 62, integer=True)
        _check_per_neuron(q.du, n, f"{where}.du", 0, 4095, integer=True)
        _check_per_neuron(q.dv, n, f"{where}.dv", 0, 4095, integer=True)
        if not (is_int(q.bias_exp) and -64 <= q.bias_exp <= 64):
            raise Corrupt(f"{where}.bias_exp must be an integer in [-64, 64], got {q.bias_exp!r}")
        check_array(q.bias_mant, f"{where}.bias_mant", ndim=1, kinds="iu")
        if q.bias_mant.shape not in ((n,), (1,)):  # one value is Lava's broadcast scalar
            raise Corrupt(f"{where}.bias_mant has {q.bias_mant.shape[0]} values for {n} neurons (give one, or one per neuron)")
    for name, s in fx.synapses.items():
        pr, where = projs[name], f"projection {name!r}: fixed"
        if not isinstance(s, SynapseFixed):
            raise Corrupt(f"{where} is not a SynapseFixed")
        if not (is_int(s.exp) and -64 <= s.exp <= 64):
            raise Corrupt(f"{where}.exp must be an integer in [-64, 64], got {s.exp!r}")
        _check_weight(s.weight, pr.kind, (pops[pr.target].size, pops[pr.source].size), f"{where}.weight", "iu")
        if np.shape(s.weight) != np.shape(pr.weight):
            raise Corrupt(f"{where}.weight has shape {np.shape(s.weight)}, the float weights {np.shape(pr.weight)}")
