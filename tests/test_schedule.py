"""CLIP skip over the sampling steps and the negative prompt's own value, inside both hosts' stand-ins:
each step's conditioning is the one the host makes at that step's value, from one full pass."""

from __future__ import annotations

import pytest
import torch
from test_generation import assert_differs, assert_same, count_runs, host_run, our_run

from lib_clipskip import schedule
from lib_clipskip.values import ClipSkipValueError, request_from_args

# --- the value model (pure) ----------------------------------------------------------------------


def test_a_ramp_runs_from_its_first_to_its_last_value_over_the_steps():
    ramp = schedule.parse_setting("3..1")
    assert [ramp.at(step, 5) for step in range(5)] == [3, 2.5, 2, 1.5, 1]
    assert ramp.at(0, 1) == 3 and ramp.at(9, 5) == 1  # one step: the first value; past the end: the last


def test_a_list_is_spread_evenly_over_the_steps():
    points = schedule.parse_setting("3,2,2,1")
    assert [points.at(step, 8) for step in range(8)] == [3, 3, 2, 2, 2, 2, 1, 1]
    assert [points.at(step, 3) for step in range(3)] == [3, 2, 2]  # fewer steps than values: evenly sampled


@pytest.mark.parametrize("text, expected", [
    ("3..1", ("3..1", "auto")),
    ("l=3..2:g=2", ("3..2", "2")),
    ("2:g=4..2", ("2", "4..2")),
    ("2.5", ("2.5", "auto")),
])
def test_schedule_texts_name_the_encoders_like_the_tag(text, expected):
    main, g_value = schedule.parse_pair(text)
    assert (schedule.describe(main), schedule.describe(g_value)) == expected
    assert schedule.parse_pair(schedule.pair_text(main, g_value)) == (main, g_value)  # infotext round-trip


@pytest.mark.parametrize("text", ["3..", "a..b", "1..2..3", "3,,1", ",".join(["2"] * 65), "2" * 401, "0.4..2", "l=2:x=3"])
def test_bad_schedules_raise_a_sentence(text):
    with pytest.raises(ClipSkipValueError) as error:
        schedule.parse_pair(text)
    assert 10 < len(str(error.value)) < 200


def test_bad_panel_schedule_keeps_the_constant_value_with_a_message():
    parsed = request_from_args([True, 2, 0, "3..x", "y"])
    assert parsed.request.clip_skip == 2 and parsed.request.schedule is None and parsed.request.negative is None
    assert len(parsed.messages) == 2 and "schedule is ignored" in parsed.messages[0]


def test_one_step_blends_whole_values_per_encoder_with_weights_that_sum_to_one():
    terms = schedule.corners({"clip_l": 2.25, "clip_g": 3.5})
    weights = {(v["clip_l"], v["clip_g"]): round(w, 6) for w, v in terms}
    assert weights == {(2, 3): 0.375, (2, 4): 0.375, (3, 3): 0.125, (3, 4): 0.125}
    assert abs(sum(w for w, _ in terms) - 1) < 1e-12
    assert schedule.corners({"clip_l": 2.0}) == [(1.0, {"clip_l": 2.0})]


# --- inside the hosts ----------------------------------------------------------------------------


def steps_of(p, which=0):
    """Every step's conditioning tensor(s) as the denoiser used them (0: text_cond, 1: text_uncond)."""
    out = []
    for pair in p.step_conds:
        cond = pair[which]
        out.extend(cond[k] for k in sorted(cond)) if isinstance(cond, dict) else out.append(cond)
    return out


def run(ui, prompt="a photo of a cat", **kwargs):
    return our_run(ui, prompt=prompt, steps=kwargs.pop("steps", 5), **kwargs)


def test_a_constant_schedule_is_the_plain_value(webui):
    webui.load("sd1")
    plain, constant = run(webui, clip_skip=2), run(webui, clip_skip=0, schedule="2..2")
    assert_same(steps_of(constant), steps_of(plain))
    assert_same(steps_of(constant, 1), steps_of(plain, 1))


