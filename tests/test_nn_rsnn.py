"""Recurrent heterogeneous SNNs (neurocompile.nn) against independent computations."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as st
import torch

from neurocompile.errors import NeurocompileError
from neurocompile.frontend.rsnn import ingest_model
from neurocompile.ir import Network
from neurocompile.nn import CHRSNN, HRSNN, GammaTau, load_rsnn, save_rsnn
from neurocompile.sim.float_sim import FloatSimulator, SpikeFunction


pytestmark = pytest.mark.usefixtures("one_thread")


def dyadic(rng: np.random.Generator, shape, levels: int = 64, span: int = 48) -> np.ndarray:
    """Multiples of 1/levels: sums of a few of them are exact in any order, so matmuls agree across BLAS."""
    return rng.integers(-span, span + 1, size=shape) / levels


def dyadic_model(reset: str = "subtract", seed: int = 0) -> HRSNN:
    """A float64 HRSNN whose weights, thresholds, fractions and biases are dyadic (exact sums)."""
    m = HRSNN(3, 12, 2, 2.0, 4.0, recurrent_density=0.4, seed=seed, reset=reset, readout_leak=0.25, dtype=torch.float64)
    rng = np.random.default_rng(seed + 100)
    h = m.hidden
    with torch.no_grad():
        h.input_weight.copy_(torch.as_tensor(dyadic(rng, h.input_weight.shape)))
        h.recurrent_weight.copy_(torch.as_tensor(dyadic(rng, h.recurrent_weight.shape)) * h.recurrent_mask)
        h.threshold.copy_(torch.as_tensor(rng.integers(8, 24, 12) / 16))
        h.leak.copy_(torch.as_tensor(rng.integers(1, 9, 12) / 8))
        h.current_decay.copy_(torch.as_tensor(rng.integers(2, 5, 12) / 4))
        h.bias.copy_(torch.as_tensor(rng.integers(-4, 5, 12) / 32))
        m.readout.weight.copy_(torch.as_tensor(dyadic(rng, m.readout.weight.shape)))
        m.readout.bias.copy_(torch.as_tensor([0.5, -0.25]))
    return m


def numpy_reference(m: HRSNN, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chip's equations as a plain loop: (spikes (B, P, n), readout v (B, P, n_out)), P = T + 2."""
    a = m.lnp_arrays()
    h = m.hidden
    th, leak, cd, bias = (p.detach().numpy() for p in (h.threshold, h.leak, h.current_decay, h.bias))
    r_leak = m.readout.leak.detach().numpy()
    B, T, _ = x.shape
    P = T + 2
    frames = np.concatenate([x, np.zeros((B, 2, x.shape[2]))], axis=1)
    n = len(th)
    u, v, s = np.zeros((B, n)), np.zeros((B, n)), np.zeros((B, n))
    r = np.zeros((B, a.W_out.shape[0]))
    spikes, readouts = [s], [r]
    for t in range(1, P):
        a_r = s @ a.W_out.T  # spikes of step t-1
        a_in = frames[:, t - 1] @ a.W_in.T + s @ a.W.T
        u = u * (1 - cd) + a_in
        v = v * (1 - leak) + u + bias
        s = (v > th).astype(np.float64)
        v = v - s * th if h.reset_mode == "subtract" else v * (1 - s)
        r = r * (1 - r_leak) + a_r
        spikes.append(s)
        readouts.append(r)
    return np.stack(spikes, 1), np.stack(readouts, 1)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_layer_matches_numpy_loop_exactly(reset):
    m = dyadic_model(reset)
    x = np.random.default_rng(1).integers(0, 17, size=(4, 15, 3)) / 16
    with torch.no_grad():
        out = m(torch.as_tensor(x), record=True)
    spikes, readouts = numpy_reference(m, x)
    assert spikes.sum() > 20 and spikes.mean() < 0.9  # a non-trivial regime
    np.testing.assert_array_equal(out.spikes.numpy(), spikes)
    np.testing.assert_array_equal(out.readouts.numpy(), readouts)
    np.testing.assert_array_equal(out.readout.numpy(), readouts[:, -1])


