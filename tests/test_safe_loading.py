"""Hostile and broken input files: every one is refused with a one-line NeurocompileError, no code runs.

The evil archives are real: each payload below does run code when given to plain
``torch.export.load`` / ``torch.load(weights_only=False)`` / ``sympy.sympify``
(checked once in ``test_the_pt2_payloads_are_live``), so their refusal here means something.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import os
import stat
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn as nn
from nc_testutils import (
    edit_archive,
    evil_pickle,
    evil_torch_save,
    export_pt2,
    export_ts,
    pt2_bytes,
    randomize_bn,
    read_zip,
    write_zip,
)

from neurocompile import files, ir
from neurocompile.data import check_seed, load_dataset, load_npz
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import capture, ingest
from neurocompile.frontend.load import (
    check_op_target,
    check_sympy_expr,
    load_program,
    program_batch_size,
    sniff_format,
)
from neurocompile.sim.ann import ann_forward


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "the hostile payload ran"


def _refused(fn, *args, match: str = "", **kw) -> str:
    with pytest.raises(NeurocompileError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert match.lower() in msg.lower(), msg
    return msg


def _write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- evil .pt2 archives ---------------------------------------------------------


def _evil_sample_inputs(marker, via="system"):
    def edit(d):
        d["data/sample_inputs/model.pt"] = evil_torch_save(marker, via)

    return edit


def _evil_pickled_weight(marker):
    def edit(d):
        cfg = json.loads(d["data/weights/model_weights_config.json"])
        key = next(iter(cfg["config"]))
        cfg["config"][key]["use_pickle"] = True
        d["data/weights/" + cfg["config"][key]["path_name"]] = evil_torch_save(marker)
        d["data/weights/model_weights_config.json"] = json.dumps(cfg).encode()

    return edit


def _evil_constant(marker, prefix="opaque_obj_", escape=False):
    def edit(d):
        cfg = json.loads(d["data/constants/model_constants_config.json"])
        name = f"{prefix}0"
        cfg["config"]["evil"] = {"path_name": name, "is_param": False, "use_pickle": True, "tensor_meta": None}
        text = json.dumps(cfg)
        if escape:  # the same JSON with the prefix spelt as \u escapes: parsers see it, greps do not
            text = text.replace(name, "".join(f"\\u{ord(c):04x}" for c in name))
        d["data/constants/model_constants_config.json"] = text.encode()
        d[f"data/constants/{name}"] = evil_pickle(marker)

    return edit


def _evil_constant_hidden_member(marker):
    """A custom-object constant whose member is named like a tensor: only the config says what it is."""

    def edit(d):
        cfg = json.loads(d["data/constants/model_constants_config.json"])
        cfg["config"]["evil"] = {"path_name": "custom_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
        d["data/constants/model_constants_config.json"] = json.dumps(cfg).encode()

    return edit


def _evil_sympy(marker, payload=None):
    """Wrap the first sympy expression string of the program JSON around ``payload``."""

    def edit(d):
        prog = json.loads(d["models/model.json"])
        evil = payload or f"Integer(__import__('os').system('touch {marker}')*0)"
        stack = [prog]
        while stack:
            o = stack.pop()
            if isinstance(o, dict):
                if isinstance(o.get("expr_str"), str):
                    o["expr_str"] = f"Add({evil}, {o['expr_str']})"
                    break
                stack.extend(o.values())
            elif isinstance(o, list):
                stack.extend(o)
        else:
            raise AssertionError("no sympy expression in the program")
        d["models/model.json"] = json.dumps(prog).encode()

    return edit


def _evil_target(target: str):
    def edit(d):
        d["models/model.json"] = d["models/model.json"].replace(b"torch.ops.aten.relu.default", target.encode())

    return edit


def test_the_pt2_payloads_are_live(tmp_path):
    """Control: plain torch.export.load runs each payload (so the refusals below are meaningful)."""
    good, dyn = pt2_bytes(_mlp(), (4,)), pt2_bytes(_mlp(), (4,), batch=4, dynamic=True)
    logging.disable(logging.CRITICAL)
    try:
        for i, (base, make) in enumerate([(good, _evil_sample_inputs), (good, _evil_pickled_weight),
                                          (good, _evil_constant), (dyn, _evil_sympy)]):
            m = tmp_path / f"live{i}"
            try:
                torch.export.load(io.BytesIO(edit_archive(base, make(m))))
            except Exception:  # noqa: BLE001 - the payload runs before torch notices anything else
                pass
            assert m.exists(), make.__name__
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize(
    "name, make, match",
    [
        ("sample_inputs_system", lambda m: _evil_sample_inputs(m), "sample_inputs"),
        ("sample_inputs_exec", lambda m: _evil_sample_inputs(m, "exec"), "sample_inputs"),
        ("pickled_weight", _evil_pickled_weight, "use_pickle"),
        ("opaque_constant", _evil_constant, "opaque"),
        ("custom_constant", lambda m: _evil_constant(m, "custom_obj_"), "custom"),
        ("opaque_constant_json_escaped", lambda m: _evil_constant(m, escape=True), "opaque"),
        ("custom_constant_config_only", _evil_constant_hidden_member, "custom"),
        ("target_os_system", lambda m: _evil_target("torch.os.system"), "operator target"),
        ("target_load_library", lambda m: _evil_target("torch.ops.load_library"), "operator target"),
        ("target_import_module", lambda m: _evil_target("torch.ops.import_module"), "operator target"),
        ("target_builtins", lambda m: _evil_target("builtins.exec"), "operator target"),
        ("target_dunder", lambda m: _evil_target("torch.ops.aten.__class__"), "operator target"),
        ("target_attrgetter", lambda m: _evil_target("_operator.attrgetter"), "operator target"),
        ("aoti_native_code", lambda m: (lambda d: d.__setitem__("data/aotinductor/model/m.so", b"\x7fELF")), "native code"),
    ],
)
def test_evil_pt2_is_refused_and_runs_nothing(tmp_path, marker, name, make, match):
    p = _write(tmp_path, "evil.pt2", edit_archive(pt2_bytes(_mlp(), (4,)), make(marker)))
    msg = _refused(load_program, p, match=match)
    assert str(p) in msg
    _refused(ingest, p, match=match)


@pytest.mark.parametrize(
    "payload, match",
    [
        (None, "double underscore"),
        ("exec(\"open('PWN', 'w')\")", "exec"),
        ("eval('1')", "eval"),
        ("Integer(1).func", "Attribute"),
        ("Symbol('s0')[0]", "Subscript"),
        ("(lambda: 1)()", "Lambda"),
        ("Integer(getattr)", "getattr"),
        ("Pow(Integer(10), Integer(100000000))", "power"),
        ("Symbol('x; import os')", "string"),
        ("Symbol('s0'\n)", "non-printable"),
    ],
)
def test_malicious_sympy_expression_is_refused(tmp_path, marker, payload, match):
    base = pt2_bytes(_mlp(), (4,), batch=4, dynamic=True)
    payload = payload.replace("PWN", str(marker)) if payload else None
    p = _write(tmp_path, "evil.pt2", edit_archive(base, _evil_sympy(marker, payload)))
    _refused(load_program, p, match=match)


def test_sympy_allowlist_accepts_what_torch_emits():
    for expr in [
        "Symbol('s31', positive=True, integer=True)",
        "Add(FloorDiv(Add(Symbol('s0', positive=True, integer=True), Integer(-3)), Integer(2)), Integer(1))",
        "Max(Integer(1), Mul(Integer(2), Symbol('s53', positive=True, integer=True)))",
        "StrictLessThan(Symbol('u0', integer=True), Integer(5))",
        "Pow(Symbol('s77', positive=True, integer=True), Integer(2))",
        "IntTrueDiv(Symbol('s53', positive=True, integer=True), Integer(3))",
        "Float('0.5', precision=53)",
        "s0 + 2*u1 <= 4",
        "And(Ge(s0, 2), Ne(s0, oo))",
    ]:
        assert check_sympy_expr(expr) is None, expr
    for target in ["torch.ops.aten.linear.default", "torch.ops.aten.add.Tensor", "_operator.mul", "math.ceil",
                   "torch.sym_float", "torch.ops.higher_order.cond"]:
        assert check_op_target(target) is None, target


def test_pt2_archive_tricks_are_refused(tmp_path, marker):
    good = pt2_bytes(_mlp(), (4,))
    members = read_zip(good)
    root = members[0][0].split("/")[0]
    # a second copy of a member differing only in case: torch's zip reader looks names up case-insensitively
    dup = write_zip(members + [(f"{root}/DATA/sample_inputs/model.pt", evil_torch_save(marker))])
    _refused(load_program, _write(tmp_path, "dup.pt2", dup), match="duplicate")
    # the legacy (torch < 2.8) layout, loaded by torch through pickles
    legacy = write_zip([("version", b"8.0"), ("serialized_exported_program.json", b"{}"),
                        ("serialized_state_dict.pt", evil_torch_save(marker)), ("serialized_example_inputs.pt", evil_torch_save(marker))])
    _refused(load_program, _write(tmp_path, "legacy.pt2", legacy), match="refusing")
    # a second program next to models/model.json
    two = edit_archive(good, lambda d: d.__setitem__("models/other.json", d["models/model.json"]))
    _refused(load_program, _write(tmp_path, "two.pt2", two), match="only one program")
    # a 0-byte weight whose metadata claims a huge tensor (torch would allocate it with zeros())
    def huge(d):
        cfg = json.loads(d["data/weights/model_weights_config.json"])
        entry = next(iter(cfg["config"].values()))
        entry["tensor_meta"]["sizes"] = [{"as_int": 1 << 20}, {"as_int": 1 << 20}]
        d["data/weights/" + entry["path_name"]] = b""
        d["data/weights/model_weights_config.json"] = json.dumps(cfg).encode()
    _refused(load_program, _write(tmp_path, "huge.pt2", edit_archive(good, huge)), match="size limit")
    # a control character that would end a line in generated Python source
    cr = edit_archive(good, lambda d: d.__setitem__("models/model.json", d["models/model.json"].replace(b'"stack_trace": "', b'"stack_trace": "\\r', 1)))
    assert cr != good
    _refused(load_program, _write(tmp_path, "cr.pt2", cr), match="control")


def test_guards_code_is_never_executed(tmp_path, marker):
    """ExportedProgram.module() execs guards_code: it is dropped on load."""
    class Guarded(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if x.shape[0] > 2 else -self.fc(x)

    ep = torch.export.export(Guarded().eval(), (torch.zeros(4, 4),), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    buf = io.BytesIO()
    torch.export.save(ep, buf)

    def edit(d):
        prog = json.loads(d["models/model.json"])
        assert prog["guards_code"], "expected torch to record a guard"
        prog["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
        d["models/model.json"] = json.dumps(prog).encode()

    p = _write(tmp_path, "g.pt2", edit_archive(buf.getvalue(), edit))
    prog = load_program(p)
    assert prog._guards_code == []
    prog.module()(torch.zeros(3, 4))


# -- TorchScript and pickles -------------------------------------------------------


@pytest.mark.parametrize("member", ["data.pkl", "constants.pkl"])
@pytest.mark.parametrize("via", ["system", "exec"])
def test_torchscript_with_evil_pickle_runs_nothing(tmp_path, marker, member, via):
    ts = (tmp_path / "m.pt")
    export_ts(_mlp(), ts, (4,))
    evil = edit_archive(ts.read_bytes(), lambda d: d.__setitem__(member, evil_pickle(marker, via)))
    p = _write(tmp_path, "evil.pt", evil)
    assert sniff_format(p) == "torchscript"
    _refused(load_program, p, sample_shape=(4,), match="TorchScript")


def test_torch_save_pickle_runs_nothing(tmp_path, marker):
    p = _write(tmp_path, "evil.pt", evil_torch_save(marker))
    _refused(load_program, p, sample_shape=(4,), match="--trust-pickle")


# -- file types and sizes -----------------------------------------------------------


def test_non_regular_files_are_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo.pt2"
    os.mkfifo(fifo)
    d = tmp_path / "dir.pt2"
    d.mkdir()
    for p, what in ((fifo, "FIFO"), (Path_dev_zero(), "device"), (d, "directory")):
        _refused(load_program, p, match=what)
        _refused(sniff_format, p, match=what)
        _refused(ir.load, p, match=what)
        _refused(load_npz, p, match=what)
    npz_fifo = tmp_path / "d.npz"
    os.mkfifo(npz_fifo)
    _refused(load_dataset, str(npz_fifo), match="FIFO")
    link = tmp_path / "link.pt2"
    link.symlink_to(fifo)
    _refused(load_program, link, match="FIFO")


def Path_dev_zero():
    from pathlib import Path

    p = Path("/dev/zero")
    if not p.exists() or not stat.S_ISCHR(os.stat(p).st_mode):
        pytest.skip("no /dev/zero")
    return p


def test_oversized_files_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.pt2"
    with open(big, "wb") as f:  # sparse: no disk space used
        f.truncate(files.MAX_INPUT_BYTES + 1)
    msg = _refused(load_program, big, match="limit")
    assert "GiB" in msg
    for fn, name in ((ir.load, "big.ncnet"), (load_npz, "big.npz")):
        p = tmp_path / name
        os.link(big, p)
        _refused(fn, p, match="limit")


def test_zip_bombs_are_refused_before_decompressing(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_UNPACKED_BYTES", 1 << 20)
    bomb = write_zip([("x_train.npy", b"\0" * (2 << 20))], zipfile.ZIP_DEFLATED)
    assert len(bomb) < 1 << 16
    _refused(load_npz, _write(tmp_path, "bomb.npz", bomb), match="limit")
    _refused(ir.load, _write(tmp_path, "bomb.ncnet", bomb), match="limit")
    pt2 = edit_archive(pt2_bytes(_mlp(), (4,)), lambda d: d.__setitem__("extra/pad", b"\0" * (2 << 20)))
    _refused(load_program, _write(tmp_path, "bomb.pt2", pt2), match="limit")


# -- .ncnet and .npz -----------------------------------------------------------------


def _net(tmp_path):
    m = randomize_bn(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.AvgPool2d(2),
                                   nn.Flatten(), nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 3)))
    return ingest(export_pt2(m, tmp_path / "m.pt2", (1, 8, 8)))


def test_ncnet_save_is_deterministic(tmp_path):
    from neurocompile.passes.convert import convert
    from neurocompile.passes.quantize import quantize

    net = convert(_net(tmp_path), np.random.default_rng(0).random((16, 1, 8, 8)), timesteps=8, encoding="rate")
    net = quantize(net).with_settings(seed=5, data="digits")  # every typed record: settings, conversion, fixed layer, mapping
    from neurocompile.passes.map import map_to_cores
    from neurocompile.profiles import load_profile

    net = map_to_cores(net, load_profile("loihi2"))
    net = net.replace(mapping={**net.mapping, "nested": {"a": [1, 2.5]}, "arr": np.arange(3)})
    assert net.conversion is not None and net.fixed is not None
    ir.save(net, tmp_path / "a.ncnet")
    ir.save(copy.deepcopy(net), tmp_path / "b.ncnet")
    a, b = (tmp_path / "a.ncnet").read_bytes(), (tmp_path / "b.ncnet").read_bytes()
    assert a == b
    with zipfile.ZipFile(tmp_path / "a.ncnet") as z:
        infos = z.infolist()
    assert infos[0].filename == "network.json"
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    back = ir.load(tmp_path / "a.ncnet")
    ir.save(back, tmp_path / "c.ncnet")
    assert (tmp_path / "c.ncnet").read_bytes() == a


def _rewrite_ncnet(src, dst, header_edit=None, arrays_edit=None):
    with zipfile.ZipFile(src) as z:
        items = {n: z.read(n) for n in z.namelist()}
    header = json.loads(items.pop("network.json"))
    arrays = {n[:-4]: np.load(io.BytesIO(b)) for n, b in items.items()}
    if header_edit:
        header_edit(header)
    if arrays_edit:
        arrays_edit(arrays)
    members = [("network.json", json.dumps(header).encode())]
    for k, a in arrays.items():
        if isinstance(a, bytes):
            members.append((f"{k}.npy", a))
            continue
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=a.dtype.hasobject)
        members.append((f"{k}.npy", buf.getvalue()))
    dst.write_bytes(write_zip(members))
    return dst


def _lying_npy() -> bytes:
    """An .npy whose header claims a billion float64s but that holds one: must not be allocated."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    return buf.getvalue() + b"\0" * 8