@pytest.mark.parametrize("prompt", ["a photo of a cat", "a photo of a [cat:dog:0.5] in a forest",
                                    "a cat AND a dog :0.7", "a cat BREAK a dog"])
def test_a_ramp_is_each_steps_own_value_and_differs_from_both_ends(webui, prompt):
    webui.load("sd1")
    ramp = run(webui, prompt, clip_skip=0, schedule="3..1")
    ends = {value: run(webui, prompt, clip_skip=value) for value in (3, 2, 1)}
    got, by_value = steps_of(ramp), {v: steps_of(p) for v, p in ends.items()}
    # steps 0, 2, 4 of 5 are whole values (3, 2, 1): the host's own tensors at that step
    for step, value in ((0, 3), (2, 2), (4, 1)):
        assert torch.equal(got[step], by_value[value][step])
    # steps 1 and 3 (2.5, 1.5) blend the conditionings of their neighbours at that step
    torch.testing.assert_close(got[1], 0.5 * by_value[3][1] + 0.5 * by_value[2][1], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[3], 0.5 * by_value[2][3] + 0.5 * by_value[1][3], rtol=0, atol=1e-6)
    assert_differs(got, by_value[3])
    assert_differs(got, by_value[1])


def test_the_tag_schedules_too_and_the_hires_pass_runs_it_again(webui):
    webui.load("sd1")
    kwargs = {"enable_hr": True, "hr_second_pass_steps": 3}
    ramp = run(webui, "a photo of a cat <clipskip:3..1>", clip_skip=0, **kwargs)
    first, last = run(webui, clip_skip=3, **kwargs), run(webui, clip_skip=1, **kwargs)
    got = steps_of(ramp)
    assert len(got) == 5 + 3
    assert torch.equal(got[0], steps_of(first)[0]) and torch.equal(got[4], steps_of(last)[4])
    assert torch.equal(got[5], steps_of(first)[5]) and torch.equal(got[7], steps_of(last)[7])  # hires: 3 again


def test_the_hires_prompts_own_tag_wins_in_the_hires_pass(webui):
    webui.load("sd1")
    kwargs = {"enable_hr": True, "hr_second_pass_steps": 3, "hr_prompt": "a photo of a cat <clipskip:2>"}
    ramp = run(webui, "a photo of a cat <clipskip:3..1>", clip_skip=0, **kwargs)
    two = run(webui, "a photo of a cat", clip_skip=2, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(steps_of(ramp)[5:], steps_of(two)[5:]))


def test_a_schedule_costs_one_full_pass_per_prompt(webui):
    webui.load("sd1")
    counts = count_runs(webui)
    run(webui, clip_skip=0, schedule="3..1")
    # negative and positive prompt: one chunk each, all 12 layers once (the anchors pick theirs)
    assert len(counts["clip_l"]) == 2 * 12


def test_sdxl_per_encoder_schedule(forge):
    forge.load("sdxl")
    both = run(forge, clip_skip=0, schedule="l=3..2:g=2", steps=3)
    at = {v: run(forge, clip_skip=v, clip_skip_g=2, steps=3) for v in (3, 2)}
    got = steps_of(both)  # dict conds: crossattn, vector per step
    width = len(got) // 3
    assert_same(got[:width], steps_of(at[3])[:width])
    assert_same(got[-width:], steps_of(at[2])[-width:])
    assert_differs(got[width:2 * width], steps_of(at[3])[width:2 * width])


def test_a_negative_only_value_changes_only_the_negative_conditioning(webui):
    webui.load("sd1")
    kwargs = {"negative_prompt": "blurry, (bad:1.2)"}
    plain = run(webui, clip_skip=2, **kwargs)
    negative = run(webui, clip_skip=2, clip_skip_negative="1", **kwargs)
    host_one = host_run(webui, host_skip=1, steps=5, **kwargs)
    assert_same(steps_of(negative), steps_of(plain))
    assert_same(steps_of(negative, 1), steps_of(host_one, 1))
    assert_differs(steps_of(negative, 1), steps_of(plain, 1))


