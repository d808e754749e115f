"""Applying a projection to a batch, the one place every simulator does it.

Integer (quantised) data runs in float32 or float64 as the caller chooses
(sim/engine.py picks float32 only where the worst-case sum stays below 2^24,
so every result is an exact integer).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..ir import ConvSpec, Projection


def weight_tensor(proj: Projection, dtype: torch.dtype) -> torch.Tensor:
    """The projection's weights as a torch tensor (sparse CSR for sparse projections)."""
    w = proj.weight
    if proj.kind == "sparse":
        # CSR: ~6x faster than COO for (sparse W) @ (dense batch) on CPU (measured, torch 2.13)
        m = sp.csr_matrix(w)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the matmul used here is stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
                torch.from_numpy(np.asarray(m.data)).to(dtype), m.shape, check_invariants=False,
            )
    return torch.from_numpy(np.asarray(w)).to(dtype)


def project(proj: Projection, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, n_in) → (B, n_out) through ``w`` (as made by :func:`weight_tensor`)."""
    if x.dtype != w.dtype:
        x = x.to(w.dtype)
    if proj.kind == "conv":
        spec = proj.conv
        y = F.conv2d(x.reshape(x.shape[0], *spec.in_shape), w, None, spec.stride, spec.padding, 1, spec.groups)
        return y.reshape(x.shape[0], -1)
    if proj.kind == "sparse":
        return (w @ x.T).T
    return x @ w.T


def _block_size(kernel: np.ndarray, axis: int, k: int, stride: int, pad: int, n_in: int, n_out: int) -> int:
    """The largest d > 1 with the kernel constant on aligned d-blocks along ``axis`` that a sum pool can take over, else 1."""
    for d in range(math.gcd(k, stride, pad), 1, -1):
        if k % d or stride % d or pad % d:
            continue
        # the pool drops n_in % d trailing rows: exact only where the conv never reads them
        if n_in % d and stride * (n_out - 1) - pad + k - 1 >= d * (n_in // d):
            continue
        blocks = np.moveaxis(kernel, axis, -1).reshape(*np.delete(kernel.shape, axis), k // d, d)
        if (blocks == blocks[..., :1]).all():
            return d
    return 1


def pooled_conv(kernel: np.ndarray, spec: ConvSpec, dtype: torch.dtype):
    """A conv whose kernel is constant on aligned d×d blocks as (block kernel, d, stride, padding), else None.

    AvgPool(d) then Conv composes into such a kernel (frontend/linear_maps.compose);
    a sum pool then the d²-times smaller conv is the same integer sum with
    ~d² fewer multiply-adds (in float the same sum up to rounding order).
    """
    w = np.asarray(kernel)
    (_, h, wd), (_, ho, wo) = spec.in_shape, spec.out_shape
    d = (_block_size(w, 2, w.shape[2], spec.stride[0], spec.padding[0], h, ho),
         _block_size(w, 3, w.shape[3], spec.stride[1], spec.padding[1], wd, wo))
    if d == (1, 1):
        return None
    stride = (spec.stride[0] // d[0], spec.stride[1] // d[1])
    padding = (spec.padding[0] // d[0], spec.padding[1] // d[1])
    kernel = w[:, :, :: d[0], :: d[1]]
    pooled = (h // d[0], wd // d[1])
    if ((pooled[0] + 2 * padding[0] - kernel.shape[2]) // stride[0] + 1,
            (pooled[1] + 2 * padding[1] - kernel.shape[3]) // stride[1] + 1) != (ho, wo):
        return None
    return torch.from_numpy(np.ascontiguousarray(kernel)).to(dtype), d, stride, padding
