"""From an image's metadata (``imagemeta.ImageMeta``) to a ``translate.Reading``.

Which tool wrote the image, in this order (each tool's own chunk first, A1111-style text last):
InvokeAI ``invokeai_metadata`` (2.x: ``sd-metadata``/``Dream``); NovelAI (``Software: NovelAI``);
Fooocus (``fooocus_scheme``, EXIF Software ``Fooocus v…``); A1111-style ``parameters`` (EXIF
UserComment wins, as in A1111 ``modules/images.py:777-817``); ComfyUI's ``prompt`` graph (or its
``workflow``).  JSON is parsed with the standard library only; nothing is executed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import params_text, translate
from lib_clipskip.imagemeta import ImageMeta
from lib_clipskip.numbering import Tool, comfy_layers, default_layers, layers_text, number, uniform
from lib_clipskip.values import FAMILY_LABELS, Family

MAX_GRAPH_STEPS = 512
_XL_NAME = re.compile(r"xl|pony|illustrious|noob|animagine", re.IGNORECASE)
_INVOKE_BASES = {"sd-1": Family.SD1, "sd-2": Family.SD2, "sdxl": Family.SDXL, "sdxl-refiner": Family.SDXL_REFINER}


@dataclass
class Source:
    """What one image says: ``reading`` for ``family`` (recorded by the tool, given, or assumed)."""

    reading: translate.Reading
    family: Family
    params: dict[str, Any] = field(default_factory=dict)  # A1111-style keys, when there were any
    notes: list[str] = field(default_factory=list)


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _family(recorded: Family | None, given: Family | None, hint: str, notes: list[str]) -> Family:
    if recorded is not None:
        if given is not None and given is not recorded:
            notes.append(f"The image records {FAMILY_LABELS[recorded]}, not the {FAMILY_LABELS[given]} asked for: "
                         f"read as {FAMILY_LABELS[recorded]}.")
        return recorded
    if given is not None:
        return given
    if _XL_NAME.search(hint or ""):
        notes.append(f"Model family assumed SDXL from the model name {hint[:60]!r}: pass --model to say.")
        return Family.SDXL
    notes.append("Model family not recorded: assumed SD 1.x (pass --model sd2 or sdxl to read it for those).")
    return Family.SD1


def read(meta: ImageMeta, given: Family | None = None) -> Source:
    notes = list(meta.notes)
    text, exif = meta.text, meta.exif
    if "invokeai_metadata" in text:
        return _invokeai(_json(text["invokeai_metadata"]), given, notes)
    if "sd-metadata" in text or "Dream" in text:
        family = _family(None, given, "", notes)
        return Source(translate.Reading(Tool.INVOKEAI, "2.x", (), default_layers(family),
                                        "InvokeAI 2.x had no clip skip: the model's default."), family, notes=notes)
    software = text.get("Software") or exif.get("Software") or ""
    if software.strip() == "NovelAI":
        return _novelai(text, given, notes)
    parameters = exif.get("UserComment") or text.get("parameters") or ""
    scheme = (text.get("fooocus_scheme") or (exif.get("MakerNote") if software.startswith("Fooocus") else "") or "").strip()
    if scheme == "fooocus" or (parameters.lstrip().startswith("{") and '"Fooocus v' in parameters):
        return _fooocus_json(_json(parameters), given, notes)
    graph = _json(text.get("prompt") or _prefixed(exif.get("Model"), "prompt:"))
    if parameters.strip():
        params = params_text.parse(parameters)
        if software.startswith("Fooocus") and "Version" not in params:
            params["Software"] = software
        source = from_params(params, given, notes)
        if source.reading.tool is Tool.COMFYUI_SAVER and source.reading.layers is None and isinstance(graph, dict):
            return _comfy_graph(graph, given, notes, source.family, via="the saver wrote no Clip skip; ")
        return source
    if isinstance(graph, dict):
        return _comfy_graph(graph, given, notes)
    workflow = _json(text.get("workflow") or _prefixed(exif.get("Make"), "workflow:"))
    if isinstance(workflow, dict):
        return _comfy_workflow(workflow, given, notes)
    family = _family(None, given, "", notes)
    return Source(translate.Reading(Tool.UNKNOWN, "", (), None, "No generation parameters in this image."), family,
                  notes=notes)


def from_text(text: str, given: Family | None = None) -> Source:
    """A pasted parameters text (the A1111 style every WebUI writes)."""
    return from_params(params_text.parse(text), given, [])


def from_params(params: dict[str, Any], given: Family | None, notes: list[str]) -> Source:
    if not set(params) - {"Prompt", "Negative prompt"}:  # no line of at least three "key: value" pairs
        family = _family(None, given, "", notes)
        return Source(translate.Reading(Tool.UNKNOWN, "", (), None, "No generation parameters in this text (a "
                                        "prompt only)."), family, params, notes)
    fooocus = translate.detect(params).tool is Tool.FOOOCUS  # Fooocus runs SDXL only
    family = _family(Family.SDXL if fooocus else None, given, str(params.get("Model", "")), notes)
    return Source(translate.read_params(params, family), family, params, notes)


def _prefixed(value: str | None, prefix: str) -> str | None:
    return value[len(prefix):] if value and value.startswith(prefix) else None


def _invokeai(data: Any, given: Family | None, notes: list[str]) -> Source:
    """InvokeAI ≥ 3 pops k layers off the encoder before a normalised last-layer read (SD 1.x: our
    k + 1; SD 2.x: k + 2 on the 23-layer encoder); SDXL reads the penultimate of the popped one."""
    data = data if isinstance(data, dict) else {}
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    base = str(model.get("base") or model.get("base_model") or "")
    version = str(data.get("app_version") or "")[:20]
    recorded = _INVOKE_BASES.get(base)
    family = _family(recorded, given, str(model.get("name") or model.get("model_name") or ""), notes)
    if base and recorded is None:
        return Source(translate.Reading(Tool.INVOKEAI, version, (("model.base", base[:20]),), None,
                                        f"InvokeAI {base[:20]} model: no CLIP layer to choose."), family, notes=notes)
    raw = data.get("clip_skip")
    skip = number(raw) if raw is not None else None
    recorded_keys = (("clip_skip", str(raw)[:12]),) if raw is not None else ()
    if skip is None or skip < 0 or not skip.is_integer():
        return Source(translate.Reading(Tool.INVOKEAI, version, recorded_keys, default_layers(family), ""), family,
                      notes=notes)
    k = int(skip)
    if family in (Family.SDXL, Family.SDXL_REFINER):
        early = tuple(int(p) for p in re.findall(r"\d+", version)[:2]) < (3, 2) if version else False
        if early:  # 3.0/3.1 wrote the linear UI's value but never applied it (fixed in d3a2be69)
            layers = default_layers(family)
            note = f"InvokeAI {version} wrote clip_skip {k} on SDXL without applying it: made at 2."
        else:
            layers = uniform(family, k + 2)
            note = (f"InvokeAI clip_skip {k} on SDXL (a workflow node) = {layers_text(family, layers)}; its pooled "
                    f"output came from the skipped encoder too, which this extension does not do.")
    else:
        layers = uniform(family, k + (1 if family is Family.SD1 else 2))
        note = f"InvokeAI clip_skip {k} (layers removed from the end) = {layers_text(family, layers)} here."
    return Source(translate.Reading(Tool.INVOKEAI, version, recorded_keys, layers, note), family, notes=notes)


def _novelai(text: dict[str, str], given: Family | None, notes: list[str]) -> Source:
    source = (text.get("Source") or "").strip()[:80]
    if source.startswith("NovelAI Diffusion V4"):
        family = _family(None, given, "", notes)
        return Source(translate.Reading(Tool.NOVELAI, source, (), None, f"{source}: not a CLIP-L/G model, no layer to "
                                        "restore."), family, notes=notes)
    recorded = Family.SDXL if source.startswith("Stable Diffusion XL") else Family.SD1 if source else None
    family = _family(recorded, given, "", notes)
    layers = uniform(family, 2.0) if family is Family.SD1 else default_layers(family)
    how = "presumed: NovelAI does not say" if family is not Family.SD1 else "its October 2022 notes"
    return Source(translate.Reading(Tool.NOVELAI, source, (), layers, f"NovelAI ({source or 'no Source'}) conditions "
                                    f"on the penultimate layer: {layers_text(family, layers)} ({how})."),
                  family, notes=notes)


def _fooocus_json(data: Any, given: Family | None, notes: list[str]) -> Source:
    data = data if isinstance(data, dict) else {}
    params = {"Version": str(data.get("version") or "")[:40]}
    if data.get("clip_skip") is not None:
        params["Clip skip"] = str(data["clip_skip"])[:12]
    family = _family(Family.SDXL, given, "", notes)  # Fooocus runs SDXL only
    return Source(translate.read_params(params, family), family, params, notes)


def _link(value: Any) -> str | None:
    return str(value[0]) if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) else None


def _comfy_graph(graph: dict, given: Family | None, notes: list[str], family: Family | None = None,
                 via: str = "") -> Source:
    """The ``stop_at_clip_layer`` that reached each sampler's positive prompt: from the sampler up
    through the conditioning to the text encoder's ``clip`` input, then up the CLIP chain (LoRA
    loaders, …) to the nearest CLIPSetLastLayer (the last one applied wins) and the loader."""
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict)}
    hints = {str(n.get("class_type", "")) for n in nodes.values()}
    values: list[int | None] = []
    names: list[str] = []
    steps = 0
    samplers = sorted((k for k, n in nodes.items() if _link(_inputs(n).get("positive"))), key=_node_order)
    for sampler in samplers:
        todo, seen, found, clip = [_link(_inputs(nodes[sampler])["positive"])], set(), None, None
        while todo and clip is None and steps < MAX_GRAPH_STEPS:  # conditioning up to a text encoder
            steps += 1
            node_id = todo.pop(0)
            if node_id in seen or node_id not in nodes:
                continue
            seen.add(node_id)
            inputs = _inputs(nodes[node_id])
            clip = _link(inputs.get("clip"))
            todo += [_link(v) for k, v in inputs.items() if "conditioning" in k.lower() and _link(v)]
        while clip is not None and clip in nodes and steps < MAX_GRAPH_STEPS:  # the CLIP chain to its loader
            steps += 1
            node, inputs = nodes[clip], _inputs(nodes[clip])
            if node.get("class_type") == "CLIPSetLastLayer" and found is None:
                found = _int_input(inputs.get("stop_at_clip_layer"), nodes)
            for key in ("ckpt_name", "clip_name", "clip_name1", "type"):
                if isinstance(inputs.get(key), str):
                    names.append(inputs[key])
            clip = _link(inputs.get("clip"))
        values.append(found)
    if any(h.startswith("CLIPTextEncodeSDXL") for h in hints) or "sdxl" in [n.lower() for n in names]:
        hint_family: Family | None = Family.SDXL
    else:
        hint_family = None
    fam = family or _family(hint_family if given is None else None, given, " ".join(names), notes)
    distinct = list(dict.fromkeys(values))
    m = distinct[0] if distinct else None
    if len(distinct) > 1:
        notes.append(f"Samplers reach different CLIPSetLastLayer values ({', '.join(map(str, distinct))}): the "
                     "first sampler's is read.")
    recorded = (("CLIPSetLastLayer.stop_at_clip_layer", str(m)),) if m is not None else ()
    if m is None or m >= 0 or m < -24:
        layers = default_layers(fam) if m is None else None
        why = "no CLIPSetLastLayer before the text encoder: the model's default" if m is None else f"{m} is not a layer"
        return Source(translate.Reading(Tool.COMFYUI, "", recorded, layers, f"ComfyUI graph: {via}{why}."), fam, notes=notes)
    layers = comfy_layers(fam, -m)
    return Source(translate.Reading(Tool.COMFYUI, "", recorded, layers, f"ComfyUI graph: {via}CLIPSetLastLayer {m} = "
                                    f"{layers_text(fam, layers)} on {FAMILY_LABELS[fam]}."), fam, notes=notes)


def _inputs(node: dict) -> dict:
    inputs = node.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), node_id) if node_id.isdigit() else (1 << 30, node_id)


def _int_input(value: Any, nodes: dict) -> int | None:
    """An INT input: the number, or a link to a primitive node that holds one."""
    link = _link(value)
    if link is not None:
        inputs = _inputs(nodes.get(link, {}))
        value = next((v for v in inputs.values() if isinstance(v, int) and not isinstance(v, bool)), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _comfy_workflow(workflow: dict, given: Family | None, notes: list[str]) -> Source:
    """Only the UI graph: the active CLIPSetLastLayer nodes' widget values (mode 2 muted, 4 bypassed)."""
    nodes = [n for n in workflow.get("nodes", []) if isinstance(n, dict)][:4096]
    values = []
    for node in nodes:
        widgets = node.get("widgets_values")
        if node.get("type") == "CLIPSetLastLayer" and node.get("mode") not in (2, 4) and isinstance(widgets, list) \
                and widgets and isinstance(widgets[0], int):
            values.append(widgets[0])
    xl = any(str(n.get("type", "")).startswith("CLIPTextEncodeSDXL") for n in nodes)
    fam = _family(Family.SDXL if xl and given is None else None, given, "", notes)
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        notes.append(f"The workflow has several CLIPSetLastLayer values ({', '.join(map(str, distinct))}): the "
                     "first is read.")
    if not distinct or not -24 <= distinct[0] <= -1:
        return Source(translate.Reading(Tool.COMFYUI, "", (), default_layers(fam) if not distinct else None,
                                        "ComfyUI workflow: no active CLIPSetLastLayer: the model's default."), fam,
                      notes=notes)
    layers = comfy_layers(fam, -distinct[0])
    return Source(translate.Reading(Tool.COMFYUI, "", (("CLIPSetLastLayer.stop_at_clip_layer", str(distinct[0])),),
                                    layers, f"ComfyUI workflow: CLIPSetLastLayer {distinct[0]} = "
                                    f"{layers_text(fam, layers)}."), fam, notes=notes)
