"""Map a captured ATen graph onto the network IR.

The graph is interpreted symbolically: every tensor is an *affine value*, a
sum of linear-op chains applied to populations plus a constant. ReLU is where
a new spiking population is born (its incoming chains become projections,
its constant becomes the bias); the graph's output becomes the readout
population. BatchNorm is folded into the conv/linear before it, average
pooling is a depthwise conv, dropout/flatten/reshape are free. A chain that
is exactly one convolution (e.g. pool then conv, or a residual add of convs)
stays a conv projection; other chains become matrices. Anything else
is refused with the op, the node and the supported list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..errors import NeurocompileError
from ..ir import ConvSpec, Network, Population, Projection
from ..ir_geometry import conv_matrix, conv_output_hw
from .linear_maps import (
    FullConv, add, avgpool_kernel, channel_scale_conv, channel_scale_matrix, compose, full_conv,
    grouped, identity_conv,
)

aten = torch.ops.aten


# -- linear ops on flattened tensors ----------------------------------------
@dataclass(frozen=True)
class Conv:
    kernel: np.ndarray
    spec: ConvSpec
    pool: str = ""  # the avg_pool2d node it came from, if any: a fixed kernel, not a model weight

    def matrix(self) -> sp.csr_matrix:
        return conv_matrix(self.kernel, self.spec)


@dataclass(frozen=True)
class Linear:
    weight: np.ndarray  # (out, in)

    def matrix(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.weight)


@dataclass(frozen=True)
class ChannelScale:
    scale: np.ndarray
    shape: tuple[int, ...]

    def matrix(self) -> sp.csr_matrix:
        return channel_scale_matrix(self.scale, self.shape)


LinOp = Conv | Linear | ChannelScale
PoolMode = Literal["compose", "population"]


def _full(op: LinOp) -> FullConv | None:
    if isinstance(op, Conv):
        return full_conv(op.kernel, op.spec)
    if isinstance(op, ChannelScale) and len(op.shape) == 3:
        return channel_scale_conv(op.scale, op.shape)
    return None


def _chain_conv(chain: list[LinOp], shape: tuple[int, ...]) -> FullConv | None:
    """The chain as one exact conv, or None (a Linear, a reshape between convs, an inexact composition)."""
    if not chain:
        return identity_conv(shape) if len(shape) == 3 else None
    total = _full(chain[0])
    for op in chain[1:]:
        nxt = _full(op)
        if total is None or nxt is None:
            return None
        total = compose(total, nxt)
    return total


def _terms_conv(terms: list[Term], shape: tuple[int, ...]) -> tuple[np.ndarray, ConvSpec] | None:
    """Several chains from one source summed into one conv kernel, where that is exact."""
    if not any(isinstance(op, Conv) for t in terms for op in t.chain):
        return None  # no conv to keep: BN scales and identities alone stay (diagonal) matrices
    total = None
    for t in terms:
        c = _chain_conv(t.chain, shape)
        if c is None:
            return None
        total = c if total is None else add(total, c)
        if total is None:
            return None
    return grouped(total)


@dataclass
class Term:
    source: str
    chain: list[LinOp] = field(default_factory=list)


@dataclass
class Affine:
    """sum_k chain_k(population_k) + const, with ``shape`` excluding the batch."""

    terms: list[Term]
    const: torch.Tensor  # float64, shape == self.shape
    shape: tuple[int, ...]

    def map(self, op: LinOp | None, const_fn: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]) -> "Affine":
        terms = [Term(t.source, t.chain + ([op] if op is not None else [])) for t in self.terms]
        return Affine(terms, const_fn(self.const), shape)


SUPPORTED = "linear, conv2d, batch_norm (folded), relu, avg_pool2d, flatten/view/reshape, dropout (removed), add (residual)"


def _fold_scale(a: Affine, scale: np.ndarray, shift: np.ndarray) -> Affine:
    """Per-channel affine (BatchNorm): fold into the preceding conv/linear where there is one."""
    terms = []
    for t in a.terms:
        last = t.chain[-1] if t.chain else None
        if isinstance(last, Conv):
            folded = Conv(last.kernel * scale[:, None, None, None], last.spec)
        elif isinstance(last, Linear):
            folded = Linear(last.weight * scale[:, None])
        else:
            terms.append(Term(t.source, t.chain + [ChannelScale(scale, a.shape)]))
            continue
        terms.append(Term(t.source, t.chain[:-1] + [folded]))
    view = (-1,) + (1,) * (len(a.shape) - 1)
    const = a.const * torch.from_numpy(scale).reshape(view) + torch.from_numpy(shift).reshape(view)
    return Affine(terms, const, a.shape)


class _Capture:
    def __init__(self, ep: torch.export.ExportedProgram, pool: PoolMode = "compose"):
        self.ep = ep
        self.pool = pool
        self.populations: list[Population] = []
        self.projections: list[Projection] = []
        self.env: dict[str, object] = {}
        sig = ep.graph_signature
        self.params = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
        self.user_inputs = list(sig.user_inputs)
        self.weighted: dict[str, bool] = {"input": False}  # population -> depends on a model weight

    def check_weights(self) -> None:
        """Refuse non-finite parameters and buffers before any compute (fp16/bf16/fp64 are fine: cast later)."""
        named = list(self.ep.state_dict.items()) + [(k, v) for k, v in self.ep.constants.items() if isinstance(v, torch.Tensor)]
        for name, t in named:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
                layer = name.rsplit(".", 1)[0] if "." in name else name
                raise NeurocompileError(
                    f"model weights contain NaN/Inf in layer {layer!r} ({name}); fix or retrain the model and export it again"
                )

    # -- helpers ---------------------------------------------------------
    def tensor(self, name: str) -> np.ndarray:
        key = self.params[name]
        t = self.ep.state_dict[key] if key in self.ep.state_dict else self.ep.constants[key]
        return t.detach().to(torch.float64).cpu().numpy()

    def value(self, arg):
        if isinstance(arg, torch.fx.Node) and arg.name not in self.params:
            return self.env[arg.name]
        return arg

    @staticmethod
    def _learned(op: LinOp) -> bool:
        return not (isinstance(op, Conv) and op.pool)

    def new_population(self, name: str, a: Affine, kind: str) -> Affine:
        self.weighted[name] = any(self.weighted.get(t.source, False) or any(self._learned(op) for op in t.chain) for t in a.terms)
        by_source: dict[str, list[Term]] = {}
        for t in a.terms:
            by_source.setdefault(t.source, []).append(t)
        for src, terms in by_source.items():
            self.projections.append(self._projection(f"{src}->{name}", src, name, terms, a.shape))
        bias = a.const.reshape(-1).numpy().copy()
        self.populations.append(Population(name=name, shape=tuple(a.shape), kind=kind, bias=bias))
        return Affine([Term(name)], torch.zeros(a.shape, dtype=torch.float64), a.shape)

    def _projection(self, name: str, src: str, dst: str, terms: list[Term], shape) -> Projection:
        if len(terms) == 1 and len(terms[0].chain) == 1:
            op = terms[0].chain[0]
            if isinstance(op, Conv):
                return Projection(name, src, dst, "conv", op.kernel.astype(np.float32), conv=op.spec)
            if isinstance(op, Linear):
                return Projection(name, src, dst, "dense", op.weight.astype(np.float32))
        conv = _terms_conv(terms, tuple(shape))
        if conv is not None:
            kernel, spec = conv
            return Projection(name, src, dst, "conv", kernel.astype(np.float32), conv=spec)
        n_in = next(p.size for p in self.populations if p.name == src)
        total = sp.csr_matrix((int(np.prod(shape)), n_in))
        for t in terms:
            m = sp.identity(n_in, format="csr")
            for op in t.chain:
                m = op.matrix() @ m
            total = total + m
        total = sp.csr_matrix(total, dtype=np.float32)
        total.eliminate_zeros()
        if total.nnz >= 0.25 * total.shape[0] * total.shape[1]:
            return Projection(name, src, dst, "dense", total.toarray())
        return Projection(name, src, dst, "sparse", total)

    def refuse(self, node: torch.fx.Node, why: str = "") -> None:
        op = getattr(node.target, "__name__", str(node.target))
        extra = f" ({why})" if why else ""
        hint = "; max-pooling has no exact spiking equivalent: use AvgPool2d" if "max_pool" in op else ""
        raise NeurocompileError(f"unsupported op {op} at node {node.name!r}{extra}{hint}; supported: {SUPPORTED}")

    # -- ops ---------------------------------------------------------------
    def run(self) -> Network:
        self.check_weights()
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in self.user_inputs:
                    if len(self.user_inputs) != 1:
                        raise NeurocompileError(f"the model takes {len(self.user_inputs)} inputs; exactly one is supported")
                    shape = tuple(int(s) for s in node.meta["val"].shape[1:])
                    self.batch = node.meta["val"].shape[0]  # an int, or a symbol for a dynamic batch
                    self.populations.append(Population(name="input", shape=shape, kind="input"))
                    self.env[node.name] = Affine([Term("input")], torch.zeros(shape, dtype=torch.float64), shape)
                continue
            if node.op == "output":
                outs = node.args[0]
                if len(outs) != 1:
                    raise NeurocompileError(f"the model returns {len(outs)} outputs; exactly one is supported")
                out = self.value(outs[0])
                if not isinstance(out, Affine):
                    raise NeurocompileError("the model output does not depend on its input")
                if len(out.shape) != 1:
                    raise NeurocompileError(f"the model output has shape {out.shape}; a flat vector of class scores is expected")
                self.new_population("output", out, "readout")
                if not self.weighted["output"]:
                    raise NeurocompileError(
                        "the model has no layers with weights (its output is its input passed through "
                        "reshape/pool/relu only); a network needs at least one Linear or Conv2d layer"
                    )
                continue
            if node.op != "call_function":
                self.refuse(node)
            try:
                self.env[node.name] = self.call(node)
            except NeurocompileError:
                raise
            except Exception as e:  # an op form we did not anticipate: refuse it, naming the node
                self.refuse(node, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        net = Network(tuple(self.populations), tuple(self.projections), inputs=("input",), outputs=("output",))
        net.validate()
        return net

    def call(self, node: torch.fx.Node):
        """Dispatch through :data:`OP_HANDLERS`: an op with no handler is refused, naming it and the supported list."""
        handler = OP_HANDLERS.get(node.target)
        if handler is None:
            self.refuse(node)
        args = [self.value(a) for a in node.args]
        if handler is _Capture.identity:
            return args[0]
        if not isinstance(args[0], Affine):
            self.refuse(node, "applied to a constant")
        return handler(self, node, args[0], args)

    def identity(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        """Ops that are the identity at inference (dropout, copies, detach)."""
        return x

    def relu(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        return self.new_population(node.name, x, "spiking")

    def linear(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        if node.target == aten.addmm.default:
            self.refuse(node, "decomposed graph: export without run_decompositions")
        w = self.tensor(node.args[1].name)
        b = self.tensor(node.args[2].name) if len(node.args) > 2 and node.args[2] is not None else np.zeros(w.shape[0])
        if len(x.shape) != 1:
            self.refuse(node, f"linear over the last axis of a {len(x.shape) + 1}-D tensor; flatten first")
        wt = torch.from_numpy(w)
        return x.map(Linear(w), lambda c: wt @ c + torch.from_numpy(b), (w.shape[0],))

    def convolution(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        return self.conv(node, x)

    def batch_norm(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        """Folded into the linear map before it (inference statistics only)."""
        t = node.target
        g, b, mean, var = (self.tensor(a.name) if a is not None else None for a in node.args[1:5])
        eps = node.args[-1] if t == aten._native_batch_norm_legit_no_training.default else node.args[7]
        if t == aten.batch_norm.default and node.args[5]:
            self.refuse(node, "batch norm in training mode: call model.eval() before export")
        c = x.shape[0]
        g = np.ones(c) if g is None else g
        b = np.zeros(c) if b is None else b
        scale = g / np.sqrt(var + eps)
        return _fold_scale(x, scale, b - mean * scale)

    def avg_pool(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        """A depthwise conv with a constant kernel (composed into the next conv where exact)."""
        k = tuple(node.args[1]) if len(node.args[1]) == 2 else (node.args[1][0],) * 2
        stride = tuple(node.args[2]) if len(node.args) > 2 and node.args[2] else k
        stride = stride if len(stride) == 2 else stride * 2
        pad = tuple(node.args[3]) if len(node.args) > 3 else (0, 0)
        pad = pad if len(pad) == 2 else pad * 2
        if pad != (0, 0) or (len(node.args) > 4 and node.args[4]):
            self.refuse(node, "only avg_pool2d without padding or ceil_mode")
        return self.conv_op(x, avgpool_kernel(x.shape[0], k), None, stride, (0, 0), x.shape[0], pool=node.name)

    def reshape(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        """Free: the IR's values are flat; only a reshape that keeps samples apart is accepted."""
        val = node.meta["val"].shape
        if len(val) < 1 or str(val[0]) != str(self.batch) or int(np.prod([int(s) for s in val[1:]])) != int(np.prod(x.shape)):
            self.refuse(node, "a reshape that mixes samples (keep the batch dimension first)")
        shape = tuple(int(s) for s in val[1:])
        return Affine(x.terms, x.const.reshape(shape), shape)

    def add(self, node: torch.fx.Node, x: Affine, args: list) -> Affine:
        """Residual adds (two affine values of one shape) and adding a scalar."""
        y = args[1]
        alpha = node.kwargs.get("alpha", 1)
        if isinstance(y, Affine) and alpha == 1 and y.shape == x.shape:
            return Affine(x.terms + y.terms, x.const + y.const, x.shape)
        if isinstance(y, (int, float)):
            return Affine(x.terms, x.const + y * alpha, x.shape)
        self.refuse(node, "only residual adds of equal shapes or adding a scalar")

    def conv(self, node: torch.fx.Node, x: Affine) -> Affine:
        a = node.args
        w = self.tensor(a[1].name)
        b = self.tensor(a[2].name) if len(a) > 2 and a[2] is not None else None
        stride = tuple(a[3]) if len(a) > 3 else (1, 1)
        padding = a[4] if len(a) > 4 else (0, 0)
        dilation = tuple(a[5]) if len(a) > 5 else (1, 1)
        if node.target == aten.convolution.default:
            if a[6]:
                self.refuse(node, "transposed convolution")
            groups = a[8]
        else:
            groups = a[6] if len(a) > 6 else 1
        if isinstance(padding, str) or tuple(dilation) not in ((1, 1), (1,)):
            self.refuse(node, "only integer padding and dilation 1")
        padding = tuple(padding) if len(padding) == 2 else tuple(padding) * 2
        stride = stride if len(stride) == 2 else stride * 2
        if self.pool == "population":
            x = self.pool_population(x)
        return self.conv_op(x, w, b, stride, padding, groups)

    def pool_population(self, x: Affine) -> Affine:
        """A pooled map about to enter a conv becomes a spiking population of its own (``pool="population"``).

        Only where that is exact for the ANN: the pool's input is a ReLU
        population (no constant), so the pooled values are ≥ 0 and a ReLU on
        them changes nothing.
        """
        pools = [t.chain[0].pool for t in x.terms if len(t.chain) == 1 and isinstance(t.chain[0], Conv)]
        if (len(pools) != len(x.terms) or not all(pools) or len(set(pools)) != 1 or bool(x.const.any())
                or any(t.source == "input" for t in x.terms)):
            return x
        return self.new_population(pools[0], x, "spiking")

    @staticmethod
    def conv_op(x: Affine, w: np.ndarray, b, stride, padding, groups, pool: str = "") -> Affine:
        c, h, wd = x.shape
        ho, wo = conv_output_hw(h, wd, w.shape[2:], stride, padding)
        out_shape = (w.shape[0], ho, wo)
        spec = ConvSpec(in_shape=(c, h, wd), out_shape=out_shape, stride=stride, padding=padding, groups=groups)
        wt = torch.from_numpy(w)
        bt = torch.from_numpy(b) if b is not None else None
        return x.map(Conv(w, spec, pool), lambda cst: F.conv2d(cst[None], wt, bt, stride, padding, 1, groups)[0], out_shape)


