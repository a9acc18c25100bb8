"""Parameters texts and image files as each tool writes them (key order, quoting, Version strings,
chunks), built from the tools' source (the rows of ``lib_clipskip.tooltable`` name the files).

PNG text goes through Pillow's ``PngInfo.add_text`` as A1111 / ComfyUI / InvokeAI / Fooocus do
(tEXt, or iTXt when the text is not latin-1).  A1111's JPEG / WebP EXIF is what ``piexif.dump`` and
``piexif.insert`` produce, built here by hand because piexif is in neither test environment (checked
byte for byte against piexif 1.1.3 once, outside the suite): big-endian TIFF, an Exif IFD holding
``UserComment`` = ``UNICODE\\0`` + UTF-16BE.
Fooocus' JPEG goes through Pillow's ``Image.Exif`` exactly as its ``meta_parser.get_exif`` does.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

A1111_VERSION = "v1.10.1"
FORGE_VERSION = "f2.0.1v1.10.1-previous-669-gdfdcbab6"
FORGE1_VERSION = "f0.0.17v1.8.0rc-latest-276-g29be1da7"
REFORGE_VERSION = "f1.0.0v2-v1.10.1RC-latest-2510-g3b56b268"
SDNEXT_VERSION = "431bcc3"
FOOOCUS_VERSION = "Fooocus v2.5.5"
MODELS = {"sd1": ("6ce0161689", "v1-5-pruned-emaonly", "512x768"), "sd2": ("ad2a33c361", "v2-1_768-ema-pruned", "768x768"),
          "sdxl": ("31e35c80fc", "sd_xl_base_1.0", "1024x1024")}


def quote(value):
    """``modules/infotext_utils.py:56-60``: JSON-quoted only when it holds ``,``, ``:`` or a newline."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def webui_text(family, clip_skip=None, version=A1111_VERSION, extra=(), prompt="masterpiece, 1girl", negative="lowres"):
    """A1111 / Forge / reForge ``create_infotext``: core keys in ``processing.py:770-800`` order,
    ``Clip skip`` only above 1, then ``extra_generation_params``, then ``Version``."""
    model_hash, model, size = MODELS[family]
    pairs = [("Steps", 20), ("Sampler", "DPM++ 2M"), ("Schedule type", "Karras"), ("CFG scale", 7), ("Seed", 1234567890),
             ("Size", size), ("Model hash", model_hash), ("Model", model)]
    if clip_skip is not None and clip_skip > 1:
        pairs.append(("Clip skip", clip_skip))
    pairs += list(extra)
    if version:
        pairs.append(("Version", version))
    params = ", ".join(f"{k}: {quote(v)}" for k, v in pairs)
    return f"{prompt}\nNegative prompt: {negative}\n{params}"


def sdnext_text(family, clip_skip=None, backend=None):
    """SD.Next ``processing_info.py:47-71``: ``Negative prompt:`` always, ``Clip skip`` above 1, ``App``, ``Version``."""
    model_hash, model, size = MODELS[family]
    pipeline = "StableDiffusionXLPipeline" if family == "sdxl" else "StableDiffusionPipeline"
    pairs = [("Steps", 20), ("Size", size), ("Sampler", "Euler a"), ("Seed", 123), ("CFG scale", 6)]
    if clip_skip is not None and clip_skip > 1:
        pairs.append(("Clip skip", clip_skip))
    pairs += [("Model", model), ("Model hash", model_hash), ("App", "SD.Next"), ("Version", SDNEXT_VERSION)]
    if backend:
        pairs.append(("Backend", backend))
    pairs += [("Pipeline", pipeline), ("Operations", "txt2img")]
    return "a cat in a hat\nNegative prompt: \n" + ", ".join(f"{k}: {quote(v)}" for k, v in pairs)


