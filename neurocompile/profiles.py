"""Hardware profiles: the chip limits and per-operation costs, read from TOML.

A profile is data (``hardware_profiles/*.toml``), never code: every number a
pass or the energy model uses comes from here, and every number carries its
unit, its source and a label saying how much to trust it. Keeping that
provenance attached to the value (a :class:`Quantity`) is what lets the report
say, next to each joule, whether it rests on silicon measurements or on our own
estimate.

Where the files are found: ``$NEUROCOMPILE_PROFILES`` if set, else the
``hardware_profiles/`` folder at the root of the source tree this package lives
in (a checkout or an editable install).
"""
from __future__ import annotations

import math
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

from .errors import NeurocompileError

ENV_VAR = "NEUROCOMPILE_PROFILES"

LABELS = ("specified", "measured", "pre-silicon", "estimated")
"""How a value is known: a published design parameter, a silicon measurement,
a circuit simulation, or our own derivation (the file's ``note`` says how)."""

LABEL_FACTORS: dict[str, tuple[float, float]] = {
    "specified": (1.0, 1.0),     # a design parameter: exact
    "measured": (0.9, 1.1),      # board instruments and run-to-run spread: +-10 %
    "pre-silicon": (0.5, 2.0),   # circuit simulation before tape-out: within 2x of silicon
    "estimated": (0.25, 4.0),    # our own derivation or transfer: within 4x
}
"""The uncertainty rule: a constant's (low, high) is its value times its label's
factors, widened to the profile's explicit ``range`` where one is given (the
sources disagree). :mod:`neurocompile.report.cost_model` evaluates the model at
all lows and all highs to give every estimate its range."""

ProfileKind = Literal["neuromorphic", "ann"]
KINDS: tuple[str, ...] = ("neuromorphic", "ann")

# Units with a physical dimension are converted to SI; any other unit is a
# count ("cores", "bit", "events") and kept as is.
_SI: dict[str, tuple[str, float]] = {
    "J": ("energy", 1.0), "mJ": ("energy", 1e-3), "uJ": ("energy", 1e-6), "µJ": ("energy", 1e-6),
    "nJ": ("energy", 1e-9), "pJ": ("energy", 1e-12), "fJ": ("energy", 1e-15),
    "W": ("power", 1.0), "mW": ("power", 1e-3), "uW": ("power", 1e-6), "µW": ("power", 1e-6),
    "s": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6), "µs": ("time", 1e-6), "ns": ("time", 1e-9),
}

# The operations the energy model knows how to count (section -> term -> dimension).
# A profile may charge any subset; a term outside this list is a typo, not a feature.
ENERGY_TERMS: dict[str, str] = {
    "synop": "energy",          # one synaptic operation (spike x synapse)
    "neuron_update": "energy",  # one neuron state update (neuron x step)
    "spike_message": "energy",  # one spike message to one destination core
    "input_event": "energy",    # one nonzero input value delivered to the chip
    "neuron_update_idle": "energy",  # one update of a neuron that received nothing (cost model)
    "mesh_hop": "energy",       # one router hop of a spike message across the mesh (cost model)
    "x86_step": "energy",       # one step of the chip's embedded-CPU program (cost model)
    "board_overhead_power": "power",  # a booted board's overhead over an unbooted one (cost model)
    "mac": "energy",            # one multiply-accumulate of the equivalent ANN
    "sram_read_64b": "energy",  # one 64-bit SRAM read of stored weights
    "static_power": "power",    # charged for the modelled latency
}
TIME_TERMS: dict[str, str] = {
    "synop": "time",
    "neuron_update": "time",
    "spike_message": "time",
    "input_event": "time",
    "barrier_sync": "time",  # once per time step
    "neuron_update_idle": "time",
    "mesh_hop": "time",
    "x86_step": "time",      # the embedded CPUs' work per step, on the critical path
    "host_step": "time",     # one host round trip, with the host in the loop
}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "neuromorphic": (
        "limits.cores", "limits.neurons_per_core", "limits.synaptic_memory_bits_per_core",
        "formats.weight_bits", "energy.synop", "energy.neuron_update",
    ),
    "ann": ("formats.weight_bits", "energy.mac"),
}
_SECTIONS = ("limits", "formats", "energy", "time", "derivation", "calibration", "reference")


