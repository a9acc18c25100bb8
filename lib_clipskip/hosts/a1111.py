"""AUTOMATIC1111 v1.10: encoders are ``sd_hijack_clip`` / ``sd_hijack_open_clip`` wrappers.

What the host does by itself (webui-internals §1, §12): SD1 follows ``CLIP_stop_at_last_layers``;
SD2 always takes the penultimate layer; SDXL CLIP-L takes ``hidden_states[layer_idx]`` (the
penultimate) unless ``sdxl_clip_l_skip`` is on; OpenCLIP-G always the penultimate; SD3 a
fixed layer.
"""

from __future__ import annotations

from typing import Any

from lib_clipskip.hosts.base import EncoderHandle, HostAdapter, LoadedModel, host_skip_option, loaded_depth, transformers_handle
from lib_clipskip.plan import EncoderSlot, ModelInfo
from lib_clipskip.values import CLIP_G_SDXL, CLIP_H_SD2, CLIP_L_SD1, CLIP_L_SDXL, Family

# hijack wrapper class name -> the encoder it holds
_WRAPPERS = {
    "FrozenCLIPEmbedderWithCustomWords": CLIP_L_SD1,
    "FrozenCLIPEmbedderForSDXLWithCustomWords": CLIP_L_SDXL,
    "FrozenOpenCLIPEmbedderWithCustomWords": CLIP_H_SD2,
    "FrozenOpenCLIPEmbedder2WithCustomWords": CLIP_G_SDXL,
}
# the set of encoders found -> the family (by spec: SD1's CLIP-L is not SDXL's); reForge's wrappers hold the same
ENCODER_FAMILIES = {
    frozenset({CLIP_L_SD1}): Family.SD1,
    frozenset({CLIP_H_SD2}): Family.SD2,
    frozenset({CLIP_L_SDXL, CLIP_G_SDXL}): Family.SDXL,
    frozenset({CLIP_G_SDXL}): Family.SDXL_REFINER,
}


class A1111Adapter(HostAdapter):
    name = "a1111"

    def current_model(self) -> Any:
        """The loaded model without loading one: A1111's ``shared.sd_model`` loads a checkpoint
        when none is loaded yet (``sd_models.py`` ``SdModelData.get_sd_model``), e.g. while the
        panel refreshes during start-up."""
        try:
            from modules import sd_models

            return sd_models.model_data.sd_model
        except (ImportError, AttributeError):
            return self.shared().sd_model

    def clip_l_skip_sdxl(self) -> bool:
        """``opts.sdxl_clip_l_skip`` (``shared_options.py:180``), as ``_sdxl_clip_l_host_value`` reads it."""
        return getattr(self.shared().opts, "sdxl_clip_l_skip", False) is True

    def encode_prompt(self, sd_model: Any, prompt: str) -> Any:
        """As ``get_conds_with_caching`` encodes (``processing.py:487``): inside ``devices.autocast()``,
        which FP8 weights and half precision need."""
        from modules import devices

        with devices.autocast():
            return sd_model.get_learned_conditioning([prompt])

    def inspect(self, sd_model: Any, host_option: int | None = None) -> LoadedModel:
        if sd_model is None:
            # load_model() holds model_data.sd_model = None for the whole load (v1.10.1 sd_models.py:794,
            # :923), and after start-up the selected checkpoint loads lazily: "loading", not "no effect"
            selected = getattr(self.shared().opts, "sd_model_checkpoint", None)
            return LoadedModel(ModelInfo(Family.OTHER, self.name, loading=bool(selected),
                                         no_effect_reason="the model is loading" if selected else "no model is loaded"))
        if getattr(sd_model, "is_sd3", False):
            return LoadedModel(ModelInfo(
                Family.OTHER, self.name,
                no_effect_reason="AUTOMATIC1111 conditions SD3 on a fixed layer of each text encoder"))
        conditioner = getattr(sd_model, "conditioner", None)
        wrappers = list(conditioner.embedders) if conditioner is not None else [getattr(sd_model, "cond_stage_model", None)]
        opts = self.shared().opts
        option = host_skip_option(opts) if host_option is None else host_option
        handles: dict[str, EncoderHandle] = {}
        for wrapper in wrappers:
            spec = _WRAPPERS.get(type(wrapper).__name__)
            if spec is None:
                continue  # not a text encoder (SDXL's size/crop embedders), or one we don't know
            if spec is CLIP_L_SD1:
                text_model = wrapper.wrapped.transformer
                slot = EncoderSlot(spec, loaded_depth(text_model), float(option))
                handles[spec.name] = transformers_handle(text_model, slot)
            elif spec is CLIP_L_SDXL:
                text_model = wrapper.wrapped.transformer
                slot = EncoderSlot(spec, loaded_depth(text_model), _sdxl_clip_l_host_value(wrapper, opts, option, spec.depth))
                handles[spec.name] = transformers_handle(text_model, slot)
            else:
                from lib_clipskip.hosts.open_clip import open_clip_handle

                handles[spec.name] = open_clip_handle(wrapper.wrapped, spec)
        family = ENCODER_FAMILIES.get(frozenset(handle.slot.spec for handle in handles.values()))
        if family is None:
            return LoadedModel(_unknown(wrappers, self.name))
        slots = tuple(handles[spec_name].slot for spec_name in sorted(handles, key=lambda n: n != "clip_l"))
        return LoadedModel(ModelInfo(family, self.name, slots), handles)


#: the upstream encoders before ``sd_hijack.model_hijack.hijack`` wraps them (sd_hijack.py:232-262):
#: seen while ``reload_model_weights`` has undone the hijack to load new weights
_UNWRAPPED = {"FrozenCLIPEmbedder", "FrozenOpenCLIPEmbedder", "FrozenOpenCLIPEmbedder2"}


def _unknown(wrappers: list[Any], host: str) -> ModelInfo:
    names = sorted({type(w).__name__ for w in wrappers if w is not None})
    if _UNWRAPPED & set(names):
        return ModelInfo(Family.OTHER, host, loading=True, no_effect_reason="the model is loading")
    if "FrozenXLMREmbedderWithCustomWords" in names:
        reason = "Alt-Diffusion's XLM-R text encoder projects its last layer"
    else:
        reason = f"its text encoder ({', '.join(names) or 'none'}) is not a CLIP model this extension knows"
    return ModelInfo(Family.OTHER, host, no_effect_reason=reason)


def _sdxl_clip_l_host_value(wrapper: Any, opts: Any, option: int, depth: int) -> float:
    if getattr(opts, "sdxl_clip_l_skip", False) is True:
        return float(option)
    if getattr(wrapper.wrapped, "layer", "hidden") == "last":
        return 1.0
    layer_idx = int(getattr(wrapper.wrapped, "layer_idx", depth - 1))
    if layer_idx < 0:
        layer_idx += depth + 1
    return float(depth - layer_idx + 1)
