"""The CLIP-skip axes in the X/Y/Z plot, run by the stand-in of ``scripts/xyz_grid.py`` of each host
(A1111 v1.10.1 82a973c0, Forge dfdcbab6) loaded the way the host loads it, on real ``transformers``
/ OpenCLIP text encoders."""

from __future__ import annotations

import logging

import pytest
import torch
from test_generation import assert_differs, assert_same, count_runs, host_run, our_run, sampled

from lib_clipskip import grid as grid_session
from lib_clipskip import infotext, layercache, request, xyz
from lib_clipskip.generation import STATE_ATTRIBUTE
from lib_clipskip.values import ClipSkipRequest, ClipSkipValueError

VALUE, CLIP_L, CLIP_G = xyz.AXIS_VALUE.label, xyz.AXIS_CLIP_L.label, xyz.AXIS_CLIP_G.label


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The stand-in towers are tiny: torch's thread pool only costs time (badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cells(monkeypatch):
    """Every cell's ``p`` and generation state, in the order the grid ran them.

    Cells are shallow copies, so the stand-in's ``sampled_conds`` list is shared by all of them:
    each cell's own conditionings are the part it appended.
    """
    seen, starts = [], {}
    begin, finish = grid_session.begin_cell, grid_session.finish_cell

    def begin_spy(p, state):
        starts[id(p)] = len(p.sampled_conds)
        begin(p, state)

    def finish_spy(p, state):
        finish(p, state)
        start = starts.pop(id(p), 0)
        if grid_session.session_of(p) is not None:  # a grid's cell, not a reference generation
            p.sampled_conds = p.sampled_conds[start:]  # rebinds on this cell only
            seen.append((p, state))

    monkeypatch.setattr(grid_session, "begin_cell", begin_spy)
    monkeypatch.setattr(grid_session, "finish_cell", finish_spy)
    return seen


def grid(ui, p=None, x=("Nothing", ""), y=("Nothing", ""), z=("Nothing", ""), **flags):
    p = p if p is not None else ui.txt2img(enabled=False)
    flags.setdefault("include_lone_images", True)
    return ui.xyz(p, x=x, y=y, z=z, **flags)


# --- registration -----------------------------------------------------------------------------

def test_axes_are_in_both_tabs_once_and_after_each_reload(webui):
    for tab in ("txt2img", "img2img"):
        labels = webui.axis_labels(tab)
        assert [label for label in labels if label.startswith("[CLIP skip]")] == [axis.label for axis in xyz.AXES]
        assert "Clip skip" in labels  # the host's own axis is still there
    webui.callbacks.before_ui_callback()  # registering again changes nothing
    assert sum(o.label == VALUE for o in webui.xyz_module.axis_options) == 1
    first_module = webui.xyz_module
    webui.load_scripts()  # "Reload UI": a fresh xyz module and fresh callbacks
    assert webui.xyz_module is not first_module
    assert [o.label for o in webui.xyz_module.axis_options].count(VALUE) == 1
    assert webui.axis_labels().count(CLIP_G) == 1
    assert getattr(webui.xyz_module.Script.run, "__clipskip_wrapped__", False)


@pytest.mark.parametrize("host", ["a1111", "forge"])
def test_axes_exist_in_api_only_mode(host):
    from webui import WebUI

    ui = WebUI(host, api_only=True)  # ui() runs before on_before_ui: import-time registration counts
    try:
        assert VALUE in ui.axis_labels("txt2img") and CLIP_L in ui.axis_labels("img2img")
    finally:
        ui.close()


def test_module_is_found_by_its_host_name_not_imported_again(webui):
    assert webui.xyz_module.Script.__module__ == "xyz_grid.py"
    assert xyz.find_xyz_module() is webui.xyz_module


def test_no_plot_loaded_is_not_an_error(webui):
    webui.scripts.scripts_data[:] = [d for d in webui.scripts.scripts_data if d.module is not webui.xyz_module]
    assert xyz.register() is False


# --- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1-4", [1, 2, 3, 4]),
    ("1-3 (+0.5)", [1, 1.5, 2, 2.5, 3]),
    ("1-2 [3]", [1, 1.5, 2]),
    ("1,1.5,2", [1, 1.5, 2]),
    (" 2 , 4-3 ", [2, 4, 3]),
    ("1-2 (+0.25), 12", [1, 1.25, 1.5, 1.75, 2, 12]),
])
def test_values_accept_the_plots_numeric_syntax(text, expected):
    assert xyz.parse_axis_values(text) == expected