@dataclass(frozen=True)
class Quantity:
    """One number with its unit and provenance, exactly as written in the profile."""

    value: float | int | bool
    unit: str
    source: str
    label: str
    note: str = ""
    uncertain: bool = False
    range: tuple[float, float] | None = None

    def bounds_si(self) -> tuple[float, float]:
        """(low, high) in SI by :data:`LABEL_FACTORS`, widened to the explicit ``range`` if any."""
        lo_f, hi_f = LABEL_FACTORS.get(self.label, LABEL_FACTORS["estimated"])
        lo, hi = self.si * lo_f, self.si * hi_f
        if self.range is not None:
            scale = _SI.get(self.unit, ("count", 1.0))[1]
            lo, hi = min(lo, self.range[0] * scale), max(hi, self.range[1] * scale)
        return lo, hi

    def __int__(self) -> int:
        """The value as written (not converted): lets ``int(profile.formats["weight_bits"])`` read naturally."""
        return int(self.value)

    def __float__(self) -> float:
        """The value as written, in the profile's own unit (use :attr:`si` for SI)."""
        return float(self.value)

    @property
    def si(self) -> float:
        """The value in SI units (J, W, s); counts are returned unchanged."""
        return float(self.value) * _SI.get(self.unit, ("count", 1.0))[1]

    @property
    def dimension(self) -> str:
        return _SI.get(self.unit, ("count", 1.0))[0]

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value, "unit": self.unit, "label": self.label, "source": self.source}
        if self.note:
            d["note"] = self.note
        if self.uncertain:
            d["uncertain"] = True
        if self.range is not None:
            d["range"] = list(self.range)
        return d


def _frozen(d: dict[str, Quantity]) -> Mapping[str, Quantity]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Profile:
    """A hardware target: its limits, fixed-point formats and per-operation costs.

    ``energy`` and ``time`` are what the energy model charges; ``reference``,
    ``derivation`` and ``calibration`` are provenance (shown, never charged).
    """

    name: str
    title: str
    kind: ProfileKind
    description: str
    path: Path
    limits: Mapping[str, Quantity] = field(default_factory=dict)
    formats: Mapping[str, Quantity] = field(default_factory=dict)
    energy: Mapping[str, Quantity] = field(default_factory=dict)
    time: Mapping[str, Quantity] = field(default_factory=dict)
    derivation: Mapping[str, Quantity] = field(default_factory=dict)
    calibration: Mapping[str, Quantity] = field(default_factory=dict)
    reference: Mapping[str, Quantity] = field(default_factory=dict)

    def limit(self, key: str) -> int | None:
        """An integer chip limit, or None when the profile does not state it."""
        q = self.limits.get(key)
        return None if q is None else int(q.value)

    @property
    def weight_bits(self) -> int:
        return int(self.formats["weight_bits"].value)

    @property
    def has_timing(self) -> bool:
        """True when the profile gives time per synop and per neuron update (enough for a latency)."""
        return "synop" in self.time and "neuron_update" in self.time

    def quantities(self) -> dict[str, Quantity]:
        """Every value in the profile, keyed ``section.key``."""
        return {f"{s}.{k}": q for s in _SECTIONS for k, q in getattr(self, s).items()}


# -- locating the profiles folder --------------------------------------------
def profiles_dir() -> Path:
    """The folder profiles are read from: ``$NEUROCOMPILE_PROFILES``, else the source tree's ``hardware_profiles/``."""
    env = os.environ.get(ENV_VAR)
    if env:
        d = Path(env).expanduser()
        if not d.is_dir():
            raise NeurocompileError(f"${ENV_VAR} is {env!r}, which is not a folder")
        return d
    # the source tree (editable install), else the copy a regular install puts under sys.prefix
    candidates = [Path(__file__).resolve().parent.parent / "hardware_profiles", Path(sys.prefix) / "share" / "neurocompile" / "hardware_profiles"]
    for d in candidates:
        if d.is_dir():
            return d
    raise NeurocompileError(
        f"no hardware_profiles/ folder found (looked in {', '.join(map(str, candidates))}); "
        f"set ${ENV_VAR} to the folder holding the profile TOML files"
    )