CORRUPTIONS = {
    "object_array": (None, lambda a: a.__setitem__(next(iter(a)), np.array([object(), 1], dtype=object)), "pickle"),
    "weight_wrong_shape": (None, None, "shape"),
    "weight_nan": (None, None, "NaN"),
    "missing_array": (None, lambda a: a.pop(next(iter(a))), "missing"),
    "lying_array_header": (None, lambda a: a.__setitem__(next(iter(a)), _lying_npy()), "header says"),
    "unknown_type": (lambda h: h["populations"][1].__setitem__("__type__", "os.system"), None, "unknown object type"),
    "unknown_field": (lambda h: h["populations"][1].__setitem__("evil", 1), None, "unknown field"),
    "shape_is_string": (lambda h: h["populations"][1].__setitem__("shape", "abc"), None, "shape"),
    "threshold_is_list": (lambda h: h["populations"][1].__setitem__("threshold", [1]), None, "threshold"),
    "bad_kind": (lambda h: h["projections"][0].__setitem__("kind", "magic"), None, "kind"),
    "populations_not_list": (lambda h: h.__setitem__("populations", {"a": 1}), None, "populations"),
    "no_populations": (lambda h: h.__setitem__("populations", []), None, "no populations"),
    "dangling_target": (lambda h: h["projections"][0].__setitem__("target", "nowhere"), None, "not a population"),
    "output_missing": (lambda h: h.__setitem__("outputs", ["nowhere"]), None, "output"),
    "settings_timesteps_str": (lambda h: h["settings"].__setitem__("timesteps", "many"), None, "timesteps"),
    "input_key_missing": (lambda h: h.pop("inputs"), None, "input"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_ncnet_is_a_clean_error(tmp_path, case):
    net = _net(tmp_path)
    ir.save(net, tmp_path / "n.ncnet")
    h_edit, a_edit, match = CORRUPTIONS[case]
    if case == "weight_wrong_shape":
        def a_edit(a):
            k = next(k for k, v in a.items() if v.ndim == 2 and k.endswith("weight"))
            a[k] = a[k][:, :-1]
    if case == "weight_nan":
        def a_edit(a):
            k = next(k for k, v in a.items() if v.ndim == 2 and k.endswith("weight"))
            a[k] = a[k].copy()
            a[k][0, 0] = np.nan
    p = _rewrite_ncnet(tmp_path / "n.ncnet", tmp_path / "bad.ncnet", h_edit, a_edit)
    msg = _refused(ir.load, p, match=match)
    assert "rebuild it with `neurocompile build`" in msg and str(p) in msg


def test_bad_csr_is_a_clean_error(tmp_path):
    net = _net(tmp_path)
    pr = net.projections[-1]
    m = sp.random(*pr.matrix().shape, density=0.5, format="csr", random_state=0)
    net = net.replace(projections=(*net.projections[:-1], ir.Projection(pr.name, pr.source, pr.target, "sparse", m)))
    ir.save(net, tmp_path / "n.ncnet")
    assert abs(ir.load(tmp_path / "n.ncnet").projections[-1].weight - m).max() == 0

    def bad_indices(a):
        k = next(k for k in a if k.endswith("weight.indices"))
        a[k] = a[k].copy()
        a[k][0] = 10**6

    def bad_indptr(a):
        k = next(k for k in a if k.endswith("weight.indptr"))
        a[k] = a[k][::-1].copy()

    for edit, match in ((bad_indices, "column indices"), (bad_indptr, "row pointers")):
        p = _rewrite_ncnet(tmp_path / "n.ncnet", tmp_path / "bad.ncnet", None, edit)
        _refused(ir.load, p, match=match)


def test_broken_ncnet_files_are_clean_errors(tmp_path):
    net = _net(tmp_path)
    ir.save(net, tmp_path / "n.ncnet")
    good = (tmp_path / "n.ncnet").read_bytes()
    (tmp_path / "empty.ncnet").write_bytes(b"")
    _refused(ir.load, tmp_path / "empty.ncnet", match="not a neurocompile network artifact")
    (tmp_path / "d.ncnet").mkdir()
    _refused(ir.load, tmp_path / "d.ncnet", match="directory")
    _refused(ir.load, tmp_path / "missing.ncnet", match="does not exist")
    members = read_zip(good)
    bad_json = write_zip([("network.json", b"{not json")] + members[1:])
    _refused(ir.load, _write(tmp_path, "j.ncnet", bad_json), match="JSON")
    deep = write_zip([("network.json", b"[" * 100000 + b"]" * 100000)] + members[1:])
    _refused(ir.load, _write(tmp_path, "deep.ncnet", deep), match="network artifact")
    flipped = bytearray(good)
    for i in range(40, len(flipped), 97):
        flipped[i] ^= 0xFF
    _refused(ir.load, _write(tmp_path, "f.ncnet", bytes(flipped)), match="network artifact")


def test_quantised_fields_must_be_consistent(tmp_path):
    from neurocompile.ir import FixedPoint, NeuronFixed

    net = _net(tmp_path)
    p = net.neurons[0]  # integer parameters for one population, none for the others or for any projection
    part = FixedPoint(neurons={p.name: NeuronFixed(vth=10, bias_mant=np.zeros(p.size, np.int64), bias_exp=0)}, synapses={})
    ir.save(net.replace(fixed=part), tmp_path / "q.ncnet")
    _refused(ir.load, tmp_path / "q.ncnet", match="quantised")


def test_npz_with_object_arrays_is_refused(tmp_path, marker):
    x = np.array([evil_pickle(marker)], dtype=object)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.zeros(1), x_test=x, y_test=np.zeros(1))
    _refused(load_npz, tmp_path / "d.npz", match="pickle")
    _refused(load_dataset, str(tmp_path / "d.npz"), match="pickle")


# -- model validation -----------------------------------------------------------------


def test_nan_and_inf_weights_are_refused(tmp_path):
    for bad in (float("nan"), float("inf")):
        m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
        with torch.no_grad():
            m[2].bias[1] = bad
        msg = _refused(ingest, export_pt2(m, tmp_path / "m.pt2", (4,)), match="NaN/Inf")
        assert "layer '2'" in msg


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_ingest_as_float32(tmp_path, dtype):
    torch.manual_seed(0)
    base = randomize_bn(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(128, 4)))
    m = copy.deepcopy(base).to(dtype)
    torch.export.save(torch.export.export(m, (torch.zeros(1, 1, 8, 8, dtype=dtype),)), str(tmp_path / "m.pt2"))
    net = ingest(tmp_path / "m.pt2")
    assert all(pr.weight.dtype == np.float32 for pr in net.projections)
    want_net = ingest(export_pt2(copy.deepcopy(base).to(dtype).float(), tmp_path / "f.pt2", (1, 8, 8)))
    x = torch.rand(6, 1, 8, 8)
    got = ann_forward(net, x)[net.output]
    want = ann_forward(want_net, x)[want_net.output]
    assert torch.allclose(got, want, atol=1e-6)
    with torch.no_grad():
        ref = base(x).double()
    assert torch.allclose(got, ref, atol=0.05 if dtype != torch.float64 else 1e-5)


