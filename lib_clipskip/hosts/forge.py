"""Forge (main, ``backend/``): encoders are ``ClassicTextProcessingEngine`` objects on the model.

What the host does by itself (webui-internals §10): on a cond-cache miss it calls
``sd_model.set_clip_skip(int(opts.CLIP_stop_at_last_layers))`` and each engine takes
``hidden_states[-max(clip_skip, minimal_clip_skip)]`` of the *loaded* encoder.  SD2 is loaded
with 23 of its 24 layers, so Forge's N is our N − 1 there (Forge's 1 is our 2, counted on the
original 24).  Flux only uses CLIP-L's pooled output, so clip skip has no effect on it.
"""

from __future__ import annotations

from typing import Any

from lib_clipskip.hosts.base import (
    EncoderHandle,
    HostAdapter,
    LoadedModel,
    host_skip_option,
    loaded_depth,
    transformers_handle,
    webui_sd_models,
)
from lib_clipskip.plan import EncoderSlot, ModelInfo
from lib_clipskip.values import CLIP_G_SDXL, CLIP_H_SD2, CLIP_L_SD1, CLIP_L_SDXL, EncoderSpec, Family

_NO_EFFECT = {
    "Flux": "Forge conditions Flux on CLIP-L's pooled output only, which always comes from the last layer",
    "Chroma": "Forge's Chroma has no CLIP text encoder",
}


class ForgeAdapter(HostAdapter):
    name = "forge"

    def inspect(self, sd_model: Any, host_option: int | None = None) -> LoadedModel:
        if sd_model is None:
            return LoadedModel(ModelInfo(Family.OTHER, self.name, no_effect_reason="no model is loaded"))
        if type(sd_model).__name__ == "FakeInitialModel":  # dfdcbab6 sd_models.py:385: loaded at the first generation
            return LoadedModel(ModelInfo(Family.OTHER, self.name, loading=True,
                                         no_effect_reason="Forge loads the selected checkpoint at the first generation"))
        if getattr(sd_model, "is_sdxl", False):
            engines = [("text_processing_engine_l", CLIP_L_SDXL), ("text_processing_engine_g", CLIP_G_SDXL)]
        elif getattr(sd_model, "is_sd1", False):
            engines = [("text_processing_engine", CLIP_L_SD1)]
        elif getattr(sd_model, "is_sd2", False):
            engines = [("text_processing_engine", CLIP_H_SD2)]
        else:
            kind = type(sd_model).__name__
            reason = _NO_EFFECT.get(kind, f"Forge's {kind} engine does not condition on a CLIP layer this extension can choose")
            if getattr(sd_model, "is_sd3", False):
                reason = "SD3 is outside what this extension supports; Forge's own Clip skip still applies"
            return LoadedModel(ModelInfo(Family.OTHER, self.name, no_effect_reason=reason))
        option = host_skip_option(self.shared().opts) if host_option is None else host_option
        handles: dict[str, EncoderHandle] = {}
        for attribute, spec in engines:
            engine = getattr(sd_model, attribute, None)
            if engine is None:
                continue  # the SDXL refiner has only the G engine
            text_model = engine.text_encoder.transformer
            depth = loaded_depth(text_model)
            handles[spec.name] = transformers_handle(text_model, EncoderSlot(spec, depth, _host_value(engine, option, spec, depth)))
        family = Family.SDXL if len(handles) == 2 else Family.SDXL_REFINER if "clip_g" in handles else (
            Family.SD1 if "clip_l" in handles else Family.SD2)
        slots = tuple(handle.slot for handle in handles.values())
        return LoadedModel(ModelInfo(family, self.name, slots), handles)


    def selected_checkpoint(self) -> Any:
        """Forge loads a selected checkpoint only at the next generation: the selection is
        ``sd_models.model_data.forge_loading_parameters['checkpoint_info']``, set by
        ``modules_forge/main_entry.py:229`` ``refresh_model_loading_parameters`` and read by
        ``sd_models.py:491`` ``forge_model_reload``; the loaded model's ``sd_checkpoint_info``
        (``sd_models.py:509``) until something is selected."""
        try:
            parameters = webui_sd_models().model_data.forge_loading_parameters
            info = parameters.get("checkpoint_info") if isinstance(parameters, dict) else None
        except Exception:
            info = None
        return info if info is not None else super().selected_checkpoint()

    def reproducing_option(self, family: Family, values: list[float]) -> int | None:
        """Forge moves every encoder with its option (``classic_engine.py:135``): SD1 N; SD2 N − 1 (it
        loads 23 of 24 layers); SDXL both encoders at max(N, 2)."""
        if not values or any(not float(v).is_integer() for v in values):
            return None
        if family is Family.SD1:
            return int(values[0])
        if family is Family.SD2:
            option = int(values[0]) - 1
            return option if option >= 1 else None
        if family is Family.SDXL and len(values) == 2 and values[0] == values[1] and values[0] >= 2:
            return int(values[0])
        return None

    def lora_folders(self, cmd_opts: Any) -> list[Any]:
        """Forge lists ``--lora-dir`` only (``sd_forge_lora/networks.py:131``); Forge Neo also every
        ``--lora-dirs`` (``extensions-builtin/sd_forge_lora/networks.py:142``, copy 7862a96)."""
        extra = getattr(cmd_opts, "lora_dirs", None)
        return [getattr(cmd_opts, "lora_dir", None), *(extra if isinstance(extra, (list, tuple)) else ())]

    def written_option(self, value: Any) -> Any:
        """``int(getattr(p, 'clip_skip', opts.CLIP_stop_at_last_layers))`` (``processing.py:721``)."""
        return int(float(value))


def _host_value(engine: Any, option: int, spec: EncoderSpec, depth: int) -> float:
    forge_skip = max(option, int(getattr(engine, "minimal_clip_skip", 1)))
    # Forge counts from the end of the loaded encoder; we count on the original depth
    return float(forge_skip + (spec.depth - depth))