@pytest.mark.parametrize("text, words", [
    ("abc", "not a number"),
    ("0, 1", "below 1"),
    ("1-x", "not a number"),
    ("4-1 (+1)", "never reaches"),
    ("1-12 (+0.01)", "at most"),
    ("", "no values"),
    ("1-2 [0]", "at least 1"),
    ("nan", "finite"),
])
def test_bad_values_get_a_clear_message(text, words):
    with pytest.raises(ClipSkipValueError, match=words) as error:
        xyz.parse_axis_values(text)
    assert VALUE in str(error.value)


@pytest.mark.parametrize("text", ["1-2 [10000000]", "1-2 [" + "9" * 5000 + "]", "1," * 3000])
def test_huge_counts_are_refused_before_anything_is_expanded(text):
    """``[count]`` and long lists are bounded before any list is built (10 million values took 91 s)."""
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ClipSkipValueError, match=r"at most|characters long"):
        xyz.parse_axis_values(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000


def test_bad_values_stop_the_grid_before_anything_is_generated(webui, cells):
    webui.load("sd1")
    runs = count_runs(webui)
    with pytest.raises(ClipSkipValueError, match="below 1"):
        grid(webui, x=(VALUE, "2, 0.5"))
    assert cells == [] and not any(runs.values())


# --- cells ----------------------------------------------------------------------------------

def test_each_cell_equals_a_single_generation_at_its_value_with_one_encoder_pass(webui, cells):
    webui.load("sd1")
    runs = count_runs(webui)
    p = webui.txt2img(enabled=False, seed=-1)
    processed = grid(webui, p, x=(VALUE, "1-4"))
    # one full pass per distinct prompt (the prompt and the empty negative), not one per cell
    assert runs["clip_l"] == [1] * (2 * 12)
    seeds = {cell.seed for cell, _ in cells}
    assert len(seeds) == 1 and -1 not in seeds  # locked: the -1 was resolved once for the grid
    for (cell, state), value in zip(cells, (1, 2, 3, 4)):
        assert state.request.source == "xyz" and state.plans[0].value_of("clip_l") == value
        single = our_run(webui, clip_skip=value, seed=cell.seed)
        assert_same(sampled(cell), sampled(single))
    assert len({float(img) for img in processed.images[1:]}) == 4


@pytest.mark.parametrize("family", ["sdxl", "sdxl_refiner"])
def test_sdxl_cells_keep_the_full_pooled_output_and_one_pass(webui, cells, family):
    webui.load(family)
    runs = count_runs(webui)
    grid(webui, webui.txt2img(enabled=False, seed=7), x=(VALUE, "1,3,4"))
    # every encoder (transformers CLIP-L, Forge's transformers bigG, A1111's OpenCLIP bigG):
    # one full pass per prompt for the three cells, the pooled output from its last layer
    depths = {"clip_l": 12, "clip_g": 32}
    assert set(runs) == ({"clip_g"} if family == "sdxl_refiner" else {"clip_l", "clip_g"})
    for name, calls in runs.items():
        assert len(calls) == 2 * depths[name]
    for (cell, _), value in zip(cells, (1, 3, 4)):
        assert_same(sampled(cell), sampled(our_run(webui, clip_skip=value, seed=7)))


def test_fractional_cells(webui, cells):
    webui.load("sd1")
    grid(webui, webui.txt2img(enabled=False), x=(VALUE, "1-2 [3]"))
    assert [state.request.clip_skip for _, state in cells] == [1, 1.5, 2]
    assert_same(sampled(cells[1][0]), sampled(our_run(webui, clip_skip=1.5)))
    assert_differs(sampled(cells[0][0]), sampled(cells[1][0]))


def test_clip_l_and_openclip_g_axes_combine_on_one_cell(webui, cells):
    webui.load("sdxl")
    grid(webui, webui.txt2img(enabled=False), x=(CLIP_L, "1,3"), y=(CLIP_G, "4"))
    got = [(state.request.clip_skip, state.request.clip_skip_g) for _, state in cells]
    assert got == [(1, 4), (3, 4)]
    for cell, state in cells:
        expected = our_run(webui, clip_skip=state.request.clip_skip, clip_skip_g=state.request.clip_skip_g)
        assert_same(sampled(cell), sampled(expected))


def test_clip_l_axis_keeps_the_panels_openclip_g(webui, cells):
    webui.load("sdxl")
    p = webui.txt2img(enabled=True, clip_skip=3, clip_skip_g=5)
    grid(webui, p, x=(CLIP_L, "1,2"))
    assert [(s.request.clip_skip, s.request.clip_skip_g) for _, s in cells] == [(1, 5), (2, 5)]
    p = webui.txt2img(enabled=False)
    cells.clear()
    grid(webui, p, x=(CLIP_L, "1"))
    assert (cells[0][1].request.clip_skip, cells[0][1].request.clip_skip_g) == (1, 2)  # G keeps its default


def test_our_axis_wins_over_the_panel_and_the_hosts_axis_is_not_clobbered(webui, cells):
    webui.load("sd1")
    before = webui.options_snapshot()
    p = webui.txt2img(enabled=True, clip_skip=3)
    grid(webui, p, x=(VALUE, "1,2"), y=("Clip skip", "1,2"))
    for cell, state in cells:
        assert cell.override_settings["CLIP_stop_at_last_layers"] in (1, 2)  # the host's axis wrote its value
        assert_same(sampled(cell), sampled(our_run(webui, clip_skip=state.request.clip_skip)))
    assert webui.options_snapshot() == before
    # the host's axis alone (panel off) still does what the host does
    cells.clear()
    grid(webui, webui.txt2img(enabled=False), x=("Clip skip", "1,2"))
    for (cell, state), host_skip in zip(cells, (1, 2)):
        assert state is None
        assert_same(sampled(cell), sampled(host_run(webui, host_skip=host_skip)))


def test_nothing_leaks_into_the_next_generation(webui):
    webui.load("sd1")
    before = webui.options_snapshot()
    p = webui.txt2img(enabled=False)
    grid(webui, p, x=(VALUE, "3,4"))
    assert grid_session.GRID_ATTRIBUTE not in vars(p) and request.XYZ_ATTRIBUTE not in vars(p) and STATE_ATTRIBUTE not in vars(p)
    after = webui.txt2img(enabled=False)
    webui.run(after)
    assert_same(sampled(after), sampled(host_run(webui)))
    assert webui.options_snapshot() == before
    assert layercache._ACTIVE.get() is None


def test_other_axes_vary_only_what_they_name(webui, cells):
    webui.load("sd1")
    p = webui.txt2img("a photo of a cat", enabled=False, seed=5, steps=6, cfg_scale=6.5)
    grid(webui, p, x=(VALUE, "1,2"), y=("Prompt S/R", "cat,dog"))
    for cell, _ in cells:
        assert (cell.seed, cell.steps, cell.cfg_scale, cell.sampler_name) == (5, 6, 6.5, "Euler")
    assert sorted(cell.prompt for cell, _ in cells) == ["a photo of a cat"] * 2 + ["a photo of a dog"] * 2


def test_keep_minus_one_gives_each_cell_its_own_seed(webui, cells):
    webui.load("sd1")
    grid(webui, webui.txt2img(enabled=False, seed=-1), x=(VALUE, "1,2,3"), no_fixed_seeds=True)
    assert all(cell.seed == -1 for cell, _ in cells)  # the host resolves each cell's -1 itself


def test_cell_infotext_records_its_value(webui, cells):
    webui.load("sd1")
    processed = grid(webui, webui.txt2img(enabled=False), x=(VALUE, "2,3"))
    for (_, state), value in zip(cells, (2, 3)):
        assert state.request == ClipSkipRequest(True, value, value, "xyz", state.request.defaults)
        assert [plan.value_of("clip_l") for plan in state.plans] == [value]
    for text, value in zip(processed.infotexts[1:], (2, 3)):  # pasting a cell's image reproduces that cell
        assert f"{infotext.KEY}: {value}," in text and f"{infotext.KEY_SOURCE}: xyz" in text
    assert "X Type: [CLIP skip] value" in processed.infotexts[0]


def test_cells_follow_the_settings_defaults(webui, cells):
    """Panel at 0 (auto) with Settings defaults 3 (CLIP-L) and 5 (OpenCLIP-G): a cell of one
    encoder's axis leaves the other at its Settings default, not the family default."""
    webui.load("sdxl")
    webui.shared.opts.set("clipskip_default_sdxl_l", 3.0)
    webui.shared.opts.set("clipskip_default_sdxl_g", 5.0)
    grid(webui, webui.txt2img(enabled=True, clip_skip=0), x=(CLIP_G, "4"), y=(CLIP_L, "1"))
    grid(webui, webui.txt2img(enabled=True, clip_skip=0), x=(CLIP_G, "4"))
    grid(webui, webui.txt2img(enabled=True, clip_skip=0), x=(CLIP_L, "2"))
    got = [(state.plans[0].value_of("clip_l"), state.plans[0].value_of("clip_g")) for _, state in cells]
    assert got == [(1, 4), (3, 4), (2, 5)]
    assert_same(sampled(cells[1][0]), sampled(our_run(webui, clip_skip=3, clip_skip_g=4)))


# --- the host's own Clip skip axis: a value chosen per cell is explicit (DESIGN §2) ---------------

def test_host_axis_beats_the_panel(webui, cells):
    webui.load("sd1")
    processed = grid(webui, webui.txt2img(enabled=True, clip_skip=3), x=("Clip skip", "1,2"))
    for (cell, state), host_skip in zip(cells, (1, 2)):
        assert state.request.follow_host and state.request.source == "xyz"
        assert_same(sampled(cell), sampled(host_run(webui, host_skip=host_skip)))
    assert processed.images[0].x_labels == ["Clip skip: 1", "Clip skip: 2"]  # SD1: the numbering is the same
    first, second = processed.infotexts[1:]
    assert "CLIP skip ext: 1, CLIP skip ext source: xyz" in first and "Clip skip:" not in first
    assert "Clip skip: 2, CLIP skip ext: 2, CLIP skip ext source: xyz" in second


@pytest.mark.parametrize("enabled", [True, False])
def test_host_axis_beats_a_prompt_tag(webui, cells, enabled):
    webui.load("sd1")
    grid(webui, webui.txt2img("a cat <clipskip:4>", enabled=enabled, clip_skip=3), x=("Clip skip", "1,2"))
    for (cell, _), host_skip in zip(cells, (1, 2)):
        assert_same(sampled(cell), sampled(host_run(webui, "a cat", host_skip=host_skip)))


def test_host_axis_with_the_panel_off_is_the_hosts_alone(webui, cells):
    webui.load("sd1")
    processed = grid(webui, webui.txt2img(enabled=False), x=("Clip skip", "1,2"))
    assert [state for _, state in cells] == [None, None]
    assert "CLIP skip ext" not in " ".join(processed.infotexts)
    assert processed.images[0].x_labels == ["Clip skip: 1", "Clip skip: 2"]


def test_forge_sd2_host_axis_is_read_in_forges_numbering(forge, cells):
    forge.load("sd2")  # Forge loads 23 of 24 layers: its 1 is our 2
    processed = grid(forge, forge.txt2img(enabled=True, clip_skip=5), x=("Clip skip", "1,2"))
    assert processed.images[0].x_labels == ["Clip skip: 1 (= CLIP skip ext 2)", "Clip skip: 2 (= CLIP skip ext 3)"]
    for (cell, _), host_skip in zip(cells, (1, 2)):
        assert_same(sampled(cell), sampled(host_run(forge, host_skip=host_skip)))
    first, second = processed.infotexts[1:]
    assert "CLIP skip ext: 2, CLIP skip ext source: xyz" in first
    assert "Clip skip: 2, CLIP skip ext: 3, CLIP skip ext source: xyz" in second


def test_a1111_sdxl_host_axis_label_says_the_host_ignores_it(a1111, cells):
    a1111.load("sdxl")
    processed = grid(a1111, a1111.txt2img(enabled=True, clip_skip=3), x=("Clip skip", "1,2"))
    assert processed.images[0].x_labels == ["Clip skip: 1 (ignored by AUTOMATIC1111 on SDXL)",
                                            "Clip skip: 2 (ignored by AUTOMATIC1111 on SDXL)"]
    for (cell, _), host_skip in zip(cells, (1, 2)):
        assert_same(sampled(cell), sampled(host_run(a1111, host_skip=host_skip)))


def test_our_axis_beats_the_hosts_axis_in_one_cell(webui, cells):
    webui.load("sd1")
    grid(webui, webui.txt2img(enabled=True, clip_skip=3), x=("Clip skip", "1"), y=(VALUE, "4"))
    assert cells[0][1].request.clip_skip == 4 and not cells[0][1].request.follow_host
    assert_same(sampled(cells[0][0]), sampled(our_run(webui, clip_skip=4)))


# --- labels ---------------------------------------------------------------------------------

def test_labels_say_what_was_applied(webui):
    webui.load("sd1")
    processed = grid(webui, x=(VALUE, "1,2"), y=(CLIP_G, "2"))
    assert processed.images[0].x_labels == ["CLIP skip: 1", "CLIP skip: 2"]
    assert processed.images[0].y_labels == ["OpenCLIP-G: 2 (no effect)"]
    webui.load("sdxl")
    processed = grid(webui, x=(VALUE, "2,13"))
    assert processed.images[0].x_labels == ["CLIP skip: 2", "CLIP skip: 13 (SDXL OpenCLIP-G only)"]


def test_flux_cells_are_no_effect(forge, cells):
    forge.load("flux")
    processed = grid(forge, x=(VALUE, "1,2"))
    assert processed.images[0].x_labels == ["CLIP skip: 1 (no effect)", "CLIP skip: 2 (no effect)"]


# --- identical cells --------------------------------------------------------------------------

def test_forge_sdxl_host_clip_skip_1_and_2_are_flagged(forge, caplog):
    forge.load("sdxl")
    with caplog.at_level(logging.WARNING, logger="sd-webui-clipskip"):
        processed = grid(forge, x=("Clip skip", "1,2,3"))
    flagged = [r.getMessage() for r in caplog.records if "identical conditioning" in r.getMessage()]
    assert len(flagged) == 1
    assert "cells 1 (host Clip skip 1), 2 (host Clip skip 2)" in flagged[0]
    assert "layer 11 of 12 (host)" in flagged[0] and "layer 31 of 32 (host)" in flagged[0]
    assert "CLIP skip note:" in processed.infotexts[0] and "identical conditioning" in processed.comments


def test_our_sdxl_values_1_and_2_differ_on_forge(forge, caplog):
    forge.load("sdxl")
    with caplog.at_level(logging.WARNING, logger="sd-webui-clipskip"):
        processed = grid(forge, x=(VALUE, "1,2"))
    assert not any("identical" in r.getMessage() for r in caplog.records)
    assert "CLIP skip note" not in processed.infotexts[0]


def test_values_beyond_the_encoder_are_flagged_with_the_reason(webui, caplog):
    webui.load("sd1")
    with caplog.at_level(logging.WARNING, logger="sd-webui-clipskip"):
        processed = grid(webui, x=(VALUE, "13,14"))
    assert processed.images[0].x_labels == ["CLIP skip: 13 (no effect)", "CLIP skip: 14 (no effect)"]
    flagged = [r.getMessage() for r in caplog.records if "identical conditioning" in r.getMessage()]
    assert len(flagged) == 1 and "beyond this encoder's 12 layers" in flagged[0]


def test_a1111_ignores_host_clip_skip_on_sdxl_and_says_so(a1111, caplog):
    a1111.load("sdxl")
    with caplog.at_level(logging.WARNING, logger="sd-webui-clipskip"):
        grid(a1111, x=("Clip skip", "1,2"))
    assert any("cells 1 (host Clip skip 1), 2 (host Clip skip 2)" in r.getMessage() for r in caplog.records)


def test_axes_that_do_not_touch_clip_skip_are_not_flagged(webui, caplog):
    webui.load("sd1")
    with caplog.at_level(logging.WARNING, logger="sd-webui-clipskip"):
        processed = grid(webui, x=("CFG Scale", "5,7"), y=("Seed", "1,2"))
    assert not any("identical" in r.getMessage() for r in caplog.records)
    assert "CLIP skip note" not in processed.infotexts[0]


# --- one pass: what the key sees ---------------------------------------------------------------

class ScaleNetwork:
    """A LoRA-like extra network: scales the first text-encoder layer in place while active."""

    def __init__(self, ui):
        self.name = "scale"
        self.ui = ui
        self.saved = None

    def layers(self):
        from lib_clipskip.encode import encoder_layers

        return [encoder_layers(m)[0].mlp.fc1.weight for m in __import__("webui_models").text_models(self.ui.shared.sd_model).values()]

    def activate(self, p, params_list):
        self.deactivate(p)
        if params_list:
            factor = float(params_list[0].items[0])
            self.saved = [w.detach().clone() for w in self.layers()]
            for w in self.layers():
                w.data.mul_(factor)

    def deactivate(self, p):
        if self.saved is not None:
            for w, saved in zip(self.layers(), self.saved):
                w.data.copy_(saved)
            self.saved = None


def test_lora_state_is_part_of_the_reuse_key(webui, cells):
    from standin_common import extra_networks

    webui.load("sd1")
    extra_networks.register_extra_network(ScaleNetwork(webui))
    runs = count_runs(webui)
    p = webui.txt2img("a cat <scale:1.5>", enabled=False)
    grid(webui, p, x=(VALUE, "1,2"), y=("Prompt S/R", "1.5,0.5"))
    assert len(runs["clip_l"]) == 2 * 2 * 12  # two weight states x two prompts, each one full pass
    for cell, state in cells:
        expected = our_run(webui, cell.prompt, clip_skip=state.request.clip_skip)
        assert_same(sampled(cell), sampled(expected))
    assert_differs(sampled(cells[0][0]), sampled(cells[1][0]))


def test_textual_inversion_vectors_are_part_of_the_key():
    from clip_models import build_text_model, small

    from lib_clipskip.encode import text_transformer

    model = build_text_model(small("clip_l"), 1000, 0)

    class Holder:
        fixes = None

    class Wrapper(torch.nn.Module):
        def __init__(self, wrapped):
            super().__init__()
            self.wrapped, self.holder = wrapped, Holder()

        def forward(self, ids):
            return self.wrapped(ids)

    embeddings = text_transformer(model).embeddings
    embeddings.token_embedding = Wrapper(embeddings.token_embedding)
    ids = torch.zeros(1, 77, dtype=torch.long)
    embedding = type("Embedding", (), {})
    one, two = embedding(), embedding()
    one.vec, one.name, two.vec, two.name = torch.ones(1, 8), "ti", torch.zeros(1, 8), "ti"
    keys = []
    for fixes in (None, [[(1, one)]], [[(1, two)]]):
        embeddings.token_embedding.holder.fixes = fixes
        keys.append(layercache.forward_key(model, ("scope",), (ids,), {"output_hidden_states": True}))
    assert len(set(keys)) == 3
    embeddings.token_embedding = torch.nn.Sequential()  # an unknown wrapper: no reuse rather than a wrong hit
    assert layercache.forward_key(model, ("scope",), (ids,), {}) is None


def test_cache_is_cleared_when_the_grid_ends_even_on_error(webui, monkeypatch):
    webui.load("sd1")
    sessions = []
    original = grid_session.begin_cell

    def spy(p, state):
        sessions.append(grid_session.session_of(p))
        original(p, state)

    monkeypatch.setattr(grid_session, "begin_cell", spy)
    grid(webui, x=(VALUE, "1,2"))
    assert sessions[0] is sessions[1] and sessions[0].cache.entries == {} and sessions[0].cache.passes == 2
    p = webui.txt2img(enabled=False)
    with pytest.raises(RuntimeError):
        grid(webui, p, x=(VALUE, "1,2"), y=("Prompt S/R", "zebra,horse"))  # S/R raises in the first cell's apply
    assert grid_session.GRID_ATTRIBUTE not in vars(p)


# --- the real encoder path ------------------------------------------------------------------

def test_real_shapes_grid_matches_single_generations(webui, cells):
    webui.load("sd1", real=True)
    grid(webui, webui.txt2img(enabled=False, seed=3), x=(VALUE, "1,2.5"))
    for (cell, _), value in zip(cells, (1, 2.5)):
        assert_same(sampled(cell), sampled(our_run(webui, clip_skip=value, seed=3)))

