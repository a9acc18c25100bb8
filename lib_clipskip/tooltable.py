"""The translation table: how each tool records CLIP skip, and what that is in this extension.

One row per tool and model family, with the source it was read from (repository, commit, file
and lines).  ``markdown()`` renders it; the README carries exactly that text (a test checks), and
``lib_clipskip.numbering`` / ``lib_clipskip.translate`` implement it.  The sources column cites the
other tools' files by name: it is documentation, not code that knows a host.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib_clipskip.numbering import TOOL_LABELS, Tool
from lib_clipskip.values import FAMILY_LABELS, Family

SD1, SD2, SDXL = Family.SD1, Family.SD2, Family.SDXL


@dataclass(frozen=True)
class Row:
    tool: Tool
    families: tuple[Family, ...]
    recognised: str  # how the tool is recognised (keys, chunks)
    writes: str
    means: str  # in this extension's numbering
    source: str
    label: str = ""  # instead of the tool's label


A1111_SRC = "AUTOMATIC1111 v1.10.1 82a973c0"
ROWS: tuple[Row, ...] = (
    Row(Tool.CLIPSKIP, (SD1, SD2, SDXL), "`CLIP skip ext…` keys", "`CLIP skip ext: N`, or `CLIP skip ext L: a, "
        "CLIP skip ext G: b`", "as written (wins over every other key)", "this repository, `lib_clipskip/infotext.py`"),
    Row(Tool.A1111, (SD1,), "`Version: v1.10.1` (no `Version` before v1.2.0)", "`Clip skip: k`, left out at 1",
        "k", f"{A1111_SRC} `modules/sd_hijack_clip.py:351-360`, `modules/processing.py:758,790`"),
    Row(Tool.A1111, (SD2,), "", "`Clip skip: k`, which it ignores", "2", f"{A1111_SRC} `modules/sd_hijack_open_clip.py:26-30`"),
    Row(Tool.A1111, (SDXL,), "", "`Clip skip: k`, ignored unless \"Clip skip SDXL\" was on (not recorded)",
        "2 and 2; for k ≥ 3 ambiguous (with that option: CLIP-L k, OpenCLIP-G 2): read as 2, with a note",
        f"{A1111_SRC} `modules/sd_hijack_clip.py:374-384`, `modules/sd_hijack_open_clip.py:56-64`, "
        "`modules/shared_options.py:180`"),
    Row(Tool.FORGE, (SD1,), "`Version: f2.0.1v1.10.1-…`", "`Clip skip: k`", "k",
        "Forge dfdcbab6 `backend/text_processing/classic_engine.py:124-139`, `backend/diffusion_engine/sd15.py:47-50`"),
    Row(Tool.FORGE, (SD2,), "", "`Clip skip: k`", "k + 1 (Forge loads 23 of the 24 layers)",
        "Forge dfdcbab6 `backend/diffusion_engine/sd20.py:47-50`, "
        "`backend/huggingface/stabilityai/stable-diffusion-2-1/text_encoder/config.json`"),
    Row(Tool.FORGE, (SDXL,), "", "`Clip skip: k`", "max(k, 2) on both encoders",
        "Forge dfdcbab6 `backend/diffusion_engine/sdxl.py:52-83`"),
    Row(Tool.FORGE_F0, (SD1, SD2, SDXL), "`Version: f0.0.17v1.8.0rc-…`, `f1.0.0v1.10.0rc-…`, reForge's first `f0.0.20…-v1.10.0RC`, "
        "`classic` (Forge Classic)",
        "`Clip skip: k`", "SD 1.x k; SD 2.x and SDXL 2 (their encoders ignore it)",
        "Forge ef35383b `modules_forge/forge_clip.py` (before 0ba9f7f3 \"Clip Skip to All Models\"); "
        "Haoming02/sd-webui-forge-classic 1f95d717 `modules_forge/forge_clip.py`, `modules_forge/forge_version.py`"),
    Row(Tool.FORGE_CLASSIC, (SD1, SD2, SDXL), "`Version: f1.0.2v1.10.1-…` (the f1 line after 2024-07-27)", "`Clip skip: k`",
        "SD 1.x k; SD 2.x max(k, 2); SDXL max(k, 2) on both", "Forge 37386592 `modules_forge/forge_clip.py`"),
    Row(Tool.FORGE, (SD1, SDXL), "`Version: neo`", "`Clip skip: k`", "SD 1.x k; SDXL max(k, 2) on both (Forge's backend; "
        "no SD 2.x)", "Haoming02/sd-webui-forge-classic neo (copy 7862a96) `backend/text_processing/classic_engine.py:111`, "
        "`modules_forge/forge_version.py`", "Forge Neo"),
    Row(Tool.REFORGE, (SD1, SD2, SDXL), "`Version: f1.0.0v2-v1.10.1RC-…` (a dash before `v1.….RC`)", "`Clip skip: k`",
        "SD 1.x k; SD 2.x max(k, 2); SDXL max(k, 2) on both", "reForge 3b56b268 `modules_forge/forge_clip.py:16-124`"),
    Row(Tool.REFORGE, (SD1, SD2, SDXL), "`Dynamic clip skip: s->2` or `Dynamic clip skip schedule: \"9,7,4,…\"`",
        "`Clip skip: s`, the first step's value", "a layer per step: only the first step's can be restored (noted)",
        "reForge 3b56b268 `modules/processing.py:485-621`", "reForge, dynamic clip skip"),
    Row(Tool.SDNEXT, (SD1,), "`App: SD.Next`, `Version: <commit>` (an old `CLiP-skip` key is read too)",
        "`Clip skip: s`, left out at 1, fractions allowed", "s (`Backend: Original`: as AUTOMATIC1111)",
        "vladmandic/automatic 431bcc36 `modules/processing_info.py:57`, `modules/prompt_parser_diffusers.py:200-220`"),
    Row(Tool.SDNEXT, (SD2, SDXL), "", "`Clip skip: s`", "s + 1 (SDXL: on both encoders)",
        "vladmandic/automatic 431bcc36 `modules/prompt_parser_diffusers.py:382-390` (SDXL `-(clip_skip + 1)`; "
        "SD 2.x: the 23-layer diffusers encoder)"),
    Row(Tool.COMFYUI, (SD1, SD2, SDXL), "PNG `prompt` graph (and `workflow`)", "`CLIPSetLastLayer` "
        "`stop_at_clip_layer: -m` on the sampler's text encoders' CLIP", "m on every encoder (past an encoder's depth: its "
        "final output, read as 1); no node: 1 / 2 / 2", "comfyanonymous/ComfyUI `nodes.py`@e60e19b1, "
        "`comfy/sd1_clip.py`@b55c2247, `comfy/clip_model.py`@00728eb2, `comfy/sdxl_clip.py`@565d6747"),
    Row(Tool.COMFYUI_SAVER, (SD1, SD2, SDXL), "`Version: ComfyUI` (ComfyUI Image Saver)",
        "`Clip skip: c` = \\|stop_at_clip_layer\\| (left out at 0)", "as ComfyUI: c on every encoder; not written: "
        "the graph, else the default", "alexopus/ComfyUI-Image-Saver 92305d2e `nodes.py:155,219-234`"),
    Row(Tool.COMFYUI_SAVER, (SD1, SD2, SDXL), "`Version: ComfyUI`, no `Clip skip` (Save Image w/Metadata, "
        "SD Prompt Saver)", "nothing", "the graph, else the default", "giriss/comfy-image-saver c6223965 "
        "`nodes.py:219`; receyuki/comfyui-prompt-reader-node a88722ce `nodes.py:539-555`", "other ComfyUI savers"),
    Row(Tool.DIFFUSERS, (SD1, SD2, SDXL), "writes no metadata", "the pipelines' `clip_skip=k`",
        "SD 1.x k + 1; SD 2.x k + 2; SDXL k + 2 on both; the negative prompt keeps the default layer",
        "huggingface/diffusers 58eb52c0 `src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion.py:422-436,492-496`, "
        "`src/diffusers/pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py:403-416,473`"),
    Row(Tool.INVOKEAI, (SD1, SD2), "PNG `invokeai_metadata` (`model.base`, `app_version`)", "`\"clip_skip\": k` "
        "(0 is written)", "SD 1.x k + 1; SD 2.x k + 2", "invoke-ai/InvokeAI 8e71a8a5 "
        "`invokeai/backend/model_patcher.py:143-159`, `invokeai/app/invocations/compel.py:91`"),
    Row(Tool.INVOKEAI, (SDXL,), "", "`\"clip_skip\": k` from 3.0/3.1 (not applied) or a workflow",
        "3.0/3.1: 2; later: k + 2 on both (its pooled output then comes from the skipped layer)",
        "invoke-ai/InvokeAI 8e71a8a5 `invokeai/app/invocations/compel.py:195-229`, "
        "`invokeai/frontend/web/src/features/parameters/components/Advanced/ParamClipSkip.tsx:46-47`; d3a2be69"),
    Row(Tool.INVOKEAI, (SD1, SD2), "PNG `sd-metadata` / `Dream`", "nothing", "SD 1.x 1; SD 2.x 2",
        "invoke-ai/InvokeAI v2.3.5 `ldm/invoke/pngwriter.py:55-61`", "InvokeAI 2.x"),
    Row(Tool.FOOOCUS, (SDXL,), "`Version: Fooocus v2.5.5`, PNG `fooocus_scheme`, EXIF Software",
        "`Clip skip: c` or JSON `\"clip_skip\": c`, only above 1", "c on both; not written: 1 from v2.4.0, 2 before",
        "lllyasviel/Fooocus 59f183ab `modules/default_pipeline.py:206-212`, `modules/async_worker.py:367-368`, "
        "`modules/meta_parser.py:352`; v2.4.0 cc58fe52"),
    Row(Tool.NOVELAI, (SD1, SDXL), "PNG `Software: NovelAI`, `Source: Stable Diffusion …` (V4: `NovelAI Diffusion V4`)",
        "nothing (A1111's import adds `Clip skip: 2`)", "SD 1.x-based: 2; V3 (SDXL): 2 (presumed: NovelAI does not "
        "say); V4: no CLIP layer to choose", "NovelAI blog \"NovelAI Improvements on Stable Diffusion\" (Oct 2022); "
        f"{A1111_SRC} `modules/images.py:806-813`"),
    Row(Tool.TRIPCLIPSKIP, (SD1,), "`TripClipSkip_value: v, TripClipSkip_type: lerp`", "`Clip skip` is stale",
        "v (it blends after the final LayerNorm, this extension before; slerp approximated)",
        "hnmr293/stable-diffusion-webui-tripclipskip b6ce9e8a `scripts/tripclipskip.py`"),
    Row(Tool.TRIPCLIPSKIP, (SD2, SDXL), "", "", "SD 2.x 2 (a no-op on A1111); SDXL ignored (its blend fails on "
        "SDXL's conditioning)", "hnmr293/stable-diffusion-webui-tripclipskip b6ce9e8a `scripts/tripclipskip.py`"),
    Row(Tool.CIVITAI, (SD1, SDXL), "`Civitai resources`, `Created Date`, no `Version`", "`Clip skip: k`, always "
        "(1 too)", "k on every encoder, unconfirmed (its generator's code is not public)",
        "civitai/civitai `src/utils/metadata/automatic.metadata.ts`@0178ea25 (the reading side)"),
    Row(Tool.CIVITAI, (SD1, SD2, SDXL), "an image page's generation data", "the source tool's `Clip skip`",
        "as the tool that made the image (its `Version` decides)",
        "civitai/civitai `src/utils/metadata/automatic.metadata.ts`@0178ea25", "Civitai image pages"),
)


def _families(row: Row) -> str:
    return " / ".join(FAMILY_LABELS[f] for f in row.families)


def markdown() -> str:
    """The README table."""
    lines = ["| tool | recognised by | model | writes | that is here | source |", "|---|---|---|---|---|---|"]
    for row in ROWS:
        cells = (row.label or TOOL_LABELS[row.tool], row.recognised, _families(row), row.writes, row.means, row.source)
        lines.append("| " + " | ".join(cell or "″" for cell in cells) + " |")
    return "\n".join(lines)
