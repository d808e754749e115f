"""Loihi 2 as Lava's fixed-point models compute it: every target-specific width and rule, in one module.

Why one module: the quantiser (``passes/quantize.py``), the bit-exact
reference (``sim/fixed_point.py``) and the Lava backend's validation and
Loihi 2 report (``neurocompile_lava.plan`` / ``.describe``) must agree on
every width and rule, or the reference would no longer equal Lava. They all
read them from here, and the widths here come from the hardware profile
(``hardware_profiles/loihi2.toml`` ``[formats]``), the one place they are
written.

The rules reproduce lava-nc 0.10.0 (each names the Lava code it follows):

* weights (``utils/weightutils.py``): the sign mode is inferred from the
  values (``determine_sign_mode``); weights are clipped to ``weight_bits``
  (mixed ``[-2^b, 2^b - 1]``, excitatory ``[0, 2^b - 1]``, inhibitory
  ``[-(2^b - 1), 0]``) and truncated by one extra bit when the signs are
  mixed, so mixed-sign mantissas are even (3 → 2, -3 → -4);
* neurons (``lif/models.py`` ``AbstractPyLifModelFixed``): synaptic input and
  threshold are shifted left by ``threshold_shift`` (``act_shift`` =
  ``vth_shift`` = 6), decays are ``decay_bits``-bit fractions of
  ``2^decay_bits``, ``u`` and ``v`` are ``state_bits``-bit; the declared
  precisions (``PyLifModelBitAcc``) bound ``vth``, ``du`` and ``dv``, and
  Lava silently misbehaves outside them (``vth << 6`` past int32);
* the float equivalent of a fixed-point LIF (Lava's ``floating_pt`` models):
  ``u`` and ``v`` scaled by ``2^-threshold_shift``, so ``vth`` keeps its value,
  the bias is ``bias_mant · 2^bias_exp / 2^threshold_shift``, ``du → (du + 1) /
  2^decay_bits`` and ``dv → dv / 2^decay_bits``.

Widths the profiles do not state yet (the bias exponent's bits, the weight
exponent's range) keep Lava's LIF/Dense values below, next to the fields.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import scipy.sparse as sp

from .errors import NeurocompileError
from .profiles import Profile, load_profile

SignMode = Literal["excitatory", "inhibitory", "mixed"]
PROFILE_NAME = "loihi2"

# hardware_profiles/*.toml [formats] names → FixedPointFormat fields
_PROFILE_KEYS = {
    "v_bits": "state_bits",
    "threshold_mantissa_bits": "vth_bits",
    "bias_mantissa_bits": "bias_mant_bits",
    "bias_exponent_bits": "bias_exp_bits",
}


def _value(raw: Any) -> Any:
    """A [formats] entry's value, whether a parsed Quantity, a TOML table or a bare number."""
    return raw["value"] if isinstance(raw, dict) else getattr(raw, "value", raw)


@dataclass(frozen=True, kw_only=True)
class FixedPointFormat:
    """Bit widths of the target's neuron and synapse state, read from its hardware profile.

    Field order and names are what ``net.fixed.format`` records.
    """

    weight_bits: int
    weight_exp_min: int = -8  # Lava Dense weight_exp; not in the profiles
    weight_exp_max: int = 7
    vth_bits: int
    bias_mant_bits: int
    bias_exp_bits: int = 3  # Lava LIF bias_exp: 3-bit; not in the profiles
    state_bits: int
    decay_bits: int
    headroom: float = 0.9  # a compiler policy, not a width: the fraction of the state range the worst case may use

    @classmethod
    def from_profile(cls, profile: Any, base: "FixedPointFormat | None" = None) -> "FixedPointFormat":
        """The profile's ``formats`` table; keys it lacks keep ``base``'s (default: Loihi 2's, see :data:`LOIHI2`)."""
        base = LOIHI2.format if base is None else base
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in (getattr(profile, "formats", None) or {}).items():
            key = _PROFILE_KEYS.get(key, key)
            if key in known:
                v = _value(raw)
                values[key] = float(v) if key == "headroom" else int(v)
        return dataclasses.replace(base, **values)

    # -- weight mantissas ------------------------------------------------------
    def weight_top(self, mixed: bool) -> int:
        """Largest mantissa magnitude the quantiser uses: ``2^b - 1``, or ``2^b - 2`` (even) for mixed signs."""
        return (1 << self.weight_bits) - 2 if mixed else (1 << self.weight_bits) - 1

    @staticmethod
    def mantissa_step(mixed: bool) -> int:
        """Mixed-sign mantissas must be even (Lava truncates one more bit for them), others any integer."""
        return 2 if mixed else 1


