"""Linear maps between flattened (C, H, W) tensors as sparse matrices.

Between two spiking populations a network may apply several linear ops
(conv, BN scale, average pooling, flatten, linear). The hardware sees one
synaptic matrix per projection, so chains are composed here; a lone conv is
kept as a kernel (cheap to simulate), everything else becomes CSR.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..ir import ConvSpec


def conv_output_hw(h: int, w: int, k: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    return ((h + 2 * padding[0] - k[0]) // stride[0] + 1, (w + 2 * padding[1] - k[1]) // stride[1] + 1)


def conv_matrix(kernel: np.ndarray, spec: ConvSpec) -> sp.csr_matrix:
    """The (out, in) matrix of ``conv2d(x, kernel, stride, padding, groups)``.

    Built by index arithmetic (no probing), so it scales to MNIST-sized maps.
    Zero kernel entries and taps that fall into the padding are dropped.
    """
    cin, h, w = spec.in_shape
    cout, ho, wo = spec.out_shape
    g = spec.groups
    cpg_in, cpg_out = cin // g, cout // g
    _, kc, kh, kw = kernel.shape
    assert kc == cpg_in, "kernel channels do not match groups"
    co, ci, ky, kx, oy, ox = np.meshgrid(
        np.arange(cout), np.arange(kc), np.arange(kh), np.arange(kw), np.arange(ho), np.arange(wo), indexing="ij"
    )
    iy = oy * spec.stride[0] - spec.padding[0] + ky
    ix = ox * spec.stride[1] - spec.padding[1] + kx
    cin_abs = (co // cpg_out) * cpg_in + ci
    vals = kernel[co, ci, ky, kx]
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w) & (vals != 0)
    rows = (co * ho + oy) * wo + ox
    cols = (cin_abs * h + iy) * w + ix
    m = sp.coo_matrix((vals[keep], (rows[keep], cols[keep])), shape=(cout * ho * wo, cin * h * w))
    return m.tocsr()


def avgpool_kernel(channels: int, k: tuple[int, int]) -> np.ndarray:
    """Average pooling is a depthwise conv with a constant kernel."""
    return np.full((channels, 1, k[0], k[1]), 1.0 / (k[0] * k[1]))


def channel_scale_matrix(scale: np.ndarray, shape: tuple[int, ...]) -> sp.csr_matrix:
    """Diagonal matrix scaling each channel of a (C, ...) tensor."""
    per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return sp.diags(np.repeat(scale, per)).tocsr()
