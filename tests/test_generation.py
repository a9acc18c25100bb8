"""The per-generation hook inside each host's stand-in: identity, real skipping, every place a
generation encodes prompts, the cond cache, and settings that never change."""

from __future__ import annotations

import pytest
import torch

from lib_clipskip.encode import encoder_layers
from lib_clipskip.generation import STATE_ATTRIBUTE

PROMPTS = {
    "plain": "a photo of a cat",
    "long": ", ".join(["a red cat sitting on a blue bench in the forest"] * 12),
    "break": "a cat BREAK a dog in a forest",
    "editing": "a photo of a [cat:dog:0.5] in a forest",
    "and": "a cat AND a dog :0.7",
    "emphasis": "a (red:1.3) cat [in a forest]",
}


def cond_tensors(conds):
    """Every tensor the sampler got from one conditioning result, in order."""
    from standin_common.prompt_parser import MulticondLearnedConditioning

    schedules = [c.schedules for batch in conds.batch for c in batch] if isinstance(conds, MulticondLearnedConditioning) else conds
    out = []
    for schedule in schedules:
        for item in schedule:
            cond = item.cond
            out.extend(cond[k] for k in sorted(cond)) if isinstance(cond, dict) else out.append(cond)
    return out


def sampled(p):
    """All conditioning tensors the sampler saw during one generation."""
    return [t for c, uc in p.sampled_conds for t in cond_tensors(c) + cond_tensors(uc)]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def assert_differs(a, b):
    assert any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(a, b))


def host_run(ui, prompt=PROMPTS["plain"], host_skip=None, **kwargs):
    """The host's own generation (extension disabled), optionally at a host Clip skip override."""
    p = ui.txt2img(prompt, enabled=False, **kwargs)
    if host_skip is not None:
        p.override_settings["CLIP_stop_at_last_layers"] = host_skip
    ui.run(p)
    return p


def our_run(ui, prompt=PROMPTS["plain"], clip_skip=2, clip_skip_g=0, **kwargs):
    p = ui.txt2img(prompt, enabled=True, clip_skip=clip_skip, clip_skip_g=clip_skip_g, **kwargs)
    ui.run(p)
    return p


def count_runs(ui):
    counts = {}
    for name, model in __import__("webui_models").text_models(ui.shared.sd_model).items():
        layers = model.transformer.resblocks if hasattr(model, "transformer") else encoder_layers(model)  # OpenCLIP tower or CLIP
        counts[name] = []
        for layer in layers:
            layer.register_forward_hook(lambda *_, n=name: counts[n].append(1))
    return counts


# --- identity: at the host's own value the conditioning is the host's, bit for bit ----------

@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_identity_sd1_every_prompt_shape(webui, prompt):
    webui.load("sd1")
    expected = sampled(host_run(webui, PROMPTS[prompt]))
    assert_same(sampled(our_run(webui, PROMPTS[prompt], clip_skip=1)), expected)


@pytest.mark.parametrize("emphasis", ["Original", "No norm", "Ignore", "None"])
def test_identity_and_value_equality_in_every_emphasis_mode(webui, emphasis):
    webui.load("sd1")
    webui.shared.opts.emphasis = emphasis
    for host_skip in (1, 3):
        expected = sampled(host_run(webui, PROMPTS["emphasis"], host_skip=host_skip))
        assert not any(torch.isnan(t).any() for t in expected)
        assert_same(sampled(our_run(webui, PROMPTS["emphasis"], clip_skip=host_skip)), expected)


def test_identity_forge_sd2_and_sdxl(forge):
    forge.load("sd2")  # Forge loads 23 of 24 layers: its 1 is our 2
    assert_same(sampled(our_run(forge, clip_skip=2)), sampled(host_run(forge)))
    assert_same(sampled(our_run(forge, clip_skip=4)), sampled(host_run(forge, host_skip=3)))
    forge.load("sdxl")
    expected = sampled(host_run(forge))
    assert_same(sampled(our_run(forge, clip_skip=2)), expected)
    assert_same(sampled(our_run(forge, clip_skip=0)), expected)  # auto = SDXL default 2/2
    assert_same(sampled(our_run(forge, clip_skip=3)), sampled(host_run(forge, host_skip=3)))


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_identity_at_real_sd_shapes(webui, family):
    webui.load(family, real=True)
    value = 1 if family == "sd1" else 2
    assert_same(sampled(our_run(webui, clip_skip=value)), sampled(host_run(webui)))


