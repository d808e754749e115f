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

SHIPPED = {"loihi", "loihi2", "kapoho_point", "hala_point", "cmos45_fp32", "cmos45_int8"}

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
    for term in ("synop", "neuron_update", "neuron_update_idle", "spike_message", "mesh_hop", "x86_step"):
        assert loihi2.energy[term].si == pytest.approx(loihi.energy[term].si * k_e)
        assert loihi2.time[term].si == pytest.approx(loihi.time[term].si * k_t)
    assert loihi2.time["host_step"].si == pytest.approx(loihi.time["host_step"].si * k_t)
    for section in (loihi2.energy, loihi2.time):
        for term, q in section.items():
            if term != "static_power":
                assert q.label == "estimated" and q.uncertain, term
    assert loihi2.energy["static_power"].label == "measured"


def test_loihi2_input_event_is_bounded_by_the_sdnn_benchmark():
    """Recompute the host input-event figures from the SDNN measurement they were derived from."""
    p = load_profile("loihi2")
    cal = {k: q.si for k, q in p.calibration.items()}
    per_frame = 1 / cal["sdnn_frame_rate"]
    values = cal["sdnn_input_values"]
    assert values == 200 * 66 * 3
    assert p.time["input_event"].si == pytest.approx(per_frame / values, rel=1e-3)
    assert p.time["input_event"].range[0] == pytest.approx(p.time["input_event"].value)  # a lower bound
    assert p.energy["input_event"].si == pytest.approx(abs(cal["sdnn_dynamic_power"]) * per_frame / values, rel=1e-2)
    assert p.energy["input_event"].range[0] == 0.0  # the measurement cannot tell it from zero


def test_pilotnet_lif_measurement_is_a_check_not_a_fit():
    """The PilotNet LIF figures are kept as measured references and are consistent with each other."""
    p = load_profile("loihi2")
    cal = {k: q for k, q in p.calibration.items()}
    for key in ("measured_dynamic_energy", "measured_inference_rate", "measured_total_energy"):
        assert cal[key].label == "measured"
    for key in ("measured_dynamic_energy", "measured_inference_rate"):
        assert "not fitted" in cal[key].note
    # total = dynamic + static x time per inference (the notebook's own numbers)
    total = cal["measured_dynamic_energy"].si + p.energy["static_power"].si / cal["measured_inference_rate"].si
    assert total == pytest.approx(cal["measured_total_energy"].si, rel=1e-3)


def test_label_rule_gives_every_constant_a_range():
    loihi, loihi2 = load_profile("loihi"), load_profile("loihi2")
    assert loihi.energy["static_power"].bounds_si() == pytest.approx((0.029 * 0.9, 0.029 * 1.1))
    assert loihi.energy["synop"].bounds_si() == pytest.approx((11.8e-12, 47.2e-12))
    assert loihi2.energy["synop"].bounds_si() == pytest.approx((23.6e-12 / 4, 23.6e-12 * 4))
    assert loihi.time["barrier_sync"].bounds_si() == pytest.approx((113e-9, 930e-9))  # range low, label high
    for p in (loihi, loihi2):
        for q in list(p.energy.values()) + list(p.time.values()):
            lo, hi = q.bounds_si()
            assert lo <= q.si <= hi


def test_multi_chip_systems_inherit_loihi2_per_chip():
    loihi2, kp, hp = load_profile("loihi2"), load_profile("kapoho_point"), load_profile("hala_point")
    assert (kp.limit("chips"), kp.limit("cores")) == (8, 128)
    assert (hp.limit("chips"), hp.limit("cores")) == (1152, 122)
    assert hp.limit("chips") * hp.limit("cores") == int(hp.reference["system_cores"].value) == 140_544
    for p in (kp, hp):
        assert p.kind == "neuromorphic" and p.weight_bits == loihi2.weight_bits
        for term, q in loihi2.energy.items():
            assert p.energy[term] == q
        for term, q in loihi2.time.items():
            assert p.time[term] == q
        assert p.limits["chips"].label == "specified" and p.limits["chips"].source


def test_base_profile_overrides_key_by_key_and_refuses_cycles(tmp_path):
    text = (profiles_dir() / "loihi.toml").read_text()
    _write(tmp_path, "loihi", text)
    _write(tmp_path, "big", '[profile]\nname = "big"\nbase = "loihi"\nkind = "neuromorphic"\n\n'
           '[limits.chips]\nvalue = 4\nunit = "chips"\nsource = "test"\nlabel = "specified"\n')
    big = load_profile("big", tmp_path)
    assert big.limit("chips") == 4 and big.limit("cores") == 128
    assert big.energy["synop"] == load_profile("loihi").energy["synop"]
    _write(tmp_path, "a", '[profile]\nname = "a"\nbase = "b"\nkind = "ann"\n')
    _write(tmp_path, "b", '[profile]\nname = "b"\nbase = "a"\nkind = "ann"\n')
    with pytest.raises(NeurocompileError, match="cycle"):
        load_profile("a", tmp_path)


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