def test_fixed_batch_export_and_program_batch_size(tmp_path):
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    p4 = _write(tmp_path, "b4.pt2", pt2_bytes(m, (1, 8, 8), batch=4))
    pd = _write(tmp_path, "bd.pt2", pt2_bytes(m, (1, 8, 8), batch=4, dynamic=True))
    assert program_batch_size(load_program(p4)) == 4
    assert program_batch_size(load_program(pd)) is None
    for p in (p4, pd):
        net = ingest(p)
        x = torch.rand(7, 1, 8, 8)
        assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-5)


@pytest.mark.parametrize("make, shape", [(nn.Identity, (4,)), (nn.Flatten, (1, 4, 4)), (lambda: nn.Sequential(nn.AvgPool2d(2), nn.Flatten()), (1, 4, 4)),
                                         (nn.ReLU, (4,))])
def test_models_without_weights_are_refused(tmp_path, make, shape):
    _refused(ingest, export_pt2(make(), tmp_path / "m.pt2", shape), match="no layers with weights")


def test_torchscript_taking_flat_features(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    p = export_ts(m, tmp_path / "m.pt", (64,))
    net = ingest(p, sample_shape=(1, 8, 8))
    assert net.population(net.input).shape == (64,)
    x = torch.rand(5, 64)
    assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-5)
    msg = _refused(ingest, p, sample_shape=(1, 8, 9), match="(1, 1, 8, 9)")
    assert "(1, 72)" in msg


