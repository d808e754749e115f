"""Front end: every supported op against the original torch model; every refusal."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from nc_testutils import export_pt2, export_ts, randomize_bn

from neurocompile.errors import NeurocompileError
from neurocompile.frontend import ingest
from neurocompile.sim.ann import ann_forward


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + x)


MODELS = {
    "linear": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (1, 8, 8)),
    "mlp_dropout": (lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10)), (64,)),
    "linear_bn": (lambda: nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)), (64,)),
    "conv_bn_pool": (
        lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)),
        (1, 8, 8),
    ),
    "strided_grouped": (
        lambda: nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 5)),
        (2, 8, 8),
    ),
    "residual": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), Residual(4), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)), (1, 8, 8)),
}


@pytest.mark.parametrize("fmt", ["pt2", "ts"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_ir_reproduces_the_model(tmp_path, name, fmt):
    torch.manual_seed(1)
    make, shape = MODELS[name]
    model = randomize_bn(make())
    path = (export_pt2 if fmt == "pt2" else export_ts)(model, tmp_path / f"m.{fmt}", shape)
    net = ingest(path, sample_shape=shape)
    x = torch.rand(16, *shape)
    with torch.no_grad():
        want = model(x).double()
    got = ann_forward(net, x)[net.output]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert net.population(net.input).shape == shape


def test_bn_is_folded_and_pool_composed(tmp_path):
    make, shape = MODELS["conv_bn_pool"]
    net = ingest(export_pt2(randomize_bn(make()), tmp_path / "m.pt2", shape))
    kinds = [(p.source, p.target, p.kind) for p in net.projections]
    # conv+BN folded into one conv; avg-pool + flatten + linear composed into one matrix
    assert kinds == [("input", "relu", "conv"), ("relu", "output", "dense")]
    assert net.projections[1].weight.shape == (10, 4 * 8 * 8)


def test_residual_add_gives_two_projections_into_one_population(tmp_path):
    make, shape = MODELS["residual"]
    net = ingest(export_pt2(make(), tmp_path / "m.pt2", shape))
    sources = sorted(pr.source for pr in net.incoming("relu_1"))
    assert sources == ["relu"]  # conv path and identity path from the same source are summed into one projection
    m = net.incoming("relu_1")[0].matrix().toarray()
    assert np.count_nonzero(np.diag(m)) == m.shape[0]  # the identity (skip) path is in there


def _refusal(path, **kw) -> str:
    with pytest.raises(NeurocompileError) as e:
        ingest(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_maxpool_is_refused_naming_op_node_and_supported_list(tmp_path):
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3))
    msg = _refusal(export_pt2(m, tmp_path / "m.pt2", (1, 8, 8)))
    assert "max_pool2d" in msg and "node" in msg and "avg_pool2d" in msg and "AvgPool2d" in msg


def test_unsupported_activation_is_refused(tmp_path):
    m = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
    msg = _refusal(export_pt2(m, tmp_path / "m.pt2", (4,)))
    assert "sigmoid" in msg and "supported:" in msg


def test_pickle_is_refused_unless_trusted(tmp_path):
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    torch.save(m, tmp_path / "m.pt")
    msg = _refusal(tmp_path / "m.pt", sample_shape=(4,))
    assert "pickle" in msg and "--trust-pickle" in msg and "torch.export" in msg
    net = ingest(tmp_path / "m.pt", sample_shape=(4,), trust_pickle=True)
    x = torch.rand(3, 4)
    assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-6)


def test_state_dict_needs_an_architecture(tmp_path):
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "sd.pt")
    msg = _refusal(tmp_path / "sd.pt", sample_shape=(4,))
    assert "state_dict" in msg and "architecture" in msg


def test_not_a_model_and_missing_file(tmp_path):
    (tmp_path / "x.pt2").write_text("hello")
    assert "not a PyTorch archive" in _refusal(tmp_path / "x.pt2")
    assert "does not exist" in _refusal(tmp_path / "nope.pt2")


def test_pickle_refusal_runs_no_code(tmp_path):
    """A malicious pickle must not execute while being refused."""
    marker = tmp_path / "pwned"
    code = (
        "import os, torch\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"torch.save(Evil(), r'{tmp_path / 'evil.pt'}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    _refusal(tmp_path / "evil.pt", sample_shape=(4,))
    assert not marker.exists()


def test_inplace_relu_and_dropout_are_accepted(tmp_path):
    m = nn.Sequential(nn.Linear(8, 6), nn.ReLU(inplace=True), nn.Dropout(0.2, inplace=True), nn.Linear(6, 3)).eval()
    for path in (export_pt2(m, tmp_path / "m.pt2", (8,)), export_ts(m, tmp_path / "m.pt", (8,))):
        net = ingest(path, sample_shape=(8,))
        x = torch.rand(5, 8)
        assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-6)


@pytest.mark.parametrize("dynamic", [False, True])
def test_exports_with_a_batch_other_than_one(tmp_path, dynamic):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 4)).eval()
    kw = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic else {}
    ep = torch.export.export(m, (torch.zeros(8, 1, 8, 8),), **kw)
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    net = ingest(tmp_path / "m.pt2")
    x = torch.rand(5, 1, 8, 8)
    assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-5)


def test_linear_over_a_non_flat_tensor_is_refused(tmp_path):
    class LastAxis(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(torch.relu(x)).sum(dim=1)

    msg = _refusal(export_pt2(LastAxis(), tmp_path / "m.pt2", (1, 8, 8)))
    assert "node" in msg and "supported:" in msg
