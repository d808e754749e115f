"""Reading artifacts of IR version 1 (neurocompile ≤ 0.1, before the explicit graph).

Version 1 kept the integer parameters on the float nodes (``Population.quant``,
``Projection.qweight``/``weight_exp``), the run settings in an untyped
``meta`` dict, one ``input``/``output``, and inferred recurrence from the order
of populations (an edge to the same or an earlier population); its core placement
lacked the tile/mesh/chip layout and is dropped (``neurocompile map`` or the report
places the network again). The rewrite is done on the JSON, before any object is built, so the arrays are reused as they
are and the result goes through the same checks as a version-2 file.
"""
from __future__ import annotations

from typing import Any

from .codec import Corrupt

_SETTINGS = ("timesteps", "encoding", "seed", "data", "model", "source_format")


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise Corrupt(f"{where} is not an object")
    return v


def from_v1(header: dict) -> dict:
    """A version-2 header holding exactly what the version-1 ``header`` held."""
    for key, typ in (("input", str), ("output", str), ("populations", list), ("projections", list), ("meta", dict)):
        if not isinstance(header.get(key), typ):
            raise Corrupt(f"network.json (version 1): {key!r} is missing or not a {typ.__name__}")
    meta = dict(header["meta"])
    pops = [dict(_obj(p, f"populations[{i}]")) for i, p in enumerate(header["populations"])]
    order = {p.get("name"): i for i, p in enumerate(pops)}
    neurons: dict[str, Any] = {}
    for p in pops:
        q = p.pop("quant", None)
        if q is not None:
            q = dict(_obj(q, f"population {p.get('name')!r}: quant"))
            if q.get("__type__") != "NeuronQuant":
                raise Corrupt(f"population {p.get('name')!r}: quant is not a NeuronQuant")
            neurons[p["name"]] = {**q, "__type__": "NeuronFixed"}
    synapses: dict[str, Any] = {}
    projs = []
    for i, pr in enumerate(header["projections"]):
        pr = dict(_obj(pr, f"projections[{i}]"))
        q, e = pr.pop("qweight", None), pr.pop("weight_exp", 0)
        if q is not None:
            synapses[pr.get("name")] = {"__type__": "SynapseFixed", "weight": q, "exp": e}
        src, tgt = order.get(pr.get("source")), order.get(pr.get("target"))
        pr["recurrent"] = src is not None and tgt is not None and src >= tgt
        projs.append(pr)
    if bool(neurons) != bool(synapses) and projs:
        raise Corrupt("quantised fields are present on only part of the network (qweight / quant)")
    fixed = None
    if neurons or synapses:
        quant = _obj(meta.pop("quantization", {}), "meta.quantization")
        fixed = {"__type__": "FixedPoint", "neurons": neurons, "synapses": synapses,
                 "format": quant.get("format", {}), "v_units_per_float": quant.get("v_units_per_float", {})}
    conversion = None
    if "threshold_method" in meta:
        conversion = {"__type__": "ConversionRecord", "threshold_method": meta.pop("threshold_method"),
                      "threshold_scale": meta.pop("threshold_scale", 1.0), "activation_scales": meta.pop("activation_scales", {})}
    settings = {"__type__": "RunSettings", **{k: meta.pop(k) for k in _SETTINGS if k in meta}}
    meta.pop("mapping", None)  # version 1's placement predates the tiles, mesh and chips: the map pass makes a new one
    return {
        "format": header.get("format"), "version": 2, "inputs": [header["input"]], "outputs": [header["output"]],
        "settings": settings, "conversion": conversion, "fixed": fixed, "mapping": None,
        "populations": pops, "projections": projs,
    }
