"""Mirrors ADetailer (``Bing-su/adetailer``, ``scripts/!adetailer.py`` at 36189cb, v25.3.0) as far as a
nested processing goes: the inpainting pass it runs inside a generation.

Kept as it has them: ``postprocess_image`` (lines 896-932: skip on ``_ad_disabled``; on the first
image of a batch ``p.scripts.postprocess(copy(p), dummy)``; each detection ``process_images(p2)``
in ``try``/``finally p2.close()``; on the last image of a batch ``before_process``/``process`` on a
copy of ``p``), ``get_i2i_p`` (498-560: a new ``StableDiffusionProcessingImg2Img`` with the
outer's seed, size and styles, ``override_settings`` from ``get_override_settings`` — 395-399:
``CLIP_stop_at_last_layers`` when "use separate CLIP skip" — ``cached_c``/``cached_uc`` of its
own, ``_ad_disabled``/``_ad_inner``), ``script_filter`` (448-478: only the always-on scripts
whose file stem is in the ``ad_script_names`` option, default ``SCRIPT_DEFAULT`` +
``BUILTIN_SCRIPT``, ``adetailer/args.py:274-286``), ``get_prompt`` (309: the ad prompt, else
``p.all_prompts[i]``), ``get_i`` (``aaaaaa/p_method.py:26``).
Left out: detection (one "face" covering the image), masks, ControlNet, samplers/steps/size
overrides, saving, the UI (its args are ``[enabled, {ad_use_clip_skip, ad_clip_skip, ad_prompt}]``).
"""

from copy import copy
from pathlib import Path

import gradio as gr
from modules import scripts
from modules.processing import Processed, StableDiffusionProcessingImg2Img, process_images
from modules.shared import opts

SCRIPT_DEFAULT = ",".join(sorted(("dynamic_prompting", "dynamic_thresholding", "wildcard_recursive", "wildcards",
                                  "lora_block_weight", "negpip")))
BUILTIN_SCRIPT = ",".join(sorted(("soft_inpainting", "hypertile_script")))


def get_i(p):
    return p.iteration * p.batch_size + p.batch_index


def need_call_postprocess(p):
    return p.scripts is not None and p.batch_index == 0


def need_call_process(p):
    return p.scripts is not None and p.batch_index == p.batch_size - 1


class AfterDetailerScript(scripts.Script):
    def __init__(self):
        super().__init__()
        self.passes = []  # (outer p, the i2i p of each pass): for the tests

    def title(self):
        return "ADetailer"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return [gr.Checkbox(value=False, label="Enable ADetailer"),
                gr.State(value={"ad_use_clip_skip": False, "ad_clip_skip": 1, "ad_prompt": ""})]

    def get_override_settings(self, _p, args):
        d = {}
        if args.get("ad_use_clip_skip"):
            d["CLIP_stop_at_last_layers"] = args["ad_clip_skip"]
        return d

    def script_filter(self, p, args):
        script_runner = copy(p.scripts)
        script_args = list(p.script_args)
        ad_script_names = opts.data.get("ad_script_names", SCRIPT_DEFAULT).split(",") + BUILTIN_SCRIPT.split(",")
        names = {name for script_name in ad_script_names for name in (script_name, script_name.strip())}
        script_runner.alwayson_scripts = [s for s in script_runner.alwayson_scripts if Path(s.filename).stem in names]
        return script_runner, script_args

    def get_i2i_p(self, p, args, image):
        i = get_i(p)
        i2i = StableDiffusionProcessingImg2Img(
            init_images=[image], denoising_strength=0.4, prompt="", negative_prompt="", styles=p.styles,
            seed=p.all_seeds[i], subseed=p.all_subseeds[i], sampler_name=p.sampler_name, batch_size=1, n_iter=1,
            steps=p.steps, cfg_scale=p.cfg_scale, width=p.width, height=p.height,
            extra_generation_params={k: v for k, v in p.extra_generation_params.items() if not callable(v)},
            do_not_save_grid=True, override_settings=self.get_override_settings(p, args))
        i2i.cached_c = [None, None]
        i2i.cached_uc = [None, None]
        i2i.scripts, i2i.script_args = self.script_filter(p, args)
        i2i._ad_disabled = True
        i2i._ad_inner = True
        return i2i

    def postprocess_image(self, p, pp, *args_):
        if getattr(p, "_ad_disabled", False) or not (args_ and args_[0]):
            return
        args = args_[1]
        if need_call_postprocess(p):
            dummy = Processed(p, [], p.seed, "")
            p.scripts.postprocess(copy(p), dummy)
        i2i = self.get_i2i_p(p, args, pp.image)
        i = get_i(p)
        p2 = copy(i2i)
        p2.prompt = args.get("ad_prompt") or p.all_prompts[i]
        p2.negative_prompt = p.all_negative_prompts[i]
        p2.cached_c = [None, None]
        p2.cached_uc = [None, None]
        try:
            processed = process_images(p2)
        finally:
            p2.close()
        self.passes.append((p, p2))
        pp.image = processed.images[0]
        if need_call_process(p):
            copy_p = copy(p)
            p.scripts.before_process(copy_p)
            p.scripts.process(copy_p)
