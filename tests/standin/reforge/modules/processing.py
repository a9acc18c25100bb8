"""reForge 3b56b268. Mirrors ``modules/processing.py`` where reForge differs from A1111 v1.10.1:

- cache lists have a third slot with the miss's ``model_hijack.extra_generation_params``, replayed on
  hits (``:523-558``);
- ``cached_params`` also keys the four Dynamic clip skip options (``:461-483``);
- ``setup_conds`` (``:560-621``): with ``dynamic_clip_skip_enabled`` it encodes the prompts once per
  distinct value of the ramp / schedule (``opts.CLIP_stop_at_last_layers`` set around each call and
  restored in ``finally``), keeps them in ``p.dynamic_clip_skip_sets``, starts from the first step's,
  writes the "Dynamic clip skip…" infotext keys and sets ``p.clip_skip`` to the start value; without
  it, ``p.clip_skip = opts.CLIP_stop_at_last_layers``;
- the CFG denoiser swaps in the set of each step before reconstructing
  (``sd_samplers_cfg_denoiser.py:140-148``), before ``on_cfg_denoiser`` callbacks run;
- hires conds are computed inside ``setup_conds`` with the hr networks activated (``:1657-1681``; the
  lowvram branch, taken when the loaded checkpoint is the selected one).
Left out: ``step_multiplier`` (the stand-in's samplers take one model call per step).
"""

from __future__ import annotations

from dataclasses import dataclass

from standin_common import processing as common
from standin_common import prompt_parser
from standin_common.processing import Processed, create_infotext, fix_seed, process_images, process_images_inner  # noqa: F401


@dataclass(repr=False)
class StableDiffusionProcessing(common.StableDiffusionProcessing):
    cached_uc = [None, None, None]
    cached_c = [None, None, None]
    cache_slots = 3
    dynamic_clip_skip_schedule = None  # R :235-236, reset in setup_conds
    dynamic_clip_skip_sets = None

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        from modules import shared

        opts = shared.opts
        key = common.StableDiffusionProcessing.cached_params(self, required_prompts, steps, extra_network_data, hires_steps, use_old_scheduling)
        dynamic = (opts.dynamic_clip_skip_enabled, opts.dynamic_clip_skip_start, opts.dynamic_clip_skip_use_schedule,
                   opts.dynamic_clip_skip_schedule_values)
        return key[:5] + dynamic + key[5:]

    def get_conds_with_caching(self, function, required_prompts, steps, caches, extra_network_data, hires_steps=None):
        from modules import sd_hijack, shared

        cached_params = self.cached_params(required_prompts, steps, extra_network_data, hires_steps, shared.opts.use_old_scheduling)
        for cache in caches:
            if cache[0] is not None and cached_params == cache[0]:
                if len(cache) > 2:
                    sd_hijack.model_hijack.extra_generation_params.update(cache[2])
                return cache[1]
        cache = caches[0]
        cache[1] = function(shared.sd_model, required_prompts, steps, hires_steps, shared.opts.use_old_scheduling)
        if len(cache) > 2:
            cache[2] = sd_hijack.model_hijack.extra_generation_params
        cache[0] = cached_params
        self.encoder_misses = getattr(self, "encoder_misses", 0) + 1
        return cache[1]

    def _minimal_clip_skip(self):
        from modules import shared

        return getattr(getattr(shared.sd_model, "cond_stage_model", None), "minimal_clip_skip", 1)

    def _build_dynamic_clip_skip_schedule(self, total_steps, start):
        schedule, current = [], int(start)
        for _ in range(total_steps):
            schedule.append(current)
            current = max(current - 1, 2) if current > 2 else 2
        return schedule

    def _parse_dynamic_schedule(self, total_steps, minimal_clip_skip):
        from modules import shared

        raw = shared.opts.dynamic_clip_skip_schedule_values or ""
        values = []
        for part in [x.strip() for x in raw.replace(";", ",").split(",") if x.strip() != ""]:
            try:
                values.append(min(max(int(float(part)), 2, minimal_clip_skip), 12))
            except Exception:
                continue
        if not values:
            return None
        return [values[min(i, len(values) - 1)] for i in range(total_steps)]

    def first_pass_conds(self):
        from modules import shared

        opts = shared.opts
        prompts = prompt_parser.SdConditioning(self.prompts, width=self.width, height=self.height)
        negative_prompts = prompt_parser.SdConditioning(self.negative_prompts, width=self.width, height=self.height, is_negative_prompt=True)
        total_steps = self.firstpass_steps = self.steps
        self.dynamic_clip_skip_schedule = None
        self.dynamic_clip_skip_sets = None

        def both():
            uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, negative_prompts, total_steps, [self.cached_uc], self.extra_network_data)
            c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, prompts, total_steps, [self.cached_c], self.extra_network_data)
            return c, uc

        if not opts.dynamic_clip_skip_enabled:
            self.c, self.uc = both()
            self.clip_skip = opts.CLIP_stop_at_last_layers
            return
        minimal = self._minimal_clip_skip()
        schedule = self._parse_dynamic_schedule(total_steps, minimal) if opts.dynamic_clip_skip_use_schedule else None
        custom = schedule is not None
        if schedule is None:
            start = min(max(int(opts.dynamic_clip_skip_start), 2, minimal), 12)
            schedule = self._build_dynamic_clip_skip_schedule(total_steps, start)
        else:
            start = schedule[0]
        original = opts.CLIP_stop_at_last_layers
        sets = {}
        try:
            for value in dict.fromkeys(schedule):
                opts.CLIP_stop_at_last_layers = value
                sets[value] = both()
        finally:
            opts.CLIP_stop_at_last_layers = original
        self.dynamic_clip_skip_schedule = schedule
        self.dynamic_clip_skip_sets = sets
        self.c, self.uc = sets[schedule[0]]
        self.clip_skip = start
        if custom:
            self.extra_generation_params["Dynamic clip skip schedule"] = opts.dynamic_clip_skip_schedule_values or ",".join(map(str, schedule))
        else:
            self.extra_generation_params["Dynamic clip skip"] = f"{start}->2"
            self.extra_generation_params["Dynamic clip skip start"] = start

    def denoiser_step_conds(self, denoiser, cond, uncond):
        """``sd_samplers_cfg_denoiser.py:140-148``: the set of this step, if Dynamic clip skip is on."""
        from modules import shared

        if getattr(shared.opts, "dynamic_clip_skip_enabled", False):
            schedule = getattr(self, "dynamic_clip_skip_schedule", None)
            sets = getattr(self, "dynamic_clip_skip_sets", None) or {}
            if schedule:
                selected = sets.get(schedule[min(denoiser.step, len(schedule) - 1)])
                if selected is not None:
                    cond, uncond = selected
        return cond, uncond


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing, common.StableDiffusionProcessingTxt2Img):
    cached_hr_uc = [None, None, None]
    cached_hr_c = [None, None, None]
    hr_conds_in_setup_conds = True


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing, common.StableDiffusionProcessingImg2Img):
    pass
