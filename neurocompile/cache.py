"""The per-user cache folder, shared by the data sets (downloads) and the native kernel (compiled builds).

A module of its own so that neither user has to import the other: the
simulators must not depend on the data loaders.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where downloads and builds are cached: ``$NEUROCOMPILE_CACHE`` or ~/.cache/neurocompile."""
    env = os.environ.get("NEUROCOMPILE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "neurocompile"