# --- really skip ----------------------------------------------------------------------------

def test_skipped_layers_are_not_run(webui):
    webui.load("sd1")
    counts = count_runs(webui)
    our_run(webui, clip_skip=2)
    # one positive and one negative prompt, one chunk each: 11 of 12 layers per encode
    assert len(counts["clip_l"]) == 2 * 11
    counts["clip_l"].clear()
    host_run(webui)
    assert len(counts["clip_l"]) == 2 * 12


def test_sdxl_skips_on_clip_l_but_g_keeps_its_pooled_layer(forge):
    forge.load("sdxl")
    counts = count_runs(forge)
    our_run(forge, clip_skip=4, clip_skip_g=3)
    assert len(counts["clip_l"]) == 2 * 9 and len(counts["clip_g"]) == 2 * 32


# --- semantics per host ---------------------------------------------------------------------

def test_values_match_the_hosts_integer_clip_skip(webui):
    webui.load("sd1")
    for value in (2, 3, 12):
        assert_same(sampled(our_run(webui, clip_skip=value)), sampled(host_run(webui, host_skip=value)))


def test_fractional_values_lie_between_their_neighbours(webui):
    webui.load("sd1")
    low, high = sampled(our_run(webui, clip_skip=2))[0], sampled(our_run(webui, clip_skip=3))[0]
    middle = sampled(our_run(webui, clip_skip=2.5))[0]
    assert not torch.equal(middle, low) and not torch.equal(middle, high)
    # LayerNorm is applied after the blend, so compare distances rather than the raw mean
    assert (middle - low).norm() < (high - low).norm() and (middle - high).norm() < (high - low).norm()


def test_sdxl_value_1_is_the_raw_last_layer_which_forge_cannot_do(forge):
    forge.load("sdxl")
    host = sampled(host_run(forge, host_skip=1))  # Forge floors SDXL at 2
    assert_same(host, sampled(host_run(forge, host_skip=2)))
    assert_differs(sampled(our_run(forge, clip_skip=1)), host)


def test_separate_values_for_clip_l_and_openclip_g(forge):
    forge.load("sdxl")
    both3 = sampled(our_run(forge, clip_skip=3))
    l2_g3 = sampled(our_run(forge, clip_skip=2, clip_skip_g=3))
    default = sampled(host_run(forge))
    width_l = forge.shared.sd_model.text_processing_engine_l.text_encoder.transformer.config.hidden_size
    crossattn = lambda conds: conds[0]
    assert torch.equal(crossattn(l2_g3)[..., :width_l], crossattn(default)[..., :width_l])
    assert torch.equal(crossattn(l2_g3)[..., width_l:], crossattn(both3)[..., width_l:])


def test_flux_is_left_alone_with_a_reason(forge, caplog):
    forge.load("flux")
    p = forge.txt2img(enabled=True, clip_skip=3)
    state_seen = []
    forge.run(p)
    state_seen.append(getattr(p, STATE_ATTRIBUTE, None))
    assert_same(sampled(p), sampled(host_run(forge)))
    assert "CLIP skip has no effect on this model: Forge conditions Flux on CLIP-L's pooled output only" in caplog.text


def test_forge_sd2_true_last_layer_is_not_loaded(forge, caplog):
    forge.load("sd2")
    assert_same(sampled(our_run(forge, clip_skip=1)), sampled(host_run(forge)))
    assert "needs layer 24 of 24, which this host does not load (23 layers)" in caplog.text


# --- everywhere a generation encodes prompts ------------------------------------------------

def test_hires_pass_uses_the_value_too(webui):
    webui.load("sd1")
    kwargs = {"enable_hr": True, "hr_prompt": "a photo of a dog"}
    ours, host = our_run(webui, clip_skip=3, **kwargs), host_run(webui, host_skip=3, **kwargs)
    assert len(ours.sampled_conds) == 2
    assert_same(sampled(ours), sampled(host))


