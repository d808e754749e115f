"""HRSNN and CHRSNN (Chakraborty et al., ICLR 2024): heterogeneous recurrent spiking networks.

``input → recurrent LIF population → leaky readout``, run in the chip's schedule
(``nn/layers.py``). A sample of ``T`` input frames (B, T, n_in), batch-major, is
one period of ``P = T + depth`` steps (``depth = 2``: input → hidden → readout);
the input emits frame ``t`` at step ``t`` and zeros on the last ``depth`` steps,
which only carry the last frame's effect through to the readout. The readout's
``v`` is read at the last step (classification) or at every step (streaming
prediction: ``readouts[:, t + depth]`` has seen frames ``0..t``).

All random draws come from ``numpy.random.SeedSequence(seed)``'s children, one
stream per purpose, so a model is a pure function of its config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from ..errors import NeurocompileError
from ..sim.float_sim import SpikeFunction
from .arrays import LNPArrays, PopulationArrays, ProjectionArrays, RSNNArrays
from .config import CHRSNNConfig, HRSNNConfig, RSNNConfig
from .connectivity import cluster_labels, clustered_small_world_mask, random_mask
from .layers import LeakyReadout, RecurrentLIF
from .timescales import GammaTau, fraction_per_step

DEPTH = 2
_STREAMS = ("tau_m", "tau_syn", "mask", "input", "recurrent", "readout", "bias")
_TINY = float(np.finfo(np.float32).tiny)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(_STREAMS, children)}


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy().copy()


@dataclass
class RSNNOutput:
    """One period's results. ``readout`` (B, n_out): readout ``v`` at the last step (differentiable).

    ``readouts`` (B, P, n_out): ``v`` after every step; ``spikes`` (B, P, n_hidden): hidden
    spikes per step; ``v`` (B, P, n_hidden): hidden potentials, only when recorded.
    """

    readout: torch.Tensor
    readouts: torch.Tensor
    spikes: torch.Tensor
    v: torch.Tensor | None = None


class RecurrentSNN(nn.Module):
    """The common model; build one with :class:`HRSNN` or :class:`CHRSNN`.

    ``hidden`` (:class:`RecurrentLIF`) and ``readout`` (:class:`LeakyReadout`) hold every
    parameter; ``hidden.recurrent_weight`` is masked by ``hidden.recurrent_mask``.
    """

    depth = DEPTH

    def __init__(self, config: RSNNConfig, tau_m: np.ndarray, mask: np.ndarray, streams: dict[str, np.random.Generator],
                 spike_fn: SpikeFunction | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.config = config
        n, c = len(tau_m), config
        tau_syn = GammaTau(c.tau_syn_mean, c.tau_syn_shape).sample(n, streams["tau_syn"])
        w_in = streams["input"].normal(0.0, c.input_gain / np.sqrt(c.n_in), (n, c.n_in))
        in_degree = max(mask.sum() / n, 1.0)
        w_rec = streams["recurrent"].normal(0.0, c.recurrent_gain / np.sqrt(in_degree), (n, n)) * mask
        w_out = streams["readout"].normal(0.0, 1.0 / np.sqrt(n), (c.n_out, n))
        bias = streams["bias"].normal(0.0, c.bias_std, n) if c.bias_std > 0 else np.zeros(n)
        self.hidden = RecurrentLIF(w_in, w_rec, mask, np.full(n, c.threshold), fraction_per_step(tau_m),
                                   fraction_per_step(tau_syn), bias, c.reset, spike_fn, dtype)  # type: ignore[arg-type]
        self.readout = LeakyReadout(w_out, np.full(c.n_out, c.readout_leak), np.zeros(c.n_out), dtype)

    # -- running ---------------------------------------------------------------
    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_in) samples → (B, T + depth, n_in) frames the input population emits (zeros at the end)."""
        return torch.nn.functional.pad(x, (0, 0, 0, self.depth))

    def forward(self, x: torch.Tensor, record: bool = False) -> RSNNOutput:
        """Run one period per sample of ``x`` (B, T, n_in), batch-major; ``record`` also keeps hidden ``v``."""
        run = self.hidden(self.frames(x), record_v=record)
        readouts = self.readout(run.spikes)
        return RSNNOutput(readout=readouts[:, -1], readouts=readouts, spikes=run.spikes, v=run.v)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores of ``x`` (B, T, n_in): the IR decoder ``(v + T · bias) / T`` on the last step's readout."""
        return self.readout.decode(self(x).readout, x.shape[1])

    # -- structure ---------------------------------------------------------------
    @property
    def n_hidden(self) -> int:
        return self.hidden.size

    def set_recurrent_mask(self, mask: np.ndarray) -> None:
        """Keep only the recurrent synapses where ``mask`` (n, n, row = target) is true (pruning)."""
        self.hidden.set_recurrent_mask(mask)

    def pruned(self, kept: np.ndarray, recurrent: sp.spmatrix | np.ndarray) -> "RecurrentSNN":
        """A new model of the hidden neurons ``kept`` (increasing indices), with recurrent weights ``recurrent``.

        ``recurrent`` (m, m), row = target, over the kept neurons in order: a sparse
        matrix's stored entries are the synapses (a stored zero stays a synapse), a
        dense array's non-zeros. Input and readout weights and neuron parameters are
        those of the kept neurons. This is how a pruning result is applied, e.g. LNP's
        ``model.pruned(result.kept, result.weights)``; the new config's sizes count the
        kept neurons (loading rebuilds the shapes from them, then reads every array).
        """
        n = self.n_hidden
        kept = np.asarray(kept)
        if kept.ndim != 1 or kept.dtype.kind not in "iu" or len(kept) == 0 or np.any(np.diff(kept) <= 0) \
                or kept[0] < 0 or kept[-1] >= n:
            raise NeurocompileError(f"kept neurons must be increasing indices in [0, {n}), at least one")
        m = len(kept)
        # sparse: its stored entries (zeros included); dense: csr_matrix keeps the non-zeros
        rec = sp.coo_matrix(recurrent if sp.issparse(recurrent) else np.asarray(recurrent, dtype=np.float64))
        if rec.shape != (m, m):
            raise NeurocompileError(f"recurrent weights have shape {rec.shape}, expected {(m, m)} for {m} kept neurons")
        mask = np.zeros((m, m), dtype=bool)
        mask[rec.row, rec.col] = True
        if not np.all(np.isfinite(rec.data)):
            raise NeurocompileError("recurrent weights hold NaN or infinite values")
        dtype = self.hidden.threshold.dtype
        new = type(self).from_config(self._resized_config(kept), spike_fn=self.hidden.spike_fn, dtype=dtype)
        idx = torch.as_tensor(kept)
        state = {}
        for key, value in self.state_dict().items():
            if key in ("hidden.recurrent_weight", "hidden.recurrent_mask"):
                continue
            if key == "readout.weight":
                state[key] = value[:, idx].clone()
            elif key.startswith("hidden."):
                state[key] = value[idx].clone()
            else:
                state[key] = value.clone()
        state["hidden.recurrent_weight"] = torch.as_tensor(rec.toarray()).to(dtype)
        state["hidden.recurrent_mask"] = torch.as_tensor(mask)
        new.load_state_dict(state)
        return new

    def _resized_config(self, kept: np.ndarray) -> RSNNConfig:
        raise NotImplementedError

    @torch.no_grad()
    def clamp_to_chip_ranges_(self) -> None:
        """After an optimiser step: fractions back into (0, 1] ([0, 1] for the readout leak), thresholds positive."""
        h = self.hidden
        h.leak.clamp_(_TINY, 1.0)
        h.current_decay.clamp_(_TINY, 1.0)
        h.threshold.clamp_(min=_TINY)
        self.readout.leak.clamp_(0.0, 1.0)
        h.recurrent_weight.mul_(h.recurrent_mask)

    # -- numpy views ---------------------------------------------------------------
    def tau(self) -> np.ndarray:
        """Effective membrane time constants ``1 / leak`` (n_hidden,), in steps."""
        return 1.0 / _to_numpy(self.hidden.leak)

    def lnp_arrays(self) -> LNPArrays:
        """The recurrent core for Lyapunov noise pruning (float64, row = target)."""
        h = self.hidden
        return LNPArrays(tau=self.tau(), W=_to_numpy(h.effective_recurrent_weight()), mask=h.recurrent_mask.cpu().numpy().copy(),
                         W_in=_to_numpy(h.input_weight), W_out=_to_numpy(self.readout.weight))

    def to_arrays(self) -> RSNNArrays:
        """Populations and projections as a front end ingests them into the IR (float64 copies)."""
        h, r = self.hidden, self.readout
        mask = h.recurrent_mask.cpu().numpy()
        rows, cols = np.nonzero(mask)  # the mask is the structure: a kept synapse stays even at weight 0
        w_rec = sp.csr_matrix((_to_numpy(h.recurrent_weight)[rows, cols], (rows, cols)), shape=mask.shape)
        pops = (
            PopulationArrays("input", "input", self.config.n_in),
            PopulationArrays("hidden", "spiking", h.size, _to_numpy(h.threshold), _to_numpy(h.leak),
                             _to_numpy(h.current_decay), _to_numpy(h.bias), h.reset_mode),
            PopulationArrays("readout", "readout", r.weight.shape[0], np.full(r.weight.shape[0], self.config.threshold),
                             _to_numpy(r.leak), np.ones(r.weight.shape[0]), _to_numpy(r.bias)),
        )
        projs = (
            ProjectionArrays("input_to_hidden", "input", "hidden", "dense", _to_numpy(h.input_weight)),
            ProjectionArrays("hidden_to_hidden", "hidden", "hidden", "sparse", w_rec, recurrent=True),
            ProjectionArrays("hidden_to_readout", "hidden", "readout", "dense", _to_numpy(r.weight)),
        )
        return RSNNArrays(pops, projs, input="input", output="readout", depth=self.depth)

    @classmethod
    def from_config(cls, config: RSNNConfig, *, spike_fn: SpikeFunction | None = None,
                    dtype: torch.dtype = torch.float32) -> "RecurrentSNN":
        """The model a config describes, in its initial (seeded) state."""
        kind = _KINDS[type(config)]
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        return kind(**fields, spike_fn=spike_fn, dtype=dtype)


