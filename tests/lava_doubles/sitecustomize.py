"""Test double wiring for the Lava worker subprocess (tests/test_lava_supervision.py).

Python imports ``sitecustomize`` at start-up from the path, so a worker
started with this folder on ``PYTHONPATH`` and ``NC_TEST_FAILING_LIF`` set
(JSON: ``{"population": ..., "where": "init" | "run", "step": ...}``) builds
that population as :class:`failing_lif.process.FailingLIF`, whose model
raises. Production code has no hook for this: the lowering's ``PeriodicLIF``
name is replaced here, before the worker imports it.
"""
import json
import os

_SPEC = os.environ.get("NC_TEST_FAILING_LIF")
if _SPEC:
    from failing_lif.process import install

    install(json.loads(_SPEC))
