"""Mirrors ``modules/processing.py`` (A1111 v1.10.1 82a973c0) — the parts a CLIP-skip extension meets.

Kept as the host has them: the cond cache (class-level cache lists shared by every ``p``,
``cached_params`` key, ``get_conds_with_caching`` lookup over several caches, a miss written
to ``caches[0]``), ``setup_conds`` per batch after ``extra_networks.activate`` and
``process_batch``, the hires pass (``calculate_hr_conds`` with ``[cached_hr_*, cached_*]``,
called in ``sample_hr_pass`` after re-activating hr networks), the refiner switch calling
``setup_conds`` mid-sampling, ``process_images`` (``before_process`` first, ``stored_opts``
only for keys present in ``opts.data``, overrides set with ``opts.set(..., is_api=True,
run_callbacks=False)``, restored in ``finally``), the hook order, and ``create_infotext``
(core keys + ``extra_generation_params``; "Clip skip" from ``getattr(p, 'clip_skip', opts…)``,
omitted when <= 1).

Replaced: sampling and VAE.  ``sample`` runs the CFG denoiser's per-step loop (reconstruction at each
step, ``on_cfg_denoiser`` callbacks) and returns, per image, a float made from the seed and every
step's conditioning; it records the conditionings it was given in ``p.sampled_conds`` and what each
step used in ``p.step_conds``.
Host differences (Forge) are class attributes and overrides in ``forge/modules/processing.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

from standin_common import extra_networks, prompt_parser


def host():
    from modules import sd_hijack, shared

    return shared, sd_hijack


def get_fixed_seed(seed):
    if seed in ("", None) or (isinstance(seed, (int, float)) and seed == -1):
        return int(random.randrange(4294967294))
    return seed


def fix_seed(p):
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


def cache_owner(cls, name):
    """The class whose list a cache attribute is: the host's own processing class (class-level lists
    every ``p`` shares, reset on that class by ``close``)."""
    return next(c for c in cls.__mro__ if name in vars(c))


def step_summary(tensor) -> float:
    tensors = tensor.values() if isinstance(tensor, dict) else [tensor]
    return sum(float(t.double().sum()) + 1e-3 * float(t.double().abs().sum()) for t in tensors)


class CFGDenoiser:
    """The fields of ``sd_samplers_cfg_denoiser.CFGDenoiser`` a callback reads: ``p``, ``step`` (counted
    per model evaluation), ``total_steps`` (set by the sampler, ``sd_samplers_common.py:267``)."""

    def __init__(self, p, total_steps):
        self.p = p
        self.step = 0
        self.total_steps = total_steps


@dataclass(repr=False)
class StableDiffusionProcessing:
    sd_model: Any = None
    prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    sampler_name: str = "Euler"
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    negative_prompt: str = ""
    extra_generation_params: dict = None
    override_settings: dict = None
    override_settings_restore_afterwards: bool = True
    refiner_checkpoint: str = None
    refiner_switch_at: float = None
    disable_extra_networks: bool = False
    do_not_reload_embeddings: bool = False
    do_not_save_grid: bool = False

    scripts_value: Any = field(default=None, init=False)
    script_args_value: list = field(default=None, init=False)
    scripts_setup_complete: bool = field(default=False, init=False)

    cached_uc = [None, None]
    cached_c = [None, None]
    cache_slots = 2  # Forge keeps a third slot for the miss's infotext params

    is_hr_pass: bool = field(default=False, init=False)
    c: Any = field(default=None, init=False)
    uc: Any = field(default=None, init=False)
    all_prompts: list = field(default=None, init=False)
    all_negative_prompts: list = field(default=None, init=False)
    all_seeds: list = field(default=None, init=False)
    all_subseeds: list = field(default=None, init=False)
    iteration: int = field(default=0, init=False)
    prompts: list = field(default=None, init=False)
    negative_prompts: list = field(default=None, init=False)
    seeds: list = field(default=None, init=False)
    subseeds: list = field(default=None, init=False)
    extra_network_data: dict = field(default=None, init=False)
    is_api: bool = field(default=False, init=False)

    def __post_init__(self):
        self.styles = self.styles or []
        self.extra_generation_params = self.extra_generation_params or {}
        self.override_settings = self.override_settings or {}
        self.script_args = self.script_args or []
        for name in ("cached_uc", "cached_c"):
            setattr(self, name, getattr(cache_owner(type(self), name), name))
        self.sampled_conds = []
        self.step_conds = []  # (text_cond, text_uncond) of every sampling step, as the denoiser used them
        self.refiner_model = None

    @property
    def scripts(self):
        return self.scripts_value

    @scripts.setter
    def scripts(self, value):
        self.scripts_value = value

    @property
    def script_args(self):
        return self.script_args_value

    @script_args.setter
    def script_args(self, value):
        self.script_args_value = value

    def setup_prompts(self):
        self.all_prompts = self.prompt if isinstance(self.prompt, list) else self.batch_size * self.n_iter * [self.prompt]
        negative = self.negative_prompt
        self.all_negative_prompts = negative if isinstance(negative, list) else [negative] * len(self.all_prompts)
        self.main_prompt = self.all_prompts[0]
        self.main_negative_prompt = self.all_negative_prompts[0]

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        shared, _ = host()
        opts = shared.opts
        return (
            required_prompts,
            steps,
            hires_steps,
            use_old_scheduling,
            opts.CLIP_stop_at_last_layers,
            shared.sd_model.sd_checkpoint_info,
            extra_network_data,
            opts.sdxl_crop_left,
            opts.sdxl_crop_top,
            self.width,
            self.height,
            opts.fp8_storage,
            opts.cache_fp16_weight,
            opts.emphasis,
        )

    def before_encode_on_miss(self):
        """Forge calls ``sd_model.set_clip_skip`` here; A1111 does nothing."""

    def get_conds_with_caching(self, function, required_prompts, steps, caches, extra_network_data, hires_steps=None):
        shared, _ = host()
        cached_params = self.cached_params(required_prompts, steps, extra_network_data, hires_steps, shared.opts.use_old_scheduling)
        for cache in caches:
            if cache[0] is not None and cached_params == cache[0]:
                return cache[1]
        cache = caches[0]
        self.before_encode_on_miss()
        cache[1] = function(shared.sd_model, required_prompts, steps, hires_steps, shared.opts.use_old_scheduling)
        cache[0] = cached_params
        self.encoder_misses = getattr(self, "encoder_misses", 0) + 1
        return cache[1]

    def setup_conds(self):
        self.first_pass_conds()

    def first_pass_conds(self):
        """``setup_conds``' own part: the prompts' conds (reForge adds its Dynamic clip skip here)."""
        prompts = prompt_parser.SdConditioning(self.prompts, width=self.width, height=self.height)
        negative_prompts = prompt_parser.SdConditioning(self.negative_prompts, width=self.width, height=self.height, is_negative_prompt=True)
        self.firstpass_steps = self.steps
        self.uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, negative_prompts, self.steps, [self.cached_uc], self.extra_network_data)
        self.c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, prompts, self.steps, [self.cached_c], self.extra_network_data)

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = extra_networks.parse_prompts(self.prompts)

    def encoder_generation_params(self):
        """A1111: ``model_hijack.extra_generation_params``; Forge: ``p.sd_model.extra_generation_params``."""
        _, sd_hijack = host()
        return sd_hijack.model_hijack.extra_generation_params

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def sample_with(self, conditioning, unconditional_conditioning, seeds, steps=None):
        """The sampler's loop as the CFG denoiser sees it (A1111 ``sd_samplers_cfg_denoiser.py:156-217``,
        Forge ``:156-199``): per step, the conditionings reconstructed at that step go through
        ``on_cfg_denoiser`` callbacks, which may replace them; the "image" sums what each step used."""
        from modules import script_callbacks

        self.sampled_conds.append((conditioning, unconditional_conditioning))
        denoiser = CFGDenoiser(self, steps or self.steps)
        value = 0.0
        for _ in range(denoiser.total_steps):
            cond, uncond = self.denoiser_step_conds(denoiser, conditioning, unconditional_conditioning)
            _conds_list, tensor = prompt_parser.reconstruct_multicond_batch(cond, denoiser.step)
            uncond = prompt_parser.reconstruct_cond_batch(uncond, denoiser.step)
            params = script_callbacks.CFGDenoiserParams(None, None, None, denoiser.step, denoiser.total_steps, tensor,
                                                        uncond, denoiser)
            script_callbacks.cfg_denoiser_callback(params)
            self.step_conds.append((params.text_cond, params.text_uncond))
            value += step_summary(params.text_cond) + 0.5 * step_summary(params.text_uncond)
            denoiser.step += 1
        return [torch.tensor(float(seed % 1000) + value, dtype=torch.float64) for seed in seeds]

    def denoiser_step_conds(self, denoiser, cond, uncond):
        """What the denoiser reconstructs at this step: the sampler's conds (reForge may swap them)."""
        return cond, uncond

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        samples = self.sample_with(conditioning, unconditional_conditioning, seeds)
        if self.refiner_model is not None:
            self.apply_refiner()
            samples = [a + b for a, b in zip(samples, self.sample_with(self.c, self.uc, seeds))]
        return samples

    def apply_refiner(self):
        """``sd_samplers_common.apply_refiner``: switch the model mid-sampling and recompute conds."""
        shared, _ = host()
        self.extra_generation_params["Refiner"] = "refiner"
        shared.sd_model = self.refiner_model
        self.setup_conds()

    def close(self):
        shared, _ = host()
        if not shared.opts.persistent_cond_cache:
            for name in ("cached_c", "cached_uc"):
                setattr(cache_owner(type(self), name), name, [None] * self.cache_slots)

    def get_token_merging_ratio(self, for_hr=False):
        return 0


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    hr_scale: float = 2.0
    hr_second_pass_steps: int = 0
    hr_prompt: str = ""
    hr_negative_prompt: str = ""

    cached_hr_uc = [None, None]
    cached_hr_c = [None, None]
    #: Forge and reForge make the hires conds in ``setup_conds``, right after the first pass's, with the
    #: hr networks activated (F ``:1598-1613``, R ``:1661-1677``); A1111 only in ``sample_hr_pass``
    hr_conds_in_setup_conds = False

    def __post_init__(self):
        super().__post_init__()
        for name in ("cached_hr_uc", "cached_hr_c"):
            setattr(self, name, getattr(cache_owner(type(self), name), name))
        self.hr_c = None
        self.hr_uc = None
        self.hr_upscale_to_x = int(self.width * self.hr_scale)
        self.hr_upscale_to_y = int(self.height * self.hr_scale)

    def setup_prompts(self):
        super().setup_prompts()
        if self.enable_hr:
            self.all_hr_prompts = [self.hr_prompt or x for x in self.all_prompts]
            self.all_hr_negative_prompts = [self.hr_negative_prompt or x for x in self.all_negative_prompts]

    def parse_extra_network_prompts(self):
        super().parse_extra_network_prompts()
        if self.enable_hr:
            n, size = self.iteration, self.batch_size
            self.hr_prompts = self.all_hr_prompts[n * size:(n + 1) * size]
            self.hr_negative_prompts = self.all_hr_negative_prompts[n * size:(n + 1) * size]
            self.hr_prompts, self.hr_extra_network_data = extra_networks.parse_prompts(self.hr_prompts)

    def calculate_hr_conds(self):
        if self.hr_c is not None:
            return
        hr_prompts = prompt_parser.SdConditioning(self.hr_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y)
        hr_negative_prompts = prompt_parser.SdConditioning(self.hr_negative_prompts, width=self.hr_upscale_to_x, height=self.hr_upscale_to_y, is_negative_prompt=True)
        total_steps = self.hr_second_pass_steps or self.steps
        self.hr_uc = self.get_conds_with_caching(prompt_parser.get_learned_conditioning, hr_negative_prompts, self.firstpass_steps, [self.cached_hr_uc, self.cached_uc], self.hr_extra_network_data, total_steps)
        self.hr_c = self.get_conds_with_caching(prompt_parser.get_multicond_learned_conditioning, hr_prompts, self.firstpass_steps, [self.cached_hr_c, self.cached_c], self.hr_extra_network_data, total_steps)

    def setup_conds(self):
        if self.is_hr_pass:
            self.hr_c = None
            self.calculate_hr_conds()
            return
        self.first_pass_conds()
        self.hr_uc = None
        self.hr_c = None
        if self.enable_hr and self.hr_conds_in_setup_conds:
            extra_networks.activate(self, self.hr_extra_network_data)
            self.calculate_hr_conds()
            extra_networks.activate(self, self.extra_network_data)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        samples = super().sample(conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts)
        if not self.enable_hr:
            return samples
        return self.sample_hr_pass(samples, seeds)

    def sample_hr_pass(self, samples, seeds):
        self.is_hr_pass = True
        if not self.disable_extra_networks:
            extra_networks.activate(self, self.hr_extra_network_data)
        self.calculate_hr_conds()
        if self.scripts is not None:
            self.scripts.before_hr(self)
        second = self.sample_with(self.hr_c, self.hr_uc, seeds, self.hr_second_pass_steps or self.steps)
        self.is_hr_pass = False
        return [a + b for a, b in zip(samples, second)]

    def close(self):
        super().close()
        shared, _ = host()
        if not shared.opts.persistent_cond_cache:
            for name in ("cached_hr_uc", "cached_hr_c"):
                setattr(cache_owner(type(self), name), name, [None] * self.cache_slots)


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list = None
    denoising_strength: float = 0.75
    mask: Any = None
    inpainting_fill: int = 0

    def init(self, all_prompts, all_seeds, all_subseeds):
        self.init_latent = [float(x) for x in (self.init_images or [0.0])]

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        samples = super().sample(conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts)
        return [x * self.denoising_strength + self.init_latent[0] for x in samples]