def test_valid_models_still_load(tmp_path):
    m = _mlp()
    for p, kw in ((export_pt2(m, tmp_path / "m.pt2", (4,)), {}), (export_ts(m, tmp_path / "m.pt", (4,)), {"sample_shape": (4,)}),
                  (_write(tmp_path, "d.pt2", pt2_bytes(m, (4,), batch=3, dynamic=True)), {})):
        net = capture(load_program(p, **kw))
        x = torch.rand(3, 4)
        assert torch.allclose(ann_forward(net, x)[net.output], m(x).double(), atol=1e-6)


# -- data -------------------------------------------------------------------------------


def _npz(path, n_train=20, n_test=5, classes=2):
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:  # a handle: np.savez would append ".npz" to "D.NPZ"
        np.savez(f, x_train=rng.random((n_train, 4)), y_train=np.arange(n_train) % classes,
             x_test=rng.random((n_test, 4)), y_test=np.arange(n_test) % classes)
    return path


def test_data_edge_cases(tmp_path):
    _refused(load_npz, _npz(tmp_path / "e1.npz", n_train=0), match="x_train holds 0 samples")
    _refused(load_npz, _npz(tmp_path / "e2.npz", n_test=0), match="x_test holds 0 samples")
    ds = load_dataset(str(_npz(tmp_path / "UPPER.NPZ")))
    assert len(ds.x_train) == 20
    assert load_dataset("DIGITS").x_train.shape[1:] == (1, 8, 8)
    for bad in (-1, 2**32, 1.5, "3", True):
        _refused(check_seed, bad, match="seed")
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    _refused(load_dataset, "digits", seed=-1, match="seed")


