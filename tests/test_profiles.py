"""Hardware profiles: shipped files are complete and sourced, the Loihi 2 derivation
reproduces the PilotNet measurement it was calibrated on, and bad input is refused
with a message that names the problem."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from neurocompile.errors import NeurocompileError
from neurocompile.profiles import (
    ENV_VAR,
    LABELS,
    format_profiles_table,
    load_profile,
    load_profiles,
    profiles_dir,
)

SHIPPED = {"loihi", "loihi2", "cmos45_fp32", "cmos45_int8"}

MINIMAL = """
[profile]
name = "{name}"
kind = "ann"

[formats.weight_bits]
value = 8
unit = "bit"
source = "test"
label = "specified"

[energy.mac]
value = 1.5
unit = "pJ"
source = "test"
label = "estimated"
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


# -- the shipped profiles ----------------------------------------------------------------
def test_shipped_profiles_load_and_every_value_is_sourced_and_labelled():
    profiles = load_profiles()
    assert SHIPPED <= set(profiles)
    for p in profiles.values():
        assert p.path.parent == profiles_dir()
        for key, q in p.quantities().items():
            assert q.label in LABELS, key
            assert q.source.strip(), key
            assert q.unit.strip(), key


def test_raw_toml_has_no_bare_numbers():
    """Every leaf under a value section is a table with value/unit/source/label (not just what the loader reads)."""
    for path in profiles_dir().glob("*.toml"):
        doc = tomllib.loads(path.read_text())
        for section, table in doc.items():
            if section == "profile":
                continue
            for key, entry in table.items():
                assert isinstance(entry, dict), f"{path.name}: {section}.{key}"
                assert {"value", "unit", "source", "label"} <= set(entry), f"{path.name}: {section}.{key}"


def test_units_convert_to_si():
    loihi = load_profile("loihi")
    assert loihi.energy["synop"].si == pytest.approx(23.6e-12)
    assert loihi.energy["static_power"].si == pytest.approx(0.029)
    assert loihi.time["barrier_sync"].si == pytest.approx(465e-9)
    assert loihi.limit("synaptic_memory_bits_per_core") == 128 * 1024 * 8


def test_loihi2_memory_is_kept_uncertain():
    q = load_profile("loihi2").limits["synaptic_memory_bits_per_core"]
    assert q.uncertain
    assert q.range == (128 * 1024 * 8, 192 * 1024 * 8)
    assert q.value == q.range[0]  # the mapper uses the conservative figure


def test_loihi2_per_op_figures_are_estimates_derived_from_loihi():
    loihi, loihi2 = load_profile("loihi"), load_profile("loihi2")
    k_e = loihi2.derivation["energy_scale"].value
    k_t = loihi2.derivation["time_scale"].value
    for term in ("synop", "neuron_update", "spike_message"):
        assert loihi2.energy[term].si == pytest.approx(loihi.energy[term].si * k_e)
        assert loihi2.time[term].si == pytest.approx(loihi.time[term].si * k_t)
    for section in (loihi2.energy, loihi2.time):
        for term, q in section.items():
            if term != "static_power":
                assert q.label == "estimated" and q.uncertain, term
    assert loihi2.energy["static_power"].label == "measured"


def _pilotnet_synapses() -> int:
    """Nonzero synapses of PilotNet SDNN, recounted from its layer table (W, H, C; 3x3 kernels)."""
    convs = [  # (in W, H, C), (out W, H, C), stride (x, y), padding (x, y)
        ((200, 66, 3), (99, 32, 24), (2, 2), (0, 0)),
        ((99, 32, 24), (49, 15, 36), (2, 2), (0, 0)),
        ((49, 15, 36), (24, 7, 48), (2, 2), (0, 0)),
        ((24, 7, 48), (22, 4, 64), (1, 2), (0, 1)),
        ((22, 4, 64), (20, 2, 64), (1, 1), (0, 0)),
    ]
    total = 0
    for (wi, hi, ci), (wo, ho, co), (sx, sy), (px, py) in convs:
        taps_x = sum(sum(0 <= x * sx - px + k < wi for k in range(3)) for x in range(wo))
        taps_y = sum(sum(0 <= y * sy - py + k < hi for k in range(3)) for y in range(ho))
        total += taps_x * taps_y * ci * co
    return total + 2560 * 100 + 100 * 50 + 50 * 10 + 10 * 1