def image_saver_text(family, clip_skip=0):
    """alexopus/ComfyUI-Image-Saver 92305d2e ``nodes.py:219-234``: ``Clip skip: |c|`` unless 0, unquoted compact JSON."""
    model_hash, model, size = MODELS[family]
    skip = f", Clip skip: {abs(clip_skip)}" if clip_skip != 0 else ""
    hashes = json.dumps({"model": model_hash}, separators=(",", ":"))
    return (f"masterpiece, 1girl\nNegative prompt: lowres\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.0, Seed: 42, "
            f"Size: {size}{skip}, Model hash: {model_hash}, Model: {model}, Hashes: {hashes}, Version: ComfyUI")


def giriss_text(family):
    """giriss/comfy-image-saver c6223965 ``nodes.py:219``: no clip skip, ``CFG Scale`` capitalised."""
    model_hash, model, size = MODELS[family]
    return (f"a cat\nNegative prompt: blurry\nSteps: 20, Sampler: dpmpp_2m_karras, CFG Scale: 7.0, Seed: 42, Size: {size}, "
            f"Model hash: {model_hash}, Model: {model}, Version: ComfyUI")


def fooocus_a1111_text(clip_skip=None, version=FOOOCUS_VERSION):
    """Fooocus 59f183ab ``modules/meta_parser.py:330-524`` (A1111 scheme); ``Clip skip`` only above 1."""
    pairs = [("Steps", 30), ("Sampler", "DPM++ 2M SDE Karras"), ("Seed", 123), ("Size", "768x1280"), ("CFG scale", 4),
             ("Sharpness", 2), ("ADM Guidance", "(1.5, 0.8, 0.3)"), ("Model", "juggernautXL_v8Rundiffusion"),
             ("Model hash", "aeb7e9e689"), ("Performance", "Speed"), ("Scheduler", "karras"), ("VAE", "Default (model)"),
             ("Raw prompt", "a smiling goldfish"), ("Raw negative prompt", "blurry")]
    if clip_skip is not None and clip_skip > 1:
        pairs.append(("Clip skip", clip_skip))
    pairs.append(("Version", version))
    return "a smiling goldfish\nNegative prompt: blurry\n" + ", ".join(f"{k}: {quote(v)}" for k, v in pairs)


def fooocus_json(clip_skip=None, version=FOOOCUS_VERSION):
    """Fooocus' own scheme: ``json.dumps(dict(sorted(...)))`` (``meta_parser.py:554-581``)."""
    data = {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": "aeb7e9e689",
            "full_negative_prompt": ["blurry"], "full_prompt": ["a smiling goldfish"], "guidance_scale": 4, "loras": [],
            "metadata_scheme": "fooocus", "negative_prompt": "", "performance": "Speed", "prompt": "a smiling goldfish",
            "resolution": "(768, 1280)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "6952411511246973023",
            "sharpness": 2, "steps": 30, "styles": "['Fooocus V2']", "vae": "Default (model)", "version": version}
    if clip_skip is not None and clip_skip > 1:
        data["clip_skip"] = clip_skip
    return json.dumps(dict(sorted(data.items())))


def civitai_text(clip_skip):
    return ("a cat\nNegative prompt: lowres\nSteps: 20, CFG scale: 3.5, Sampler: Euler a, Seed: 1234567890, Size: 832x1216, "
            f"Clip skip: {clip_skip}, Created Date: 2024-11-02T10:11:12.1234567Z, Civitai resources: "
            '[{"type":"checkpoint","modelVersionId":290640,"modelName":"Pony Diffusion V6 XL","modelVersionName":"V6"}], '
            'Civitai metadata: {"remixOfId":12345}')


def novelai_import_text():
    """A1111's import of a NovelAI PNG (``modules/images.py:806-813``)."""
    return ("masterpiece, best quality, cat\nNegative prompt: lowres\nSteps: 28, Sampler: Euler a, CFG scale: 11.0, "
            "Seed: 2253955223, Size: 512x768, Clip skip: 2, ENSD: 31337")


# --- images -------------------------------------------------------------------------------------------

def _pixels(fmt="PNG", **save):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 100, 50)).save(buffer, fmt, **save)
    return buffer.getvalue()