# -- parsing -------------------------------------------------------------------
def _quantity(path: Path, where: str, raw: Any) -> Quantity:
    if not isinstance(raw, dict):
        raise NeurocompileError(f"{path}: {where} must be a table with value, unit, source and label, got {raw!r}")
    for key in ("value", "unit", "source", "label"):
        if key not in raw:
            raise NeurocompileError(f"{path}: missing key '{where}.{key}'")
    value = raw["value"]
    if not isinstance(value, (int, float, bool)):
        raise NeurocompileError(f"{path}: '{where}.value' must be a number, got {value!r}")
    if raw["label"] not in LABELS:
        raise NeurocompileError(f"{path}: '{where}.label' is {raw['label']!r}; use one of {', '.join(LABELS)}")
    if not str(raw["source"]).strip():
        raise NeurocompileError(f"{path}: '{where}.source' is empty: every value needs a source")
    rng = raw.get("range")
    if rng is not None and (not isinstance(rng, list) or len(rng) != 2):
        raise NeurocompileError(f"{path}: '{where}.range' must be [low, high]")
    return Quantity(
        value=value,
        unit=str(raw["unit"]),
        source=str(raw["source"]),
        label=str(raw["label"]),
        note=str(raw.get("note", "")),
        uncertain=bool(raw.get("uncertain", False)),
        range=None if rng is None else (float(rng[0]), float(rng[1])),
    )


def _section(path: Path, doc: dict, name: str, terms: dict[str, str] | None = None) -> Mapping[str, Quantity]:
    raw = doc.get(name, {})
    if not isinstance(raw, dict):
        raise NeurocompileError(f"{path}: [{name}] must be a table")
    out = {}
    for key, val in raw.items():
        q = _quantity(path, f"{name}.{key}", val)
        if terms is not None:
            if key not in terms:
                raise NeurocompileError(f"{path}: unknown {name} term '{name}.{key}'; known terms: {', '.join(terms)}")
            if q.dimension != terms[key]:
                raise NeurocompileError(f"{path}: '{name}.{key}' has unit {q.unit!r}; expected a unit of {terms[key]}")
        out[key] = q
    return _frozen(out)


def _check_ranges(path: Path, sections: dict[str, Mapping[str, Quantity]]) -> None:
    """Limits and formats are counts: whole and positive (a chip with 0 cores or 0-bit weights maps nothing);
    energies, powers and times cannot be negative or infinite."""
    for sec in ("limits", "formats"):
        for key, q in sections[sec].items():
            v = q.value
            if isinstance(v, bool):
                continue
            if not (math.isfinite(v) and v == int(v) and v >= (0 if key == "threshold_shift" else 1)):
                raise NeurocompileError(f"{path}: '{sec}.{key}' is {v!r}; it must be a whole number ≥ 1")
    for sec in ("energy", "time"):
        for key, q in sections[sec].items():
            if isinstance(q.value, bool) or not (0 <= float(q.value) < float("inf")):
                raise NeurocompileError(f"{path}: '{sec}.{key}' is {q.value!r}; it must be a finite number ≥ 0")


def parse_profile(doc: dict, path: Path) -> Profile:
    """Build a :class:`Profile` from a parsed TOML document, checking every required key."""
    head = doc.get("profile")
    if not isinstance(head, dict):
        raise NeurocompileError(f"{path}: missing key 'profile' (a [profile] table with name and kind)")
    for key in ("name", "kind"):
        if key not in head:
            raise NeurocompileError(f"{path}: missing key 'profile.{key}'")
    kind = head["kind"]
    if kind not in KINDS:
        raise NeurocompileError(f"{path}: 'profile.kind' is {kind!r}; use one of {', '.join(KINDS)}")
    unknown = set(doc) - set(_SECTIONS) - {"profile"}
    if unknown:
        raise NeurocompileError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; known: profile, {', '.join(_SECTIONS)}")
    sections = {
        "limits": _section(path, doc, "limits"),
        "formats": _section(path, doc, "formats"),
        "energy": _section(path, doc, "energy", ENERGY_TERMS),
        "time": _section(path, doc, "time", TIME_TERMS),
        "derivation": _section(path, doc, "derivation"),
        "calibration": _section(path, doc, "calibration"),
        "reference": _section(path, doc, "reference"),
    }
    for dotted in _REQUIRED[kind]:
        sec, key = dotted.split(".")
        if key not in sections[sec]:
            raise NeurocompileError(f"{path}: missing key '{dotted}' (required for a {kind} profile)")
    _check_ranges(path, sections)
    name = str(head["name"])
    return Profile(
        name=name,
        title=str(head.get("title", name)),
        kind=kind,
        description=str(head.get("description", "")),
        path=path,
        **sections,
    )


