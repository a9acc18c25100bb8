"""How each tool numbers CLIP skip, as layers in this extension's numbering (DESIGN.md §1).

A ``Layers`` dict maps each text encoder of a family (``clip_l``, ``clip_h``, ``clip_g``) to the
value that names its layer here: N = the hidden state N layers from the end of the original,
full-depth encoder.  The facts, with their sources, are the rows of ``lib_clipskip.tooltable``.
Pure: no WebUI, no torch.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

from lib_clipskip.values import FAMILY_DEFAULTS, FAMILY_ENCODERS, Family, format_value

Layers = dict[str, float]

#: the WebUIs' own Clip skip slider (A1111 v1.10.1 ``modules/shared_options.py:181``, Forge the same)
HOST_RANGE = (1, 12)


class Tool(str, Enum):
    CLIPSKIP = "sd-webui-clipskip"
    A1111 = "a1111"
    FORGE = "forge"  # the f2 backend (Forge main; reForge's newmain_newforge branch)
    FORGE_CLASSIC = "forge-f1"  # Forge f1.0.2+ (the old backend with "Clip skip to all models", as reForge)
    FORGE_F0 = "forge-f0"  # Forge f0.x / f1.0.0 and Forge Classic: the old backend, Clip skip on SD1 only
    REFORGE = "reforge"
    SDNEXT = "sdnext"
    COMFYUI = "comfyui"  # the workflow graph: CLIPSetLastLayer
    COMFYUI_SAVER = "comfyui-saver"  # saver nodes' A1111-style text, "Version: ComfyUI"
    DIFFUSERS = "diffusers"
    INVOKEAI = "invokeai"
    FOOOCUS = "fooocus"
    NOVELAI = "novelai"
    TRIPCLIPSKIP = "tripclipskip"
    CIVITAI = "civitai"
    UNKNOWN = "unknown"


TOOL_LABELS = {
    Tool.CLIPSKIP: "sd-webui-clipskip",
    Tool.A1111: "AUTOMATIC1111",
    Tool.FORGE: "Forge",
    Tool.FORGE_CLASSIC: "Forge (f1 backend)",
    Tool.FORGE_F0: "Forge (f0 backend) / Forge Classic",
    Tool.REFORGE: "reForge",
    Tool.SDNEXT: "SD.Next",
    Tool.COMFYUI: "ComfyUI",
    Tool.COMFYUI_SAVER: "a ComfyUI saver node (Version: ComfyUI)",
    Tool.DIFFUSERS: "diffusers",
    Tool.INVOKEAI: "InvokeAI",
    Tool.FOOOCUS: "Fooocus",
    Tool.NOVELAI: "NovelAI",
    Tool.TRIPCLIPSKIP: "Trip Clip Skip",
    Tool.CIVITAI: "Civitai's generator",
    Tool.UNKNOWN: "an unknown tool",
}

#: the running host's name (``hosts.current().name``) -> the tool whose numbering it has
HOST_TOOLS = {"a1111": Tool.A1111, "forge": Tool.FORGE, "reforge": Tool.REFORGE, "forge-classic": Tool.FORGE_F0}

_ENCODER_LABELS = {"clip_l": "CLIP-L", "clip_h": "ViT-H", "clip_g": "OpenCLIP-G"}


def number(raw: Any) -> float | None:
    """A finite number from infotext text (at most 32 characters), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        text = str(raw).strip()
        if not text or len(text) > 32:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def encoder_names(family: Family) -> tuple[str, ...]:
    return tuple(spec.name for spec in FAMILY_ENCODERS[family])


def uniform(family: Family, value: float) -> Layers:
    return dict.fromkeys(encoder_names(family), round(float(value), 4))


def default_layers(family: Family) -> Layers:
    return dict(FAMILY_DEFAULTS[family])


def layers_text(family: Family, layers: Layers | None) -> str:
    """``2`` when every encoder has it, else ``CLIP-L 3, OpenCLIP-G 2``."""
    if not layers:
        return "nothing"
    values = set(layers.values())
    if len(values) == 1:
        return format_value(values.pop()) + (" on both encoders" if len(layers) > 1 else "")
    return ", ".join(f"{_ENCODER_LABELS.get(name, name)} {format_value(value)}" for name, value in layers.items())


