"""reForge (``Panchovix/stable-diffusion-webui-reForge`` main, 3b56b268) and Forge Classic
(``Haoming02/sd-webui-forge-classic`` branch ``classic``, 1f95d717): A1111 v1.10's pipeline on the
old-Forge ``ldm_patched`` backend.  Forge Classic archives Forge before "Clip Skip to All Models"
(lllyasviel 0ba9f7f3, 2024-07-27): its ``forge_clip`` wrappers have no ``minimal_clip_skip`` and read the
option on SD1 only; it has no Dynamic clip skip.  Everything else below holds for both.

What differs from A1111, read at 3b56b268:

- ``modules_forge/forge_loader.py:460-502`` replaces each text encoder with a
  ``modules_forge/forge_clip.py`` subclass of ``FrozenCLIPEmbedderWithCustomWords`` whose
  ``.wrapped.transformer`` is a ``transformers`` ``CLIPTextModel`` (``ldm_patched/modules/sd1_clip.py:135``),
  SD2's ViT-H and SDXL's bigG included (loaded with all their layers: 24 and 32).
- Those subclasses override ``encode_with_transformers`` (``forge_clip.py:16-124``): the option N
  gives ``hidden_states[-N]`` when N > ``minimal_clip_skip`` (SD1 1, everything else 2), else the
  wrapper's own layer (SD1 the last, SD2/SDXL ``layer_idx`` = the penultimate).  LayerNorm on SD1 and
  SD2 only; bigG's pooled output is ``pooler_output @ text_projection`` of the full pass.  So SD2 and
  SDXL (both encoders) follow max(N, 2), and "Clip skip SDXL" (``sdxl_clip_l_skip``) does nothing.
- Its own "Dynamic clip skip" (``modules/processing.py:560-621``, ``sd_samplers_cfg_denoiser.py:140``)
  encodes the prompt at several options and swaps them per step.  When it is on, reForge decides:
  the extension applies nothing to that generation and says so (``ModelInfo.host_steers``).
- Its LoRA loader reads ``--lora-dir`` only (``extensions-builtin/Lora/networks.py:187``).

Everything else (the cond cache, ``get_conds_with_caching``, ``sd_models.model_data``, the
embedding database, scripts, X/Y/Z, infotext) is A1111's, so this adapter is A1111's with its
encoders and numbering.
"""

from __future__ import annotations

from typing import Any

from lib_clipskip import numbering
from lib_clipskip.hosts.a1111 import ENCODER_FAMILIES, A1111Adapter
from lib_clipskip.hosts.base import EncoderHandle, LoadedModel, host_skip_option, loaded_depth, transformers_handle
from lib_clipskip.plan import EncoderSlot, ModelInfo
from lib_clipskip.values import CLIP_G_SDXL, CLIP_H_SD2, CLIP_L_SD1, CLIP_L_SDXL, EncoderSpec, Family

#: ``modules_forge/forge_clip.py`` class name -> the encoder it holds
WRAPPERS = {
    "CLIP_SD_15_L": CLIP_L_SD1,
    "CLIP_SD_21_H": CLIP_H_SD2,
    "CLIP_SD_XL_L": CLIP_L_SDXL,
    "CLIP_SD_XL_G": CLIP_G_SDXL,
}
#: ``modules/shared_options.py:204-207`` (reForge 3b56b268)
DYNAMIC_OPTION = "dynamic_clip_skip_enabled"


