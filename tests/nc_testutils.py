"""Helpers shared by the tests (importable: pytest runs with pythonpath = tests)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


def export_pt2(module: nn.Module, path, shape) -> str:
    torch.export.save(torch.export.export(module.eval(), (torch.zeros(1, *shape),)), str(path))
    return str(path)


def export_ts(module: nn.Module, path, shape) -> str:
    torch.jit.save(torch.jit.trace(module.eval(), torch.zeros(1, *shape)), str(path))
    return str(path)


def randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return module.eval()


# -- hostile files (tests/test_safe_loading.py, tests/test_fuzz_loaders.py) ------
import io  # noqa: E402
import os  # noqa: E402
import zipfile  # noqa: E402


class _Evil:
    """Pickles to a call of os.system / exec that creates ``marker``: proof of code execution."""

    def __init__(self, marker, via: str = "system"):
        self.marker, self.via = str(marker), via

    def __reduce__(self):
        if self.via == "exec":
            import builtins

            return (builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",))
        return (os.system, (f"touch '{self.marker}'",))


def evil_pickle(marker, via: str = "system") -> bytes:
    """A plain pickle that runs code (creates ``marker``) when unpickled."""
    import pickle

    return pickle.dumps(_Evil(marker, via), protocol=2)


def evil_torch_save(marker, via: str = "system") -> bytes:
    """A ``torch.save`` archive whose data.pkl runs code (creates ``marker``) when loaded with weights_only=False."""
    buf = io.BytesIO()
    torch.save(_Evil(marker, via), buf)
    return buf.getvalue()


def read_zip(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def write_zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of (name, bytes) members in order; duplicate names are allowed (hostile archives use them)."""
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return buf.getvalue()


def pt2_bytes(module: nn.Module, shape, batch: int = 1, dynamic: bool = False) -> bytes:
    kw = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic else {}
    ep = torch.export.export(module.eval(), (torch.zeros(batch, *shape),), **kw)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def edit_archive(data: bytes, edit) -> bytes:
    """Rewrite a torch zip archive: ``edit`` gets {name inside the top folder: bytes} and may change it."""
    members = read_zip(data)
    root = members[0][0].split("/", 1)[0]
    d = {n.split("/", 1)[1]: b for n, b in members}
    edit(d)
    return write_zip([(f"{root}/{n}", b) for n, b in d.items()])


# -- networks with a fixed-point layer (IR version 2) ---------------------------
def fixed_network(populations, projections, neurons=None, synapses=None, *, inputs="in", outputs="out",
                  fixed_format=None, v_units_per_float=None, **settings):
    """A :class:`~neurocompile.ir.Network` built in one call, as tests build them.

    ``neurons``: population name -> ``NeuronFixed``; ``synapses``: projection name ->
    ``SynapseFixed``, ``(weight, exp)`` or a bare integer ``weight`` (exponent 0). Both
    None: a float network (no fixed-point layer). ``inputs``/``outputs``: a name or a
    tuple of names; ``settings``: :class:`~neurocompile.ir.RunSettings` fields
    (``timesteps``, ``encoding``, ``seed``, ``data``, ...).
    """
    from neurocompile.ir import FixedPoint, Network, RunSettings, SynapseFixed

    fixed = None
    if neurons is not None or synapses is not None:
        syn = {}
        for name, s in (synapses or {}).items():
            if isinstance(s, SynapseFixed):
                syn[name] = s
            elif isinstance(s, tuple):
                syn[name] = SynapseFixed(weight=s[0], exp=int(s[1]))
            else:
                syn[name] = SynapseFixed(weight=s)
        fixed = FixedPoint(neurons=dict(neurons or {}), synapses=syn, format=dict(fixed_format or {}),
                           v_units_per_float=dict(v_units_per_float or {}))
    return Network(
        populations=tuple(populations), projections=tuple(projections),
        inputs=(inputs,) if isinstance(inputs, str) else tuple(inputs),
        outputs=(outputs,) if isinstance(outputs, str) else tuple(outputs),
        settings=RunSettings(**settings), fixed=fixed,
    )


def random_neuron_fixed(rng: np.random.Generator, n: int, hot: bool):
    """Lava LIF parameters drawn to exercise every path: IF or leaky, decaying currents, wraps (``hot``), large biases."""
    from neurocompile.ir import NeuronFixed

    du = int(rng.choice([4095, 4095, rng.integers(0, 4096)]))  # < 4095: a synaptic current that decays
    dv = int(rng.choice([0, rng.integers(1, 600), rng.integers(600, 4096)]))  # IF, mild or strong leak
    vth = int(rng.integers(1, 40)) if hot else int(rng.choice([rng.integers(2, 300), (1 << 17) - 1]))
    if rng.random() < 0.2:  # full int16 bias at a large exponent: v + u + bias wraps at 32 bits in Lava
        return NeuronFixed(vth=vth, bias_mant=rng.integers(-(1 << 15), 1 << 15, n), bias_exp=int(rng.integers(12, 17)), du=du, dv=dv)
    return NeuronFixed(vth=vth, bias_mant=rng.integers(-400, 400, n), bias_exp=int(rng.integers(0, 4)), du=du, dv=dv)


def random_weights(rng: np.random.Generator, shape: tuple[int, ...], sign: str) -> np.ndarray:
    if sign == "excitatory":
        return rng.integers(0, 256, shape)
    if sign == "inhibitory":
        return rng.integers(-255, 1, shape)
    return rng.integers(-256, 256, shape)  # odd values included: Lava floors them to even


def random_projection(rng, name, src, dst, kind, shape, *, hot: bool, conv=None, density: float = 0.4,
          recurrent: bool = False):
    """A random dense/sparse/conv projection and its fixed-point weights; ``hot``: exponents that wrap Lava's 24-bit u."""
    import scipy.sparse as sp

    from neurocompile.ir import Projection, SynapseFixed

    sign = rng.choice(["mixed", "mixed", "excitatory", "inhibitory"])
    w = random_weights(rng, shape, sign)
    if kind == "sparse":
        w = sp.csr_matrix(w * (rng.random(shape) < density))
    exp = int(rng.integers(5, 9)) if hot else int(rng.integers(-3, 3))  # hot: a_in << 6 beyond 24 bits
    weight = w.astype(np.float64)
    return Projection(name, src, dst, kind, weight, conv=conv, recurrent=recurrent), SynapseFixed(w, exp)
