"""Other tools' CLIP-skip numbering, translated into this extension's (DESIGN.md §1).

- ``detect(params)`` names the tool that wrote parsed infotext, from its ``Version`` / ``App``
  keys and the keys only one tool writes (``TripClipSkip_value``, reForge's ``Dynamic clip skip``);
- ``read_params(params, family)`` says which layer each text encoder of ``family`` was really at
  (a ``Reading``), and in one line what was translated or why the value is ambiguous;
- ``decide(reading, host, family, …)`` is what a paste does on a running host: set the panel, and
  correct or drop the host's own ``Clip skip`` where it would pick another layer there.

The per-tool numbering is ``lib_clipskip.numbering``; the table with its sources is
``lib_clipskip.tooltable`` (and the README).  Pure: no WebUI, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lib_clipskip.numbering import (
    HOST_RANGE,
    HOST_TOOLS,
    TOOL_LABELS,
    Layers,
    Tool,
    comfy_layers,
    default_layers,
    host_layers,
    host_option_for,
    layers_text,
    number,
    uniform,
)
from lib_clipskip.values import FAMILY_LABELS, Family, format_value

HOST_KEY = "Clip skip"
#: this extension's value keys, as ``lib_clipskip.infotext`` writes them (that module sits above this one)
OUR_KEY, OUR_KEY_L, OUR_KEY_G = "CLIP skip ext", "CLIP skip ext L", "CLIP skip ext G"
SDNEXT_LEGACY_KEY = "CLiP-skip"  # what older notes said SD.Next writes; SD.Next 431bcc36 writes "Clip skip"
TRIP_KEYS = ("TripClipSkip_value", "TripClipSkip_type")
REFORGE_KEYS = ("Dynamic clip skip", "Dynamic clip skip start", "Dynamic clip skip schedule")
KNOWN_FAMILIES = (Family.SD1, Family.SD2, Family.SDXL, Family.SDXL_REFINER)

_REFORGE_VERSION = re.compile(r"^f\S*?-v1\.\d+\.\d+RC", re.IGNORECASE)  # f1.0.0v2-v1.10.1RC-…, f2.0.0-v1.10.1RC
_FORGE2_VERSION = re.compile(r"^f2\.\d+\.\d+v1\.")  # f2.0.1v1.10.1-previous-669-gdfdcbab6
_FORGE1_VERSION = re.compile(r"^f1\.\d+\.\d+")  # f1.0.2v1.10.1-… (f1.0.1 on: Clip skip on every model)
#: before "Clip Skip to All Models" (Forge 0ba9f7f3, reForge 4f1a654f, 2024-07-27): Forge f0.0.17v1.8.0rc-…,
#: f1.0.0v1.10.0rc-…, and reForge's first builds f0.0.20dev-v1.10.0RC / f0.0.20.1-v1.10.0RC
_FORGE0_VERSION = re.compile(r"^f(0\.\d+\.\d+|1\.0\.0v1\.)")
_A1111_VERSION = re.compile(r"^v?1\.\d+\.\d+")  # v1.10.1, v1.10.1-3-gabcdef12, 1.10.1 (no git checkout)
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_FOOOCUS_VERSION = re.compile(r"^Fooocus v(\d+)\.(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Detected:
    tool: Tool
    version: str = ""


def detect(params: Mapping[str, Any]) -> Detected:
    """The tool that wrote parsed infotext (A1111-style ``key: value`` pairs)."""
    version = str(params.get("Version", "") or "").strip()[:80]
    app = str(params.get("App", "") or "").strip()
    if app.lower() == "sd.next" or (SDNEXT_LEGACY_KEY in params and not version):
        return Detected(Tool.SDNEXT, version)
    if version == "ComfyUI":
        return Detected(Tool.COMFYUI_SAVER, version)
    if _FOOOCUS_VERSION.match(version) or str(params.get("Software", "")).startswith("Fooocus"):
        return Detected(Tool.FOOOCUS, version)
    if version.lower() == "neo":  # Forge Neo: modules_forge/forge_version.py, git_tag() returns it as is
        return Detected(Tool.FORGE, version)
    if version.lower() == "classic":  # Forge Classic (the same file): the old backend's forge_clip.py
        return Detected(Tool.FORGE_F0, version)
    if version.startswith("f"):
        if _FORGE0_VERSION.match(version):
            return Detected(Tool.FORGE_F0, version)
        if _REFORGE_VERSION.match(version):
            return Detected(Tool.REFORGE, version)
        if _FORGE2_VERSION.match(version):
            return Detected(Tool.FORGE, version)
        if _FORGE1_VERSION.match(version):
            return Detected(Tool.FORGE_CLASSIC, version)
        return Detected(Tool.FORGE, version)  # a newer Forge: the f2 backend is current
    if _A1111_VERSION.match(version):
        return Detected(Tool.A1111, version)
    if _COMMIT.match(version) and "Pipeline" in params:
        return Detected(Tool.SDNEXT, version)
    if version:
        return Detected(Tool.UNKNOWN, version)
    if "Civitai resources" in params and ("Created Date" in params or "Civitai metadata" in params):
        return Detected(Tool.CIVITAI)
    if str(params.get("ENSD", "")).strip() == "31337" and not {"Model", "Model hash"} & set(params):
        return Detected(Tool.NOVELAI)  # A1111's import of a NovelAI PNG (images.py:806-813)
    return Detected(Tool.A1111)  # A1111 before v1.2.0 wrote no Version, nor does it with the option off


def host_key_written(params: Mapping[str, Any]) -> bool:
    """Whether ``Clip skip`` was in the text: the hosts' parser adds exactly ``"1"`` when it was missing
    (A1111 82a973c0 ``modules/infotext_utils.py:300-305``), so any other value was written.  A ``"1"`` was
    written when it comes before ``Prompt``, which A1111, Forge and reForge add after the text's keys;
    Forge Classic adds ``Prompt`` first (1f95d717 ``infotext_utils.py:274``), where a ``"1"`` reads as the default
    (the same value: only whether it is shown as recorded differs)."""
    if HOST_KEY not in params:
        return False
    if str(params[HOST_KEY]).strip() != "1":
        return True
    keys = list(params)
    return "Prompt" not in params or keys.index(HOST_KEY) < keys.index("Prompt")


@dataclass(frozen=True)
class Reading:
    """What parsed infotext says each encoder was at (``layers``, this extension's numbering)."""

    tool: Tool
    version: str = ""
    recorded: tuple[tuple[str, str], ...] = ()  # the keys as written that carry clip skip
    layers: Layers | None = None  # None: nothing recorded that this extension can restore
    note: str = ""  # one sentence: what was translated, or why the value is ambiguous
    invalid: bool = False  # a value no tool could have used: ignored, the panel left as it is


def _family(family: Family | None) -> Family:
    return family if family in KNOWN_FAMILIES else Family.SD1


def _label(tool: Tool, version: str = "") -> str:
    return TOOL_LABELS[tool] + (f" ({version})" if version and tool is not Tool.COMFYUI_SAVER else "")


def read_params(params: Mapping[str, Any], family: Family | None) -> Reading:
    """Which layer each encoder of ``family`` was really at, by the tool that wrote ``params``.

    ``family`` None (no SD model loaded) reads the value as on SD 1.x, where the tools agree most.
    """
    fam = _family(family)
    ours = read_ours(params, fam)
    if ours is not None:
        return ours
    found = detect(params)
    tool, version = found.tool, found.version
    if any(key in params for key in TRIP_KEYS):
        return _trip(params, fam, found)
    if SDNEXT_LEGACY_KEY in params:
        key, text = SDNEXT_LEGACY_KEY, str(params[SDNEXT_LEGACY_KEY]).strip()
        tool = Tool.SDNEXT
    elif host_key_written(params):
        key, text = HOST_KEY, str(params[HOST_KEY]).strip()
    else:
        key, text = HOST_KEY, ""
    recorded = ((key, text[:40]),) if text else ()
    value = number(text) if text else None
    shown = text if len(text) <= 40 else text[:40] + "…"
    if text and value is None:
        return Reading(tool, version, recorded, None, f"{key} {shown!r} is not a number. Ignored.", invalid=True)
    if value is not None and value < 0:  # ComfyUI's stop_at_clip_layer, written as is by some savers
        return _comfy(params, fam, Tool.COMFYUI, version, recorded, -value, f"{key} {shown} (ComfyUI numbering)")
    if value is not None and not HOST_RANGE[0] <= value <= _max_value(tool):
        return Reading(tool, version, recorded, None, f"{key} {shown!r} is not a value the WebUI can use "
                       f"(whole number {HOST_RANGE[0]}–{HOST_RANGE[1]}). Ignored.", invalid=True)
    if tool is Tool.COMFYUI_SAVER:
        return _comfy(params, fam, tool, version, recorded, value, f"ComfyUI's {key} {shown}")
    if value is not None and not value.is_integer() and tool is not Tool.SDNEXT:
        return Reading(tool, version, recorded, uniform(fam, value),
                       f"{key} {shown} is fractional: {_label(tool)} can't have used it; read as this extension's "
                       f"{format_value(value)}.")
    # SD.Next's original backend runs A1111's text-encoder code, its diffusers backend counts its own way
    original = tool is Tool.SDNEXT and str(params.get("Backend", "")).strip().lower() == "original"
    if tool is Tool.FOOOCUS:
        return _fooocus(fam, version, recorded, value)
    if tool is Tool.CIVITAI:
        return Reading(tool, version, recorded, uniform(fam, value or 1.0),
                       f"Civitai's generator: Clip skip {format_value(value or 1)} read in ComfyUI's numbering "
                       f"(not confirmed from Civitai's code)." if fam is not Family.SD1 else "")
    if tool is Tool.NOVELAI:
        return Reading(tool, version, recorded, default_layers(fam) if fam is not Family.SD1 else uniform(fam, 2.0),
                       "A1111's import of a NovelAI image: NovelAI conditions on the penultimate layer (2).")
    meaning_tool = Tool.A1111 if tool is Tool.UNKNOWN or original else tool
    layers = host_layers(meaning_tool, fam, value)
    note = _host_note(meaning_tool if original else tool, version, fam, value, layers, params, key)
    return Reading(tool, version, recorded, layers, note)


def read_ours(params: Mapping[str, Any], fam: Family) -> Reading | None:
    """This extension's own keys (its numbering, so nothing to translate); None when absent."""
    texts = {k: str(params[k]).strip() for k in (OUR_KEY, OUR_KEY_L, OUR_KEY_G) if k in params and str(params[k]).strip()}
    if not texts:
        return None
    recorded = tuple((k, v[:40]) for k, v in texts.items())
    values = {k: number(v) for k, v in texts.items()}
    values = {k: abs(v) if v is not None and v < 0 else v for k, v in values.items()}  # ComfyUI's -N
    if any(v is None or not 1 <= v <= 64 for v in values.values()):
        return Reading(Tool.CLIPSKIP, "", recorded, None, "A CLIP skip ext value is not usable. Ignored.", invalid=True)
    if OUR_KEY in values:
        return Reading(Tool.CLIPSKIP, "", recorded, uniform(fam, values[OUR_KEY]))
    layers = default_layers(fam)
    for name, key in (("clip_l", OUR_KEY_L), ("clip_h", OUR_KEY_L), ("clip_g", OUR_KEY_G)):
        if name in layers and key in values:
            layers[name] = values[key]
    return Reading(Tool.CLIPSKIP, "", recorded, layers)


def panel_values(layers: Layers) -> tuple[float, float]:
    """The panel's (CLIP skip, OpenCLIP-G) for ``layers``: G 0 ("follows") when it equals CLIP skip."""
    first = next(iter(layers.values()))
    g = layers.get("clip_g", first)
    return (first, 0.0 if g == first else g)


def _max_value(tool: Tool) -> float:
    # CLIPSetLastLayer goes down to -24; the WebUIs' sliders stop at 12
    return 24 if tool in (Tool.COMFYUI, Tool.COMFYUI_SAVER) else HOST_RANGE[1]


def _host_note(tool: Tool, version: str, fam: Family, value: float | None, layers: Layers, params,
               key: str = HOST_KEY) -> str:
    """The sentence for a WebUI-family tool, only where its number is not simply ours."""
    dynamic = [k for k in REFORGE_KEYS if k in params]
    who = "No Version key: read as AUTOMATIC1111's; " if tool is Tool.A1111 and not version else ""
    if tool is Tool.UNKNOWN:
        who = f"Version {version[:40]!r} is no tool this extension knows: read as AUTOMATIC1111's; "
    shown = format_value(value) if value is not None else "1 (not written)"
    if dynamic:
        steps = str(params.get("Dynamic clip skip") or params.get("Dynamic clip skip schedule") or "")[:40]
        return (f"reForge changed clip skip at every step ({dynamic[0]}: {steps}); only its first step, Clip skip "
                f"{shown} = {layers_text(fam, layers)} here, can be restored.")
    meaning_tool = Tool.A1111 if tool is Tool.UNKNOWN else tool
    if meaning_tool is Tool.A1111 and fam is Family.SD2 and value is not None:
        return f"{who}AUTOMATIC1111 ignores Clip skip on SD 2.x (here {shown}): this image was made at 2, the penultimate layer."
    if meaning_tool is Tool.A1111 and fam is Family.SDXL and value is not None and value >= 3:
        other = host_layers(Tool.A1111, fam, value, clip_l_skip=True)
        return (f"{who}AUTOMATIC1111 ignored Clip skip {shown} on SDXL unless \"Clip skip SDXL\" was on, which "
                f"infotext does not record: read as 2 (its default); with that option it was {layers_text(fam, other)}.")
    if meaning_tool is Tool.A1111 and fam is Family.SDXL_REFINER and value is not None:
        return f"{who}AUTOMATIC1111 ignores Clip skip on the SDXL refiner: this image was made at 2."
    if layers != uniform(fam, value or 1.0) or (tool is Tool.SDNEXT and value is not None):
        return f"{_label(tool, version)} {key} {shown} on {_fam_label(fam)} is {layers_text(fam, layers)} here."
    return ""


def _fam_label(fam: Family) -> str:
    return FAMILY_LABELS[fam]


def _comfy(params, fam: Family, tool: Tool, version: str, recorded, value: float | None, what: str) -> Reading:
    if value is None:  # Image Saver omits it at 0 ("no skip"), other savers never write it
        return Reading(tool, version, recorded, None, "")
    if not value.is_integer():
        return Reading(tool, version, recorded, uniform(fam, value), f"{what} is fractional: read as this extension's "
                       f"{format_value(value)}.")
    layers = comfy_layers(fam, int(value))
    stop = -int(value)
    return Reading(tool, version, recorded, layers,
                   f"{what} = CLIPSetLastLayer {stop}: {layers_text(fam, layers)} on {_fam_label(fam)}.")


def _fooocus(fam: Family, version: str, recorded, value: float | None) -> Reading:
    """Fooocus writes ``Clip skip`` only above 1 (async_worker.py:367); before v2.4.0 it had none."""
    if value is not None:
        return Reading(Tool.FOOOCUS, version, recorded, comfy_layers(fam, int(value)),
                       f"Fooocus Clip skip {format_value(value)} = {layers_text(fam, comfy_layers(fam, int(value)))} "
                       f"(ComfyUI's numbering, both SDXL encoders).")
    match = _FOOOCUS_VERSION.match(version)
    if match and (int(match.group(1)), int(match.group(2))) >= (2, 4):
        layers = comfy_layers(fam, 1)
        return Reading(Tool.FOOOCUS, version, recorded, layers,
                       f"Fooocus ≥ 2.4 writes no Clip skip at 1: {layers_text(fam, layers)}, the raw last layer.")
    return Reading(Tool.FOOOCUS, version, recorded, default_layers(fam), "")


def _trip(params, fam: Family, found: Detected) -> Reading:
    """Trip Clip Skip re-runs A1111's encoder at ⌊v⌋ and ⌊v⌋+1 and blends the two after the final
    LayerNorm (hnmr293/stable-diffusion-webui-tripclipskip b6ce9e8a ``scripts/tripclipskip.py``)."""
    text = str(params.get("TripClipSkip_value", "")).strip()
    kind = str(params.get("TripClipSkip_type", "lerp")).strip()[:10] or "lerp"
    recorded = tuple((k, str(params[k])[:40]) for k in (*TRIP_KEYS, HOST_KEY) if k in params and (
        k != HOST_KEY or host_key_written(params)))
    value = number(text)
    if value is None or not 1 <= value <= 12:
        return Reading(Tool.TRIPCLIPSKIP, found.version, recorded, None,
                       f"TripClipSkip_value {text[:40]!r} is not a value Trip Clip Skip accepts (1 to 12). Ignored.",
                       invalid=True)
    host = str(params.get(HOST_KEY, "1")).strip()[:12]
    if fam is Family.SD1:
        how = "" if value.is_integer() else (" (it blends after the final LayerNorm, this extension before: close, "
                                             "not identical)")
        if kind == "slerp" and not value.is_integer():
            how = " (its slerp is approximated by this extension's linear blend)"
        return Reading(Tool.TRIPCLIPSKIP, found.version, recorded, uniform(fam, value),
                       f"Trip Clip Skip {format_value(value)} ({kind}) decided this image, not its Clip skip {host}: "
                       f"{format_value(value)} here{how}.")
    if fam is Family.SD2:
        return Reading(Tool.TRIPCLIPSKIP, found.version, recorded, default_layers(fam),
                       "Trip Clip Skip changes nothing on SD 2.x in AUTOMATIC1111 (it ignores Clip skip there): "
                       "this image was made at 2.")
    return Reading(Tool.TRIPCLIPSKIP, found.version, recorded, None,
                   f"Trip Clip Skip fails on {_fam_label(fam)} (its blend expects one tensor): its "
                   f"{format_value(value)} can't be what made this image. Ignored.")


@dataclass(frozen=True)
class Decision:
    """What a paste does on a running host."""

    enable: bool  # set the panel to ``layers``
    layers: Layers | None
    host_value: str | None  # the host's own ``Clip skip`` after the paste; None: dropped
    note: str
    keep_panel: bool = False  # nothing usable: leave the panel as it is


def decide(reading: Reading, host: str, family: Family | None, raw_host: Any, clip_l_skip: bool = False) -> Decision:
    """Panel values and the host's ``Clip skip`` for ``reading`` on ``host`` with ``family`` loaded.

    ``raw_host`` is the pasted ``Clip skip`` as the host's parser gave it (its added "1" included):
    the override the host applies.  The panel is set wherever that would pick another layer here.
    """
    host_tool = HOST_TOOLS.get(host, Tool.A1111)
    label = TOOL_LABELS[host_tool]
    fam = _family(family)
    usable = _host_option(raw_host)
    if reading.invalid:
        return Decision(False, None, str(usable) if usable is not None else None, reading.note, keep_panel=True)
    if reading.layers is None:
        return Decision(False, None, str(usable) if usable is not None else None, reading.note)
    target = reading.layers
    now = host_layers(host_tool, fam, usable, clip_l_skip) if usable is not None else None
    if now == target:
        same = f" {label} makes the same here by itself." if reading.note else ""
        return Decision(False, None, str(usable), reading.note + same)
    option = host_option_for(host_tool, fam, target, clip_l_skip, prefer=usable)
    told = f"Set here to {layers_text(fam, target)}"
    if option is not None and usable is not None:
        told += f"; {label}'s own Clip skip {usable} would be {layers_text(fam, now)}: set to {option}."
    elif option is not None:
        told += f"; {label}'s own Clip skip set to {option}."
    else:
        told += f"; {label} can't make it by itself, so its own Clip skip is not used."
    note = f"{reading.note} {told}" if reading.note else f"{_label(reading.tool, reading.version)}: {told}"
    return Decision(True, target, str(option) if option is not None else None, note)


def _host_option(raw: Any) -> int | None:
    value = number(raw) if raw is not None else None
    if value is None or not value.is_integer() or not HOST_RANGE[0] <= value <= HOST_RANGE[1]:
        return None
    return int(value)