def _load_doc(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise NeurocompileError(f"{path}: no such profile file") from None
    except tomllib.TOMLDecodeError as e:
        raise NeurocompileError(f"{path}: not valid TOML ({e})") from None


def _with_base(doc: dict, path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """``[profile] base = "loihi2"``: start from that profile's file (same folder) and override per key.

    Why: a system of several chips (Kapoho Point, Hala Point) shares every
    per-chip constant with its chip; copying them would let the copies drift.
    Sections merge key by key; the child's [profile] table replaces the base's
    except for keys it omits.
    """
    head = doc.get("profile")
    base = head.get("base") if isinstance(head, dict) else None
    if base is None:
        return doc
    base_path = path.parent / f"{base}.toml"
    if base_path in seen or base_path == path:
        raise NeurocompileError(f"{path}: profile.base {base!r} makes a cycle")
    parent = _with_base(_load_doc(base_path), base_path, seen + (path,))
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in parent.items()}
    for section, table in doc.items():
        if isinstance(table, dict):
            merged.setdefault(section, {}).update(table)
        else:
            merged[section] = table
    merged["profile"].pop("base", None)
    return merged


def _read(path: Path) -> Profile:
    return parse_profile(_with_base(_load_doc(path), path), path)


# -- public API ----------------------------------------------------------------
def load_profiles(directory: str | Path | None = None) -> dict[str, Profile]:
    """Every ``*.toml`` profile in ``directory`` (default: :func:`profiles_dir`), keyed by name.

    A profile's name must match its file name, so ``--profile loihi2`` and
    ``loihi2.toml`` can never disagree.
    """
    d = Path(directory) if directory is not None else profiles_dir()
    out: dict[str, Profile] = {}
    for path in sorted(d.glob("*.toml")):
        p = _read(path)
        if p.name != path.stem:
            raise NeurocompileError(f"{path}: profile.name is {p.name!r} but the file is {path.name}; make them match")
        out[p.name] = p
    return out


def known_profile_names(directory: str | Path | None = None) -> list[str]:
    d = Path(directory) if directory is not None else profiles_dir()
    return sorted(p.stem for p in d.glob("*.toml"))


def load_profile(name_or_path: str | Path, directory: str | Path | None = None) -> Profile:
    """A profile by name (``loihi2``) or by path to a TOML file (``./my_chip.toml``)."""
    s = str(name_or_path)
    if s.endswith(".toml") or os.sep in s or (os.altsep and os.altsep in s):
        return _read(Path(s).expanduser())
    d = Path(directory) if directory is not None else profiles_dir()
    path = d / f"{s}.toml"
    if not path.is_file():
        known = ", ".join(known_profile_names(d)) or "none"
        raise NeurocompileError(f"unknown hardware profile {s!r}; known profiles: {known} (in {d}), or pass a path to a .toml file")
    return _read(path)


# -- the `neurocompile profiles` table ---------------------------------------------
def _fmt(q: Quantity | None, scale: float = 1.0, unit: str | None = None) -> str:
    if q is None:
        return "-"
    u = unit if unit is not None else q.unit
    text = f"{float(q.value) * scale:g} {u}".strip()
    if not q.uncertain:
        return text
    if q.range is not None:
        return f"~{text} ({q.range[0] * scale:g}-{q.range[1] * scale:g})"
    return f"~{text}"


def _label(q: Quantity | None) -> str:
    return "" if q is None else f" [{q.label}]"


def format_profiles_table(profiles: Mapping[str, Profile]) -> str:
    """A plain-text table of the profiles for ``neurocompile profiles``.

    ``~`` marks a value its sources disagree on; the bracket is the label of the
    per-op energy. ``-`` means the profile does not state it.
    """
    header = ("profile", "kind", "cores", "neurons/core", "memory/core", "weight bits", "energy per op", "static power", "latency")
    rows = [header]
    for name in sorted(profiles):
        p = profiles[name]
        mem = p.limits.get("synaptic_memory_bits_per_core")
        op_key = "synop" if "synop" in p.energy else "mac"
        op = p.energy.get(op_key)
        rows.append((
            name,
            p.kind,
            _fmt(p.limits.get("cores"), unit=""),
            _fmt(p.limits.get("neurons_per_core"), unit=""),
            _fmt(mem, 1 / 8192, "KiB") if mem is not None else "-",
            _fmt(p.formats.get("weight_bits"), unit=""),
            f"{_fmt(op)}/{op_key}{_label(op)}" if op is not None else "-",
            _fmt(p.energy.get("static_power")) + _label(p.energy.get("static_power")) if "static_power" in p.energy else "-",
            "modelled" if p.has_timing else "-",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("~ = uncertain (sources disagree); [label] = specified / measured / pre-silicon / estimated")
    for name in sorted(profiles):
        lines.append(f"{name}: {profiles[name].title}. {profiles[name].description}")
    return "\n".join(lines)