class Processed:
    """``Processed.__init__`` (A1111 ``processing.py:513``; Forge ``:517``): the fields the extension
    and its tests read; ``clip_skip`` is the option as it is now (Forge casts it with ``int``)."""

    def __init__(self, p, images_list, seed=-1, info="", subseed=None, all_prompts=None, all_negative_prompts=None,
                 all_seeds=None, all_subseeds=None, index_of_first_image=0, infotexts=None, comments=""):
        shared, _ = host()
        self.images = images_list
        self.prompt = p.prompt if not isinstance(p.prompt, list) else p.prompt[0]
        self.seed = seed
        self.info = info
        self.comments = comments
        self.batch_size = p.batch_size
        self.extra_generation_params = p.extra_generation_params
        self.index_of_first_image = index_of_first_image
        self.clip_skip = CLIP_SKIP_CAST(shared.opts.CLIP_stop_at_last_layers)
        self.all_prompts = all_prompts or p.all_prompts or [self.prompt]
        self.all_negative_prompts = all_negative_prompts or p.all_negative_prompts or [p.negative_prompt]
        self.all_seeds = all_seeds or p.all_seeds or [self.seed]
        self.all_subseeds = all_subseeds or p.all_subseeds or [subseed]
        self.infotexts = infotexts or [info] * len(images_list)

    def infotext(self, p, index):
        return create_infotext(p, self.all_prompts, self.all_seeds, self.all_subseeds, comments=[],
                               position_in_batch=index % self.batch_size, iteration=index // self.batch_size)

    def js(self):
        """``Processed.js`` (A ``:570-607``, F the same; what the API returns as ``info`` and the UI reads after a
        generation): the job's fields with ``extra_generation_params`` as they are, through ``json.dumps`` with
        ``JS_DEFAULT`` (A1111, Forge, reForge: ``default=lambda o: None``; Forge Classic: none)."""
        import json

        obj = {"prompt": self.prompt, "all_prompts": self.all_prompts, "seed": self.seed, "all_seeds": self.all_seeds,
               "extra_generation_params": self.extra_generation_params, "infotexts": self.infotexts, "clip_skip": self.clip_skip}
        return json.dumps(obj, default=JS_DEFAULT)


#: ``Processed.js``' ``json.dumps`` default (replaced by classic/modules/processing.py)
JS_DEFAULT = lambda o: None  # noqa: E731


#: Forge keeps the model's unet/clip in ``forge_objects`` and swaps in the LoRA'd ones per batch
FORGE_OBJECTS = False  # replaced by forge/modules/processing.py

#: A1111 writes ``getattr(p, 'clip_skip', opts.CLIP_stop_at_last_layers)`` as it is (``processing.py:759``);
#: Forge casts it with ``int`` (``:721``), in ``create_infotext`` and in ``Processed``.
CLIP_SKIP_CAST = lambda value: value  # noqa: E731 (replaced by forge/modules/processing.py)


def create_infotext(p, all_prompts, all_seeds, all_subseeds, comments=None, iteration=0, position_in_batch=0, use_main_prompt=False, index=None, all_negative_prompts=None):
    """A1111 ``processing.py:705`` / Forge ``:668``: the index, the per-image prompt and seed, the
    "Clip skip" core key, ``extra_generation_params`` after the core keys, lists indexed and
    callables called with ``**locals()`` (a failing key reported and dropped)."""
    shared, _ = host()
    opts = shared.opts
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    clip_skip = CLIP_SKIP_CAST(getattr(p, "clip_skip", opts.CLIP_stop_at_last_layers))
    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = p.main_negative_prompt if use_main_prompt else all_negative_prompts[index]
    generation_params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "CFG scale": p.cfg_scale,
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        "Clip skip": None if clip_skip <= 1 else clip_skip,
        **p.extra_generation_params,
    }
    for key, value in generation_params.items():
        try:  # the host reports a failing key and drops it; the infotext is still written
            if isinstance(value, list):
                generation_params[key] = value[index]
            elif callable(value):
                generation_params[key] = value(**locals())
        except Exception:
            from standin_common.scripts import report

            report(f'Error creating infotext for key "{key}"')
            generation_params[key] = None
    params_text = ", ".join([k if k == v else f"{k}: {quote(v)}" for k, v in generation_params.items() if v is not None])
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative}\n{params_text}".strip()