def test_batches_img2img_and_negative_prompts(webui):
    webui.load("sd1")
    kwargs = {"n_iter": 2, "batch_size": 2, "negative_prompt": "blurry, (bad:1.2)"}
    ours, host = our_run(webui, clip_skip=2, **kwargs), host_run(webui, host_skip=2, **kwargs)
    assert len(ours.sampled_conds) == 2
    assert_same(sampled(ours), sampled(host))
    p = webui.img2img(enabled=True, clip_skip=2)
    webui.run(p)
    q = webui.img2img(enabled=False)
    q.override_settings["CLIP_stop_at_last_layers"] = 2
    webui.run(q)
    assert_same(sampled(p), sampled(q))


def test_refiner_switch_gets_its_own_plan(forge):
    forge.load("sdxl")
    refiner = forge.build("sdxl_refiner", seed=5, name="refiner")
    p = forge.txt2img(enabled=True, clip_skip=2, clip_skip_g=3)
    p.refiner_model = refiner
    forge.run(p)
    q = forge.txt2img(enabled=False)
    q.refiner_model = refiner
    q.override_settings["CLIP_stop_at_last_layers"] = 3
    forge.run(q)
    # the refiner's conds (second sampling) equal the host's G at 3; the base's L stays at 2
    assert_same(cond_tensors(p.sampled_conds[1][0]), cond_tensors(q.sampled_conds[1][0]))
    assert forge.shared.sd_model is not refiner


# --- cond cache -----------------------------------------------------------------------------

def test_cache_keys_on_our_value_and_never_serves_stale_conds(webui):
    webui.load("sd1")
    host = host_run(webui)
    at2 = our_run(webui, clip_skip=2)
    assert at2.encoder_misses == 2
    again = our_run(webui, clip_skip=2)
    assert getattr(again, "encoder_misses", 0) == 0  # identical value: the host's cache hits
    assert_same(sampled(again), sampled(at2))
    at3 = our_run(webui, clip_skip=3)
    assert at3.encoder_misses == 2
    assert_differs(sampled(at3), sampled(at2))
    off = host_run(webui)
    assert off.encoder_misses == 2
    assert_same(sampled(off), sampled(host))


# --- never break the host -------------------------------------------------------------------

def test_saved_settings_are_untouched_even_when_the_generation_raises(webui, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"emphasis": "Original"}', encoding="utf-8")  # fresh config: no CLIP_stop key
    webui.shared.load_config(config)
    webui.load("sd1")
    before, before_bytes = webui.options_snapshot(), config.read_bytes()
    our_run(webui, clip_skip=3, enable_hr=True)
    p = webui.txt2img(enabled=True, clip_skip=2.5)
    p.sample_with = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("interrupted by the sampler"))
    with pytest.raises(RuntimeError, match="interrupted by the sampler"):
        webui.run(p)
    webui.shared.state.interrupted = True
    our_run(webui, clip_skip=4)
    webui.shared.state.interrupted = False
    assert webui.options_snapshot() == before and config.read_bytes() == before_bytes
    model = webui.shared.sd_model
    text_model = __import__("webui_models").text_models(model)["clip_l"]
    assert "forward" not in vars(text_model) and len(encoder_layers(text_model)) == 12


def test_disabled_extension_installs_nothing_on_the_generation_path(webui):
    webui.load("sd1")
    text_model = __import__("webui_models").text_models(webui.shared.sd_model)["clip_l"]
    ours = {"cached_params", "get_conds_with_caching", STATE_ATTRIBUTE}
    p = webui.txt2img(enabled=False, clip_skip=3)
    seen = []  # at every text-encoder call: our wrappers on p, our forward on the model
    text_model.register_forward_pre_hook(lambda *_: seen.append((sorted(ours & set(vars(p))), "forward" in vars(text_model))))
    webui.run(p)
    assert seen == [([], False)] * 2


def test_our_exception_falls_back_to_the_host_and_says_so(webui, monkeypatch, caplog):
    webui.load("sd1")
    from lib_clipskip import encode

    monkeypatch.setattr(encode, "blend", lambda *_: (_ for _ in ()).throw(RuntimeError("our bug")))
    p = our_run(webui, clip_skip=3)
    assert_same(sampled(p), sampled(host_run(webui)))
    assert ("the extension's encode failed (RuntimeError: our bug); this conditioning was made "
            "the host's own way, at the host's own CLIP skip.") in caplog.text
    assert webui.scripts.reported_errors == []