def test_a_negative_schedule(webui):
    webui.load("sd1")
    kwargs = {"negative_prompt": "blurry"}
    got = run(webui, clip_skip=2, clip_skip_negative="3..1", **kwargs)
    first, last = run(webui, clip_skip=3, **kwargs), run(webui, clip_skip=1, **kwargs)
    assert torch.equal(steps_of(got, 1)[0], steps_of(first, 1)[0])
    assert torch.equal(steps_of(got, 1)[4], steps_of(last, 1)[4])
    assert_same(steps_of(got), steps_of(run(webui, clip_skip=2, **kwargs)))


def test_settings_and_options_stay_untouched_by_a_schedule(webui):
    webui.load("sd1")
    before = dict(webui.shared.opts.data)
    run(webui, clip_skip=0, schedule="3..1", clip_skip_negative="2,1")
    assert webui.shared.opts.data == before


# --- infotext and paste --------------------------------------------------------------------------


def test_infotext_writes_the_schedule_and_the_negative_value_and_paste_restores_them(webui):
    from paste_helpers import paste_values

    webui.load("sd1")
    p = webui.txt2img("a cat", steps=5, enabled=True, clip_skip=0, schedule="3,2,2,1", clip_skip_negative="2..1",
                      negative_prompt="blurry")
    processed = webui.run(p)
    text = processed.infotexts[0]
    assert 'CLIP skip ext schedule: "3,2,2,1"' in text and "CLIP skip ext negative: 2..1" in text
    assert "CLIP skip ext: 3," in text  # the first step's value
    values = paste_values(webui, text)
    assert (values["enabled"], values["clip_skip"], values["schedule"], values["negative"]) == (True, 3, "3,2,2,1", "2..1")
    again = webui.txt2img("a cat", steps=5, enabled=True, clip_skip=values["clip_skip"], schedule=values["schedule"],
                          clip_skip_negative=values["negative"], negative_prompt="blurry")
    assert webui.run(again).infotexts[0] == text
    assert_same(steps_of(again) + steps_of(again, 1), steps_of(p) + steps_of(p, 1))
    # an infotext of ours without a schedule clears the field; one without any CLIP skip key leaves it
    plain = webui.run(webui.txt2img("a cat", enabled=True, clip_skip=2)).infotexts[0]
    assert paste_values(webui, plain, current={**values})["schedule"] == ""
    assert paste_values(webui, "a cat\nSteps: 5, Seed: 1", current={**values})["schedule"] == "3,2,2,1"


def test_each_batch_writes_its_own_tag_schedule(webui):
    webui.load("sd1")
    # per-batch prompts, as Dynamic Prompts and wildcards make them
    p = webui.txt2img(["a cat <clipskip:3..1>", "a cat"], steps=4, n_iter=2, enabled=True, clip_skip=2)
    _grid, first, second = webui.run(p).infotexts
    assert "CLIP skip ext: 3, CLIP skip ext schedule: 3..1" in first
    assert "CLIP skip ext schedule" not in second and "CLIP skip ext: 2" in second


@pytest.mark.parametrize("raw", ["3..x", "9" * 500, "1..2..3", "\u0000"])
def test_a_bad_pasted_schedule_is_ignored_with_a_message(webui, raw, caplog):
    from paste_helpers import paste_values

    webui.load("sd1")
    values = paste_values(webui, f"a cat\nSteps: 5, CLIP skip ext: 2, CLIP skip ext schedule: {raw}")
    assert values["clip_skip"] == 2 and values["schedule"] == ""
    assert "ignored the pasted CLIP skip ext schedule" in caplog.text


def test_a_prompt_tag_keeps_the_panels_negative_value(webui):
    webui.load("sd1")
    kwargs = {"negative_prompt": "blurry", "steps": 3}
    tagged = webui.txt2img("a cat <clipskip:3>", enabled=True, clip_skip=2, clip_skip_negative="1", **kwargs)
    webui.run(tagged)
    host_one, host_three = (host_run(webui, "a cat", host_skip=v, **kwargs) for v in (1, 3))
    assert_same(steps_of(tagged, 1), steps_of(host_one, 1))
    assert_same(steps_of(tagged), steps_of(host_three))