def test_loihi2_calibration_reproduces_pilotnet():
    """The calibrated model, fed PilotNet's workload, gives back the measured energy and time."""
    p = load_profile("loihi2")
    cal = {k: q.si for k, q in p.calibration.items()}
    e = {k: q.si for k, q in p.energy.items()}
    t = {k: q.si for k, q in p.time.items()}
    assert cal["workload_synapses"] == _pilotnet_synapses()
    assert cal["workload_neurons"] == 99 * 32 * 24 + 49 * 15 * 36 + 24 * 7 * 48 + 22 * 4 * 64 + 20 * 2 * 64 + 100 + 50 + 10 + 1
    a, syn, neu, inp = cal["workload_events_per_neuron"], cal["workload_synapses"], cal["workload_neurons"], cal["workload_input_values"]

    energy = a * syn * e["synop"] + neu * e["neuron_update"] + a * neu * e["spike_message"] + inp * e["input_event"]
    assert energy == pytest.approx(cal["measured_dynamic_energy"], rel=1e-3)

    core_time = (a * syn * t["synop"] + neu * t["neuron_update"] + a * neu * t["spike_message"]) / cal["workload_cores"]
    latency = core_time + t["barrier_sync"] + inp * t["input_event"]
    assert latency == pytest.approx(1 / cal["measured_inference_rate"], rel=2e-3)

    # and static power over that time closes the gap to the measured total
    assert energy + e["static_power"] * latency == pytest.approx(cal["measured_total_energy"], rel=1e-2)


def test_quantiser_reads_the_profile_formats():
    from neurocompile.passes.quantize import FixedPointFormat

    for name in ("loihi", "loihi2"):
        p = load_profile(name)
        fmt = FixedPointFormat.from_profile(p)
        assert fmt.weight_bits == int(p.formats["weight_bits"]) == 8
        assert fmt.state_bits == 24 and fmt.vth_bits == 17 and fmt.decay_bits == 12


def test_ann_baselines_match_horowitz():
    fp32, int8 = load_profile("cmos45_fp32"), load_profile("cmos45_int8")
    assert fp32.energy["mac"].si == pytest.approx(fp32.reference["fp32_mult"].si + fp32.reference["fp32_add"].si)
    assert int8.energy["mac"].si == pytest.approx(int8.reference["int8_mult"].si + int8.reference["int8_add"].si)
    assert fp32.weight_bits == 32 and int8.weight_bits == 8
    assert not fp32.has_timing


def test_profiles_table_lists_every_profile_and_marks_uncertainty():
    text = format_profiles_table(load_profiles())
    for name in SHIPPED:
        assert name in text
    loihi2_row = next(line for line in text.splitlines() if line.startswith("loihi2 "))
    assert "~128 KiB (128-192)" in loihi2_row
    assert "[estimated]" in loihi2_row and "[measured]" in loihi2_row


# -- lookup and refusals -------------------------------------------------------------------
def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(NeurocompileError) as e:
        load_profile("truenorth9000")
    msg = str(e.value)
    assert "truenorth9000" in msg
    for name in SHIPPED:
        assert name in msg


def test_load_by_path_and_env_override(tmp_path, monkeypatch):
    _write(tmp_path, "mychip", MINIMAL.format(name="mychip"))
    assert load_profile(str(tmp_path / "mychip.toml")).energy["mac"].si == pytest.approx(1.5e-12)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert set(load_profiles()) == {"mychip"}
    assert load_profile("mychip").kind == "ann"
    with pytest.raises(NeurocompileError, match="known profiles: mychip"):
        load_profile("loihi")


def test_env_override_must_be_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(NeurocompileError, match=ENV_VAR):
        load_profiles()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t.replace('label = "estimated"\n', ""), "missing key 'energy.mac.label'"),
        (lambda t: t.replace('source = "test"\nlabel = "estimated"', 'source = "test"\nlabel = "guessed"'), "'energy.mac.label' is 'guessed'"),
        (lambda t: t[: t.index("[energy.mac]")], "missing key 'energy.mac'"),
        (lambda t: t.replace('kind = "ann"\n', ""), "missing key 'profile.kind'"),
        (lambda t: t.replace('unit = "pJ"', 'unit = "ns"'), "'energy.mac' has unit 'ns'"),
        (lambda t: t.replace("[energy.mac]", "[energy.flops]"), "unknown energy term 'energy.flops'"),
        (lambda t: t.replace('source = "test"\nlabel = "estimated"', 'source = " "\nlabel = "estimated"'), "'energy.mac.source' is empty"),
        (lambda t: t.replace("value = 1.5", "value = 1.5 pJ"), "not valid TOML"),
        (lambda t: t + '\n[limitz.cores]\nvalue = 1\nunit = "x"\nsource = "s"\nlabel = "specified"\n', "unknown section(s) limitz"),
    ],
)
def test_malformed_profiles_name_the_problem(tmp_path, edit, expected):
    path = _write(tmp_path, "bad", edit(MINIMAL.format(name="bad")))
    with pytest.raises(NeurocompileError) as e:
        load_profile(str(path))
    assert expected in str(e.value)
    assert str(path) in str(e.value)


def test_neuromorphic_profile_needs_its_limits(tmp_path):
    text = MINIMAL.format(name="chip").replace('kind = "ann"', 'kind = "neuromorphic"')
    path = _write(tmp_path, "chip", text)
    with pytest.raises(NeurocompileError, match="missing key 'limits.cores'"):
        load_profile(str(path))


def test_name_must_match_file_in_a_profiles_folder(tmp_path):
    _write(tmp_path, "alpha", MINIMAL.format(name="beta"))
    with pytest.raises(NeurocompileError, match="profile.name is 'beta' but the file is alpha.toml"):
        load_profiles(tmp_path)
