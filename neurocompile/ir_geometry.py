"""Index geometry of the IR's convolutions: output sizes and the unrolled (out, in) matrix.

It sits below :mod:`neurocompile.ir` because ``Projection.matrix`` needs it
and the IR must not import the front end (which imports the IR). The front
end's :mod:`neurocompile.frontend.linear_maps` re-exports both functions.
Only numpy and scipy here: a convolution is described by any object with
the fields of :class:`neurocompile.ir.ConvSpec` (:class:`ConvGeometry`).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp


class ConvGeometry(Protocol):
    """What a conv's geometry must provide (``neurocompile.ir.ConvSpec`` does)."""

    in_shape: tuple[int, int, int]  # (C, H, W)
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int


def conv_output_hw(h: int, w: int, k: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    return ((h + 2 * padding[0] - k[0]) // stride[0] + 1, (w + 2 * padding[1] - k[1]) // stride[1] + 1)


def conv_matrix(kernel: np.ndarray, spec: ConvGeometry) -> sp.csr_matrix:
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
