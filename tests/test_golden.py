"""The example models' builds stay bit for bit what they were when tests/golden/examples.json was recorded.

Refactors of the IR, the simulators and the passes must keep every accuracy,
every layer's spike count and the fixed-point readouts of the whole test set
(tests/golden/record.py says how the values were made).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"


def _record_module():
    spec = importlib.util.spec_from_file_location("golden_record", HERE / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_example_builds_match_the_golden_record(name):
    golden = json.loads((HERE / "examples.json").read_text())[name]
    assert _record_module().summary(HERE / f"{name}.pt2") == golden
