"""Load a model file into a ``torch.export.ExportedProgram`` without running untrusted code.

Formats are told apart by the zip archive's layout, not by the file suffix:
``torch.export.save`` writes ``models/model.json``; ``torch.jit.save`` writes
``code/``; ``torch.save`` writes only ``data.pkl`` (a pickle, which can run
arbitrary code when loaded, so it is refused unless the user trusts it).

Security model (a model file is untrusted input):

* Every file is checked with ``os.stat`` (regular file, at most
  :data:`MAX_MODEL_BYTES`) and read **once** into memory through a non-blocking
  descriptor that is re-checked with ``fstat``; everything afterwards parses
  those bytes (no time-of-check/time-of-use gap, no hang on a FIFO). A zip's
  declared unpacked size is checked before any member is decompressed.
* ``.pt2`` (torch.export): ``torch.export.load`` unpickles archive members and
  parses strings from the program JSON with ``sympy.sympify`` (an ``eval``) and
  ``getattr`` chains. So the archive is validated first, reading members with
  torch's own zip reader (the same case-insensitive name lookup torch uses):
  one top-level folder, no duplicate names (ignoring case), no legacy layout,
  no AOTInductor / native code, no custom or opaque object constants, no
  pickled (``use_pickle``) weights or constants, sample inputs loadable with the
  ``weights_only`` unpickler, every sympy expression matched against a strict
  grammar (an allowlist of sympy/torch function names, symbols, numbers and
  operators; no attributes, dunders, subscripts or lambdas), every
  ``call_function`` target an ATen/prims/higher-order op, an ``_operator``
  arithmetic function, a ``math`` function or a ``torch.sym_*`` helper. Then
  ``torch.export.load`` runs with ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` so that
  every ``torch.load`` inside it uses the weights-only unpickler, and the
  program's ``guards_code`` (Python source that ``ExportedProgram.module()``
  would ``exec``) is dropped: guards only re-check input shapes.
* TorchScript ``.pt``: ``torch.jit.load`` deserialises ``data.pkl`` /
  ``constants.pkl`` with TorchScript's C++ unpickler, which can only build
  TorchScript types (tensors, lists, dicts, TorchScript classes) and never
  imports or calls Python globals; the ``code/`` members are TorchScript,
  compiled by the TorchScript compiler rather than executed by Python. A
  ``__reduce__`` payload therefore fails to load instead of running
  (``tests/test_safe_loading.py`` checks this).
* torch's C++ zip readers trust each storage's declared size, so a damaged
  TorchScript or ``torch.save`` archive (a data record shorter than declared)
  makes them read out of bounds and crash the process. Before torch sees such an
  archive its pickles are walked by a Python unpickler that imports and calls
  nothing, and every storage and tensor view is checked against the records
  (:func:`check_torch_archive_storages`).
* ``torch.save`` pickles are refused unless ``trust_pickle`` is given.
"""
from __future__ import annotations

import ast
import contextlib
import io
import keyword
import json
import logging
import math
import os
import re
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import torch

from ..errors import NeurocompileError
from ..files import (MAX_INPUT_BYTES, MAX_UNPACKED_BYTES, ArchiveTooLarge, NotAZip, _check_stat, check_input_file, first_line,
                     open_zip, read_input_file)

ModelFormat = Literal["export", "torchscript", "pickle", "rsnn"]

MAX_MODEL_BYTES = MAX_INPUT_BYTES  # model files larger than this are refused (2 GiB)
# (the sum of a .pt2's declared member sizes is limited by files.MAX_UNPACKED_BYTES, also 2 GiB)
MAX_EXPR_CHARS = 20_000  # one sympy expression string in a .pt2 program

HOW_TO_EXPORT = (
    "export it with `torch.export.save(torch.export.export(model.eval(), (example_input,)), 'model.pt2')` "
    "or `torch.jit.save(torch.jit.trace(model.eval(), example_input), 'model.pt')`"
)
ACCEPTED = "accepted: torch.export programs (.pt2), TorchScript (.pt) and recurrent SNNs saved by neurocompile.nn (.rsnn)"


# -- format sniffing -----------------------------------------------------------