def test_layer_matches_numpy_loop_with_gaussian_weights():
    m = HRSNN(3, 40, 2, 2.0, 6.0, recurrent_density=0.2, seed=3, bias_std=0.3, tau_syn_mean=3.0, tau_syn_shape=4.0,
              readout_leak=0.1, input_gain=2.0, dtype=torch.float64)
    x = np.random.default_rng(2).normal(size=(3, 30, 3))
    with torch.no_grad():
        out = m(torch.as_tensor(x))
    spikes, readouts = numpy_reference(m, x)
    assert 0.05 < spikes.mean() < 0.8
    np.testing.assert_array_equal(out.spikes.numpy(), spikes)
    np.testing.assert_allclose(out.readouts.numpy(), readouts, rtol=0, atol=1e-12)


def ir_network(m: HRSNN) -> Network:
    """The model as the RSNN front end ingests it (per-neuron fields as arrays, the recurrent edge flagged)."""
    return ingest_model(m, timesteps=15)


def test_to_arrays_runs_identically_in_the_float_simulator():
    m = dyadic_model()
    x = np.random.default_rng(5).integers(0, 17, size=(4, 15, 3)) / 16
    sim = FloatSimulator(ir_network(m), dtype=torch.float64)
    with torch.no_grad():
        ours = m(torch.as_tensor(x))
        theirs = sim(m.frames(torch.as_tensor(x)), record=True)
        logits = sim.logits(theirs.readout)
    np.testing.assert_array_equal(theirs.spike_trains["hidden"].numpy(), ours.spikes.numpy().astype(bool))
    np.testing.assert_array_equal(theirs.readout.numpy(), ours.readout.numpy())
    np.testing.assert_array_equal(logits.numpy(), m.logits(torch.as_tensor(x)).detach().numpy())


def test_to_arrays_layout():
    m = HRSNN(3, 30, 2, 2.0, 5.0, recurrent_density=0.2, seed=0)
    arr = m.to_arrays()
    assert [p.name for p in arr.populations] == ["input", "hidden", "readout"] and arr.depth == 2
    hidden = arr.population("hidden")
    np.testing.assert_array_equal(hidden.leak, m.hidden.leak.detach().double().numpy())
    rec = arr.projection("hidden_to_hidden")
    assert rec.kind == "sparse" and isinstance(rec.weight, sp.csr_matrix)
    lnp = m.lnp_arrays()
    np.testing.assert_array_equal(rec.weight.toarray(), lnp.W)
    assert rec.weight.nnz == lnp.mask.sum()
    assert arr.projection("input_to_hidden").weight.shape == (30, 3)
    assert arr.projection("hidden_to_readout").weight.shape == (2, 30)
    np.testing.assert_allclose(lnp.tau, 1 / hidden.leak)


@dataclass(frozen=True)
class SigmoidSpike(SpikeFunction):
    """A smooth spike, forward and backward alike: autograd's gradient is the true one."""

    beta: float = 4.0

    def __call__(self, v, threshold, since_spike):
        return torch.sigmoid(self.beta * (v - threshold))


def test_gradients_match_finite_differences():
    m = HRSNN(3, 16, 2, 2.0, 4.0, recurrent_density=0.3, seed=4, bias_std=0.2, tau_syn_mean=2.0, readout_leak=0.1,
              input_gain=2.0, spike_fn=SigmoidSpike(), dtype=torch.float64)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 12, 3)))
    c = torch.as_tensor(np.random.default_rng(1).normal(size=(2, 14, 2)))

    def loss() -> torch.Tensor:
        return (m(x).readouts * c).sum()

    loss().backward()
    mask = m.hidden.recurrent_mask.numpy()
    i, j = np.argwhere(mask)[3]
    k = 5
    off = np.argwhere(~mask & ~np.eye(16, dtype=bool))[0]
    checks = [(m.hidden.recurrent_weight, (i, j)), (m.hidden.leak, (k,)), (m.hidden.current_decay, (k,)),
              (m.hidden.input_weight, (2, 1))]
    for param, index in checks:
        eps = 1e-6
        with torch.no_grad():
            base = param[index].item()
            param[index] = base + eps
            up = loss().item()
            param[index] = base - eps
            down = loss().item()
            param[index] = base
        numeric = (up - down) / (2 * eps)
        assert abs(numeric) > 1e-4
        assert param.grad[index].item() == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    assert m.hidden.recurrent_weight.grad[tuple(off)].item() == 0.0  # an absent synapse learns nothing