# --- X/Y/Z ---------------------------------------------------------------------------------------


def test_xyz_schedule_and_negative_axes_give_each_cell_the_single_generation(webui):
    from lib_clipskip import xyz

    webui.load("sd1")
    assert {xyz.AXIS_SCHEDULE.label, xyz.AXIS_NEGATIVE.label} <= set(webui.axis_labels())
    base = {"steps": 4, "negative_prompt": "blurry"}
    p = webui.txt2img("a cat", enabled=True, clip_skip=2, **base)
    processed = webui.xyz(p, x=(xyz.AXIS_SCHEDULE.label, '3..1, 2, "3,2,2,1"'), y=(xyz.AXIS_NEGATIVE.label, "1 | 2..1"),
                          include_lone_images=True)
    cells = [(s, n) for n in ("1", "2..1") for s in ("3..1", "2", "3,2,2,1")]
    images = [float(image) for image in processed.images[1:]]
    assert len(images) == 6 and len(set(images)) == 6
    for (sched, negative), image in zip(cells, images):
        single = webui.run(webui.txt2img("a cat", enabled=True, clip_skip=2, schedule=sched, clip_skip_negative=negative,
                                         **base))
        assert float(single.images[0]) == image, (sched, negative)
    assert 'CLIP skip ext schedule: "3,2,2,1"' in processed.infotexts[3]


@pytest.mark.parametrize("text", ["3..x", '"3,,1"', "|", "1..2..3, 2"])
def test_bad_schedule_cells_stop_the_grid_with_a_sentence(text):
    from lib_clipskip import xyz

    with pytest.raises(ClipSkipValueError) as error:
        xyz.parse_text_axis(text, xyz.AXIS_SCHEDULE)
    assert 10 < len(str(error.value)) < 200


def test_a_result_the_hosts_cache_hands_out_again_keeps_its_anchors(webui):
    """The second batch of the same prompt hits the host's cond cache: no new encoder pass."""
    webui.load("sd1")
    counts = count_runs(webui)
    p = webui.txt2img("a photo of a cat", steps=5, n_iter=3, enabled=True, clip_skip=0, schedule="3..1")
    webui.run(p)
    assert len(counts["clip_l"]) == 2 * 12  # batches 2 and 3: the host's cache and our anchors
    ramp = steps_of(p)
    assert all(torch.equal(a, b) for a, b in zip(ramp[:5], ramp[5:10]))  # every batch ramps the same


def test_the_first_steps_anchor_is_the_hosts_result_itself(webui, monkeypatch):
    """A 3..1 ramp needs the host's conditioning at 3, 2 and 1: the call that made the result (at 3)
    is one of them, so only two more calls of the host's function per prompt."""
    from lib_clipskip import generation

    webui.load("sd1")
    calls = []
    real = generation._encode_anchor
    monkeypatch.setattr(generation, "_encode_anchor", lambda *a, **k: calls.append(1) or real(*a, **k))
    run(webui, clip_skip=0, schedule="3..1")
    assert len(calls) == 2 * 2  # negative and positive prompt: anchors 2 and 1


def test_no_host_clip_skip_is_claimed_for_what_the_host_cannot_make(webui):
    """Seen in the real hosts: a ramp's image said `Clip skip: 3` (its first step), which the WebUI alone can't make."""
    webui.load("sd1")
    ramp = webui.run(webui.txt2img("a cat", steps=4, enabled=True, clip_skip=0, schedule="3..1")).infotexts[0]
    negative = webui.run(webui.txt2img("a cat", steps=4, enabled=True, clip_skip=3, clip_skip_negative="1",
                                       negative_prompt="blurry")).infotexts[0]
    plain = webui.run(webui.txt2img("a cat", steps=4, enabled=True, clip_skip=3)).infotexts[0]
    assert "Clip skip:" not in ramp and "CLIP skip ext: 3" in ramp
    assert "Clip skip:" not in negative and "CLIP skip ext negative: 1" in negative
    assert "Clip skip: 3" in plain
