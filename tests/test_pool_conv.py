"""Average pooling followed by a convolution: one exact strided conv kernel (or a pooling population), never an unrolled matrix."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn as nn
from nc_testutils import randomize_bn

from neurocompile.errors import NeurocompileError
from neurocompile.frontend import capture
from neurocompile.frontend.linear_maps import avgpool_kernel, compose, full_conv, grouped
from neurocompile.ir_geometry import conv_matrix
from neurocompile.ir import ConvSpec
from neurocompile.sim.ann import ann_forward


def _capture(model: nn.Module, shape, pool: str = "compose"):
    ep = torch.export.export(model.eval(), (torch.zeros(2, *shape),))
    return capture(ep, pool=pool)


def _check_function(model: nn.Module, net, shape, seed: int = 0) -> None:
    x = torch.rand(8, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = model(x).double()
    got = ann_forward(net, x)[net.output]
    assert torch.allclose(got, want, atol=1e-5, rtol=0), float((got - want).abs().max())


def _block(c_in: int, c_out: int, hw: int, pool: int, pool_stride: int | None, k: int, stride: int, pad: int, groups: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AvgPool2d(pool, pool_stride),
        nn.Conv2d(4, c_out, k, stride=stride, padding=pad, groups=groups), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Flatten(), nn.LazyLinear(5),
    )


# (input side, pool, pool stride, kernel, stride, padding, groups, composes exactly)
CASES = [
    (8, 2, None, 3, 1, 1, 1, True),
    (12, 3, None, 3, 1, 1, 1, True),
    (12, 2, None, 3, 2, 1, 2, True),
    (12, 2, None, 2, 1, 0, 4, True),
    (9, 3, None, 2, 1, 0, 1, True),
    (10, 2, None, 3, 2, 0, 1, True),
    (9, 2, None, 3, 1, 0, 1, True),  # odd size, no padding: the dropped row is never read
    (9, 2, None, 3, 1, 1, 1, False),  # odd size with padding: the conv's right padding would read the dropped row
    (11, 3, 2, 3, 1, 0, 1, True),  # overlapping pool, no padding: taps of neighbouring windows add up
    (11, 3, 2, 3, 1, 1, 1, False),  # overlapping pool with padding: a padded row would see real input
]


@pytest.mark.parametrize("side,pool,pstride,k,stride,pad,groups,exact", CASES)
def test_pool_then_conv_is_one_exact_conv(side, pool, pstride, k, stride, pad, groups, exact):
    torch.manual_seed(side * 100 + k * 10 + pad)
    shape = (2, side, side)
    model = _block(2, 4, side, pool, pstride, k, stride, pad, groups)
    model(torch.zeros(1, *shape))  # materialise the lazy linear
    model = randomize_bn(model)
    net = _capture(model, shape)
    _check_function(model, net, shape)
    mid = net.incoming("relu_1")[0]
    assert (mid.kind == "conv") == exact
    if exact:
        kp = (pool - 1) + (k - 1) * (pstride or pool) + 1
        assert mid.weight.shape[2:] == (kp, kp)
        assert mid.conv.stride == ((pstride or pool) * stride,) * 2
        assert mid.conv.groups == groups


def test_composed_kernel_is_the_unrolled_matrix():
    """Same synapses, same values: the composed conv unrolls to exactly the pool-then-conv matrix."""
    rng = np.random.default_rng(0)
    pool = full_conv(avgpool_kernel(4, (2, 2)), ConvSpec((4, 8, 8), (4, 4, 4), (2, 2), (0, 0), 4))
    w = rng.normal(size=(6, 2, 3, 3))
    w[0, 0, 1, 1] = 0.0
    spec = ConvSpec((4, 4, 4), (6, 4, 4), (1, 1), (1, 1), 2)
    composed = compose(pool, full_conv(w, spec))
    kernel, cspec = grouped(composed)
    assert cspec == ConvSpec((4, 8, 8), (6, 4, 4), (2, 2), (2, 2), 2)
    want = conv_matrix(w, spec) @ conv_matrix(avgpool_kernel(4, (2, 2)), ConvSpec((4, 8, 8), (4, 4, 4), (2, 2), (0, 0), 4))
    got = conv_matrix(kernel, cspec)
    assert got.nnz == sp.csr_matrix(want).nnz
    assert abs(got - want).max() == 0


def test_chain_of_pools_and_convs_and_bn_composes():
    """pool → BN (unfolded) → conv → pool → conv between two ReLUs: still one conv."""
    torch.manual_seed(3)
    shape = (2, 16, 16)
    model = randomize_bn(nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(4, 6, 2),
        nn.ReLU(), nn.Flatten(), nn.Linear(6 * 3 * 3, 5),
    ))
    net = _capture(model, shape)
    _check_function(model, net, shape)
    assert [pr.kind for pr in net.projections] == ["conv", "conv", "dense"]


def test_residual_of_convs_is_one_conv():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
            self.head = nn.Linear(4 * 6 * 6, 3)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.head(torch.relu(self.b(h) + self.c(h) + h).flatten(1))

    torch.manual_seed(4)
    model, shape = Res(), (2, 6, 6)
    net = _capture(model, shape)
    _check_function(model, net, shape)
    assert [pr.kind for pr in net.projections] == ["conv", "conv", "dense"]
    assert net.projections[1].weight.shape[2:] == (3, 3)


def test_reshape_between_convs_stays_a_matrix():
    # the simplest honest reshape: (4, 4, 4) read as (4, 2, 8) before a conv -- same numbers, other geometry
    class Reshaped(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 2, (1, 3))
            self.head = nn.Linear(2 * 2 * 6, 3)

        def forward(self, x):
            h = nn.functional.avg_pool2d(torch.relu(self.a(x)), 2).reshape(-1, 4, 2, 8)
            return self.head(torch.relu(self.b(h)).flatten(1))

    torch.manual_seed(5)
    model, shape = Reshaped(), (1, 8, 8)
    net = _capture(model, shape)
    _check_function(model, net, shape)
    assert net.incoming("relu_1")[0].kind != "conv"


def test_pool_before_linear_stays_a_dense_matrix():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    net = _capture(model, (1, 8, 8), pool="population")
    assert [pr.kind for pr in net.projections] == ["conv", "dense"]  # no population: a pool into a Linear is small


@pytest.mark.parametrize("pool", [2, 3])
def test_pool_population_option(pool):
    torch.manual_seed(7)
    side = 6 * pool
    shape = (1, side, side)
    model = randomize_bn(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(pool),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 3 * 3, 5),
    ))
    net = _capture(model, shape, pool="population")
    _check_function(model, net, shape)
    names = [p.name for p in net.populations]
    assert names[:3] == ["input", "relu", "avg_pool2d"]
    assert net.population("avg_pool2d").kind == "spiking" and net.population("avg_pool2d").shape == (4, 6, 6)
    kinds = [(pr.source, pr.target, pr.kind, pr.weight.shape[2:] if pr.kind == "conv" else None) for pr in net.projections]
    assert kinds[1] == ("relu", "avg_pool2d", "conv", (pool, pool))
    assert kinds[2] == ("avg_pool2d", "relu_1", "conv", (3, 3))
    composed = _capture(model, shape)
    assert len(composed.populations) == len(net.populations) - 1


def test_population_needs_a_nonnegative_pooled_map():
    """A pool over the input (pixels may be negative) or over a BN-shifted map is composed instead."""
    torch.manual_seed(8)
    model = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    net = _capture(model, (1, 8, 8), pool="population")
    assert [p.name for p in net.populations] == ["input", "relu", "output"]
    assert net.projections[0].kind == "conv" and net.projections[0].conv.stride == (2, 2)
    _check_function(model, net, (1, 8, 8))


def test_unknown_pool_mode_is_refused():
    ep = torch.export.export(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval(), (torch.zeros(1, 1, 2, 2),))
    with pytest.raises(NeurocompileError, match="pool mode"):
        capture(ep, pool="unroll")


# -- the fixed-point engine runs a pool-composed conv pooled, bit for bit --------------------------
from nc_testutils import fixed_network  # noqa: E402
from neurocompile.ir import Network, NeuronFixed, Population, Projection  # noqa: E402
from neurocompile.sim import engine  # noqa: E402
from neurocompile.sim.engine import _lava_effective, _pooled_conv, simulate  # noqa: E402


def _quantised_pool_conv(side: int, pool: int, k: int, stride: int, pad: int, groups: int, seed: int) -> Network:
    """input → (AvgPool(pool) then Conv(k, stride, pad, groups), composed) → spiking → dense readout, integer weights."""
    rng = np.random.default_rng(seed)
    spec = ConvSpec((4, side // pool, side // pool), (6, 0, 0), (stride, stride), (pad, pad), groups)
    ho = (side // pool + 2 * pad - k) // stride + 1
    spec = ConvSpec(spec.in_shape, (6, ho, ho), spec.stride, spec.padding, groups)
    pool_conv = full_conv(avgpool_kernel(4, (pool, pool)), ConvSpec((4, side, side), spec.in_shape, (pool, pool), (0, 0), 4))
    w = rng.integers(-40, 40, (6, 4 // groups, k, k)).astype(np.float64)
    kernel, cspec = grouped(compose(pool_conv, full_conv(w, spec)))
    q = np.round(kernel * pool * pool).astype(np.int64)  # integer taps, constant on pool × pool blocks
    n = 6 * ho * ho
    zero = lambda m: np.zeros(m, np.int64)  # noqa: E731
    net = fixed_network(
        (Population("input", (4, side, side), "input"), Population("a", (6, ho, ho), "spiking"), Population("output", (n,), "readout")),
        (Projection("input->a", "input", "a", "conv", q.astype(np.float64), conv=cspec),
         Projection("a->output", "a", "output", "dense", np.eye(n))),
        neurons={"a": NeuronFixed(vth=200, bias_mant=zero(n), bias_exp=0), "output": NeuronFixed(vth=1000, bias_mant=zero(n), bias_exp=0)},
        synapses={"input->a": q, "a->output": np.eye(n, dtype=np.int64)},
        inputs="input", outputs="output",
    )
    net.validate()
    return net


@pytest.mark.parametrize("side,pool,k,stride,pad,groups", [(12, 2, 3, 1, 1, 1), (12, 3, 2, 1, 0, 2), (9, 2, 3, 1, 0, 1), (16, 2, 3, 2, 1, 4)])
def test_engine_runs_a_composed_conv_pooled_and_exact(side, pool, k, stride, pad, groups, monkeypatch):
    monkeypatch.setattr(engine, "MAX_UNROLLED_CONV", 0)  # small convs would run unrolled as int8 GEMMs: test the pooled path
    net = _quantised_pool_conv(side, pool, k, stride, pad, groups, seed=side + k)
    conv = net.projections[0]
    sf = net.synapse_fixed(conv.name)
    pooled = _pooled_conv(_lava_effective(sf, conv), torch.float32)
    assert pooled is not None and pooled[1] == (pool, pool)
    # the same synapses as an unrolled matrix: the engine's CSR path, independent of conv2d
    unrolled = net.replace(
        projections=(Projection(conv.name, "input", "a", "sparse", conv.matrix()), net.projections[1]),
        fixed=dataclasses.replace(net.fixed, synapses={**net.fixed.synapses, conv.name: dataclasses.replace(sf, weight=net.fixed_matrix(conv))}))
    g = torch.Generator().manual_seed(side)
    for frames in ((torch.rand(8, 12, 4 * side * side, generator=g) < 0.3).float(),  # binary spikes
                   torch.randint(0, 256, (8, 1, 4 * side * side), generator=g).float().expand(8, 12, -1)):  # graded, static
        a, b = simulate(net, frames, "fixed"), simulate(unrolled, frames, "fixed")
        assert torch.equal(a.readout, b.readout)
        assert torch.equal(a.spike_counts["a"], b.spike_counts["a"]) and int(a.spike_counts["a"].sum()) > 0


def test_engine_keeps_an_odd_map_unpooled_where_the_dropped_row_is_read():
    net = _quantised_pool_conv(12, 2, 3, 1, 1, 1, seed=0)
    conv = net.projections[0]
    # the same kernel over a 13-wide map with padding reads the row a 2-pool would drop
    spec = dataclasses.replace(conv.conv, in_shape=(4, 13, 13))
    assert _pooled_conv(_lava_effective(net.synapse_fixed(conv.name), dataclasses.replace(conv, conv=spec)), torch.float32) is None


@pytest.mark.lava
@pytest.mark.parametrize("weight_exp", [0, 1])  # 0: Lava's stock Conv runs the strided kernel; 1: unrolled into Sparse
def test_composed_conv_on_lava_is_spike_identical(backend, weight_exp):
    from neurocompile.backends import reference

    net = _quantised_pool_conv(8, 2, 3, 1, 1, 2, seed=3)
    conv = net.projections[0].name
    net = net.replace(fixed=dataclasses.replace(net.fixed, synapses={
        **net.fixed.synapses, conv: dataclasses.replace(net.synapse_fixed(conv), exp=weight_exp)}))
    frames = (np.random.default_rng(0).random((3, 10, 4 * 8 * 8)) < 0.3).astype(np.int64)
    procs = {row["process"] for row in backend.describe(net, frames)}
    assert ("Conv" in procs) == (weight_exp == 0)
    ref = reference.ReferenceBackend().run(net, frames, record=True)
    lava = backend.run(net, frames, record=True)
    assert int(ref.spike_counts["a"].sum()) > 0
    np.testing.assert_array_equal(lava.readout, ref.readout)
    for name in ref.spike_counts:
        np.testing.assert_array_equal(lava.spike_trains[name], ref.spike_trains[name])