def test_too_few_samples_for_stratification(tmp_path):
    from neurocompile.data import _split

    x = np.zeros((5, 1, 1, 1), np.float32)
    _refused(_split, "tiny", x, np.array([0, 0, 1, 1, 2]), 0, match="stratified")
    _refused(_split, "tiny", x[:3], np.array([0, 1, 2]), 0, match="stratified")
    _refused(_split, "empty", x[:0], np.zeros(0, np.int64), 0, match="stratified")


# -- crashes found by tests/test_fuzz_loaders.py (torch's C++ readers trust declared sizes) ----


def test_torchscript_storage_shorter_than_declared_is_refused(tmp_path):
    """Was a segfault: torch.jit.load built a 120-byte storage over an empty record."""
    ts = tmp_path / "m.pt"
    export_ts(_mlp(), ts, (4,))
    short = edit_archive(ts.read_bytes(), lambda d: d.__setitem__("data/0", b""))
    _refused(load_program, _write(tmp_path, "short.pt", short), sample_shape=(4,), match="declares")


def test_torchscript_debug_info_is_never_read(tmp_path, marker):
    """Was a segfault: damaged source-range debug info (*.debug_pkl) crashed torch when a node was printed."""
    ts = tmp_path / "m.pt"
    export_ts(_mlp(), ts, (4,))

    def damage(d):
        for name in [n for n in d if n.endswith(".debug_pkl")]:
            d[name] = evil_pickle(marker)

    net = capture(load_program(_write(tmp_path, "dbg.pt", edit_archive(ts.read_bytes(), damage)), sample_shape=(4,)))
    x = torch.rand(3, 4)
    assert torch.allclose(ann_forward(net, x)[net.output], _mlp()(x).double(), atol=1e-6)


