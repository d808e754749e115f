"""Recurrent spiking networks (``neurocompile.nn``'s HRSNN / CHRSNN files) → the IR.

The models already run the chip's schedule (``neurocompile/nn/layers.py``),
so ingesting is a copy: populations with their per-neuron thresholds, leaks,
synaptic decays and biases, the input and readout projections dense, the
recurrent one sparse and flagged ``recurrent``. The file is read by
``neurocompile.nn.load_rsnn`` (a zip of JSON and ``.npy``, never a pickle).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import NeurocompileError
from ..ir import MAX_TIMESTEPS, Network, Population, Projection, RunSettings
from ..nn import RecurrentSNN, load_rsnn
from ..nn.arrays import RSNNArrays

SOURCE_FORMAT = "neurocompile-rsnn"


def network_from_arrays(arrays: RSNNArrays, *, timesteps: int, encoding: str = "direct", seed: int = 0) -> Network:
    """The IR of a recurrent model's arrays; ``timesteps``: input frames per sample (the sequence length)."""
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or not 1 <= timesteps <= MAX_TIMESTEPS:
        raise NeurocompileError(f"timesteps must be a whole number from 1 to {MAX_TIMESTEPS}, got {timesteps!r}")
    pops = tuple(
        Population(p.name, (p.size,), p.kind) if p.kind == "input" else
        Population(p.name, (p.size,), p.kind, threshold=p.threshold, bias=p.bias, leak=p.leak,
                   current_decay=p.current_decay, reset=p.reset)
        for p in arrays.populations
    )
    projs = tuple(Projection(p.name, p.source, p.target, p.kind, p.weight, recurrent=p.recurrent) for p in arrays.projections)
    net = Network(pops, projs, inputs=(arrays.input,), outputs=(arrays.output,),
                  settings=RunSettings(timesteps=timesteps, encoding=encoding, seed=seed, source_format=SOURCE_FORMAT))
    net.validate()
    return net


def ingest_model(model: RecurrentSNN, *, timesteps: int, seed: int = 0) -> Network:
    return network_from_arrays(model.to_arrays(), timesteps=timesteps, seed=seed)


def ingest_rsnn(path: str | Path, *, timesteps: int, seed: int = 0) -> tuple[RecurrentSNN, Network]:
    """The model in the file (for training it after pruning) and its IR."""
    model = load_rsnn(Path(path))
    return model, ingest_model(model, timesteps=timesteps, seed=seed)
