"""The network IR every pass reads and writes: an explicit graph of neuron populations and projections.

Shaped after NIR (``nir/ir/*.py``): small frozen dataclasses whose fields are
exactly the parameters of the neuron and synapse equations (:mod:`.graph`),
the fixed-point layer the quantize pass adds (:mod:`.fixed`), the typed run
settings and records of the passes (:mod:`.records`), and a versioned,
pickle-free file format (:mod:`.serialize`, with :mod:`.migrate` reading
version-1 artifacts). See :mod:`.graph` for the execution semantics every
simulator and backend shares.
"""
from .fixed import FixedPoint, NeuronFixed, SynapseFixed
from .graph import (
    ConvSpec,
    Network,
    PerNeuron,
    Population,
    PopulationKind,
    Projection,
    ProjectionKind,
    per_neuron,
)
from .limits import MAX_SEED, MAX_TIMESTEPS
from .records import ConversionRecord, PruningRecord, RunSettings
from .serialize import IR_VERSION, load, save

__all__ = [
    "ConvSpec", "ConversionRecord", "FixedPoint", "IR_VERSION", "MAX_SEED", "MAX_TIMESTEPS", "Network", "NeuronFixed",
    "PerNeuron", "Population", "PopulationKind", "Projection", "ProjectionKind", "PruningRecord", "RunSettings", "SynapseFixed",
    "load", "per_neuron", "save",
]