def _format_of(names: list[str], path: Path) -> ModelFormat:
    if "rsnn.json" in names:  # a recurrent SNN saved by neurocompile.nn.save_rsnn (frontend/rsnn.py reads it)
        return "rsnn"
    if any(n.endswith("models/model.json") or "serialized_exported_program" in n for n in names):
        return "export"
    if any("/code/" in n or n.startswith("code/") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "pickle"
    raise NeurocompileError(f"{path}: unrecognised PyTorch archive layout; accepted: .pt2 (torch.export) or .pt (TorchScript)")


def _refuse_nir(path: Path) -> None:
    if path.suffix.lower() == ".nir":
        raise NeurocompileError(f"{path}: NIR graphs are not supported yet; accepted: torch.export (.pt2) or TorchScript (.pt)")


def _open_archive(data: bytes, path: Path) -> zipfile.ZipFile:
    try:
        return open_zip(data, path, "model archive")
    except ArchiveTooLarge:
        raise
    except NotAZip as e:
        raise NeurocompileError(f"{path} is not a PyTorch archive ({e.reason}); {ACCEPTED}") from None


def sniff_format(path: str | Path) -> ModelFormat:
    """Which kind of model file ``path`` is, from its zip layout (reads only the zip directory)."""
    path = Path(path)
    check_input_file(path, "model file", MAX_MODEL_BYTES)
    _refuse_nir(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise NeurocompileError(f"model file {path} cannot be read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        _check_stat(os.fstat(fd), path, "model file", MAX_MODEL_BYTES)  # the file actually opened
        try:
            names = zipfile.ZipFile(f).namelist()
        except Exception:  # noqa: BLE001 - any failure to read the directory means "not an archive"
            raise NeurocompileError(f"{path} is not a PyTorch archive; {ACCEPTED}") from None
    return _format_of(names, path)


# -- .pt2 validation -----------------------------------------------------------

_SYMPY_FUNCTIONS = frozenset(
    """Symbol Integer Rational Float Add Mul Pow Mod Max Min Abs floor ceiling sign
    StrictLessThan LessThan StrictGreaterThan GreaterThan Equality Unequality Eq Ne Lt Le Gt Ge
    And Or Not Xor ITE Piecewise ExprCondPair BooleanTrue BooleanFalse
    Infinity NegativeInfinity IntInfinity NegativeIntInfinity One Zero NegativeOne Half
    FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift
    PowByNatural FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat
    TruncToInt RoundToInt RoundDecimal ToFloat Identity""".split()
)
_SYMPY_CONSTANTS = frozenset("oo zoo nan true false".split())
_SYMPY_KEYWORDS = frozenset(
    """positive negative nonnegative nonpositive integer real finite infinite nonzero zero commutative
    even odd rational precision evaluate extended_real""".split()
)
_POW_FUNCTIONS = frozenset({"Pow", "PowByNatural", "FloatPow"})
_SYMBOL_NAME = re.compile(r"[a-z]{1,4}[0-9]{1,7}")
_FN_PATTERN = re.compile(r"(OpaqueUnaryFn_[a-z0-9]{1,20}|BitwiseFn_bitwise_(and|or|xor))")
_STR_CONST = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,40}|[-+]?([0-9]{1,40}\.?[0-9]{0,40}|\.[0-9]{1,40})([eE][-+]?[0-9]{1,4})?)")
_AST_OK = (ast.Expression, ast.Call, ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.keyword, ast.Load,
           ast.Compare, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd,
           ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def _is_pow(node: ast.AST) -> bool:
    return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _POW_FUNCTIONS)


def _literal_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal_int(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Integer", "Rational", "Float"):
        vals = [_literal_int(a) for a in node.args]
        return max((abs(v) for v in vals if v is not None), default=None)
    return None


def check_sympy_expr(expr: object) -> str | None:
    """Why ``expr`` is not a safe torch.export sympy expression string, or None when it is.

    The string is parsed with :mod:`ast` (never evaluated) and must use only calls to
    allowlisted sympy / ``torch.utils._sympy`` functions, symbol names like ``s0``/``u3``,
    bounded numbers, arithmetic and comparison operators, and boolean keyword flags.
    """
    if not isinstance(expr, str):
        return f"an expression is a {type(expr).__name__}, not a string"
    if len(expr) > MAX_EXPR_CHARS:
        return f"an expression is {len(expr)} characters long (limit {MAX_EXPR_CHARS})"
    if not all(" " <= c <= "~" for c in expr):
        return f"expression {expr[:60]!r} holds non-printable or non-ASCII characters"
    if "__" in expr:
        return f"expression {expr[:60]!r} holds a double underscore"
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return f"expression {expr[:60]!r} is not a valid expression"
    # strings only as the first argument of Symbol / Float (a name or a number, as srepr writes them)
    named = {id(n.args[0]) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id in ("Symbol", "Float", "Integer", "Rational") and n.args}
    for node in ast.walk(tree):
        if not isinstance(node, _AST_OK):
            return f"expression {expr[:60]!r} uses {type(node).__name__} syntax, which is not allowed"
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or not (node.func.id in _SYMPY_FUNCTIONS or _FN_PATTERN.fullmatch(node.func.id)):
                name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
                return f"expression {expr[:60]!r} calls {name!r}, which is not an allowed sympy function"
            for kw in node.keywords:
                if kw.arg not in _SYMPY_KEYWORDS or not isinstance(kw.value, ast.Constant) or not isinstance(kw.value.value, (bool, int)):
                    return f"expression {expr[:60]!r} passes keyword {kw.arg!r}, which is not allowed"
        elif isinstance(node, ast.Name):
            if not (node.id in _SYMPY_CONSTANTS or node.id in _SYMPY_FUNCTIONS or _SYMBOL_NAME.fullmatch(node.id)):
                return f"expression {expr[:60]!r} names {node.id!r}, which is neither a shape symbol nor an allowed constant"
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int):
                if abs(v) > 2**64:
                    return f"expression {expr[:60]!r} holds an integer over 2**64"
            elif isinstance(v, float):
                if not math.isfinite(v):
                    return f"expression {expr[:60]!r} holds a non-finite float"
            elif isinstance(v, str):
                if id(node) not in named or not _STR_CONST.fullmatch(v):
                    return f"expression {expr[:60]!r} holds the string {v[:30]!r}, which is neither a symbol name nor a number"
            else:
                return f"expression {expr[:60]!r} holds a {type(v).__name__} literal"
        if _is_pow(node):
            base, exp = (node.left, node.right) if isinstance(node, ast.BinOp) else ((node.args + [None, None])[:2])
            if base is None or exp is None:
                return f"expression {expr[:60]!r} has a malformed power"
            e = _literal_int(exp)
            if e is not None and abs(e) > 64:
                return f"expression {expr[:60]!r} raises to the power {e} (limit 64)"
            if any(_is_pow(n) for n in ast.walk(base)) or any(_is_pow(n) for n in ast.walk(exp)):
                return f"expression {expr[:60]!r} nests powers"
    return None


_OPERATOR_FUNCTIONS = frozenset(
    """add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor not_ invert inv
    lshift rshift getitem truth matmul index""".split()
)
_TORCH_FUNCTIONS = frozenset(
    "sym_float sym_int sym_max sym_min sym_not sym_ite sym_sqrt sym_sum _sym_sqrt".split()
)


def check_op_target(target: object) -> str | None:
    """Why ``target`` (a serialised ``call_function`` target) is unsafe, or None when it is allowed."""
    if not isinstance(target, str):
        return f"an operator target is a {type(target).__name__}, not a string"
    shown = target[:80]
    if "__" in target or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,4}", target):
        return f"operator target {shown!r} is not a dotted name of an allowed operator"
    parts = target.split(".")
    if parts[0] == "_operator":
        return None if len(parts) == 2 and parts[1] in _OPERATOR_FUNCTIONS else f"operator target {shown!r} is not an allowed _operator function"
    if parts[0] == "math":
        fn = getattr(math, parts[1], None) if len(parts) == 2 and not parts[1].startswith("_") else None
        return None if callable(fn) else f"operator target {shown!r} is not a math function"
    if parts[0] != "torch":
        return f"operator target {shown!r} is outside torch.ops, _operator and math"
    if len(parts) == 2:
        return None if parts[1] in _TORCH_FUNCTIONS else f"operator target {shown!r} is not an allowed torch function"
    if parts[1] != "ops" or len(parts) not in (4, 5):
        return f"operator target {shown!r} is not a torch.ops operator"
    obj: Any = torch.ops
    try:
        for name in parts[2:]:
            obj = getattr(obj, name)
    except Exception:  # noqa: BLE001 - an op torch does not know: refuse, whatever the lookup raised
        return f"operator target {shown!r} is not a registered operator"
    if not isinstance(obj, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator)):
        return f"operator target {shown!r} is not an operator"
    return None


