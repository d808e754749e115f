"""neurocompile: trained PyTorch ANN → spiking network on Loihi 2 (Lava), with an honest report."""
from __future__ import annotations

__version__ = "0.1.0"


def build(*args, **kwargs):
    """See :func:`neurocompile.pipeline.build`."""
    from .pipeline import build as _build

    return _build(*args, **kwargs)


def run(out, backend: str = "reference", samples: int | None = None, *, steps: int | None = None,
        timeout_s: float | None = None) -> dict:
    """Run any build folder ``out`` on ``backend`` (``neurocompile run``); the run as a dict.

    A feed-forward build runs its data set's test split (:func:`neurocompile.pipeline.run_artifact`),
    a recurrent one (``build --rsnn``) its regenerated task (:func:`neurocompile.rsnn_run.run_recurrent`);
    ``steps`` cuts a recurrent build's streamed series and is refused for a feed-forward one.
    """
    from .errors import NeurocompileError
    from .reporting import is_recurrent, open_build

    if is_recurrent(open_build(out)):
        from .rsnn_run import RunOptions, run_recurrent

        return run_recurrent(out, RunOptions(backend=backend, samples=samples, steps=steps, timeout_s=timeout_s))
    if steps is not None:
        raise NeurocompileError(f"--steps cuts a recurrent build's series (`build --rsnn --task lorenz|rossler`); {out} is a "
                                "feed-forward build: give --samples N")
    from .pipeline import run_artifact

    return run_artifact(out, backend=backend, samples=samples, timeout_s=timeout_s)


def build_rsnn(*args, **kwargs):
    """See :func:`neurocompile.rsnn_build.build_rsnn` (``neurocompile build --rsnn``)."""
    from .rsnn_build import build_rsnn as _build_rsnn

    return _build_rsnn(*args, **kwargs)