@dataclass(frozen=True)
class LavaTarget:
    """Lava's fixed-point LIF / Dense / Sparse models on Loihi 2, their widths from one profile."""

    format: FixedPointFormat
    threshold_shift: int  # act_shift = vth_shift
    message_bits: int  # graded spike payload

    @classmethod
    def from_profile(cls, profile: Profile) -> "LavaTarget":
        f = profile.formats
        missing = [k for k in ("weight_bits", "vth_bits", "bias_mant_bits", "state_bits", "decay_bits", "threshold_shift", "graded_spike_payload_bits") if k not in f]
        if missing:
            raise NeurocompileError(f"hardware profile {profile.name!r} lacks formats.{', formats.'.join(missing)}, which Lava's fixed-point models need")
        fmt = FixedPointFormat(**{k: int(_value(f[k])) for k in ("weight_bits", "vth_bits", "bias_mant_bits", "state_bits", "decay_bits")})
        return cls(fmt, int(_value(f["threshold_shift"])), int(_value(f["graded_spike_payload_bits"])))

    # -- derived widths ------------------------------------------------------------
    @property
    def decay_shift(self) -> int:
        return self.format.decay_bits

    @property
    def decay_unity(self) -> int:
        return 1 << self.format.decay_bits

    @property
    def uv_max(self) -> int:
        """``max_uv_val = 2 ** (uv_bitwidth - 1)``: u wraps beyond, v saturates at ±(uv_max - 1)."""
        return 1 << (self.format.state_bits - 1)

    @property
    def clip_range(self) -> Mapping[SignMode, tuple[int, int]]:
        """``weightutils.clip_weights(num_bits=weight_bits)`` per sign mode."""
        top = 1 << self.format.weight_bits
        return {"mixed": (-top, top - 1), "excitatory": (0, top - 1), "inhibitory": (-(top - 1), 0)}

    @property
    def param_ranges(self) -> Mapping[str, tuple[int, int]]:
        """Declared precisions of the LIF Vars (``vth``; 12-bit ``du``, ``dv``)."""
        decay_max = (1 << self.format.decay_bits) - 1
        return {"vth": (0, (1 << self.format.vth_bits) - 1), "du": (0, decay_max), "dv": (0, decay_max)}

    @property
    def bias_mant_range(self) -> tuple[int, int]:
        half = 1 << (self.format.bias_mant_bits - 1)
        return (-half, half - 1)

    @property
    def bias_exp_range(self) -> tuple[int, int]:
        return (0, (1 << self.format.bias_exp_bits) - 1)

    @property
    def weight_exp_range(self) -> tuple[int, int]:
        return (self.format.weight_exp_min, self.format.weight_exp_max)

    @property
    def message_max(self) -> int:
        """Largest graded payload magnitude: ``signed_clamp(x, bits=message_bits)`` wraps beyond."""
        return (1 << (self.message_bits - 1)) - 1

    # -- weights ------------------------------------------------------------------
    @staticmethod
    def sign_mode(values: np.ndarray) -> SignMode:
        """``determine_sign_mode``: min ≥ 0 → excitatory, max ≤ 0 → inhibitory, else mixed."""
        if values.size == 0 or values.min() >= 0:
            return "excitatory"
        if values.max() <= 0:
            return "inhibitory"
        return "mixed"

    def lava_weights(self, w: Any, num_weight_bits: int | None = None, mode: SignMode | None = None) -> Any:
        """The weights Lava's fixed-point Dense/Sparse actually use (first run_spk).

        Sign mode inferred over ``w``'s values unless ``mode`` says what Lava
        inferred over the synapses; clipped to :attr:`clip_range`; then
        ``truncate_weights`` drops ``weight_bits - num_weight_bits + is_mixed``
        low bits by ``(w >> k) << k`` (floor; inhibitory on -w).
        """
        bits = self.format.weight_bits if num_weight_bits is None else num_weight_bits
        is_sparse = sp.issparse(w)
        data = (sp.csr_matrix(w).data if is_sparse else np.asarray(w)).astype(np.int64)
        if data.size == 0:
            return w
        mode = mode or self.sign_mode(data)
        k = self.format.weight_bits - bits + int(mode == "mixed")
        x = np.clip(data, *self.clip_range[mode])
        x = -((-x >> k) << k) if mode == "inhibitory" else (x >> k) << k
        if is_sparse:
            m = sp.csr_matrix(w, dtype=np.int64, copy=True)
            m.data = x
            m.eliminate_zeros()
            return m
        return x

    def synapse_weights(self, proj: Any, weight: Any, matrix: sp.spmatrix | None = None) -> Any:
        """The weights Lava uses for an IR projection whose integer mantissas are ``weight``, in the projection's own layout.

        Lava infers the sign mode over the synapses that exist. For a conv
        projection those are the unrolled matrix's entries (``Projection.matrix``):
        kernel taps that only ever meet padding are no synapses (Lava's Sparse never
        sees them; a Conv multiplies them by zero), so the kernel is truncated in
        the matrix's sign mode, which can differ from the kernel's own. ``matrix``:
        that unrolled matrix where the caller has it already.
        """
        if proj.kind != "conv":
            return self.lava_weights(weight)
        synapses = np.asarray((proj.matrix(weight) if matrix is None else matrix).data, dtype=np.int64)
        return self.lava_weights(np.asarray(weight, dtype=np.int64), mode=self.sign_mode(synapses))

    # -- neurons ------------------------------------------------------------------
    def check_neuron_params(self, name: str, q: Any, size: int) -> None:
        """Refuse what Lava would misread: parameters outside their precisions, a bias per neuron that is not one per neuron."""
        biases = np.size(q.bias_mant)
        if biases not in (1, size):  # one value is Lava's broadcast scalar
            raise NeurocompileError(f"population {name!r}: bias_mant has {biases} values for {size} neurons (give one, or one per neuron)")
        for key, (lo, hi) in self.param_ranges.items():
            values = np.asarray(getattr(q, key))  # one value, or one per neuron
            if values.size and not (lo <= values.min() and values.max() <= hi):
                value = int(values.min() if values.min() < lo else values.max())
                raise NeurocompileError(f"population {name!r}: {key} = {value} is outside Lava's fixed-point range [{lo}, {hi}]")

    def float_equivalents(self, vth: Any, bias_mant: np.ndarray, bias_exp: int, du: Any, dv: Any) -> dict:
        """The float LIF (Lava's ``floating_pt`` units, see the module docstring) that computes what the fixed one does."""
        return {
            "vth": float(vth) if np.ndim(vth) == 0 else np.asarray(vth, dtype=np.float64),  # one, or one per neuron
            "bias": np.asarray(bias_mant, dtype=np.float64) * 2.0**bias_exp / (1 << self.threshold_shift),
            "du": (np.asarray(du) + 1) / self.decay_unity if np.ndim(du) else (du + 1) / self.decay_unity,
            "dv": np.asarray(dv) / self.decay_unity if np.ndim(dv) else dv / self.decay_unity,
        }


def _shipped_profile(name: str) -> Profile:
    """The profile shipped with neurocompile, not a ``$NEUROCOMPILE_PROFILES`` override.

    Lava's models do not change with the user's profile folder, so the rules
    that reproduce them are read from the copy that documents them (the source
    tree's ``hardware_profiles/`` or the one an install puts under sys.prefix).
    """
    for d in (Path(__file__).resolve().parent.parent / "hardware_profiles", Path(sys.prefix) / "share" / "neurocompile" / "hardware_profiles"):
        if (d / f"{name}.toml").is_file():
            return load_profile(d / f"{name}.toml")
    raise NeurocompileError(f"the shipped hardware profile {name}.toml is missing: reinstall neurocompile")


LOIHI2: LavaTarget = LavaTarget.from_profile(_shipped_profile(PROFILE_NAME))