def test_surrogate_training_step_reaches_recurrent_weights():
    m = HRSNN(3, 20, 2, 2.0, 4.0, recurrent_density=0.3, seed=0, input_gain=3.0)
    out = m(torch.randn(4, 10, 3, generator=torch.Generator().manual_seed(0)))
    out.readout.sum().backward()
    g = m.hidden.recurrent_weight.grad
    assert g.abs().sum() > 0 and torch.all(g[~m.hidden.recurrent_mask] == 0)


def test_tau_samples_follow_the_gamma_distribution():
    shape, mean = 3.0, 8.0
    tau = GammaTau(mean, shape).sample(40000, np.random.default_rng(0))
    assert st.kstest(tau, st.gamma(shape, scale=mean / shape).cdf).pvalue > 1e-3
    se = tau.std() / np.sqrt(len(tau))
    assert abs(tau.mean() - mean) < 4 * se
    assert tau.mean() ** 2 / tau.var() == pytest.approx(shape, rel=0.05)  # moment estimate of the shape


def test_model_tau_is_gamma_distributed_per_cluster():
    m = HRSNN(2, 4000, 1, 4.0, 20.0, recurrent_density=0.001, seed=1)
    tau = m.tau()  # P(tau < 1) is ~1e-5 here: clipping does not bias the check
    assert st.kstest(tau, st.gamma(4.0, scale=5.0).cdf).pvalue > 1e-3
    c = CHRSNN(2, (1500, 1500), 1, (2.0, 8.0), (5.0, 30.0), intra_density=0.01, seed=2)
    taus = c.tau()
    for cl, shape, mean in ((0, 2.0, 5.0), (1, 8.0, 30.0)):
        t = taus[c.clusters() == cl]
        t = t[t > 1.0] if cl == 0 else t
        lo = st.gamma(shape, scale=mean / shape)
        if cl == 0:  # cluster 0 has some τ < 1 clipped to 1: test the unclipped part against the truncated law
            cdf = lambda v: (lo.cdf(v) - lo.cdf(1.0)) / lo.sf(1.0)  # noqa: E731
        else:
            cdf = lo.cdf
        assert st.kstest(t, cdf).pvalue > 1e-3


def test_fractions_are_clipped_to_one():
    m = HRSNN(1, 200, 1, 1.0, 1.0, seed=0)  # many τ below one step
    leak = m.hidden.leak.detach().numpy()
    assert leak.max() == 1.0 and (leak > 0).all() and (leak == 1.0).sum() > 50
    assert (m.hidden.current_decay.detach().numpy() == 1.0).all()  # default τ_syn = 1: no synaptic current


def test_seeded_construction_is_deterministic():
    a, b, c = (HRSNN(3, 50, 2, 2.0, 5.0, seed=s) for s in (7, 7, 8))
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.hidden.recurrent_weight, c.hidden.recurrent_weight)


def test_random_mask_density_and_no_self_loops():
    m = HRSNN(1, 400, 1, 2.0, 5.0, recurrent_density=0.1, seed=0)
    mask = m.hidden.recurrent_mask.numpy()
    assert not mask.diagonal().any()
    assert mask.sum() / (400 * 399) == pytest.approx(0.1, abs=0.005)
    w = m.hidden.recurrent_weight.detach().numpy()
    assert (w[~mask] == 0).all() and (w[mask] != 0).all()
    # gain 1: spectral radius about 1 (circular law)
    assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(1.0, abs=0.15)


