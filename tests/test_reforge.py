"""reForge (3b56b268) specifics in its stand-in: the ``forge_clip`` encoders and their numbering,
identity with reForge at its own value on SD1, SD2 and SDXL, and its own Dynamic clip skip, which
decides when it is on (the extension then applies nothing and says so)."""

from __future__ import annotations

import pytest
from test_generation import assert_differs, assert_same, count_runs, host_run, our_run, sampled
from test_xyz import grid, one_thread  # noqa: F401 (autouse: one torch thread for the tiny towers)

from lib_clipskip import panel
from lib_clipskip.hosts import detect
from lib_clipskip.hosts.reforge import ReForgeAdapter


@pytest.fixture
def reforge():
    from webui import WebUI

    ui = WebUI("reforge")
    yield ui
    ui.close()


def dynamic(ui, start=4, schedule=None):
    opts = ui.shared.opts
    opts.dynamic_clip_skip_enabled = True
    opts.dynamic_clip_skip_start = start
    opts.dynamic_clip_skip_use_schedule = schedule is not None
    opts.dynamic_clip_skip_schedule_values = schedule or ""


def test_detected_by_its_encoders_module(reforge):
    assert isinstance(detect(), ReForgeAdapter)


@pytest.mark.parametrize("family, option, expected", [
    ("sd1", 1, {"clip_l": 1.0}), ("sd1", 3, {"clip_l": 3.0}),
    ("sd2", 1, {"clip_h": 2.0}), ("sd2", 2, {"clip_h": 2.0}), ("sd2", 3, {"clip_h": 3.0}),
    ("sdxl", 1, {"clip_l": 2.0, "clip_g": 2.0}), ("sdxl", 4, {"clip_l": 4.0, "clip_g": 4.0}),
    ("sdxl_refiner", 3, {"clip_g": 3.0}),
])
def test_host_values_are_forge_clips_max_n_2(reforge, family, option, expected):
    model = reforge.load(family)
    info = detect().inspect(model, host_option=option).info
    assert {slot.spec.name: slot.host_value for slot in info.slots} == expected
    assert {slot.spec.name: slot.loaded_depth for slot in info.slots} == {
        "sd1": {"clip_l": 12}, "sd2": {"clip_h": 24}, "sdxl": {"clip_l": 12, "clip_g": 32}, "sdxl_refiner": {"clip_g": 32}}[family]


def test_clip_skip_sdxl_option_changes_nothing_there(reforge):
    model = reforge.load("sdxl")
    reforge.shared.opts.sdxl_clip_l_skip = True
    info = detect().inspect(model, host_option=4).info
    assert [slot.host_value for slot in info.slots] == [4.0, 4.0]
    assert_same(sampled(our_run(reforge, clip_skip=2)), sampled(host_run(reforge)))


@pytest.mark.parametrize("family, ours, host_skip", [
    ("sd1", 1, None), ("sd1", 2, 2), ("sd1", 4, 4),
    ("sd2", 2, None), ("sd2", 2, 2), ("sd2", 3, 3), ("sd2", 5, 5),
    ("sdxl", 2, None), ("sdxl", 0, None), ("sdxl", 3, 3), ("sdxl", 5, 5),
    ("sdxl_refiner", 2, None), ("sdxl_refiner", 4, 4),
])
def test_identity_with_reforge_at_its_own_value(reforge, family, ours, host_skip):
    reforge.load(family)
    expected = sampled(host_run(reforge, host_skip=host_skip))
    assert_same(sampled(our_run(reforge, clip_skip=ours)), expected)


def test_values_reforge_cannot_make_change_the_image_and_skip_layers(reforge):
    reforge.load("sdxl")
    counts = count_runs(reforge)
    ours = our_run(reforge, clip_skip=4, clip_skip_g=3)
    # CLIP-L stops after 9 of 12 layers; bigG runs all 32 (its pooled output needs the last)
    assert len(counts["clip_l"]) == 2 * 9 and len(counts["clip_g"]) == 2 * 32
    assert_differs(sampled(ours), sampled(host_run(reforge, host_skip=4)))
    reforge.load("sd2")
    assert_differs(sampled(our_run(reforge, clip_skip=1)), sampled(host_run(reforge)))  # the true last layer


def test_pooled_output_of_bigg_stays_the_full_passes(reforge):
    reforge.load("sdxl")
    ours = our_run(reforge, clip_skip=5)
    host = host_run(reforge, host_skip=5)
    assert_same(sampled(ours), sampled(host))  # crossattn and the vector (pooled @ text_projection)


def test_settings_and_cache_stay_honest(reforge):
    reforge.load("sd1")
    before = reforge.options_snapshot()
    first = our_run(reforge, clip_skip=3)
    second = our_run(reforge, clip_skip=2)
    assert_differs(sampled(first), sampled(second))
    assert_same(sampled(our_run(reforge, clip_skip=3)), sampled(first))
    assert reforge.options_snapshot() == before


