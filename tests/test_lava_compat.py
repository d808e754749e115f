"""The Python 3.11 import hook for lava-nc 0.10.0 (neurocompile_lava.compat).

Imports of Lava run in subprocesses: importing a Lava Process calls
``multiprocessing.set_start_method('fork')`` and must not leak into pytest.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lava")  # namespace package: importing it does not touch var_model
from neurocompile_lava import compat  # noqa: E402

pytestmark = pytest.mark.lava


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_lava_imports_with_the_hook():
    r = _python(
        """
        from neurocompile_lava import compat
        compat.install()
        import lava.magma.compiler.var_model as vm
        import lava.proc.dense.process
        assert type(vm.__loader__).__name__ == "_PatchedSourceLoader", vm.__loader__
        a, b = vm.CoreEncoder(), vm.CoreEncoder()
        assert isinstance(a.x, vm.ByteEncoder) and a.x is not b.x
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the unpatched module imports fine before Python 3.11")
def test_without_the_hook_lava_does_not_import():
    """Proves the hook is needed: 3.11 rejects var_model's unhashable dataclass defaults."""
    r = _python("import lava.proc.dense.process")
    assert r.returncode != 0
    assert "mutable default" in r.stderr and "var_model" in r.stderr


def test_rewrite_keeps_line_count_and_makes_fresh_defaults():
    src = textwrap.dedent(
        """
        from dataclasses import dataclass


        class Enc:
            pass


        @dataclass
        class Pair:
            x: Enc = Enc()
            y : Enc=Enc()
            n: int = 3
        """
    )
    out = compat.rewrite_source(src)
    assert out.count("\\n") == src.count("\\n") and len(out.splitlines()) == len(src.splitlines())
    assert out.count("default_factory=Enc") == 2 and "n: int = 3" in out
    ns: dict = {}
    exec(compile(out, "<rewritten>", "exec"), ns)
    a, b = ns["Pair"](), ns["Pair"]()
    assert isinstance(a.x, ns["Enc"]) and a.x is not b.x  # a fresh default per instance
    assert [f.name for f in dataclasses.fields(ns["Pair"])] == ["x", "y", "n"]


def test_rewrite_of_lavas_var_model_keeps_every_line():
    import importlib.util

    spec = importlib.util.find_spec(compat.TARGET)
    with open(spec.origin) as f:
        src = f.read()
    out = compat.rewrite_source(src)
    assert out != src
    assert len(out.splitlines()) == len(src.splitlines())
    changed = [(a, b) for a, b in zip(src.splitlines(), out.splitlines()) if a != b]
    assert changed and all("ByteEncoder()" in a and "default_factory=ByteEncoder" in b for a, b in changed)


def test_install_is_idempotent():
    compat.install()
    compat.install()
    assert sum(isinstance(f, compat._VarModelFinder) for f in sys.meta_path) == 1
    assert compat.installed()