def _bad_string(s: str) -> bool:
    """Control characters (other than newline and tab) could end a line in generated Python source."""
    return any((c < " " and c not in "\n\t") or c in "\x7f\x85\u2028\u2029" for c in s)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_DOTTED = re.compile(r"([A-Za-z0-9_]{1,200}(@[0-9]{1,6})?)(\.[A-Za-z0-9_]{1,200}(@[0-9]{1,6})?){0,64}")  # "0.weight" in a Sequential
_NAME_KEYS = frozenset({"name", "as_name"})  # graph, node, argument and value names: they become Python identifiers
_DOTTED_KEYS = frozenset({"parameter_name", "buffer_name", "fqn", "tensor_constant_name", "custom_obj_name"})
_MULTILINE_KEYS = frozenset({"stack_trace"})  # the one free text with line breaks (FX reads it line by line)


def _check_name(key: str, v: Any) -> str | None:
    """Names end up in the Python source FX generates and ``exec``s while the program loads
    (``GraphModule.recompile``): ``y=__import__('os').system(...)`` as an input's name runs as a
    default argument. So every name must be a plain identifier (dotted paths for module and
    parameter paths), and no keyword."""
    if not isinstance(v, str):
        return None
    if key in _NAME_KEYS and not (_IDENTIFIER.fullmatch(v) and not keyword.iskeyword(v)):
        return f"the name {v[:60]!r} is not a Python identifier"
    if key in _DOTTED_KEYS and v and not _DOTTED.fullmatch(v):
        return f"the {key} {v[:60]!r} is not a dotted identifier"
    return None


