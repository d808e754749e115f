"""Linear maps between flattened (C, H, W) tensors as sparse matrices.

Between two spiking populations a network may apply several linear ops
(conv, BN scale, average pooling, flatten, linear). The hardware sees one
synaptic map per projection, so chains are composed here: into one conv
kernel wherever that is exactly the same map (weight sharing keeps synaptic
memory small on the chip and lets the simulators run ``conv2d``), into CSR
otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..ir import ConvSpec
from ..ir_geometry import conv_output_hw


def avgpool_kernel(channels: int, k: tuple[int, int]) -> np.ndarray:
    """Average pooling is a depthwise conv with a constant kernel."""
    return np.full((channels, 1, k[0], k[1]), 1.0 / (k[0] * k[1]))


def channel_scale_matrix(scale: np.ndarray, shape: tuple[int, ...]) -> sp.csr_matrix:
    """Diagonal matrix scaling each channel of a (C, ...) tensor."""
    per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return sp.diags(np.repeat(scale, per)).tocsr()


# -- exact composition of convolutions ---------------------------------------
# Pool-then-conv unrolled into one matrix is 4x the synapses of the two ops
# (and too big for the simulators' int8 path); composed into one strided
# kernel it stays weight-shared. Groups are easiest to compose with every
# channel pair present, so the composition works on "full" kernels and puts
# the groups back at the end.


@dataclass(frozen=True)
class FullConv:
    """A conv with a (C_out, C_in, kh, kw) kernel over all channel pairs.

    ``links`` marks the channel pairs the original groups connect: groups are
    recovered from it, not from the values, so a zero weight never changes them.
    """

    kernel: np.ndarray
    links: np.ndarray  # (C_out, C_in) bool
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def full_conv(kernel: np.ndarray, spec: ConvSpec) -> FullConv:
    cout, cin, g = spec.out_shape[0], spec.in_shape[0], spec.groups
    links = (np.arange(cout)[:, None] // (cout // g)) == (np.arange(cin)[None, :] // (cin // g))
    full = np.zeros((cout, cin, *kernel.shape[2:]), dtype=np.float64)
    co, ci = np.nonzero(links)
    full[co, ci] = kernel[co, ci % (cin // g)]
    return FullConv(full, links, spec.in_shape, spec.out_shape, spec.stride, spec.padding)


def channel_scale_conv(scale: np.ndarray, shape: tuple[int, int, int]) -> FullConv:
    """A per-channel scale (unfolded BatchNorm) as a 1x1 depthwise conv."""
    c = shape[0]
    kernel = np.zeros((c, c, 1, 1))
    kernel[np.arange(c), np.arange(c), 0, 0] = scale
    return FullConv(kernel, np.eye(c, dtype=bool), shape, shape, (1, 1), (0, 0))


def _axis_exact(n_in: int, k1: int, q: int, p1: int, n_mid: int, k2: int, s: int, p2: int, n_out: int) -> bool:
    """Whether conv2 (k2, s, p2) after conv1 (k1, q, p1) equals one conv along one axis.

    The composed conv reads ``x`` where conv2 reads conv1's zero padding; that
    is exact only where those reads land in ``x``'s own zero padding: on the
    left when ``k1 <= q + p1`` (e.g. a non-overlapping pool), on the right when
    ``q·n_mid - p1 >= n_in`` (e.g. a pool that drops no trailing rows).
    """
    left = p2 == 0 or k1 <= q + p1
    reaches_right = s * (n_out - 1) - p2 + k2 - 1 >= n_mid
    right = not reaches_right or q * n_mid - p1 >= n_in
    return left and right


def compose(first: FullConv, second: FullConv) -> FullConv | None:
    """``second(first(x))`` as one conv, or None where that is not exactly the same map.

    Kernel ``k1 + (k2 - 1)·q``, stride ``q·s``, padding ``p1 + p2·q`` per
    axis (q, p1: the first's stride and padding); tap ``q·t + j`` sums
    ``w2[t]·w1[j]``. For AvgPool(k) then Conv(K, s, p): kernel ``k·K``,
    stride ``k·s``, padding ``k·p``, each tap ``w/k²``.
    """
    if first.out_shape != second.in_shape:  # a reshape between the two
        return None
    (_, h, w), (_, hm, wm), (_, ho, wo) = first.in_shape, first.out_shape, second.out_shape
    (k1h, k1w), (k2h, k2w) = first.kernel.shape[2:], second.kernel.shape[2:]
    (qh, qw), (sh, sw) = first.stride, second.stride
    (p1h, p1w), (p2h, p2w) = first.padding, second.padding
    if not (_axis_exact(h, k1h, qh, p1h, hm, k2h, sh, p2h, ho) and _axis_exact(w, k1w, qw, p1w, wm, k2w, sw, p2w, wo)):
        return None
    kh, kw = k1h + (k2h - 1) * qh, k1w + (k2w - 1) * qw
    stride, padding = (qh * sh, qw * sw), (p1h + p2h * qh, p1w + p2w * qw)
    if conv_output_hw(h, w, (kh, kw), stride, padding) != (ho, wo):
        return None
    kernel = np.zeros((second.kernel.shape[0], first.kernel.shape[1], kh, kw))
    for th in range(k2h):
        for tw in range(k2w):
            # every (out, in) channel pair at once: (C_out, C_mid) @ (C_mid, C_in, k1h, k1w)
            kernel[:, :, th * qh:th * qh + k1h, tw * qw:tw * qw + k1w] += np.einsum(
                "om,mihw->oihw", second.kernel[:, :, th, tw], first.kernel)
    links = (second.links.astype(np.int64) @ first.links.astype(np.int64)) > 0
    return FullConv(kernel, links, first.in_shape, second.out_shape, stride, padding)


def add(a: FullConv, b: FullConv) -> FullConv | None:
    """``a(x) + b(x)`` as one conv (a residual add), or None where their geometries differ."""
    if a.in_shape != b.in_shape or a.out_shape != b.out_shape or a.stride != b.stride:
        return None
    padding = (max(a.padding[0], b.padding[0]), max(a.padding[1], b.padding[1]))
    offsets = [(padding[0] - c.padding[0], padding[1] - c.padding[1]) for c in (a, b)]
    kh = max(o[0] + c.kernel.shape[2] for o, c in zip(offsets, (a, b)))
    kw = max(o[1] + c.kernel.shape[3] for o, c in zip(offsets, (a, b)))
    if conv_output_hw(*a.in_shape[1:], (kh, kw), a.stride, padding) != a.out_shape[1:]:
        return None
    kernel = np.zeros((*a.kernel.shape[:2], kh, kw))
    for (oh, ow), c in zip(offsets, (a, b)):
        kernel[:, :, oh:oh + c.kernel.shape[2], ow:ow + c.kernel.shape[3]] += c.kernel
    return FullConv(kernel, a.links | b.links, a.in_shape, a.out_shape, a.stride, padding)


def identity_conv(shape: tuple[int, int, int]) -> FullConv:
    return channel_scale_conv(np.ones(shape[0]), shape)


def grouped(c: FullConv) -> tuple[np.ndarray, ConvSpec]:
    """The kernel and spec with the most groups the channel links allow (fewest synapses)."""
    cout, cin = c.links.shape
    for g in sorted((d for d in range(1, math.gcd(cout, cin) + 1) if cout % d == 0 and cin % d == 0), reverse=True):
        blocks = (np.arange(cout)[:, None] // (cout // g)) == (np.arange(cin)[None, :] // (cin // g))
        if not (c.links & ~blocks).any():
            break
    cpg = cin // g
    co = np.arange(cout)
    first_in = (co // (cout // g)) * cpg
    kernel = np.stack([c.kernel[co, first_in + i] for i in range(cpg)], axis=1)
    return kernel, ConvSpec(c.in_shape, c.out_shape, c.stride, c.padding, g)
