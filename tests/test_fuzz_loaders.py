"""Property-based fuzzing of every loader of user files (bounded: the file runs in well under 40 s).

Property, for mutated bytes of a valid ``.ncnet``, ``.npz``, ``.pt2`` and TorchScript ``.pt``:
the loader either succeeds or raises :class:`NeurocompileError` -- never another
exception, never a hang (a per-example SIGALRM guard), never code execution (some
mutations plant a pickle payload that would create a marker file).
"""
from __future__ import annotations

import io
import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nc_testutils import evil_pickle, evil_torch_save, export_pt2, pt2_bytes, read_zip, write_zip

from neurocompile import ir
from neurocompile.data import load_npz
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import capture, ingest
from neurocompile.frontend.load import load_program, sniff_format

PER_EXAMPLE_S = 20  # generous: a load takes well under a second; this only catches hangs
# NC_FUZZ_EXAMPLES=5000 NC_FUZZ_RANDOM=1 for a longer, non-repeating hunt; the default is fixed and quick.
FUZZ = settings(max_examples=int(os.environ.get("NC_FUZZ_EXAMPLES", "300")), deadline=None, database=None,
                derandomize=not os.environ.get("NC_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_WORK = Path(tempfile.mkdtemp(prefix="nc-fuzz-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
MARKER = _WORK / "pwned"


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _check(loader, data: bytes, suffix: str) -> None:
    """Run ``loader`` on ``data`` written to a file; only success or NeurocompileError may come out."""
    path = _WORK / f"input{suffix}"
    path.write_bytes(data)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_EXAMPLE_S)
    try:
        loader(path)
    except NeurocompileError as e:
        assert "\n" not in str(e), str(e)
    except _Hang:
        pytest.fail(f"{loader.__name__} hung for over {PER_EXAMPLE_S} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert not MARKER.exists(), "a payload ran"


# -- mutations ---------------------------------------------------------------------

def _byte_mutations(data: bytes) -> st.SearchStrategy[bytes]:
    n = len(data)
    flip = st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1, max_size=8))
    trunc = st.tuples(st.just("truncate"), st.integers(0, n - 1))
    insert = st.tuples(st.just("insert"), st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=64)))

    def apply(op) -> bytes:
        kind, arg = op
        b = bytearray(data)
        if kind == "flip":
            for i, x in arg:
                b[i] ^= x
            return bytes(b)
        if kind == "truncate":
            return bytes(b[:arg])
        i, extra = arg
        return bytes(b[:i]) + extra + bytes(b[i:])

    return st.one_of(flip, trunc, insert).map(apply)


def _zip_mutations(data: bytes, payloads: list[bytes]) -> st.SearchStrategy[bytes]:
    """Member-level edits: delete, replace (random bytes / a pickle payload / another member), duplicate, rename."""
    members = read_zip(data)
    n = len(members)
    replacement = st.one_of(st.binary(max_size=256), st.sampled_from(payloads), st.sampled_from([b for _, b in members]))
    op = st.one_of(
        st.tuples(st.just("delete"), st.integers(0, n - 1), st.none()),
        st.tuples(st.just("replace"), st.integers(0, n - 1), replacement),
        st.tuples(st.just("duplicate"), st.integers(0, n - 1), replacement),
        st.tuples(st.just("upper"), st.integers(0, n - 1), st.none()),
    )

    def apply(ops) -> bytes:
        out = list(members)
        for kind, i, payload in ops:
            if not out:
                break
            i %= len(out)
            name, body = out[i]
            if kind == "delete":
                del out[i]
            elif kind == "replace":
                out[i] = (name, payload)
            elif kind == "duplicate":
                out.append((name.rsplit("/", 1)[0] + "/" + name.rsplit("/", 1)[-1].upper(), payload))
            else:
                out[i] = (name.upper(), body)
        return write_zip(out)

    return st.lists(op, min_size=1, max_size=3).map(apply)


def _json_mutations(data: bytes, member_suffix: str) -> st.SearchStrategy[bytes]:
    """Byte-level edits inside one JSON member, keeping the zip intact (reaches the parsers behind it)."""
    members = read_zip(data)
    idx = next(i for i, (n, _) in enumerate(members) if n.endswith(member_suffix))
    body = members[idx][1]

    def apply(edited: bytes) -> bytes:
        out = list(members)
        out[idx] = (out[idx][0], edited)
        return write_zip(out)

    return _byte_mutations(body).map(apply)


# -- seeds -----------------------------------------------------------------------------

def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


_PAYLOADS = [evil_pickle(MARKER), evil_pickle(MARKER, "exec"), evil_torch_save(MARKER), evil_torch_save(MARKER, "exec")]
_PT2 = pt2_bytes(_mlp(), (6,), batch=2, dynamic=True)
_TS = (lambda buf: (torch.jit.save(torch.jit.trace(_mlp(), torch.zeros(1, 6)), buf), buf.getvalue())[1])(io.BytesIO())


def _ncnet_bytes() -> bytes:
    net = ingest(export_pt2(_mlp(), _WORK / "seed.pt2", (6,)))
    ir.save(net, _WORK / "seed.ncnet")
    return (_WORK / "seed.ncnet").read_bytes()


def _npz_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.random((6, 4)).astype(np.float32), y_train=np.arange(6) % 2,
             x_test=rng.random((2, 4)).astype(np.float32), y_test=np.arange(2) % 2)
    return buf.getvalue()


_NCNET = _ncnet_bytes()
_NPZ = _npz_bytes()


def _load_model(path: Path) -> None:
    sniff_format(path)
    capture(load_program(path, sample_shape=(6,)))


# -- properties --------------------------------------------------------------------------

def test_seeds_load():
    """The unmutated seeds must load (else every fuzz case would only exercise the refusals)."""
    for loader, data, suffix in ((ir.load, _NCNET, ".ncnet"), (load_npz, _NPZ, ".npz"), (_load_model, _PT2, ".pt2"),
                                 (_load_model, _TS, ".pt")):
        path = _WORK / f"seed{suffix}"
        path.write_bytes(data)
        loader(path)  # no NeurocompileError allowed here


@FUZZ
@given(st.one_of(_byte_mutations(_NCNET), _zip_mutations(_NCNET, _PAYLOADS), _json_mutations(_NCNET, "network.json")))
def test_fuzz_ncnet(data):
    _check(ir.load, data, ".ncnet")


@FUZZ
@given(st.one_of(_byte_mutations(_NPZ), _zip_mutations(_NPZ, _PAYLOADS)))
def test_fuzz_npz(data):
    _check(load_npz, data, ".npz")


@FUZZ
@given(st.one_of(_byte_mutations(_PT2), _zip_mutations(_PT2, _PAYLOADS), _json_mutations(_PT2, "models/model.json"),
                 _json_mutations(_PT2, "model_weights_config.json")))
def test_fuzz_pt2(data):
    _check(_load_model, data, ".pt2")


@FUZZ
@given(st.one_of(_byte_mutations(_TS), _zip_mutations(_TS, _PAYLOADS)))
def test_fuzz_torchscript(data):
    _check(_load_model, data, ".pt")


def test_zip_of_nothing_and_random_bytes():
    for data in (b"", b"PK\x05\x06" + b"\0" * 18, write_zip([]), bytes(range(256)) * 4):
        for loader, suffix in ((ir.load, ".ncnet"), (load_npz, ".npz"), (_load_model, ".pt2")):
            _check(loader, data, suffix)
