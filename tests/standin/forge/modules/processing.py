"""Forge dfdcbab6. Mirrors ``modules/processing.py`` where Forge differs from A1111 v1.10.1:

- cache lists have a third slot with the miss's "TI"/"Emphasis" infotext params, replayed on hits;
- on a miss, ``shared.sd_model.set_clip_skip(int(opts.CLIP_stop_at_last_layers))`` before encoding;
- ``cached_params`` also keys ``distilled_cfg_scale`` and ``hr_distilled_cfg``;
- ``create_infotext`` and ``Processed`` cast the Clip skip option with ``int``;
- each batch resets ``sd_model.forge_objects`` to the original and, after the extra networks, to
  the LoRA'd ones (LoRA weights reach the text encoder when ``get_learned_conditioning`` loads it);
- hires conds are computed inside ``setup_conds``, right after the first pass, with the hr
  networks activated and the first-pass networks re-activated afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from standin_common import processing as common
from standin_common.processing import Processed, create_infotext, fix_seed, process_images, process_images_inner  # noqa: F401

common.CLIP_SKIP_CAST = int  # Forge: int(getattr(p, 'clip_skip', …)) in create_infotext (:721) and Processed (:549)
common.FORGE_OBJECTS = True  # Forge: forge_objects reset before and LoRA'd after extra networks (:937, :957)


@dataclass(repr=False)
class StableDiffusionProcessing(common.StableDiffusionProcessing):
    distilled_cfg_scale: float = 3.5
    hr_distilled_cfg: float = 3.5

    cached_uc = [None, None, None]
    cached_c = [None, None, None]
    cache_slots = 3

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        key = common.StableDiffusionProcessing.cached_params(self, required_prompts, steps, extra_network_data, hires_steps, use_old_scheduling)
        return (key[0], self.distilled_cfg_scale, self.hr_distilled_cfg) + key[1:]

    def get_conds_with_caching(self, function, required_prompts, steps, caches, extra_network_data, hires_steps=None):
        from backend.text_processing import classic_engine
        from modules import shared

        cached_params = self.cached_params(required_prompts, steps, extra_network_data, hires_steps, shared.opts.use_old_scheduling)
        for cache in caches:
            if cache[0] is not None and cached_params == cache[0]:
                if len(cache) > 2:
                    shared.sd_model.extra_generation_params.update(cache[2])
                return cache[1]
        cache = caches[0]
        shared.sd_model.set_clip_skip(int(shared.opts.CLIP_stop_at_last_layers))
        cache[1] = function(shared.sd_model, required_prompts, steps, hires_steps, shared.opts.use_old_scheduling)
        last = classic_engine.last_extra_generation_params.copy()
        shared.sd_model.extra_generation_params.update(last)
        if len(cache) > 2:
            cache[2] = last
        classic_engine.last_extra_generation_params = {}
        cache[0] = cached_params
        self.encoder_misses = getattr(self, "encoder_misses", 0) + 1
        return cache[1]

    def encoder_generation_params(self):
        from modules import shared

        return shared.sd_model.extra_generation_params

    def clear_prompt_cache(self):
        self.cached_c = [None, None, None]
        self.cached_uc = [None, None, None]
        StableDiffusionProcessing.cached_c = [None, None, None]
        StableDiffusionProcessing.cached_uc = [None, None, None]


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing, common.StableDiffusionProcessingTxt2Img):
    cached_hr_uc = [None, None, None]
    cached_hr_c = [None, None, None]
    hr_conds_in_setup_conds = True


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing, common.StableDiffusionProcessingImg2Img):
    pass