def png(path, chunks):
    """A PNG whose text chunks are ``chunks`` (keyword -> text), in order, via ``PngInfo.add_text``."""
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Path(path).write_bytes(_pixels("PNG", pnginfo=info))
    return Path(path)


def comfy_prompt(stop_at_clip_layer=-2, sdxl=False, lora=True, ckpt="v1-5-pruned-emaonly.safetensors"):
    """ComfyUI's API graph as ``SaveImage`` stores it (``json.dumps(prompt)``): loader -> LoRA ->
    CLIPSetLastLayer -> the text encoders -> KSampler."""
    clip_source = ["4", 1]
    graph = {
        "3": {"inputs": {"seed": 280823642470253, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                         "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                         "latent_image": ["5", 0]}, "class_type": "KSampler"},
        "4": {"inputs": {"ckpt_name": ckpt}, "class_type": "CheckpointLoaderSimple"},
        "5": {"inputs": {"width": 1024 if sdxl else 512, "height": 1024 if sdxl else 512, "batch_size": 1},
              "class_type": "EmptyLatentImage"},
    }
    if lora:
        graph["11"] = {"inputs": {"lora_name": "x.safetensors", "strength_model": 1, "strength_clip": 1, "model": ["4", 0],
                                  "clip": clip_source}, "class_type": "LoraLoader"}
        clip_source = ["11", 1]
    if stop_at_clip_layer is not None:
        graph["10"] = {"inputs": {"stop_at_clip_layer": stop_at_clip_layer, "clip": clip_source}, "class_type": "CLIPSetLastLayer"}
        clip_source = ["10", 0]
    if sdxl:
        graph["6"] = {"inputs": {"width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0, "target_width": 1024,
                                 "target_height": 1024, "text_g": "a cat", "text_l": "a cat", "clip": clip_source},
                      "class_type": "CLIPTextEncodeSDXL"}
    else:
        graph["6"] = {"inputs": {"text": "a cat", "clip": clip_source}, "class_type": "CLIPTextEncode"}
    graph["7"] = {"inputs": {"text": "blurry", "clip": clip_source}, "class_type": "CLIPTextEncode"}
    graph["9"] = {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"}
    return graph


def comfy_workflow(stop_at_clip_layer=-2, mode=0):
    """The UI graph (``extra_pnginfo["workflow"]``), only what matters here."""
    nodes = [{"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "widgets_values": ["v1-5-pruned-emaonly.safetensors"]},
             {"id": 6, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["a cat"]}]
    if stop_at_clip_layer is not None:
        nodes.append({"id": 10, "type": "CLIPSetLastLayer", "mode": mode, "widgets_values": [stop_at_clip_layer]})
    return {"last_node_id": 13, "last_link_id": 12, "nodes": nodes, "links": [[1, 4, 1, 10, 0, "CLIP"]], "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


def comfy_png(path, prompt, workflow=None, parameters=None, compact=False):
    """Core ``SaveImage`` (default ``json.dumps``) or Image Saver (``parameters`` first, compact JSON)."""
    dump = (lambda x: json.dumps(x, separators=(",", ":"))) if compact else json.dumps
    chunks = {"parameters": parameters} if parameters is not None else {}
    chunks["prompt"] = dump(prompt)
    if workflow is not None:
        chunks["workflow"] = dump(workflow)
    return png(path, chunks)


def invokeai_png(path, base, clip_skip=None, app_version="6.14.0-alpha", legacy_model=False):
    """InvokeAI ``image_files_disk.py:149-160``: pydantic's compact ``model_dump_json`` in field order."""
    data = {"generation_mode": "sdxl_txt2img" if base.startswith("sdxl") else "txt2img", "positive_prompt": "a cat",
            "negative_prompt": "", "width": 512, "height": 768, "seed": 1, "rand_device": "cpu", "cfg_scale": 7.5,
            "cfg_rescale_multiplier": 0.0, "steps": 30, "scheduler": "dpmpp_2m_k"}
    if clip_skip is not None:
        data["clip_skip"] = clip_skip
    data["model"] = ({"model_name": "juggernautXL", "base_model": base, "model_type": "main"} if legacy_model else
                     {"key": "k", "hash": "blake3:0", "name": "dreamshaper_8", "base": base, "type": "main"})
    data["app_version"] = app_version
    compact = json.dumps(data, separators=(",", ":"))
    return png(path, {"invokeai_metadata": compact, "invokeai_graph": '{"id":"g","nodes":{},"edges":[]}'})


def novelai_png(path, source="Stable Diffusion 1D44365E"):
    comment = {"steps": 50, "sampler": "k_euler_ancestral", "seed": 2253955223, "strength": 0.4, "noise": 0.0,
               "scale": 10.0, "uc": "lowres, bad anatomy"}
    return png(path, {"Title": "AI generated image", "Description": "masterpiece, best quality, cat", "Software": "NovelAI",
                      "Source": source, "Comment": json.dumps(comment)})


def piexif_user_comment(text):
    """``piexif.dump({"Exif": {UserComment: piexif.helper.UserComment.dump(text, encoding="unicode")}})``, byte
    for byte (piexif 1.1.3: big-endian TIFF, IFD0 holding only the Exif IFD pointer, the Exif IFD with no
    next-IFD offset, then the value)."""
    comment = b"UNICODE\0" + text.encode("utf-16-be")
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, 26) + struct.pack(">I", 0)
    exif_ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x9286, 7, len(comment), 40)
    return b"Exif\0\0" + b"MM\0\x2a" + struct.pack(">I", 8) + ifd0 + exif_ifd + comment


def _piexif_insert_jpeg(jpeg, exif):
    """``piexif.insert`` on a JPEG (``_common.merge_segments``): the Exif APP1 takes the place of a JFIF
    APP0 right after SOI, else goes right after SOI."""
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    end = 2
    if jpeg[2:4] in (b"\xff\xe0", b"\xff\xe1"):
        end = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:2] + app1 + jpeg[end:]


def _piexif_insert_webp(webp, exif, size=(16, 16)):
    """``piexif.insert`` on a WebP (``_webp.insert``): the TIFF bytes (``Exif\\0\\0`` cut off) as a last
    ``EXIF`` chunk, a ``VP8X`` chunk first with the EXIF flag."""
    chunks, at = [], 12
    while at + 8 <= len(webp):
        kind, length = webp[at:at + 4], struct.unpack("<I", webp[at + 4:at + 8])[0]
        if kind not in (b"VP8X", b"EXIF"):
            chunks.append(webp[at:at + 8 + length + (length & 1)])
        at += 8 + length + (length & 1)
    tiff = exif[6:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08, 0, 0, 0]) + (size[0] - 1).to_bytes(3, "little") \
        + (size[1] - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + b"".join(chunks) + b"EXIF" + struct.pack("<I", len(tiff)) + tiff + b"\0" * (len(tiff) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def a1111_jpeg(path, text):
    """A1111 v1.10.1 ``modules/images.py:565-620`` ``save_image_with_geninfo``: Pillow saves, then ``piexif.insert``."""
    Path(path).write_bytes(_piexif_insert_jpeg(_pixels("JPEG", quality=90), piexif_user_comment(text)))
    return Path(path)


def a1111_webp(path, text):
    Path(path).write_bytes(_piexif_insert_webp(_pixels("WEBP", quality=90), piexif_user_comment(text)))
    return Path(path)


def fooocus_jpeg(path, parameters, scheme="fooocus", version=FOOOCUS_VERSION):
    """Fooocus 59f183ab ``modules/meta_parser.py:641-650`` ``get_exif``, saved by ``private_logger.py``."""
    exif = Image.Exif()
    exif[0x9286] = parameters
    exif[0x0131] = version
    exif[0x927C] = scheme
    Path(path).write_bytes(_pixels("JPEG", quality=95, exif=exif))
    return Path(path)