def test_a_failed_encode_is_the_hosts_whole_call_keeps_ti_and_is_never_cached_as_ours(webui, monkeypatch):
    """A one-off failure (say out of memory) in the positive prompt's truncated encode: that
    conditioning is the host's own, with the textual inversion the host queued for it; the
    cache never holds it under our key; the infotext says so; the next generation is ours."""
    webui.load("sd1")
    width = webui.shared.sd_model.cond_stage_model.wrapped.transformer.config.hidden_size \
        if webui.host in ("a1111", "reforge") else webui.shared.sd_model.text_processing_engine.text_encoder.transformer.config.hidden_size
    torch.manual_seed(0)
    webui.add_embedding("mystyle", torch.randn(2, width) * 3)
    prompt = "a photo of mystyle cat"
    without_ti = host_run(webui, "a photo of cat")
    host = host_run(webui, prompt)
    assert_differs(cond_tensors(host.c), cond_tensors(without_ti.c))  # the TI is really used
    from lib_clipskip import encode

    real_run_to, calls = encode.run_to, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # setup_conds: the negative prompt first, then the positive one
            raise RuntimeError("CUDA out of memory")
        return real_run_to(*args, **kwargs)

    monkeypatch.setattr(encode, "run_to", flaky)
    p = webui.txt2img(prompt, enabled=True, clip_skip=3)
    text = webui.run(p).infotexts[0]
    assert_same(cond_tensors(p.c), cond_tensors(host.c))  # the host's whole call: TI kept
    ours_at_3 = host_run(webui, prompt, host_skip=3)
    assert_same(cond_tensors(p.uc), cond_tensors(ours_at_3.uc))  # the negative prompt stayed ours
    assert "CLIP skip ext failed: RuntimeError" in text and "CLIP skip ext:" not in text
    assert "Clip skip:" not in text  # what the host wrote: its own 1
    again = our_run(webui, prompt, clip_skip=3)  # the identical request, no failure now
    assert_same(cond_tensors(again.c), cond_tensors(ours_at_3.c))  # ours: the fallback was not cached as ours
    assert len(calls) == 4


@pytest.mark.parametrize("bad", ["abc", float("nan"), -3, 0.4, 99])
def test_bad_values_from_ui_or_api_use_the_hosts_value(webui, bad, caplog):
    webui.load("sd1")
    p = webui.txt2img(enabled=True, clip_skip=bad)
    webui.run(p)
    assert_same(sampled(p), sampled(host_run(webui)))
    assert "CLIP skip" in caplog.text and webui.scripts.reported_errors == []


def test_api_dict_form(webui):
    webui.load("sd1")
    p = webui.txt2img(enabled=False)
    script = webui.script()
    p.script_args[script.args_from] = {"enabled": True, "clip_skip": 3}
    webui.run(p)
    assert_same(sampled(p), sampled(host_run(webui, host_skip=3)))


# --- A1111's OpenCLIP encoders (SD2, SDXL-G) in a whole generation --------------------------

def test_a1111_sd2_and_sdxl_generations(a1111):
    a1111.load("sd2")
    assert_same(sampled(our_run(a1111, clip_skip=2)), sampled(host_run(a1111)))  # A1111 ignores Clip skip on SD2
    assert_differs(sampled(our_run(a1111, clip_skip=3)), sampled(host_run(a1111)))
    counts = count_runs(a1111)
    our_run(a1111, clip_skip=4)
    assert len(counts["clip_h"]) == 2 * 21
    a1111.load("sdxl")
    default = sampled(host_run(a1111))
    assert_same(sampled(our_run(a1111, clip_skip=2)), default)
    assert_same(sampled(host_run(a1111, host_skip=3)), default)  # A1111's own Clip skip does nothing on SDXL
    assert_differs(sampled(our_run(a1111, clip_skip=3)), default)
    a1111.shared.opts.sdxl_clip_l_skip = True  # the built-in checkbox: raw hidden_states[-N] on CLIP-L only
    host_l3 = sampled(host_run(a1111, host_skip=3))
    a1111.shared.opts.sdxl_clip_l_skip = False
    assert_same(sampled(our_run(a1111, clip_skip=3, clip_skip_g=2)), host_l3)


