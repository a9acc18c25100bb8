"""``python -m lib_clipskip infotext [--model sd1|sd2|sdxl] [--host a1111|forge|reforge|forge-classic] [--json] (TEXT | IMAGE ...)``.

For a parameters text or image files: which tool wrote it, the clip skip it records, the layer
per encoder that means, what this extension applies on the host (a paste there), and the value
each other tool needs for the same layers.  Needs the standard library only; images are read
by ``lib_clipskip.imagemeta`` (headers only, bounded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from lib_clipskip import image_sources, imagemeta, translate
from lib_clipskip.numbering import HOST_TOOLS, TOOL_LABELS, Tool, equivalents, host_layers, layers_text, number
from lib_clipskip.values import FAMILY_LABELS, Family, format_value

FAMILIES = {"sd1": Family.SD1, "sd2": Family.SD2, "sdxl": Family.SDXL}
HOSTS = ("a1111", "forge", "reforge", "forge-classic")  # Forge Neo numbers as Forge
MAX_TEXT_FILE = 1024 * 1024  # a parameters .txt file; larger files are not parameters
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "infotext",
        help="what a parameters text or image means in CLIP skip terms, for every tool",
        description="Print which tool wrote a parameters text or image, the clip skip it records, the layer "
        "per text encoder that means, what this extension applies when it is pasted on --host, and the "
        "equivalent value in AUTOMATIC1111, Forge, ComfyUI and diffusers.",
    )
    parser.add_argument("--model", choices=tuple(FAMILIES), help="the model family (default: what the image "
                        "records, else a guess from the model name, else sd1)")
    parser.add_argument("--host", choices=HOSTS, default="a1111", help="where it is pasted (default: a1111)")
    parser.add_argument("--json", action="store_true", help="one JSON object per input, one per line")
    parser.add_argument("inputs", nargs="+", metavar="TEXT | IMAGE", help="a parameters text ('-' for stdin), or "
                        "image files (PNG, JPEG, WebP; a text file is read as parameters)")


def _sources(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[str, image_sources.Source]]:
    given = FAMILIES.get(args.model) if args.model else None
    inputs = args.inputs
    if inputs == ["-"]:
        return [("-", image_sources.from_text(sys.stdin.read(MAX_TEXT_FILE), given))]
    single = inputs[0] if len(inputs) == 1 else None
    if single is not None and not os.path.exists(single) and not (
            "\n" not in single and ": " not in single and single.lower().endswith(_IMAGE_EXTS)):
        return [("text", image_sources.from_text(single, given))]
    for path in inputs:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    return [(path, _file_source(path, given)) for path in inputs]


def _file_source(path: str, given: Family | None) -> image_sources.Source:
    meta = imagemeta.read(path)
    if meta.format != "unknown":
        return image_sources.read(meta, given)
    with open(path, "rb") as handle:
        data = handle.read(MAX_TEXT_FILE + 1)
    source = image_sources.from_text(data[:MAX_TEXT_FILE].decode("utf-8", errors="replace"), given)
    source.notes.insert(0, "Not a PNG, JPEG or WebP image: read as a parameters text.")
    return source


def _json_number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _recorded(reading: translate.Reading) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in reading.recorded:
        value = number(text)
        out[key] = _json_number(value) if value is not None else text
    return out


def describe(source: image_sources.Source, host: str) -> dict[str, Any]:
    """The ``--json`` object: exactly tool, recorded, layers, apply, equivalents, notes."""
    reading, family = source.reading, source.family
    raw_host = source.params.get(translate.HOST_KEY, "1") if translate.host_key_written(source.params) else "1"
    decision = translate.decide(reading, host, family, raw_host)
    notes = [decision.note] if decision.note else []
    notes += source.notes
    if decision.enable and decision.layers:
        clip_skip, clip_skip_g = translate.panel_values(decision.layers)
        used = decision.layers
    else:
        clip_skip = clip_skip_g = None
        option = number(decision.host_value) if decision.host_value is not None else 1.0
        used = host_layers(HOST_TOOLS[host], family, option)
    layers = reading.layers
    if family is Family.SDXL and layers and layers.get("clip_g") == 2 and layers.get("clip_l") not in (2, None):
        notes.append(f"AUTOMATIC1111 makes CLIP-L {format_value(layers['clip_l'])} only with \"Clip skip SDXL\" on "
                     f"(Clip skip {format_value(layers['clip_l'])}).")
    eq = equivalents(family, layers)
    if eq["diffusers"] is not None:
        notes.append("diffusers applies clip_skip to the positive prompt only.")
    return {
        "tool": reading.tool.value,
        "recorded": _recorded(reading),
        "layers": {k: _json_number(v) for k, v in layers.items()} if layers else None,
        "apply": {
            "host": host,
            "model": family.value,
            "enabled": decision.enable,
            "clip_skip": _json_number(clip_skip),
            "clip_skip_g": _json_number(clip_skip_g) or None,
            "host_clip_skip": _json_number(number(decision.host_value)) if decision.host_value is not None else None,
            "layers": {k: _json_number(v) for k, v in used.items()},
        },
        "equivalents": eq,
        "notes": notes,
    }


def _human(name: str, source: image_sources.Source, data: dict[str, Any]) -> str:
    reading, family = source.reading, source.family
    shown = reading.version and reading.tool is not Tool.COMFYUI_SAVER  # its label says "Version: ComfyUI"
    label = TOOL_LABELS[reading.tool] + (f" (Version {reading.version})" if shown else "")
    recorded = ", ".join(f"{k}: {v}" for k, v in data["recorded"].items()) or "nothing"
    apply = data["apply"]
    host = TOOL_LABELS[HOST_TOOLS[apply["host"]]]
    if apply["enabled"]:
        values = format_value(apply["clip_skip"]) + (f", OpenCLIP-G {format_value(apply['clip_skip_g'])}"
                                                     if apply["clip_skip_g"] else "")
        told = f"panel on at {values}"
    else:
        told = "panel off: the WebUI's own value"
    host_value = apply["host_clip_skip"]
    told += f"; {host}'s Clip skip {host_value if host_value is not None else 'not applied'}"
    eq = data["equivalents"]
    equivalent = (f"AUTOMATIC1111 Clip skip {_or_dash(eq['a1111'])}, Forge Clip skip {_or_dash(eq['forge'])}, "
                  f"reForge Clip skip {_or_dash(eq['reforge'])}, ComfyUI "
                  f"CLIPSetLastLayer {_or_dash(eq['comfyui'])}, diffusers clip_skip {_or_dash(eq['diffusers'])}")
    lines = [f"{name}:" if name != "text" else "parameters:",
             f"  tool: {label}",
             f"  records: {recorded}",
             f"  layers ({FAMILY_LABELS[family]}): {layers_text(family, reading.layers) if reading.layers else 'unknown'}",
             f"  applies on {host}: {told} (uses {layers_text(family, apply['layers'])})",
             f"  equivalents: {equivalent}"]
    lines += [f"  - {note}" for note in data["notes"]]
    return "\n".join(lines)


def _or_dash(value: Any) -> str:
    return "—" if value is None else str(value)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for name, source in _sources(args, parser):
        data = describe(source, args.host)
        print(json.dumps(data, ensure_ascii=False) if args.json else _human(name, source, data))
    return 0
