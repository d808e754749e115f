"""neurocompile: trained PyTorch ANN → spiking network on Loihi 2 (Lava), with an honest report."""
from __future__ import annotations

__version__ = "0.1.0"


def build(*args, **kwargs):
    """See :func:`neurocompile.pipeline.build`."""
    from .pipeline import build as _build

    return _build(*args, **kwargs)


def run(*args, **kwargs):
    """See :func:`neurocompile.pipeline.run_artifact`."""
    from .pipeline import run_artifact

    return run_artifact(*args, **kwargs)


def build_rsnn(*args, **kwargs):
    """See :func:`neurocompile.rsnn_build.build_rsnn` (``neurocompile build --rsnn``)."""
    from .rsnn_build import build_rsnn as _build_rsnn

    return _build_rsnn(*args, **kwargs)