def test_a1111_family_comes_from_the_encoder_classes_not_their_names(a1111):
    """An SDXL CLIP-L wrapper is not an SD1 model, even though both encoders are called clip_l."""
    import types

    from lib_clipskip.hosts.a1111 import A1111Adapter

    sdxl = a1111.build("sdxl")
    clip_l_only = types.SimpleNamespace(conditioner=types.SimpleNamespace(embedders=[sdxl.conditioner.embedders[0]]))
    info = A1111Adapter().inspect(clip_l_only).info
    assert info.family.value == "other" and "not a CLIP model this extension knows" in info.no_effect_reason
    assert A1111Adapter().inspect(sdxl).info.family.value == "sdxl"


# --- Forge: LoRA weights reach the text encoder through forge_objects.clip ----------------------

class ForgeLora:
    """``sd_forge_lora`` as far as the text encoder goes (``networks.load_networks``, Forge dfdcbab6
    lines 68-126): from the original CLIP, clone and ``add_patches`` each LoRA's TE weights,
    then keep it as ``forge_objects`` and ``forge_objects_after_applying_lora``."""

    name = "lora"

    def __init__(self, ui, files):
        self.ui, self.files = ui, files

    def activate(self, p, params_list):
        sd = self.ui.shared.sd_model
        targets = [(params.items[0], float(params.items[1]) if len(params.items) > 1 else 1.0) for params in params_list]
        if sd.current_lora_hash == str(targets):
            return
        sd.current_lora_hash = str(targets)
        clip = sd.forge_objects_original.clip
        for name, multiplier in targets:
            clip = clip.clone()
            clip.add_patches(filename=name, patches=self.files[name], strength_patch=multiplier)
        sd.forge_objects.clip = clip
        sd.forge_objects_after_applying_lora = sd.forge_objects.shallow_copy()

    def deactivate(self, p):
        pass


def test_forge_lora_on_the_text_encoder_is_applied_under_our_skip(forge):
    from standin_common import extra_networks

    forge.load("sd1")
    text_model = forge.shared.sd_model.text_processing_engine.text_encoder.transformer
    torch.manual_seed(1)
    target = encoder_layers(text_model)[3].mlp.fc1.weight
    # the parameter's name as Forge's patcher keys it (transformers 5 has no ``text_model.`` level)
    key = "clip_l.transformer." + next(name for name, param in text_model.named_parameters() if param is target)
    delta = torch.randn_like(target) * 0.2
    extra_networks.register_extra_network(ForgeLora(forge, {"te_style": {key: ("diff", delta)}}))
    plain = host_run(forge, "a photo of a cat", host_skip=3)
    with_lora = host_run(forge, "a photo of a cat <lora:te_style:1>", host_skip=3)
    assert_differs(sampled(with_lora), sampled(plain))  # the LoRA reaches the text encoder
    ours = our_run(forge, "a photo of a cat <lora:te_style:1>", clip_skip=3)
    assert_same(sampled(ours), sampled(with_lora))  # and our truncated encode runs on the patched weights
    assert_same(sampled(our_run(forge, "a photo of a cat", clip_skip=3)), sampled(plain))  # and off again


@pytest.mark.parametrize("raw, expected", [(99, 1), ("abc", 1), (2.5, 1), (True, 1), (2.0, 2), ("3", 3)])
def test_a_clip_skip_override_the_host_cannot_use_is_dropped_not_crashed_on(webui, raw, expected, caplog):
    """The API's infotext field hands a pasted "Clip skip: 99" straight to override_settings (no
    paste callback); the host then fails in ``hidden_states[-99]``.  With the extension installed
    (panel off) the generation runs at the saved value instead, and says why."""
    webui.load("sd1")
    p = webui.txt2img(enabled=False, override_settings={"CLIP_stop_at_last_layers": raw})
    webui.run(p)
    assert webui.scripts.reported_errors == []
    assert_same(sampled(p), sampled(host_run(webui, host_skip=expected)))
    if expected == 1:
        assert "is not a value the WebUI can use" in caplog.text
