"""Shared fixtures: small real models exported the ways users export them."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

warnings.filterwarnings("ignore", module="torch")


from nc_testutils import export_pt2


@pytest.fixture(scope="session")
def digits():
    from neurocompile.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def trained_mlp(digits, tmp_path_factory):
    """A small MLP really trained on digits (a few seconds), exported as .pt2."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    x = torch.as_tensor(digits.x_train).reshape(len(digits.x_train), -1)
    y = torch.as_tensor(digits.y_train)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(40):
        m.train()
        for i in range(0, len(x), 128):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 128]), y[i : i + 128]).backward()
            opt.step()
    path = tmp_path_factory.mktemp("models") / "mlp.pt2"
    return export_pt2(m, path, (1, 8, 8)), m.eval()


@pytest.fixture(scope="session")
def backend():
    """The Lava backend, or a skip where lava-nc is not installed (tests using it are Lava tests)."""
    pytest.importorskip("lava")
    from neurocompile_lava.backend import LavaBackend

    b = LavaBackend()
    ok, why = b.available()
    if not ok:
        pytest.skip(why)
    return b


@pytest.fixture(scope="module")
def one_thread():
    """Step-by-step loops over small tensors are latency-bound: BLAS threads waiting on a busy CPU slow them ~30x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