OP_HANDLERS: dict[object, Callable[..., Affine]] = {
    **dict.fromkeys((aten.dropout.default, aten.dropout_.default, aten.clone.default, aten.alias.default,
                     aten.contiguous.default, aten.detach.default, aten.feature_dropout.default), _Capture.identity),
    **dict.fromkeys((aten.relu.default, aten.relu_.default), _Capture.relu),
    **dict.fromkeys((aten.linear.default, aten.addmm.default), _Capture.linear),
    **dict.fromkeys((aten.conv2d.default, aten.convolution.default), _Capture.convolution),
    **dict.fromkeys((aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default), _Capture.batch_norm),
    aten.avg_pool2d.default: _Capture.avg_pool,
    **dict.fromkeys((aten.flatten.using_ints, aten.view.default, aten.reshape.default, aten._unsafe_view.default), _Capture.reshape),
    **dict.fromkeys((aten.add.Tensor, aten.add_.Tensor), _Capture.add),
}
"""ATen op → handler. A new op is one method of ``_Capture`` and one entry here; everything else is refused."""


def capture(ep: torch.export.ExportedProgram, pool: PoolMode = "compose") -> Network:
    """The IR of an exported ANN (float weights, thresholds not yet set).

    ``pool``: what an average pooling that feeds a conv becomes. ``"compose"``
    folds it into the conv (one strided kernel, see linear_maps.compose);
    ``"population"`` gives the pooled map a spiking population of its own.
    Compose is the default: it is exactly the model's linear map, so the SNN
    fires spike for spike as with the unrolled matrix before it, while a
    pooling population re-quantises the pooled map into spikes and adds a
    step of latency. Measured on the MNIST CNN of bench/pool_conv.py (fixed
    point, T = 8/16/32): compose keeps the unrolled accuracy (0.924/0.962/0.965)
    on 6 loihi2 cores instead of 72, at ~9x the reference engine's speed; the
    population loses accuracy at short T (0.854/0.959/0.964) but has 3x fewer
    synapses (1.19 M vs 3.64 M) and a third less dynamic energy, so it is the
    choice for energy-bound runs at T >= 16. (The energy model's static part
    favours the population too: map_to_cores packs the composed layer's
    2,048 neurons onto one core, whose synaptic work then sets the latency.)

    Every refusal is a one-line NeurocompileError; so is a program whose structure is
    damaged in a way no op handler anticipated (e.g. a placeholder without metadata).
    """
    if pool not in ("compose", "population"):
        raise NeurocompileError(f"unknown pool mode {pool!r}: expected 'compose' or 'population'")
    try:
        return _Capture(ep, pool).run()
    except NeurocompileError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed program, reported on one line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise NeurocompileError(
            f"the exported program could not be mapped onto the network IR ({type(e).__name__}: {msg[:160]}); "
            f"supported: {SUPPORTED}"
        ) from None