def test_sample_inputs_storage_shorter_than_declared_is_refused(tmp_path):
    def edit(d):
        inner = dict((n.split("/", 1)[1], b) for n, b in read_zip(d["data/sample_inputs/model.pt"]))
        key = next(n for n in inner if n.startswith("data/"))
        inner[key] = inner[key][:1]
        d["data/sample_inputs/model.pt"] = write_zip([(f"archive/{n}", b) for n, b in inner.items()])

    p = _write(tmp_path, "s.pt2", edit_archive(pt2_bytes(_mlp(), (4,)), edit))
    _refused(load_program, p, match="declares")


def test_pickle_memo_bomb_is_refused_quickly(tmp_path):
    """Was a hang: LONG_BINPUT 1258975569 makes an unpickler allocate a memo table of gigabytes."""
    import struct
    import time

    ts = tmp_path / "m.pt"
    export_ts(_mlp(), ts, (4,))
    bomb = b"\x80\x02N" + b"r" + struct.pack("<I", 1258975569) + b"."
    p = _write(tmp_path, "bomb.pt", edit_archive(ts.read_bytes(), lambda d: d.__setitem__("data.pkl", bomb)))
    t0 = time.perf_counter()
    _refused(load_program, p, sample_shape=(4,), match="memo index")
    assert time.perf_counter() - t0 < 10


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, y):
        return self.fc(x)


@pytest.mark.parametrize("where", ["input", "value"])
def test_names_that_would_become_python_source_are_refused(tmp_path, marker, where):
    """FX generates and execs Python from the graph's names while torch.export.load runs
    (a review found ``y=...`` as an input's name ran as a default argument)."""
    ep = torch.export.export(_TwoInputs().eval(), (torch.zeros(1, 4), torch.zeros(1, 4)))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    payload = f'y=getattr(__import__("os"), "system")("touch {marker}")'

    def edit(d):
        name = next(n for n in d if n.startswith("models/") and n.endswith(".json"))
        text = d[name].decode()
        # every occurrence of the input's name "y": its placeholder, argument and value-map entries
        d[name] = text.replace('"y"', json.dumps(payload if where == "input" else "y\nimport os")).encode()

    evil = _write(tmp_path, "evil.pt2", edit_archive(buf.getvalue(), edit))
    msg = _refused(load_program, evil, match="")
    assert "identifier" in msg or "line break" in msg, msg
