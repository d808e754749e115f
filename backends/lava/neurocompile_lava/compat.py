"""Make lava-nc 0.10.0 importable on Python 3.11+ without touching site-packages.

Why: ``lava/magma/compiler/var_model.py`` declares dataclass fields such as
``x: ByteEncoder = ByteEncoder()``. Since Python 3.11, ``dataclasses`` rejects
unhashable defaults (``ValueError: mutable default ... use default_factory``),
and because nearly every Lava process imports that module, 77 of Lava's 139
modules fail to import.

How: a ``sys.meta_path`` finder that matches exactly one module name,
``lava.magma.compiler.var_model``. Its loader is a ``SourceFileLoader`` whose
``get_code`` compiles the *source* with those defaults rewritten to
``dataclasses.field(default_factory=ByteEncoder)``; overriding ``get_code``
(not ``source_to_code``) guarantees the unpatched cached ``.pyc`` is never used,
and nothing is written back to ``__pycache__``. The rewrite keeps every line in
place, so Lava's tracebacks still point at the right source lines.

:func:`install` must run before the first ``lava`` import. Every module of
this package that imports Lava calls it first; Lava's actor processes are
forked, so they inherit the hook.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from types import CodeType
from typing import Sequence

TARGET = "lava.magma.compiler.var_model"

# ``    name: Type = Type()`` -- a dataclass field whose default is a fresh
# instance of its own annotated class (the only pattern 3.11 rejects there).
_UNHASHABLE_DEFAULT = re.compile(r"^(?P<head>[ \t]+\w+[ \t]*:[ \t]*(?P<cls>[\w.]+)[ \t]*=[ \t]*)(?P=cls)\(\)[ \t]*$", re.MULTILINE)


def rewrite_source(source: str) -> str:
    """Return ``source`` with ``x: C = C()`` fields turned into ``default_factory=C``.

    The replacement is a single expression on the same line (no added import
    line), so the line count and every line number are unchanged.
    """
    return _UNHASHABLE_DEFAULT.sub(r'\g<head>__import__("dataclasses").field(default_factory=\g<cls>)', source)


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads the target module from its source, rewritten by :func:`rewrite_source`."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        return compile(rewrite_source(source), path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    """Finds only :data:`TARGET`; every other import falls through untouched."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None  # not installed from source: let the normal import fail
        spec.loader = _PatchedSourceLoader(fullname, spec.origin)
        return spec


def installed() -> bool:
    return any(isinstance(f, _VarModelFinder) for f in sys.meta_path)


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent).

    If the module is already imported (Python < 3.11 imports it unpatched just
    fine), the hook is harmless and simply never consulted again.
    """
    if not installed():
        sys.meta_path.insert(0, _VarModelFinder())