def check_program_json(program: Any) -> str | None:
    """Why a serialised torch.export program (parsed JSON) is unsafe to deserialise, or None.

    Walks the whole document without recursion. Checked: every ``expr_str`` (sympy, see
    :func:`check_sympy_expr`), every node ``target`` and ``as_operator`` (see
    :func:`check_op_target`), the symbol names of ``range_constraints``, every name
    that FX turns into Python source (:func:`_check_name`; also the keys of the graph's
    ``*_values`` maps), and that no string holds control characters or, except a
    stack trace, a line break.
    """
    if not isinstance(program, dict):
        return "the program is not a JSON object"
    stack: list[tuple[Any, str]] = [(program, "")]
    while stack:
        obj, key = stack.pop()
        if isinstance(obj, dict):
            for k, v in obj.items():
                if _bad_string(k) or "\n" in k:
                    return f"key {k[:40]!r} holds control characters"
                if key.endswith("_values") and not (_IDENTIFIER.fullmatch(k) and not keyword.iskeyword(k)):
                    return f"the value name {k[:60]!r} is not a Python identifier"
                why = _check_name(k, v)
                if why:
                    return why
                if isinstance(v, str) and "\n" in v and k not in _MULTILINE_KEYS and k != "expr_str":
                    return f"the {k!r} string {v[:40]!r} holds a line break"
                if k == "expr_str":
                    why = check_sympy_expr(v)
                    if why:
                        return why
                    continue
                if k in ("target", "as_operator") and (isinstance(v, str) or k == "as_operator"):
                    why = check_op_target(v)
                    if why:
                        return why
                    continue
                if k == "range_constraints":
                    if not isinstance(v, dict):
                        return "range_constraints is not an object"
                    for sym in v:
                        if not _SYMBOL_NAME.fullmatch(sym) or len(sym) > 8:
                            return f"range constraint symbol {sym[:40]!r} is not a shape symbol name"
                stack.append((v, k))
        elif isinstance(obj, list):
            stack.extend((v, key) for v in obj)
        elif isinstance(obj, str):
            if _bad_string(obj):
                return f"a string in {key!r} holds control characters"
    return None


def _refuse(path: Path, why: str) -> NeurocompileError:
    return NeurocompileError(f"{path}: refusing this .pt2: {why}; re-export it with `torch.export.save` ({ACCEPTED})")