class HRSNN(RecurrentSNN):
    """Heterogeneous recurrent SNN: membrane τ per neuron ~ gamma(``tau_shape``, mean ``tau_mean``) steps.

    Recurrence: each ordered pair connected with probability ``recurrent_density``
    (a fixed mask). Other settings: :class:`~neurocompile.nn.config.HRSNNConfig`.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, tau_shape: float | None, tau_mean: float, *,
                 recurrent_density: float = 0.1, seed: int = 0, spike_fn: SpikeFunction | None = None,
                 dtype: torch.dtype = torch.float32, **settings: Any) -> None:
        config = HRSNNConfig(n_in=n_in, n_hidden=n_hidden, n_out=n_out, tau_shape=tau_shape, tau_mean=tau_mean,
                             recurrent_density=recurrent_density, seed=seed, **settings)
        streams = _streams(seed)
        tau_m = GammaTau(tau_mean, tau_shape).sample(n_hidden, streams["tau_m"])
        mask = random_mask(n_hidden, recurrent_density, streams["mask"])
        super().__init__(config, tau_m, mask, streams, spike_fn, dtype)

    def _resized_config(self, kept: np.ndarray) -> RSNNConfig:
        return dataclasses.replace(self.config, n_hidden=len(kept))


class CHRSNN(RecurrentSNN):
    """Clustered HRSNN: cluster ``i`` has ``cluster_sizes[i]`` neurons with τ ~ gamma(``tau_shapes[i]``, ``tau_means[i]``).

    Neurons are numbered cluster after cluster (:meth:`clusters`). Connectivity:
    :func:`~neurocompile.nn.connectivity.clustered_small_world_mask`; other settings:
    :class:`~neurocompile.nn.config.CHRSNNConfig`.
    """

    def __init__(self, n_in: int, cluster_sizes: tuple[int, ...], n_out: int, tau_shapes: tuple[float | None, ...],
                 tau_means: tuple[float, ...], *, intra_density: float = 0.3, ring_degree: int = 4, rewire: float = 0.1,
                 seed: int = 0, spike_fn: SpikeFunction | None = None, dtype: torch.dtype = torch.float32,
                 **settings: Any) -> None:
        config = CHRSNNConfig(n_in=n_in, cluster_sizes=tuple(cluster_sizes), n_out=n_out, tau_shapes=tuple(tau_shapes),
                              tau_means=tuple(tau_means), intra_density=intra_density, ring_degree=ring_degree,
                              rewire=rewire, seed=seed, **settings)
        streams = _streams(seed)
        tau_m = np.concatenate([GammaTau(mean, shape).sample(size, streams["tau_m"])
                                for size, shape, mean in zip(config.cluster_sizes, config.tau_shapes, config.tau_means)])
        mask = clustered_small_world_mask(config.cluster_sizes, intra_density, ring_degree, rewire, streams["mask"])
        super().__init__(config, tau_m, mask, streams, spike_fn, dtype)

    def _resized_config(self, kept: np.ndarray) -> RSNNConfig:
        counts = np.bincount(self.clusters()[kept], minlength=len(self.config.cluster_sizes))
        return dataclasses.replace(self.config, cluster_sizes=tuple(int(c) for c in counts),
                                   ring_degree=min(self.config.ring_degree, len(kept) - 1))

    def clusters(self) -> np.ndarray:
        """Cluster index of each hidden neuron (n_hidden,)."""
        return cluster_labels(self.config.cluster_sizes)


_KINDS: dict[type, type[RecurrentSNN]] = {HRSNNConfig: HRSNN, CHRSNNConfig: CHRSNN}
