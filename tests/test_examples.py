"""The bundled example models: they train to a sane accuracy and their exports reload faithfully."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from neurocompile.errors import NeurocompileError

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_example.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """examples/ is not a package, so load the script by path."""
    spec = importlib.util.spec_from_file_location("train_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mlp(example: ModuleType) -> tuple[torch.nn.Module, float]:
    return example.train_example("mlp", epochs=8)


def test_mlp_reaches_a_sane_accuracy(mlp: tuple[torch.nn.Module, float]) -> None:
    module, accuracy = mlp
    assert accuracy >= 0.9
    assert not module.training


def test_training_is_deterministic(example: ModuleType) -> None:
    first, _ = example.train_example("mlp", epochs=2, seed=3)
    again, _ = example.train_example("mlp", epochs=2, seed=3)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    assert not torch.are_deterministic_algorithms_enabled()  # the caller's setting is restored


def _reloaded_outputs(path: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    loaded = torch.export.load(str(path)).module() if fmt == "pt2" else torch.jit.load(str(path))
    with torch.no_grad():
        return loaded(x)


@pytest.mark.parametrize("fmt", ["pt2", "pt"])
def test_mlp_export_round_trips(example: ModuleType, mlp, fmt: str, tmp_path: Path) -> None:
    module, _ = mlp
    path = example.export_model(module, tmp_path / f"mlp.{fmt}", fmt, example.example_input("mlp"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"mlp.{fmt}"]  # staged file renamed into place
    x = torch.rand(1, 64)  # the export is specialised to the example's batch of one
    with torch.no_grad():
        expected = module(x)
    torch.testing.assert_close(_reloaded_outputs(path, fmt, x), expected)


def test_cnn_export_round_trips_with_batchnorm(example: ModuleType, tmp_path: Path) -> None:
    module, _ = example.train_example("cnn", epochs=1)
    path = example.export_model(module, tmp_path / "cnn.pt2", "pt2", example.example_input("cnn"))
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        expected = module(x)
    torch.testing.assert_close(_reloaded_outputs(path, "pt2", x), expected)


def test_cli_writes_the_model(example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "cnn.pt"
    assert example.main(["--model", "cnn", "--format", "pt", "--out", str(out), "--epochs", "1"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out


def test_unknown_model_and_format_are_refused(example: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(NeurocompileError, match="mlp, cnn"):
        example.train_example("resnet")
    with pytest.raises(NeurocompileError, match="pt2, pt"):
        example.export_model(torch.nn.Linear(2, 2), tmp_path / "m.onnx", "onnx", torch.zeros(1, 2))