@contextlib.contextmanager
def _weights_only_torch_load():
    """Every torch.load in this block uses the weights-only unpickler (torch reads the variable per call).

    The variable is process-wide: a lock keeps two loads in different threads
    from restoring it under each other.
    """
    with _ENV_LOCK:
        keys = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        saved = {k: os.environ.get(k) for k in keys}
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet():
    """No torch warnings or log records on the user's terminal while loading (failures become one line)."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _validate_pt2(data: bytes, z: zipfile.ZipFile, path: Path) -> None:
    """Refuse (one line) any .pt2 whose loading could run code or exhaust memory; see the module docstring."""
    from torch._export.serde import schema
    from torch._export.serde.serialize import _dict_to_dataclass, deserialize_scalar_type
    from torch.export.pt2_archive import constants as C

    names = z.namelist()
    if not names:
        raise _refuse(path, "the archive is empty")
    if any("/" not in n for n in names) or len({n.split("/", 1)[0] for n in names}) != 1:
        raise _refuse(path, "its members are not all in one top-level folder (a legacy or hand-made archive)")
    rel = [n.split("/", 1)[1] for n in names]
    low = [r.lower() for r in rel]
    if len(set(low)) != len(low):
        raise _refuse(path, "it holds duplicate member names (ignoring case), which torch would resolve ambiguously")
    for r in low:
        if "serialized_exported_program" in r or r in ("data/weights/model.pt", "data/constants/model.pt"):
            raise _refuse(path, f"member {r!r} is the pickled legacy (torch < 2.8) layout")
        if r.startswith((C.AOTINDUCTOR_DIR, C.EXECUTORCH_DIR, C.MTIA_DIR.lower(), "data/aoti")):
            raise _refuse(path, f"member {r!r} is compiled native code (AOTInductor), which is never loaded")
        if r.startswith(C.MODELS_DIR) and r != C.MODELS_FILENAME_FORMAT.format("model"):
            raise _refuse(path, f"member {r!r}: only one program, models/model.json, is accepted")
        if r.startswith(C.CONSTANTS_DIR) and r[len(C.CONSTANTS_DIR):].startswith((C.CUSTOM_OBJ_FILENAME_PREFIX, C.OPAQUE_OBJ_FILENAME_PREFIX)):
            raise _refuse(path, f"member {r!r} is a custom/opaque Python object constant, which would be unpickled")
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - torch's reader refuses the archive
        raise _refuse(path, f"torch cannot read the archive ({first_line(e)})") from None

    def record(name: str) -> bytes:
        try:
            return reader.get_record(name)
        except Exception:  # noqa: BLE001
            raise _refuse(path, f"member {name} is missing or unreadable") from None

    if record(C.ARCHIVE_FORMAT_PATH) != C.ARCHIVE_FORMAT_VALUE.encode():
        raise _refuse(path, "archive_format is not 'pt2'")

    def parse_json(name: str) -> Any:
        try:
            return json.loads(record(name).decode("utf-8"))
        except (ValueError, RecursionError, MemoryError) as e:
            raise _refuse(path, f"{name} is not valid JSON ({first_line(e)})") from None

    why = check_program_json(parse_json(C.MODELS_FILENAME_FORMAT.format("model")))
    if why:
        raise _refuse(path, f"models/model.json: {why}")
    for cfg_name, kind in ((C.WEIGHTS_CONFIG_FILENAME_FORMAT.format("model"), "weight"),
                           (C.CONSTANTS_CONFIG_FILENAME_FORMAT.format("model"), "constant")):
        raw = parse_json(cfg_name)
        try:
            cfg = _dict_to_dataclass(schema.PayloadConfig, raw)
            entries = dict(cfg.config)
        except Exception as e:  # noqa: BLE001 - torch's own parser rejects it
            raise _refuse(path, f"{cfg_name} is malformed ({first_line(e)})") from None
        for fqn, meta in entries.items():
            pn = meta.path_name
            if not isinstance(pn, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", pn) or ".." in pn:
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} has a bad path name {str(pn)[:60]!r}")
            if kind == "constant" and not pn.startswith(C.TENSOR_CONSTANT_FILENAME_PREFIX):
                raise _refuse(path, f"constant {str(fqn)[:60]!r} ({pn}) is a custom/opaque Python object, which would be unpickled")
            if meta.use_pickle:
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} is stored as a pickle (use_pickle), which could run code when loaded")
            tm = meta.tensor_meta
            if tm is None:
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} has no tensor metadata")
            try:
                sizes = [s.as_int for s in tm.sizes]
                [s.as_int for s in tm.strides]
                tm.storage_offset.as_int  # noqa: B018 - raises unless a plain int
                item = torch._utils._element_size(deserialize_scalar_type(tm.dtype))
            except Exception:  # noqa: BLE001
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} has malformed tensor metadata") from None
            if any(not isinstance(s, int) or s < 0 for s in sizes) or math.prod(sizes) * item > MAX_UNPACKED_BYTES:
                raise _refuse(path, f"{kind} {str(fqn)[:60]!r} declares sizes {sizes[:8]} (negative or over the size limit)")
    sample = record(C.SAMPLE_INPUTS_FILENAME_FORMAT.format("model"))
    if sample:
        why = check_torch_archive_storages(sample)
        if why:
            raise _refuse(path, f"data/sample_inputs/model.pt: {why}")
        try:
            with _weights_only_torch_load(), _quiet():
                torch.load(io.BytesIO(sample), weights_only=True, map_location="cpu")
        except Exception:  # noqa: BLE001 - anything but plain tensors
            raise _refuse(
                path, "data/sample_inputs/model.pt is a pickle of something other than tensors, which could run code when loaded"
            ) from None


def _load_export(data: bytes, z: zipfile.ZipFile, path: Path) -> torch.export.ExportedProgram:
    try:
        _validate_pt2(data, z, path)
    except NeurocompileError:
        raise
    except Exception as e:  # noqa: BLE001 - a shape of damage the checks did not foresee is still damage
        raise _refuse(path, f"the archive is malformed ({type(e).__name__}: {first_line(e)[:120]})") from None
    try:
        with _weights_only_torch_load(), _quiet():
            ep = torch.export.load(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - torch's own failure, reported on one line
        raise NeurocompileError(f"{path}: torch.export.load failed: {first_line(e)}") from None
    if not isinstance(ep, torch.export.ExportedProgram):
        raise NeurocompileError(f"{path}: torch.export.load did not return a program; {HOW_TO_EXPORT}")
    ep._guards_code = []  # Python source that ep.module() would exec; guards only re-check input shapes
    return ep


# -- TorchScript and pickles -----------------------------------------------------

# torch's C++ readers trust a storage's declared element count: a record shorter than it
# is read out of bounds (a segfault, found by tests/test_fuzz_loaders.py). So the pickles
# of TorchScript archives and torch.save archives are first walked by a Python unpickler
# that imports and calls nothing (every global is a stub), collecting each storage's
# declared size and each tensor's view, which are checked against the zip records.

_STORAGE_ITEMSIZE = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8, "IntStorage": 4,
    "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8, "QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1, "UntypedStorage": 1,
}


class _StubBase(dict):
    """Stands in for every global of a scanned pickle: constructible, callable, stateful, inert."""

    _nc_global = ""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


class _Storage:
    def __init__(self, numel: int):
        self.numel = numel


class _ScanError(Exception):
    pass


def _rebuild_tensor_stub(storage=None, offset=0, size=(), stride=(), *rest):
    if isinstance(storage, _Storage):
        dims = list(size) if isinstance(size, (tuple, list)) else None
        steps = list(stride) if isinstance(stride, (tuple, list)) else None
        if (dims is None or steps is None or len(dims) != len(steps) or not isinstance(offset, int) or offset < 0
                or not all(isinstance(v, int) and v >= 0 for v in dims + steps)):
            raise _ScanError("a tensor has a malformed shape, stride or offset")
        if all(dims) and dims and offset + sum((d - 1) * st for d, st in zip(dims, steps)) >= storage.numel:
            raise _ScanError(f"a tensor of shape {tuple(dims)} reaches past its storage of {storage.numel} elements")
        if not dims and offset >= storage.numel:
            raise _ScanError("a scalar tensor lies past its storage")
    return _StubBase()


class _ScanningUnpickler(__import__("pickle").Unpickler):
    def __init__(self, data: bytes, storages: list):
        super().__init__(io.BytesIO(data))
        self._storages = storages

    def find_class(self, module, name):  # never imports: a stub that remembers its name
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor_stub
        return type(str(name)[:100], (_StubBase,), {"_nc_global": f"{module}.{name}"})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise _ScanError(f"unexpected persistent id {str(pid)[:60]!r}")
        _, kind, key, _location, numel = pid[:5]
        name = getattr(kind, "_nc_global", "").rsplit(".", 1)[-1]
        if name not in _STORAGE_ITEMSIZE:
            raise _ScanError(f"unknown storage type {name or type(kind).__name__!r}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise _ScanError("a storage has a malformed key or size")
        self._storages.append((key, numel * _STORAGE_ITEMSIZE[name]))
        return _Storage(numel)


_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})


def _check_pickle_opcodes(raw: bytes) -> str | None:
    """Opcode-level check (``pickletools.genops`` only decodes): well-formed, and no memo index
    beyond the pickle's length -- unpicklers size their memo table by the largest index, so one
    ``LONG_BINPUT 1258975569`` makes them allocate gigabytes (found by the fuzz tests)."""
    import pickletools

    try:
        for op, arg, _pos in pickletools.genops(raw):
            if op.name in _MEMO_OPS and (not isinstance(arg, int) or not 0 <= arg <= len(raw)):
                return f"memo index {arg!r} is out of range"
    except Exception as e:  # noqa: BLE001 - pickletools raises ValueError & co. for garbage
        return f"not a well-formed pickle ({first_line(e)[:80]})"
    return None


def check_torch_archive_storages(data: bytes, pickles: tuple[str, ...] = ("data.pkl",)) -> str | None:
    """Why a torch.save / torch.jit.save zip would make torch read out of bounds, or None.

    Each pickle present (``pickles``: names inside the archive's top folder) is walked without
    importing or calling anything; every storage it declares must have a ``<pickle>/<key>``
    (or ``data/<key>``) record at least as long as the declared size, and every tensor view
    must lie inside its storage. (``traced_inputs.pkl`` is not checked: torch.jit.load does
    not read it, and torch writes its storages empty.)
    """
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        records = reader.get_all_records()
    except Exception as e:  # noqa: BLE001
        return f"torch cannot read the archive ({first_line(e)})"
    for name in pickles:
        if not any(r.lower() == name for r in records):  # torch's zip lookup ignores case
            continue  # torch reports a missing pickle itself, cleanly
        try:
            raw = reader.get_record(name)
        except Exception as e:  # noqa: BLE001
            return f"{name} is unreadable ({first_line(e)})"
        why = _check_pickle_opcodes(raw)
        if why:
            return f"{name}: {why}"
        storages: list[tuple[str, int]] = []
        try:
            _ScanningUnpickler(raw, storages).load()
        except _ScanError as e:
            return f"{name}: {e}"
        except Exception as e:  # noqa: BLE001 - not a well-formed pickle
            return f"{name} is not a well-formed pickle ({type(e).__name__})"
        for key, nbytes in storages:
            candidates = [f"{name[:-4]}/{key}", f"data/{key}"]  # torch: <pickle name>/<key>; old TorchScript: data/
            size = None
            for c in candidates:
                try:
                    size = reader.get_record_size(c)
                    break
                except Exception:  # noqa: BLE001
                    continue
            if size is None:
                if nbytes:
                    return f"{name}: storage {key!r} has no data record"
                continue
            if size < nbytes:
                return f"{name}: storage {key!r} declares {nbytes} bytes but its record holds {size}"
    return None


def _candidate_shapes(sample_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    shapes = [(1, *sample_shape)]
    flat = (1, math.prod(sample_shape))
    if flat not in shapes:
        shapes.append(flat)
    return shapes


def _load_pickle(data: bytes, path: Path, trust_pickle: bool) -> torch.nn.Module:
    why = check_torch_archive_storages(data)
    if why and not trust_pickle:
        raise NeurocompileError(f"{path}: a damaged torch.save archive ({why}); {HOW_TO_EXPORT}")
    try:
        with _weights_only_torch_load(), _quiet():
            obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception:  # noqa: BLE001
        obj = None  # not plain tensors: a pickled module (or worse)
    if isinstance(obj, dict):
        raise NeurocompileError(
            f"{path} holds only a state_dict (weights without an architecture); {HOW_TO_EXPORT}"
        )
    if not trust_pickle:
        raise NeurocompileError(
            f"{path} is a pickle (torch.save), and loading it would run arbitrary code; {HOW_TO_EXPORT}, "
            "or pass --trust-pickle if you trust the file"
        )
    try:
        with _quiet():
            obj = torch.load(io.BytesIO(data), weights_only=False, map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise NeurocompileError(f"{path}: could not unpickle the trusted model: {first_line(e)}") from None
    if not isinstance(obj, torch.nn.Module):
        raise NeurocompileError(f"{path} unpickles to {type(obj).__name__}, not a torch.nn.Module; {HOW_TO_EXPORT}")
    return obj


def _shape_text(shapes: list[tuple[int, ...]]) -> str:
    return " and ".join(str(s) for s in shapes)


def _without_debug_info(data: bytes, path: Path) -> bytes:
    """The TorchScript archive re-packed without its ``*.debug_pkl`` members (source-range debug info).

    torch's C++ reader of that optional debug info trusts its offsets: a damaged one crashed the
    process when the converter printed a node (found by tests/test_fuzz_loaders.py). Members are
    read through torch's own zip reader, so the copy holds exactly what torch would have read.
    """
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        records = reader.get_all_records()
        lowered = [r.lower() for r in records]
        if len(set(lowered)) != len(lowered):
            raise NeurocompileError(f"{path}: not a loadable TorchScript model: duplicate member names (ignoring case)")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, low in zip(records, lowered):
                if not low.endswith(".debug_pkl"):
                    z.writestr(f"archive/{name}", reader.get_record(name))
        return buf.getvalue()
    except NeurocompileError:
        raise
    except Exception as e:  # noqa: BLE001 - torch's reader refuses the archive
        raise NeurocompileError(f"{path}: not a loadable TorchScript model: {first_line(e)}; {HOW_TO_EXPORT}") from None


def _load_torchscript(data: bytes, path: Path, sample_shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    data = _without_debug_info(data, path)
    why = check_torch_archive_storages(data, pickles=("data.pkl", "constants.pkl"))  # what torch.jit.load unpickles
    if why:
        raise NeurocompileError(f"{path}: not a loadable TorchScript model: {why}; {HOW_TO_EXPORT}")
    try:
        with _weights_only_torch_load(), _quiet():
            ts = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - a damaged or hostile archive: the C++ unpickler refused it
        raise NeurocompileError(f"{path}: not a loadable TorchScript model: {first_line(e)}; {HOW_TO_EXPORT}") from None
    from torch._export.converter import TS2EPConverter

    shapes = _candidate_shapes(sample_shape)
    errors = []
    for shape in shapes:
        try:
            with _quiet():
                return TS2EPConverter(ts, (torch.zeros(shape),)).convert()
        except Exception as e:  # noqa: BLE001 - try the next input shape
            errors.append(first_line(e))
    raise NeurocompileError(
        f"{path}: could not convert the TorchScript model with an input of shape {_shape_text(shapes)} "
        f"(batch first): {errors[0][:200]}"
    )


def _export_module(module: torch.nn.Module, path: Path, sample_shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    shapes = _candidate_shapes(sample_shape)
    errors = []
    for shape in shapes:
        try:
            with _quiet():
                return torch.export.export(module, (torch.zeros(shape),))
        except Exception as e:  # noqa: BLE001 - try the next input shape
            errors.append(first_line(e))
    raise NeurocompileError(
        f"{path}: torch.export could not capture the model with an input of shape {_shape_text(shapes)}: {errors[0][:200]}"
    )


def load_program_and_format(
    path: str | Path, sample_shape: tuple[int, ...] | None = None, trust_pickle: bool = False
) -> tuple[torch.export.ExportedProgram, ModelFormat]:
    """:func:`load_program` and the file's format, reading the file once."""
    path = Path(path)
    check_input_file(path, "model file", MAX_MODEL_BYTES)
    _refuse_nir(path)
    data = read_input_file(path, "model file", MAX_MODEL_BYTES)
    z = _open_archive(data, path)
    fmt = _format_of(z.namelist(), path)
    if fmt == "export":
        return _load_export(data, z, path), fmt
    if sample_shape is None:
        raise NeurocompileError(f"{path}: {fmt} models do not record their input shape; pass --data (digits, mnist or FILE.npz) so it can be taken from the data")
    sample_shape = tuple(int(d) for d in sample_shape)
    if fmt == "torchscript":
        return _load_torchscript(data, path, sample_shape), fmt
    return _export_module(_load_pickle(data, path, trust_pickle).eval(), path, sample_shape), fmt


def load_program(
    path: str | Path, sample_shape: tuple[int, ...] | None = None, trust_pickle: bool = False
) -> torch.export.ExportedProgram:
    """Any accepted model file as an ExportedProgram.

    ``sample_shape`` (one sample, no batch dimension) is needed for formats that
    do not record their input shape (TorchScript, pickled modules); when the model
    does not accept it, the flattened shape ``(prod(sample_shape),)`` is tried too.
    Every problem with the file is a one-line :class:`NeurocompileError`.
    """
    return load_program_and_format(path, sample_shape, trust_pickle)[0]


def program_batch_size(program: torch.export.ExportedProgram) -> int | None:
    """The batch size the program was exported with when it is fixed; None when the batch is dynamic.

    A program exported without ``torch.export.Dim`` on the batch axis can only be
    called with exactly that many samples at a time.
    """
    sig = program.graph_signature
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in sig.user_inputs:
            val = node.meta.get("val")
            shape = getattr(val, "shape", None)
            if not shape:
                return None
            batch = shape[0]
            return int(batch) if isinstance(batch, int) else None
    return None
