"""One or more cases per row of the translation table and model family: the text or image a tool
writes, and the layer per encoder (this extension's numbering) the image was really made at.

``key`` names the table row (``tool``, ``label``) and the family; ``tests/test_translate.py`` checks
that every row and family of ``lib_clipskip.tooltable.ROWS`` has a case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import tool_images as ti

from lib_clipskip.numbering import Tool


@dataclass(frozen=True)
class Case:
    name: str
    tool: Tool
    family: str
    kind: str  # "text" (A1111-style parameters), "image" (make(path) writes it) or "diffusers" (make() -> k)
    make: Any
    expected: dict | None  # per encoder, or None: nothing the extension restores
    label: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tool.value, self.label, self.family)


def L(v):
    return {"clip_l": float(v)}


def H(v):
    return {"clip_h": float(v)}


def XL(v, g=None):
    return {"clip_l": float(v), "clip_g": float(v if g is None else g)}


def text(value):
    return lambda: value


DYN_SCHEDULE = [("Dynamic clip skip schedule", "9,7,4,3,3,3,2")]
DYN_RAMP = [("Dynamic clip skip", "4->2"), ("Dynamic clip skip start", 4)]
TRIP = [("TripClipSkip_value", 1.35), ("TripClipSkip_type", "lerp")]
OURS_XL = [("CLIP skip ext L", 3), ("CLIP skip ext G", 1.5), ("CLIP skip ext version", "0.1.0")]


def _sd_metadata(path):
    meta = {"model": "stable diffusion", "model_weights": "deliberateForInvoke_v08", "model_hash": "56d1", "app_id":
            "invoke-ai/InvokeAI", "app_version": "2.3.0", "image": {"prompt": [{"prompt": "a cat", "weight": 1.0}],
                                                                    "steps": 50, "cfg_scale": 5, "sampler": "k_lms"}}
    return ti.png(path, {"Dream": '"a cat" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms', "sd-metadata": json.dumps(meta)})


CASES: tuple[Case, ...] = (
    Case("ours sd1", Tool.CLIPSKIP, "sd1", "text", text(ti.webui_text("sd1", 3, extra=[("CLIP skip ext", 3)])), L(3)),
    Case("ours sd2", Tool.CLIPSKIP, "sd2", "text", text(ti.webui_text("sd2", extra=[("CLIP skip ext", 3)])), H(3)),
    Case("ours sdxl", Tool.CLIPSKIP, "sdxl", "text", text(ti.webui_text("sdxl", extra=OURS_XL)), XL(3, 1.5)),
    Case("a1111 sd1", Tool.A1111, "sd1", "text", text(ti.webui_text("sd1", 2)), L(2)),
    Case("a1111 sd1 before v1.2", Tool.A1111, "sd1", "text", text(ti.webui_text("sd1", 3, version=None)), L(3)),
    Case("a1111 sd2 (issue case 2)", Tool.A1111, "sd2", "text", text(ti.webui_text("sd2", 2)), H(2)),
    Case("a1111 sd2 3", Tool.A1111, "sd2", "text", text(ti.webui_text("sd2", 3)), H(2)),
    Case("a1111 sdxl 3 (issue case 4)", Tool.A1111, "sdxl", "text", text(ti.webui_text("sdxl", 3)), XL(2)),
    Case("forge sd1", Tool.FORGE, "sd1", "text", text(ti.webui_text("sd1", 2, ti.FORGE_VERSION)), L(2)),
    Case("forge sd2", Tool.FORGE, "sd2", "text", text(ti.webui_text("sd2", 3, ti.FORGE_VERSION)), H(4)),
    Case("forge sd2 not written", Tool.FORGE, "sd2", "text", text(ti.webui_text("sd2", None, ti.FORGE_VERSION)), H(2)),
    Case("forge sdxl", Tool.FORGE, "sdxl", "text", text(ti.webui_text("sdxl", 3, ti.FORGE_VERSION)), XL(3)),
    Case("forge f0 sd1", Tool.FORGE_F0, "sd1", "text", text(ti.webui_text("sd1", 2, ti.FORGE1_VERSION)), L(2)),
    Case("forge f0 sd2", Tool.FORGE_F0, "sd2", "text", text(ti.webui_text("sd2", 3, ti.FORGE1_VERSION)), H(2)),
    Case("forge f1.0.0 sdxl", Tool.FORGE_F0, "sdxl", "text", text(ti.webui_text("sdxl", 4, "f1.0.0v1.10.0rc-previous-1-ge26abf87")),
         XL(2)),
    Case("forge f1 sd1", Tool.FORGE_CLASSIC, "sd1", "text", text(ti.webui_text("sd1", 3, "f1.0.2v1.10.1-previous-3-g37386592")), L(3)),
    Case("forge f1 sd2", Tool.FORGE_CLASSIC, "sd2", "text", text(ti.webui_text("sd2", 3, "f1.0.2v1.10.1-previous-3-g37386592")), H(3)),
    Case("forge f1 sdxl", Tool.FORGE_CLASSIC, "sdxl", "text",
         text(ti.webui_text("sdxl", 4, "f1.0.2v1.10.1-previous-3-g37386592")), XL(4)),
    Case("forge neo sd1", Tool.FORGE, "sd1", "text", text(ti.webui_text("sd1", 2, "neo")), L(2), "Forge Neo"),
    Case("forge neo sdxl", Tool.FORGE, "sdxl", "text", text(ti.webui_text("sdxl", 1, "neo")), XL(2), "Forge Neo"),
    Case("forge classic sd1", Tool.FORGE_F0, "sd1", "text", text(ti.webui_text("sd1", 3, "classic")), L(3)),
    Case("forge classic sdxl", Tool.FORGE_F0, "sdxl", "text", text(ti.webui_text("sdxl", 4, "classic")), XL(2)),
    Case("reforge sd1", Tool.REFORGE, "sd1", "text", text(ti.webui_text("sd1", 2, ti.REFORGE_VERSION)), L(2)),
    Case("reforge sd2", Tool.REFORGE, "sd2", "text", text(ti.webui_text("sd2", 2, ti.REFORGE_VERSION)), H(2)),
    Case("reforge sdxl", Tool.REFORGE, "sdxl", "text", text(ti.webui_text("sdxl", 3, "f2.0.0-v1.10.1RC-latest-9-g539732c2")),
         XL(3)),
    Case("reforge dynamic sd1", Tool.REFORGE, "sd1", "text", text(ti.webui_text("sd1", 9, ti.REFORGE_VERSION, DYN_SCHEDULE)),
         L(9), "reForge, dynamic clip skip"),
    Case("reforge dynamic sd2", Tool.REFORGE, "sd2", "text", text(ti.webui_text("sd2", 4, ti.REFORGE_VERSION, DYN_RAMP)),
         H(4), "reForge, dynamic clip skip"),
    Case("reforge dynamic sdxl", Tool.REFORGE, "sdxl", "text", text(ti.webui_text("sdxl", 4, ti.REFORGE_VERSION, DYN_RAMP)),
         XL(4), "reForge, dynamic clip skip"),
    Case("sdnext sd1", Tool.SDNEXT, "sd1", "text", text(ti.sdnext_text("sd1", 1.5)), L(1.5)),
    Case("sdnext sd1 original backend", Tool.SDNEXT, "sd1", "text", text(ti.sdnext_text("sd1", 2, backend="Original")), L(2)),
    Case("sdnext sd2", Tool.SDNEXT, "sd2", "text", text(ti.sdnext_text("sd2", 2)), H(3)),
    Case("sdnext sdxl", Tool.SDNEXT, "sdxl", "text", text(ti.sdnext_text("sdxl", 1.5)), XL(2.5)),
    Case("sdnext sdxl original backend", Tool.SDNEXT, "sdxl", "text", text(ti.sdnext_text("sdxl", 3, backend="Original")),
         XL(2)),
    Case("comfyui graph sd1", Tool.COMFYUI, "sd1", "image",
         lambda p: ti.comfy_png(p, ti.comfy_prompt(-2), ti.comfy_workflow(-2)), L(2)),
    Case("comfyui graph sd2", Tool.COMFYUI, "sd2", "image",
         lambda p: ti.comfy_png(p, ti.comfy_prompt(-1, ckpt="v2-1_768-ema-pruned.safetensors")), H(1)),
    Case("comfyui graph sdxl", Tool.COMFYUI, "sdxl", "image",
         lambda p: ti.comfy_png(p, ti.comfy_prompt(-1, sdxl=True, ckpt="sd_xl_base_1.0.safetensors"), ti.comfy_workflow(-1)),
         XL(1)),
    Case("comfyui graph sdxl deep", Tool.COMFYUI, "sdxl", "image",
         lambda p: ti.comfy_png(p, ti.comfy_prompt(-14, sdxl=True, lora=False)), XL(1, 14)),
    Case("comfyui workflow only sd1", Tool.COMFYUI, "sd1", "image", lambda p: ti.png(p, {"workflow": json.dumps(
        ti.comfy_workflow(-3))}), L(3)),
    Case("image saver sd1", Tool.COMFYUI_SAVER, "sd1", "text", text(ti.image_saver_text("sd1", 2)), L(2)),
    Case("image saver sd2", Tool.COMFYUI_SAVER, "sd2", "text", text(ti.image_saver_text("sd2", 2)), H(2)),
    Case("image saver sdxl (issue case 1)", Tool.COMFYUI_SAVER, "sdxl", "text", text(ti.image_saver_text("sdxl", 1)), XL(1)),
    Case("image saver sdxl png", Tool.COMFYUI_SAVER, "sdxl", "image", lambda p: ti.comfy_png(
        p, ti.comfy_prompt(-1, sdxl=True), ti.comfy_workflow(-1), parameters=ti.image_saver_text("sdxl", 1), compact=True),
        XL(1)),
    Case("image saver sd1 no key", Tool.COMFYUI_SAVER, "sd1", "text", text(ti.image_saver_text("sd1", 0)), None),
    Case("other saver sd1", Tool.COMFYUI_SAVER, "sd1", "image", lambda p: ti.comfy_png(
        p, ti.comfy_prompt(-2), parameters=ti.giriss_text("sd1")), L(2), "other ComfyUI savers"),
    Case("other saver sd2", Tool.COMFYUI_SAVER, "sd2", "image", lambda p: ti.comfy_png(
        p, ti.comfy_prompt(None), parameters=ti.giriss_text("sd2")), H(2), "other ComfyUI savers"),
    Case("other saver sdxl", Tool.COMFYUI_SAVER, "sdxl", "image", lambda p: ti.comfy_png(
        p, ti.comfy_prompt(-3, sdxl=True), parameters=ti.giriss_text("sdxl")), XL(3), "other ComfyUI savers"),
    Case("other saver sd1 text", Tool.COMFYUI_SAVER, "sd1", "text", text(ti.giriss_text("sd1")), None, "other ComfyUI savers"),
    Case("diffusers sd1", Tool.DIFFUSERS, "sd1", "diffusers", lambda: 1, L(2)),
    Case("diffusers sd2", Tool.DIFFUSERS, "sd2", "diffusers", lambda: 1, H(3)),
    Case("diffusers sdxl", Tool.DIFFUSERS, "sdxl", "diffusers", lambda: 1, XL(3)),
    Case("invokeai sd1", Tool.INVOKEAI, "sd1", "image", lambda p: ti.invokeai_png(p, "sd-1", 1), L(2)),
    Case("invokeai sd1 0", Tool.INVOKEAI, "sd1", "image", lambda p: ti.invokeai_png(p, "sd-1", 0), L(1)),
    Case("invokeai sd2", Tool.INVOKEAI, "sd2", "image", lambda p: ti.invokeai_png(p, "sd-2", 1), H(3)),
    Case("invokeai 3.0 sdxl", Tool.INVOKEAI, "sdxl", "image",
         lambda p: ti.invokeai_png(p, "sdxl", 2, app_version="3.0.2", legacy_model=True), XL(2)),
    Case("invokeai sdxl workflow", Tool.INVOKEAI, "sdxl", "image", lambda p: ti.invokeai_png(p, "sdxl", 1), XL(3)),
    Case("invokeai sdxl linear", Tool.INVOKEAI, "sdxl", "image", lambda p: ti.invokeai_png(p, "sdxl"), XL(2)),
    Case("invokeai 2 sd1", Tool.INVOKEAI, "sd1", "image", _sd_metadata, L(1), "InvokeAI 2.x"),
    Case("invokeai 2 sd2", Tool.INVOKEAI, "sd2", "image", _sd_metadata, H(2), "InvokeAI 2.x"),
    Case("fooocus a1111 scheme", Tool.FOOOCUS, "sdxl", "text", text(ti.fooocus_a1111_text(3)), XL(3)),
    Case("fooocus 2.5 no key", Tool.FOOOCUS, "sdxl", "text", text(ti.fooocus_a1111_text(None)), XL(1)),
    Case("fooocus 2.3 no key", Tool.FOOOCUS, "sdxl", "text", text(ti.fooocus_a1111_text(None, "Fooocus v2.3.1")), XL(2)),
    Case("fooocus png json", Tool.FOOOCUS, "sdxl", "image",
         lambda p: ti.png(p, {"parameters": ti.fooocus_json(2), "fooocus_scheme": "fooocus"}), XL(2)),
    Case("fooocus jpeg", Tool.FOOOCUS, "sdxl", "image", lambda p: ti.fooocus_jpeg(p, ti.fooocus_json()), XL(1)),
    Case("fooocus jpeg a1111", Tool.FOOOCUS, "sdxl", "image",
         lambda p: ti.fooocus_jpeg(p, ti.fooocus_a1111_text(4), scheme="a1111"), XL(4)),
    Case("novelai sd1", Tool.NOVELAI, "sd1", "image", lambda p: ti.novelai_png(p), L(2)),
    Case("novelai v3", Tool.NOVELAI, "sdxl", "image", lambda p: ti.novelai_png(p, "Stable Diffusion XL C1E1DE52"), XL(2)),
    Case("novelai v4", Tool.NOVELAI, "sdxl", "image",
         lambda p: ti.novelai_png(p, "NovelAI Diffusion V4 4F49EC75"), None),
    Case("novelai imported by a1111", Tool.NOVELAI, "sd1", "text", text(ti.novelai_import_text()), L(2)),
    Case("trip sd1 (issue case 3)", Tool.TRIPCLIPSKIP, "sd1", "text", text(ti.webui_text("sd1", 2, extra=TRIP)), L(1.35)),
    Case("trip sd1 slerp", Tool.TRIPCLIPSKIP, "sd1", "text", text(ti.webui_text(
        "sd1", 3, extra=[("TripClipSkip_value", 2.0), ("TripClipSkip_type", "slerp")])), L(2)),
    Case("trip sd2", Tool.TRIPCLIPSKIP, "sd2", "text", text(ti.webui_text("sd2", 2, extra=TRIP)), H(2)),
    Case("trip sdxl", Tool.TRIPCLIPSKIP, "sdxl", "text", text(ti.webui_text("sdxl", 2, extra=TRIP)), None),
    Case("civitai sd1", Tool.CIVITAI, "sd1", "text", text(ti.civitai_text(2)), L(2)),
    Case("civitai sdxl", Tool.CIVITAI, "sdxl", "text", text(ti.civitai_text(1)), XL(1)),
    Case("civitai page of a1111 sd1", Tool.CIVITAI, "sd1", "text", text(ti.webui_text("sd1", 2)), L(2), "Civitai image pages"),
    Case("civitai page of forge sd2", Tool.CIVITAI, "sd2", "text", text(ti.webui_text("sd2", 2, ti.FORGE_VERSION)), H(3),
         "Civitai image pages"),
    Case("civitai page of image saver sdxl", Tool.CIVITAI, "sdxl", "text", text(ti.image_saver_text("sdxl", 2)), XL(2),
         "Civitai image pages"),
    Case("civitai page of a jpeg", Tool.CIVITAI, "sdxl", "image", lambda p: ti.a1111_jpeg(
        p, ti.webui_text("sdxl", 3, ti.FORGE_VERSION, prompt="ünïcödé, 猫")), XL(3), "Civitai image pages"),
    Case("civitai page of a webp", Tool.CIVITAI, "sd1", "image", lambda p: ti.a1111_webp(p, ti.webui_text("sd1", 2)), L(2),
         "Civitai image pages"),
)

TEXT_CASES = tuple(c for c in CASES if c.kind == "text")
