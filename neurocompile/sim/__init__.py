"""Simulators of the IR: the ANN forward pass, the spiking engine (float and bit-exact fixed point), encodings.

They depend on the IR and the target's rules only (checked by the
import-linter contracts in pyproject.toml); what adapts them to the backend
registry lives in :mod:`neurocompile.backends`.
"""