class ReForgeAdapter(A1111Adapter):
    name = "reforge"

    def inspect(self, sd_model: Any, host_option: int | None = None) -> LoadedModel:
        if sd_model is None or getattr(sd_model, "is_sd3", False):
            return super().inspect(sd_model, host_option)
        conditioner = getattr(sd_model, "conditioner", None)
        wrappers = list(conditioner.embedders) if conditioner is not None else [getattr(sd_model, "cond_stage_model", None)]
        found = [(wrapper, WRAPPERS.get(type(wrapper).__name__)) for wrapper in wrappers]
        if not any(spec is not None for _wrapper, spec in found):
            return super().inspect(sd_model, host_option)  # during a load: the upstream (unwrapped) encoders
        option = host_skip_option(self.shared().opts) if host_option is None else host_option
        handles: dict[str, EncoderHandle] = {}
        for wrapper, spec in found:
            if spec is None:
                continue  # SDXL's size and crop embedders
            text_model = wrapper.wrapped.transformer
            depth = loaded_depth(text_model)
            slot = EncoderSlot(spec, depth, host_value(wrapper, option, spec, depth))
            handles[spec.name] = transformers_handle(text_model, slot)
        family = ENCODER_FAMILIES.get(frozenset(handle.slot.spec for handle in handles.values()))
        if family is None:
            reason = "its text encoders are a set this extension does not know"
            return LoadedModel(ModelInfo(Family.OTHER, self.name, no_effect_reason=reason))
        slots = tuple(handles[name].slot for name in sorted(handles, key=lambda n: n != "clip_l"))
        return LoadedModel(ModelInfo(family, self.name, slots, host_steers=self.host_steers()), handles)

    def host_steers(self) -> str | None:
        """Why reForge itself chooses the layer of this generation, or None."""
        if getattr(self.shared().opts, DYNAMIC_OPTION, False) is not True:
            return None
        return ("reForge's own Dynamic clip skip is on (Settings → Stable Diffusion → Dynamic clip skip ramp): "
                "reForge picks the layer at every step itself, so this extension applies nothing to this "
                "generation. Turn it off to use this extension's value or schedule (e.g. 4..2)")

    def clip_l_skip_sdxl(self) -> bool:
        return False  # forge_clip.CLIP_SD_XL_L never reads sdxl_clip_l_skip

    def reproducing_option(self, family: Family, values: list[float]) -> int | None:
        """The smallest option giving ``values`` in this host's numbering (``numbering.host_layers``):
        reForge SD1 N, SD2 / SDXL / the refiner max(N, 2) on every encoder; Forge Classic SD1 N only."""
        names = numbering.encoder_names(family)
        if not values or len(values) != len(names):
            return None
        return numbering.host_option_for(numbering.HOST_TOOLS[self.name], family, dict(zip(names, map(float, values))))

    def lora_folders(self, cmd_opts: Any) -> list[Any]:
        """reForge lists ``--lora-dir`` only (``extensions-builtin/Lora/networks.py:187``)."""
        return [getattr(cmd_opts, "lora_dir", None)]


class ForgeClassicAdapter(ReForgeAdapter):
    name = "forge-classic"

    def host_steers(self) -> str | None:
        return None  # no Dynamic clip skip


def follows_option_everywhere() -> bool:
    """Whether the host's ``forge_clip`` wrappers read Clip skip on SD2 and SDXL too (reForge, Forge f1.0.2+:
    they set ``minimal_clip_skip``) or on SD1 only (Forge Classic, Forge f0): read from the module's file, the
    text of ``class CLIP_SD_XL_L`` (not ``inspect.getsource``, whose AST walk CPython 3.11 can fail with a
    ``SystemError`` when a gradio thread compiles at the same time: seen in the real Forge Classic)."""
    from modules_forge import forge_clip

    try:
        with open(forge_clip.__file__, encoding="utf-8", errors="replace") as file:
            text = file.read(400_000)
    except (AttributeError, OSError, TypeError):  # no file: reForge's is the maintained line
        return True
    start = text.find("class CLIP_SD_XL_L")
    if start < 0:
        return True
    end = text.find("\nclass ", start + 1)
    return "minimal_clip_skip" in text[start:end if end > 0 else len(text)]


def host_value(wrapper: Any, option: int, spec: EncoderSpec, depth: int) -> float:
    """The layer a ``forge_clip`` wrapper takes at option N, in our numbering (reForge ``forge_clip.py:16-124``;
    Forge Classic 1f95d717 ``forge_clip.py``: no ``minimal_clip_skip``, the option read on SD1 only)."""
    minimal = getattr(wrapper, "minimal_clip_skip", None)
    offset = spec.depth - depth  # counted from the end of the loaded encoder; ours on the original depth
    follows = minimal is not None or spec is CLIP_L_SD1
    if follows and option > int(minimal or 1):
        return float(option + offset)
    inner = wrapper.wrapped
    if spec is CLIP_L_SD1 or getattr(inner, "layer", "last") == "last":
        return float(1 + offset)
    layer_idx = int(getattr(inner, "layer_idx", -2) or -2)
    if layer_idx < 0:
        layer_idx += depth + 1
    return float(depth - layer_idx + 1 + offset)