def host_layers(tool: Tool, family: Family, option: float | None, clip_l_skip: bool = False) -> Layers:
    """What a WebUI-like tool does with its own ``Clip skip`` (None: not written, which is 1).

    - A1111 v1.10.1: SD1 N; SD2 and the SDXL refiner ignore it (2); SDXL CLIP-L follows it only with
      "Clip skip SDXL" (``clip_l_skip``), OpenCLIP-G never.
    - Forge f2: SD1 N; SD2 N + 1 (23 of 24 layers loaded); SDXL both encoders max(N, 2).
    - Forge f1.0.2+, reForge: SD1 N; SD2 and SDXL max(N, 2) (24-layer SD2).
    - Forge f0.x / f1.0.0 and Forge Classic: SD1 N; SD2 and SDXL keep their layer (2): their
      ``forge_clip`` wrappers read the option on SD1 only.
    - SD.Next (diffusers backend): SD1 N; SD2 N + 1; SDXL both N + 1 (fractions allowed).
    """
    n = 1.0 if option is None else float(option)
    if family is Family.SD1:
        return {"clip_l": n}
    if tool is Tool.FORGE_F0:
        return default_layers(family)
    if tool in (Tool.A1111, Tool.UNKNOWN):
        if family is Family.SDXL:
            return {"clip_l": n if clip_l_skip else 2.0, "clip_g": 2.0}
        return default_layers(family)
    if tool is Tool.FORGE:
        return {"clip_h": n + 1} if family is Family.SD2 else uniform(family, max(n, 2.0))
    if tool is Tool.SDNEXT:
        return uniform(family, n + 1)
    return uniform(family, max(n, 2.0))  # Forge f1, reForge


def comfy_layers(family: Family, m: int | None) -> Layers:
    """ComfyUI's ``CLIPSetLastLayer(stop_at_clip_layer=-m)`` (Fooocus' ``clip_layer(-abs(c))`` too):
    ``hidden_states[-m]`` on every encoder; where m exceeds an encoder's depth ComfyUI falls back to
    its final output (``comfy/sd1_clip.py``@b55c2247 ``set_clip_options``: ``layer="last"``), which on
    SDXL's CLIP-L carries the final LayerNorm: read as 1, the nearest layer here; no node: the
    family's default."""
    if m is None:
        return default_layers(family)
    depths = {spec.name: spec.depth for spec in FAMILY_ENCODERS[family]}
    return {name: float(m) if m <= depth else 1.0 for name, depth in depths.items()}


def diffusers_layers(family: Family, k: int | None) -> Layers:
    """diffusers' ``clip_skip=k`` on the positive prompt: SD 1.x ``hidden_states[-(k + 1)]``, SD 2.x the
    same on its 23-layer encoder, SDXL ``hidden_states[-(k + 2)]`` on both; None: the default."""
    if k is None:
        return default_layers(family)
    return uniform(family, k + (1 if family is Family.SD1 else 2))


def host_option_for(tool: Tool, family: Family, layers: Layers, clip_l_skip: bool = False,
                    prefer: int | None = None) -> int | None:
    """The host's own ``Clip skip`` that makes ``layers``, or None when it has none (``prefer`` first)."""
    candidates = ([prefer] if prefer is not None else []) + list(range(HOST_RANGE[0], HOST_RANGE[1] + 1))
    return next((o for o in candidates if host_layers(tool, family, o, clip_l_skip) == layers), None)


def equivalents(family: Family, layers: Layers | None) -> dict[str, int | None]:
    """The value each tool needs for ``layers``; None where it can't express them.

    ``a1111``/``forge``/``reforge``: their ``Clip skip`` (``forge`` is also Forge Neo; Forge Classic moves SD 1.x
    only, as ``a1111`` without "Clip skip SDXL");
    ``comfyui``: ``stop_at_clip_layer``; ``diffusers``: the pipelines' ``clip_skip`` (positive prompt
    only: the negative keeps the default layer).
    """
    out: dict[str, int | None] = {"a1111": None, "forge": None, "reforge": None, "comfyui": None, "diffusers": None}
    if not layers or family not in FAMILY_ENCODERS or not FAMILY_ENCODERS[family]:
        return out
    out["a1111"] = host_option_for(Tool.A1111, family, layers, prefer=1)
    out["forge"] = host_option_for(Tool.FORGE, family, layers)
    out["reforge"] = host_option_for(Tool.REFORGE, family, layers)
    values = set(layers.values())
    if len(values) != 1 or not next(iter(values)).is_integer():
        return out
    m = int(values.pop())
    if comfy_layers(family, m) == layers and m <= 24:
        out["comfyui"] = -m
    offset = 1 if family is Family.SD1 else 2
    if m - offset >= 0 and diffusers_layers(family, m - offset) == layers:
        out["diffusers"] = m - offset
    return out