def test_dynamic_clip_skip_on_decides_and_the_extension_says_so(reforge, caplog):
    reforge.load("sd1")
    dynamic(reforge, start=4)
    host = host_run(reforge)
    assert host.extra_generation_params["Dynamic clip skip"] == "4->2" and host.clip_skip == 4
    before = reforge.options_snapshot()
    with caplog.at_level("WARNING", logger="sd-webui-clipskip"):
        ours = reforge.txt2img(enabled=True, clip_skip=1)
        text = reforge.run(ours).infotexts[0]
    assert_same(sampled(ours), sampled(host))  # reForge's ramp, step by step
    assert [tuple(map(float, (c.sum(), u.sum()))) for c, u in ours.step_conds] == \
        [tuple(map(float, (c.sum(), u.sum()))) for c, u in host.step_conds]
    assert len({float(c.sum()) for c, _u in host.step_conds}) == 3  # the ramp really moves: 4, 3, 2, 2
    assert "Dynamic clip skip is on" in caplog.text
    assert reforge.options_snapshot() == before
    assert "Dynamic clip skip: 4->2" in text and "CLIP skip ext" not in text and "Clip skip: 4" in text
    shown = panel.view(True, 1, 0, "a cat")
    assert not shown.active and any("Dynamic clip skip is on" in note for note in shown.notes)


def test_dynamic_clip_skip_off_again_the_extension_applies(reforge):
    reforge.load("sd1")
    dynamic(reforge, start=4)
    our_run(reforge, clip_skip=3)
    reforge.shared.opts.dynamic_clip_skip_enabled = False
    assert_same(sampled(our_run(reforge, clip_skip=3)), sampled(host_run(reforge, host_skip=3)))
    assert panel.view(True, 3, 0, "a cat").active


def test_reforges_dynamic_axes_sit_beside_ours(reforge):
    labels = reforge.axis_labels()
    assert labels.index("Dynamic clip skip") == labels.index("Clip skip") + 1
    assert "[CLIP skip] value" in labels or any(label.startswith("[CLIP skip]") for label in labels)


def test_reforges_dynamic_axis_cell_by_cell(reforge):
    """Its "Dynamic clip skip" axis writes the option per cell: on, reForge decides; off, ours applies."""
    reforge.load("sd1")
    reforge.shared.opts.dynamic_clip_skip_start = 4
    processed = grid(reforge, reforge.txt2img(enabled=True, clip_skip=3), x=("Dynamic clip skip", ["False", "True"]))
    off_image, on_image = processed.images[1:]

    def host_image(**override):
        return reforge.run(reforge.txt2img(enabled=False, override_settings=override)).images[0]

    assert float(off_image) == float(host_image(CLIP_stop_at_last_layers=3))
    assert float(on_image) == float(host_image(dynamic_clip_skip_enabled=True))
    assert float(on_image) != float(off_image)
    off_text, on_text = processed.infotexts[1:]
    assert "CLIP skip ext: 3" in off_text and "Dynamic clip skip" not in off_text
    assert "CLIP skip ext" not in on_text and "Dynamic clip skip: 4->2" in on_text
    assert reforge.shared.opts.dynamic_clip_skip_enabled is False  # the axis's override was restored


# --- Forge Classic: the same wiring, its forge_clip reads Clip skip on SD1 only ------------------

@pytest.fixture
def classic():
    from webui import WebUI

    ui = WebUI("classic")
    yield ui
    ui.close()


def test_forge_classic_is_told_from_reforge_by_its_encoders_code(classic):
    from lib_clipskip.hosts import HOST_LABELS
    from lib_clipskip.hosts.reforge import ForgeClassicAdapter

    assert isinstance(detect(), ForgeClassicAdapter) and HOST_LABELS[detect().name] == "Forge Classic"


@pytest.mark.parametrize("family, option, expected", [
    ("sd1", 3, {"clip_l": 3.0}), ("sd2", 4, {"clip_h": 2.0}), ("sdxl", 4, {"clip_l": 2.0, "clip_g": 2.0}),
])
def test_forge_classic_host_values(classic, family, option, expected):
    model = classic.load(family)
    info = detect().inspect(model, host_option=option).info
    assert {slot.spec.name: slot.host_value for slot in info.slots} == expected and info.host_steers is None


@pytest.mark.parametrize("family, ours, host_skip", [("sd1", 3, 3), ("sd2", 2, 5), ("sdxl", 2, 4), ("sdxl", 0, None)])
def test_identity_with_forge_classic_at_its_own_value(classic, family, ours, host_skip):
    classic.load(family)
    assert_same(sampled(our_run(classic, clip_skip=ours)), sampled(host_run(classic, host_skip=host_skip)))


def test_forge_classic_values_it_cannot_make_and_their_infotext(classic):
    classic.load("sdxl")
    ours = classic.txt2img(enabled=True, clip_skip=3)
    text = classic.run(ours).infotexts[0]
    assert_differs(sampled(ours), sampled(host_run(classic, host_skip=3)))  # Classic keeps SDXL at 2
    assert "CLIP skip ext: 3" in text and "Clip skip:" not in text  # no option of Classic's makes it
    classic.load("sd1")
    assert "Clip skip: 3, CLIP skip ext: 3" in classic.run(classic.txt2img(enabled=True, clip_skip=3)).infotexts[0]
