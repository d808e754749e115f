"""Conv/pool as sparse matrices, against torch's own conv2d."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from neurocompile.frontend.linear_maps import avgpool_kernel
from neurocompile.ir_geometry import conv_matrix, conv_output_hw
from neurocompile.ir import ConvSpec


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    cin_per=st.integers(1, 3),
    cout_per=st.integers(1, 3),
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    seed=st.integers(0, 1000),
)
def test_conv_matrix_matches_conv2d(groups, cin_per, cout_per, h, w, k, stride, pad, seed):
    g = torch.Generator().manual_seed(seed)
    cin, cout = cin_per * groups, cout_per * groups
    kernel = torch.randn(cout, cin_per, k, k, generator=g, dtype=torch.float64)
    x = torch.randn(2, cin, h, w, generator=g, dtype=torch.float64)
    ho, wo = conv_output_hw(h, w, (k, k), (stride, stride), (pad, pad))
    spec = ConvSpec((cin, h, w), (cout, ho, wo), (stride, stride), (pad, pad), groups)
    m = conv_matrix(kernel.numpy(), spec)
    want = F.conv2d(x, kernel, None, stride, pad, 1, groups).reshape(2, -1).numpy()
    got = (m @ x.reshape(2, -1).numpy().T).T
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_avgpool_kernel_is_avg_pool2d():
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    spec = ConvSpec((3, 6, 6), (3, 3, 3), (2, 2), (0, 0), 3)
    got = conv_matrix(avgpool_kernel(3, (2, 2)), spec) @ x.reshape(-1).numpy()
    np.testing.assert_allclose(got, F.avg_pool2d(x, 2).reshape(-1).numpy())