def test_clustered_mask_is_dense_within_and_small_world_between():
    sizes = (60, 60, 60, 60)
    c = CHRSNN(2, sizes, 1, (2.0,) * 4, (5.0,) * 4, intra_density=0.3, ring_degree=6, rewire=0.2, seed=0)
    mask = c.hidden.recurrent_mask.numpy()
    lab = c.clusters()
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    intra = mask[same].mean()
    inter = mask[~same & ~np.eye(len(lab), dtype=bool)].mean()
    assert intra == pytest.approx(0.3, abs=0.02) and 0 < inter < 0.02
    # links join non-adjacent clusters too (rewired shortcuts), and inter-cluster links are symmetric
    between = {(a, b) for a, b in zip(*np.nonzero(mask & ~same)) for a, b in [(lab[a], lab[b])]}
    assert (0, 2) in between or (1, 3) in between
    assert ((mask & ~same) == (mask & ~same).T).all()


def test_set_recurrent_mask_prunes():
    m = HRSNN(1, 30, 1, 2.0, 5.0, recurrent_density=0.5, seed=0)
    mask = m.hidden.recurrent_mask.numpy().copy()
    mask[:, :10] = False
    m.set_recurrent_mask(mask)
    assert (m.lnp_arrays().W[:, :10] == 0).all() and m.to_arrays().projection("hidden_to_hidden").weight.nnz == mask.sum()
    with pytest.raises(NeurocompileError, match="shape"):
        m.set_recurrent_mask(np.ones((3, 3), bool))


def test_bad_settings_are_refused():
    with pytest.raises(NeurocompileError, match="recurrent_density"):
        HRSNN(1, 10, 1, 2.0, 5.0, recurrent_density=1.5)
    with pytest.raises(NeurocompileError, match="tau_mean"):
        HRSNN(1, 10, 1, 2.0, -1.0)
    with pytest.raises(NeurocompileError, match="reset"):
        HRSNN(1, 10, 1, 2.0, 5.0, reset="soft")
    with pytest.raises(NeurocompileError, match="tau_shapes"):
        CHRSNN(1, (5, 5), 1, (2.0,), (5.0, 5.0))


# -- save / load -------------------------------------------------------------------


def trained_model() -> CHRSNN:
    """A model whose parameters all moved off their seeded values (so loading cannot just rebuild it)."""
    m = CHRSNN(3, (10, 14), 2, (2.0, None), (4.0, 9.0), seed=5, bias_std=0.1, readout_leak=0.2)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0))
    m(x).readout.square().sum().backward()
    opt.step()
    m.clamp_to_chip_ranges_()
    mask = m.hidden.recurrent_mask.numpy().copy()
    mask[0] = False
    m.set_recurrent_mask(mask)
    return m


