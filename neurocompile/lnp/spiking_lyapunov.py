"""The largest Lyapunov exponent of the *spiking* network: finite-size perturbation growth on the LIF map.

:func:`.objective.largest_lyapunov_exponent` measures the noise-driven tanh *rate* network that
LNP linearises; this module measures the LIF network itself, with the equations of the float
model (``nn/layers.py``, ``sim/float_sim.py``; Lava's ``floating_pt`` LIF), per neuron and step:

    u ← (1 - current_decay) ⊙ u + W s_prev + ξ_t        (ξ_t: the frozen input-noise current)
    v ← (1 - leak) ⊙ v + u + bias
    s = v > threshold
    v ← v - s ⊙ threshold  (reset "subtract")   or   v ⊙ (1 - s)  (reset "zero")

**Why a finite-size exponent.** Between spikes this map is affine, and its Jacobian with respect to
(u, v) is block-triangular with diagonal (1 - current_decay, 1 - leak) -- W does not enter it,
because W only acts through the spikes, which are piecewise constant in the state. A spike flips
only when a perturbation of size δ moves a potential across threshold, which has probability
O(δ). So the classical (tangent-space, δ → 0) exponent of a discrete-time LIF network is, for
any W and any input, the closed form :func:`tangent_limit` = max_i ln max(1 - leak_i,
1 - current_decay_i) (exact for "subtract", an upper bound for "zero", whose reset also erases a
firing neuron's perturbation): every such network is "stably chaotic" (Jahnke, Memmesheimer &
Timme, PRL 2008), and the recurrence shows up only in what *finite* perturbations do --
flipped spikes that cascade through W (Monteforte & Wolf, PRX 2012: "flux tubes"). That is the
sensitivity that matters for a spiking reservoir, so we measure the finite-size Lyapunov
exponent (Aurell et al., J. Phys. A 1997) at a fixed perturbation size δ0, with Benettin's
renormalisation:

1. ``trials`` independent pairs (a reference trajectory and its perturbed copy) run side by side
   as the columns of one (n, 2 · trials) state -- one sparse product per step for all of them;
   both members of a pair are driven by the same frozen noise current ξ_t (iid Gaussian,
   ``noise_std`` × threshold per neuron and step, drawn from ``seed``; the pairs get different
   draws) and start from the reset state u = v = 0;
2. each copy's continuous state (membrane potentials and synaptic currents) is displaced along a
   random direction -- both, because u feeds v but not back (except through spikes), so a
   v-only displacement would never see a synaptic current that decays slower than the membrane
   -- so that the separation of the continuous state, d = ‖((u' - u) / θ, (v̂' - v̂) / θ)‖₂ / √n
   (the RMS over neurons, in threshold units; v̂ is the pre-reset potential, which with u fixes
   the next step's spikes), equals δ0 = ``perturbation``;
3. every ``renormalise_every`` = k steps d is measured, ln(d / δ0) is recorded and the copy is
   put back at distance δ0 from the reference along its current separation (Benettin), so the
   estimate is a growth rate at the scale δ0 -- never a distance that saturates at the size of
   the attractor;
4. the exponent is Σ ln(d / δ0) / (number of steps) over the post-``warmup`` intervals, per
   trial, and the mean over trials (``stderr`` their standard error). Independent noise per
   pair, not several copies of one reference: Benettin copies of one trajectory all align with
   the same leading direction, so their spread would not be an error estimate.

Reading it: without spike flips it equals the tangent exponent (< 0: the leak contracts);
flips that die out cost little; flips that cascade through the recurrence add ~ln(|w| / δ0)
per cascade and make it positive. It depends on δ0 (that is what "finite size" means):
``result.flips`` tells how many intervals saw any flip, so a value equal to the tangent limit
with ``flips`` ≈ 0 means δ0 was too small to probe the recurrence. Even uncoupled neurons sit
above the tangent limit at finite δ0: a spike delayed by one step leaves leak × threshold of
difference in v (measured: 50 uncoupled neurons, slowest leak 0.05, -0.032 at δ0 = 1e-2 against
ln 0.95 = -0.051 at δ0 = 1e-8). Measured on the 500-neuron HRSNN of ``bench/lnp.py`` (seed 0,
defaults otherwise; tangent limit -0.058): -0.056 at δ0 = 1e-4, -0.025 at 1e-3, +0.084 at 3e-3,
+0.29 at 1e-2 (92 % of the intervals with a flip), +0.25 at 3e-2 (saturating) -- the default 1e-2 sits where flips are
common but the separation is still far below the attractor's size.

Why not the divergence rate of spike trains (e.g. van Rossum distance): for sub-threshold
perturbations the spike trains are identical (distance 0, log undefined), after a flip the
distance saturates within a few steps, so a growth rate needs a fitting window; and it ignores
the continuous state's contraction, so it has no closed form even for W = 0. The renormalised
state distance has none of these problems and tends to the tangent exponent for small δ0.

Deterministic for a fixed seed: all random numbers are drawn from one generator in a fixed order,
and the only reduction over neurons is a single-threaded scipy.sparse product and numpy sums.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from neurocompile.errors import NeurocompileError

from .checks import Seed, check_positive, check_weights, rng_from

Reset = Literal["subtract", "zero"]


@dataclass(frozen=True, eq=False)
class LIFNeurons:
    """Per-neuron LIF parameters, as in the IR's spiking population (scalars are broadcast).

    ``leak`` / ``current_decay``: fraction of v / u lost per step, in [0, 1] (τ = 1 / leak steps; 0: no decay);
    ``threshold`` > 0; ``bias``: constant current added to v every step.
    """

    leak: float | np.ndarray
    current_decay: float | np.ndarray = 1.0
    threshold: float | np.ndarray = 1.0
    bias: float | np.ndarray = 0.0
    reset: Reset = "subtract"

    @classmethod
    def from_tau(cls, tau: object, *, current_decay: float | np.ndarray = 1.0, threshold: float | np.ndarray = 1.0,
                 bias: float | np.ndarray = 0.0, reset: Reset = "subtract") -> "LIFNeurons":
        """Neurons with membrane time constants ``tau`` (steps): leak = 1/τ clipped to (0, 1] (the IR's convention)."""
        t = np.asarray(tau, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise NeurocompileError("tau must be finite and > 0 (time constants in time steps)")
        return cls(leak=np.minimum(1.0 / t, 1.0), current_decay=current_decay, threshold=threshold, bias=bias,
                   reset=reset)

    def arrays(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(leak, current_decay, threshold, bias) as checked float64 vectors of length ``n``."""
        if self.reset not in ("subtract", "zero"):
            raise NeurocompileError(f"reset must be 'subtract' or 'zero', got {self.reset!r}")
        out = []
        for name, ok, bounds in (("leak", lambda x: (x >= 0) & (x <= 1), " in [0, 1]"),
                                 ("current_decay", lambda x: (x >= 0) & (x <= 1), " in [0, 1]"),
                                 ("threshold", lambda x: x > 0, " > 0"), ("bias", lambda x: x == x, "")):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            v = np.full(n, float(v)) if v.ndim == 0 else v.copy()
            if v.shape != (n,) or not np.all(np.isfinite(v)) or not np.all(ok(v)):
                raise NeurocompileError(f"{name} must be a finite scalar or {n} finite values{bounds}")
            out.append(v)
        return out[0], out[1], out[2], out[3]


@dataclass(frozen=True)
class SpikingLyapunovSettings:
    """How the perturbation-growth estimate is run (steps are the network's time steps)."""

    #: std of the frozen iid Gaussian input current into every neuron's u, in units of its threshold
    noise_std: float = 0.5
    #: δ0: a copy's separation from its reference after each renormalisation, as the RMS over the
    #: neurons of sqrt(Δu² + Δv²) / threshold (so δ0 = 0.01: membrane potentials ~1 % of threshold apart)
    perturbation: float = 1e-2
    #: k: steps between renormalisations (≥ 1)
    renormalise_every: int = 10
    #: independent (noise realisation, initial direction) pairs, run at once as columns of one state
    trials: int = 8
    #: steps discarded before the growth is recorded (transient from the reset state, direction alignment)
    warmup: int = 200
    #: steps over which the growth is recorded (rounded down to whole intervals of k)
    steps: int = 2000


@dataclass(frozen=True)
class SpikingLyapunov:
    """The estimate and what it rests on."""

    #: largest Lyapunov exponent per time step at scale δ0: mean of ``per_trial``
    exponent: float
    #: one estimate per trial (independent noise realisation and initial direction)
    per_trial: np.ndarray
    #: standard error of ``exponent`` over the trials (nan for one trial)
    stderr: float
    #: the δ0 → 0 (tangent-space) exponent, closed form: :func:`tangent_limit`
    tangent_limit: float
    #: fraction of (trial, interval) pairs in which any spike of the copy differed from its reference
    flips: float
    #: mean spikes per neuron per step of the reference trajectory (after warmup)
    rate: float


def tangent_limit(neurons: LIFNeurons, n: int) -> float:
    """max_i ln max(1 - leak_i, 1 - current_decay_i): the exponent for δ0 → 0, whatever W and the input.

    Exact for reset "subtract" (the reset shifts v by a constant, so it does not change the
    Jacobian); for "zero" an upper bound (a firing neuron's perturbation is erased). -inf when
    every neuron forgets its whole state every step.
    """
    leak, cd, _, _ = neurons.arrays(n)
    keep = np.maximum(1.0 - leak, 1.0 - cd)
    with np.errstate(divide="ignore"):
        return float(np.log(np.max(keep)))


def spiking_lyapunov(W: object, neurons: LIFNeurons | np.ndarray, *,
                     settings: SpikingLyapunovSettings = SpikingLyapunovSettings(), seed: Seed = 0) -> SpikingLyapunov:
    """Largest Lyapunov exponent (per step) of the noise-driven LIF network, by renormalised perturbation growth.

    ``W`` (n, n), row = target, dense or scipy.sparse; ``neurons``: :class:`LIFNeurons`, or the
    membrane time constants τ (steps) for :meth:`LIFNeurons.from_tau` with its defaults
    (current_decay 1, threshold 1, bias 0, subtract reset). The method is the module docstring's.
    """
    M = check_weights(W)
    n = M.shape[0]
    cells = neurons if isinstance(neurons, LIFNeurons) else LIFNeurons.from_tau(neurons)
    leak, cd, theta, bias = cells.arrays(n)
    s = settings
    delta0 = check_positive(s.perturbation, "perturbation")
    noise = float(s.noise_std)
    k, trials, warmup, steps = int(s.renormalise_every), int(s.trials), int(s.warmup), int(s.steps)
    if k < 1 or trials < 1 or warmup < 0 or steps < k or not np.isfinite(noise) or noise < 0:
        raise NeurocompileError("spiking Lyapunov settings need renormalise_every ≥ 1, trials ≥ 1, warmup ≥ 0, "
                                "steps ≥ renormalise_every and noise_std ≥ 0")
    rng = rng_from(seed)
    keep_u, keep_v = (1.0 - cd)[:, None], (1.0 - leak)[:, None]
    th, b = theta[:, None], bias[:, None]
    subtract = cells.reset == "subtract"
    scale_n = np.sqrt(n)

    # columns 0..B-1: the reference trajectories, B..2B-1: their perturbed copies; v is the pre-reset v̂
    u = np.zeros((n, 2 * trials))
    v = np.zeros((n, 2 * trials))
    ref, cop = slice(0, trials), slice(trials, 2 * trials)
    direction = rng.standard_normal((2, n, trials))
    direction *= delta0 * scale_n / np.sqrt(np.sum(direction**2, axis=(0, 1)))
    u[:, cop] += th * direction[0]
    v[:, cop] += th * direction[1]
    intervals = steps // k
    log_growth = np.zeros(trials)
    flipped = np.zeros(trials, dtype=bool)
    flip_count = 0
    spikes = 0
    for t in range(warmup + intervals * k):
        fired = v > th
        flipped |= np.any(fired[:, ref] != fired[:, cop], axis=0)
        if t >= warmup:
            spikes += int(np.count_nonzero(fired[:, ref]))
        v = v - th * fired if subtract else np.where(fired, 0.0, v)
        xi = noise * th * rng.standard_normal((n, trials))  # frozen: the same current into a pair's two columns
        u = keep_u * u + M @ fired.astype(np.float64)
        u[:, ref] += xi
        u[:, cop] += xi
        v = keep_v * v + u + b
        if (t + 1) % k == 0:
            du = (u[:, cop] - u[:, ref]) / th
            dv = (v[:, cop] - v[:, ref]) / th
            d = np.sqrt(np.sum(du * du, axis=0) + np.sum(dv * dv, axis=0)) / scale_n
            if t >= warmup:
                with np.errstate(divide="ignore"):
                    log_growth += np.log(d / delta0)
                flip_count += int(np.count_nonzero(flipped))
            flipped[:] = False
            shrink = np.divide(delta0, d, out=np.zeros_like(d), where=d > 0)
            u[:, cop] = u[:, ref] + du * th * shrink
            v[:, cop] = v[:, ref] + dv * th * shrink
    per_trial = log_growth / (intervals * k)
    finite = bool(np.all(np.isfinite(per_trial)))
    exponent = float(np.mean(per_trial)) if finite else float("-inf")
    stderr = float(np.std(per_trial, ddof=1) / np.sqrt(trials)) if finite and trials > 1 else float("nan")
    return SpikingLyapunov(exponent=exponent, per_trial=per_trial, stderr=stderr, tangent_limit=tangent_limit(cells, n),
                           flips=flip_count / (trials * intervals), rate=spikes / (n * trials * intervals * k))


def largest_spiking_lyapunov_exponent(W: object, neurons: LIFNeurons | np.ndarray, *,
                                      settings: SpikingLyapunovSettings = SpikingLyapunovSettings(),
                                      seed: Seed = 0) -> float:
    """Just the exponent of :func:`spiking_lyapunov` (per time step, at scale ``settings.perturbation``)."""
    return spiking_lyapunov(W, neurons, settings=settings, seed=seed).exponent