def quote(text):
    """``infotext_utils.quote``."""
    import json

    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def process_images(p):
    shared, _ = host()
    opts = shared.opts
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored_opts = {k: opts.data[k] if k in opts.data else opts.get_default(k) for k in p.override_settings if k in opts.data}
    try:
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
        res = process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored_opts.items():
                setattr(opts, k, v)
    return res


def process_images_inner(p):
    shared, sd_hijack = host()
    opts = shared.opts
    main_model = shared.sd_model
    seed = get_fixed_seed(p.seed)
    if hasattr(sd_hijack.model_hijack, "clear_comments"):  # Forge's sd_hijack is a stub
        sd_hijack.model_hijack.clear_comments()
    p.setup_prompts()
    p.all_seeds = [int(seed) + x for x in range(len(p.all_prompts))]
    p.all_subseeds = [int(get_fixed_seed(p.subseed)) + x for x in range(len(p.all_prompts))]
    if p.scripts is not None:
        p.scripts.process(p)
    infotexts, output_images = [], []
    with torch.no_grad():
        p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
        for n in range(p.n_iter):
            p.iteration = n
            if shared.state.interrupted or shared.state.stopping_generation:
                break
            shared.sd_model = main_model  # sd_models.reload_model_weights(): back from the refiner
            size = p.batch_size
            p.prompts = p.all_prompts[n * size:(n + 1) * size]
            p.negative_prompts = p.all_negative_prompts[n * size:(n + 1) * size]
            p.seeds = p.all_seeds[n * size:(n + 1) * size]
            p.subseeds = p.all_subseeds[n * size:(n + 1) * size]
            if p.scripts is not None:
                p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
            if FORGE_OBJECTS:  # Forge processing.py:937: each batch starts from the model without LoRAs
                shared.sd_model.forge_objects = shared.sd_model.forge_objects_original.shallow_copy()
            p.parse_extra_network_prompts()
            if not p.disable_extra_networks:
                extra_networks.activate(p, p.extra_network_data)
            if FORGE_OBJECTS:  # Forge processing.py:957: the LoRA'd unet/clip the activation made
                shared.sd_model.forge_objects = shared.sd_model.forge_objects_after_applying_lora.shallow_copy()
            if p.scripts is not None:
                p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
            p.setup_conds()
            p.extra_generation_params.update(p.encoder_generation_params())
            samples = p.sample(conditioning=p.c, unconditional_conditioning=p.uc, seeds=p.seeds, subseeds=p.subseeds,
                               subseed_strength=p.subseed_strength, prompts=p.prompts)
            if p.scripts is not None:
                p.scripts.postprocess_batch(p, images=samples, batch_number=n)

            def infotext(index=0, use_main_prompt=False):
                # the hosts' own call (A1111 processing.py:1026, Forge :1031): batch-local lists, no iteration
                return create_infotext(p, p.prompts, p.seeds, p.subseeds, use_main_prompt=use_main_prompt, index=index, all_negative_prompts=p.negative_prompts)

            for i, sample in enumerate(samples):
                p.batch_index = i
                if p.scripts is not None:  # A1111 :1050, Forge :1055 (ADetailer's pass runs here)
                    from standin_common.scripts import PostprocessImageArgs

                    pp = PostprocessImageArgs(sample)
                    p.scripts.postprocess_image(p, pp)
                    sample = pp.image
                infotexts.append(infotext(i))
                output_images.append(sample)
        if not infotexts:
            infotexts.append(Processed(p, []).infotext(p, 0))
        index_of_first_image = 0
        unwanted_grid_because_of_img_count = len(output_images) < 2 and opts.grid_only_if_multiple
        if opts.return_grid and not p.do_not_save_grid and not unwanted_grid_because_of_img_count:
            infotexts.insert(0, infotext(use_main_prompt=True))  # the grid first, as the host shows it
            output_images.insert(0, sum(output_images))
            index_of_first_image = 1
        if not p.disable_extra_networks and p.extra_network_data is not None:
            extra_networks.deactivate(p, p.extra_network_data)
    shared.sd_model = main_model
    res = Processed(p, output_images, seed=p.all_seeds[0], info=infotexts[0], subseed=p.all_subseeds[0],
                    index_of_first_image=index_of_first_image, infotexts=infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, res)
    return res