def test_save_load_round_trip_is_bit_exact(tmp_path):
    m = trained_model()
    save_rsnn(m, tmp_path / "a.zip")
    m2 = load_rsnn(tmp_path / "a.zip")
    assert type(m2) is CHRSNN and m2.config == m.config
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype
        assert sd[k].numpy().tobytes() == sd2[k].numpy().tobytes(), k
    x = torch.randn(3, 8, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(m(x).readouts, m2(x).readouts)
    save_rsnn(m2, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()  # deterministic bytes


def test_save_load_float64(tmp_path):
    m = HRSNN(2, 10, 1, 2.0, 5.0, seed=0, dtype=torch.float64)
    save_rsnn(m, tmp_path / "m.zip")
    m2 = load_rsnn(tmp_path / "m.zip")
    assert m2.hidden.leak.dtype == torch.float64 and torch.equal(m2.hidden.leak, m.hidden.leak)


def rewrite(src, dst, *, header=None, arrays=None, drop=(), extra=None):
    """Copy a saved model, changing its header or arrays."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if header is not None:
        h = json.loads(members["rsnn.json"])
        header(h)
        members["rsnn.json"] = json.dumps(h).encode()
    for name, a in (arrays or {}).items():
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=True)
        members[f"{name}.npy"] = buf.getvalue()
    for name in drop:
        del members[name]
    members.update(extra or {})
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


def test_corrupted_files_are_refused(tmp_path):
    m = trained_model()
    good = tmp_path / "good.zip"
    save_rsnn(m, good)
    leak = m.hidden.leak.detach().numpy()
    w = m.hidden.recurrent_weight.detach().numpy()
    off_mask = w.copy()
    off_mask[~m.hidden.recurrent_mask.numpy()] = 0.5
    cases = {  # name: (how to damage the file, what the message must mention)
        "not a zip": (lambda p: p.write_bytes(b"hello"), "not a zip"),
        "truncated": (lambda p: p.write_bytes(good.read_bytes()[:300]), "zip"),
        "format": (lambda p: rewrite(good, p, header=lambda h: h.update(format="other")), "format"),
        "version": (lambda p: rewrite(good, p, header=lambda h: h.update(version=99)), "version 99"),
        "dtype": (lambda p: rewrite(good, p, header=lambda h: h.update(dtype="int8")), "dtype 'int8'"),
        "kind": (lambda p: rewrite(good, p, header=lambda h: h.update(kind="LSTM")), "kind 'LSTM'"),
        "config field": (lambda p: rewrite(good, p, header=lambda h: h["config"].pop("seed")), "fields"),
        "config value": (lambda p: rewrite(good, p, header=lambda h: h["config"].update(rewire=3)), "rewire"),
        "missing": (lambda p: rewrite(good, p, drop=["hidden.leak.npy"]), "'hidden.leak' is missing"),
        "extra": (lambda p: rewrite(good, p, extra={"evil.py": b"print(1)"}), "unexpected member 'evil.py'"),
        "shape": (lambda p: rewrite(good, p, arrays={"hidden.leak": leak[:-1]}), "expected float32[24]"),
        "dtype64": (lambda p: rewrite(good, p, arrays={"hidden.leak": leak.astype(np.float64)}), "is float64[24]"),
        "nan": (lambda p: rewrite(good, p, arrays={"hidden.leak": np.where(np.arange(24) == 0, np.nan, leak).astype(np.float32)}),
                "NaN"),
        "range": (lambda p: rewrite(good, p, arrays={"hidden.leak": (leak * 0 + 2).astype(np.float32)}), "outside (0.0, 1.0]"),
        "pickle": (lambda p: rewrite(good, p, arrays={"hidden.leak": np.array([{"a": 1}] * 24, dtype=object)}), "pickle"),
        "mask": (lambda p: rewrite(good, p, arrays={"hidden.recurrent_weight": off_mask}), "no synapse"),
        "directory": (lambda p: p.mkdir(), "directory"),
    }
    for name, (make, expected) in cases.items():
        p = tmp_path / f"{name.replace(' ', '_')}.zip"
        make(p)
        with pytest.raises(NeurocompileError) as e:
            load_rsnn(p)
        msg = str(e.value)
        assert "\n" not in msg and str(p) in msg and expected in msg, (name, msg)


def test_pruned_keeps_the_chosen_neurons_and_synapses(tmp_path):
    m = CHRSNN(3, (10, 10, 10), 2, (2.0, 3.0, 4.0), (4.0, 6.0, 8.0), seed=1, bias_std=0.2, readout_leak=0.1)
    full = m.lnp_arrays()
    same = m.pruned(np.arange(30), sp.csr_matrix(full.W * full.mask))
    x = torch.randn(2, 9, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(same(x).readouts, m(x).readouts)
    kept = np.array([0, 3, 4, 12, 13, 14, 15, 29])
    w = sp.random(8, 8, density=0.4, random_state=0, format="csr")
    w.data[0] = 0.0  # a stored zero is still a synapse
    p = m.pruned(kept, w)
    a = p.lnp_arrays()
    assert type(p) is CHRSNN and p.config.cluster_sizes == (3, 4, 1) and p.n_hidden == 8
    np.testing.assert_array_equal(a.tau, full.tau[kept])
    np.testing.assert_array_equal(a.W, w.toarray().astype(np.float32))
    assert a.mask.sum() == w.nnz
    np.testing.assert_array_equal(a.W_in, full.W_in[kept])
    np.testing.assert_array_equal(a.W_out, full.W_out[:, kept])
    save_rsnn(p, tmp_path / "p.zip")
    q = load_rsnn(tmp_path / "p.zip")
    for k, v in p.state_dict().items():
        assert torch.equal(v, q.state_dict()[k]), k
    with pytest.raises(NeurocompileError, match="increasing"):
        m.pruned(np.array([3, 1]), np.zeros((2, 2)))
    with pytest.raises(NeurocompileError, match="shape"):
        m.pruned(kept, np.zeros((3, 3)))
