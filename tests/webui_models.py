"""Loaded-model stand-ins for each host and family, built on real ``transformers`` CLIP text models.

A1111 (v1.10.1): ``LatentDiffusion`` keeps ``cond_stage_model`` and encodes with
``self.cond_stage_model(c)`` (ldm ``get_learned_conditioning`` for a module without ``encode``);
SDXL's ``DiffusionEngine`` encodes through ``modules/sd_models_xl.get_learned_conditioning``
(the conditioner's text embedders; crossattn = L and G side by side, vector = pooled + sizes).
``sd_hijack.model_hijack.hijack(m)`` wraps the encoders as the host does at load time.
Forge (dfdcbab6): the ``backend.diffusion_engine`` classes with ``IntegratedCLIP``-like holders.
reForge (3b56b268): A1111's model classes whose encoders ``modules_forge/forge_loader.py:460-502``
replaces with ``forge_clip`` wrappers around ``transformers`` CLIPTextModels (ViT-H with its 24 layers,
bigG with a ``text_projection`` matrix), the token embeddings wrapped in ``EmbeddingsWithFixes``.
"""

from __future__ import annotations

import importlib

import torch
from clip_models import SHAPES, build_text_model, build_tokenizer, small

TOKENIZER_DIR = "/tmp/sd-webui-clipskip-tests/tokenizer"


class CheckpointInfo:
    def __init__(self, name):
        self.name = self.name_for_extra = self.title = name

    def __repr__(self):
        return f"CheckpointInfo({self.name!r})"


def _shape(name, real):
    return dict(SHAPES[name]) if real else small(name)


def tokenizers():
    return build_tokenizer(TOKENIZER_DIR), build_tokenizer(TOKENIZER_DIR, pad_token="!")


class A1111LatentDiffusion(torch.nn.Module):
    """SD1 / SD2 in A1111: ``get_learned_conditioning`` calls the hijacked ``cond_stage_model``."""

    def __init__(self, cond_stage_model, name, family):
        super().__init__()
        self.cond_stage_model = cond_stage_model
        self.sd_checkpoint_info = CheckpointInfo(name)
        self.is_sd1, self.is_sd2, self.is_sdxl, self.is_sd3 = family == "sd1", family == "sd2", False, False

    def get_learned_conditioning(self, c):
        return self.cond_stage_model(c)


class A1111DiffusionEngine(torch.nn.Module):
    """SDXL / refiner in A1111 (sgm ``DiffusionEngine`` + ``sd_models_xl.get_learned_conditioning``)."""

    def __init__(self, conditioner, name):
        super().__init__()
        self.conditioner = conditioner
        self.cond_stage_model = conditioner
        self.sd_checkpoint_info = CheckpointInfo(name)
        self.is_sd1, self.is_sd2, self.is_sdxl, self.is_sd3 = False, False, True, False

    def get_learned_conditioning(self, batch):
        crossattn, vectors = [], []
        for embedder in self.conditioner.embedders:
            out = embedder(batch)
            if isinstance(out, tuple):
                z, pooled = out
                vectors.append(pooled)
            else:
                z = out
            crossattn.append(z)
        vectors.append(torch.ones(len(batch), 6))
        return {"crossattn": torch.cat(crossattn, dim=2), "vector": torch.cat(vectors, dim=1)}


def open_clip_tower(name, real, seed):
    """An OpenCLIP text tower (A1111 SD2 / SDXL-G) of the real depth, real or small width."""
    open_clip = importlib.import_module("open_clip")
    shape = _shape(name, real)
    vocab_size = open_clip.tokenizer._tokenizer.vocab_size
    return open_clip.build_text_model(shape["hidden_size"], shape["num_hidden_layers"], shape["num_attention_heads"], vocab_size, seed=seed)


def a1111_model(family: str, real: bool = False, seed: int = 0, name: str | None = None):
    """A hijacked A1111 model: family "sd1", "sd2", "sdxl" or "sdxl_refiner"."""
    from modules import sd_hijack

    tokenizer_l, _tokenizer_g = tokenizers()
    name = name or f"{family}-standin"
    if family == "sd1":
        ldm = importlib.import_module("ldm.modules.encoders.modules")
        encoder = ldm.FrozenCLIPEmbedder(tokenizer_l, build_text_model(_shape("clip_l", real), len(tokenizer_l), seed))
        model = A1111LatentDiffusion(encoder, name, family)
    elif family == "sd2":
        ldm = importlib.import_module("ldm.modules.encoders.modules")
        model = A1111LatentDiffusion(ldm.FrozenOpenCLIPEmbedder(open_clip_tower("clip_h", real, seed), layer="penultimate"), name, family)
    else:
        sgm = importlib.import_module("sgm.modules.encoders.modules")
        embedders = []
        if family == "sdxl":
            clip_l = build_text_model(_shape("clip_l", real), len(tokenizer_l), seed)
            embedders.append(sgm.FrozenCLIPEmbedder(tokenizer_l, clip_l, layer="hidden", layer_idx=11))
        tower = open_clip_tower("clip_g", real, seed + 1)
        embedders.append(sgm.FrozenOpenCLIPEmbedder2(tower, layer="penultimate", always_return_pooled=True, legacy=False))
        model = A1111DiffusionEngine(sgm.GeneralConditioner(embedders), name)
    sd_hijack.model_hijack.hijack(model)
    return model


class IntegratedCLIP(torch.nn.Module):
    """Forge ``backend/nn/clip.IntegratedCLIP``: a module whose ``.transformer`` is the transformers model."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer


def integrated_clip(shape, vocab_size, seed, text_projection=False):
    model = build_text_model(shape, vocab_size, seed)
    if text_projection:
        torch.manual_seed(seed + 100)
        width = shape["hidden_size"]
        model.text_projection = torch.nn.Linear(width, width, bias=False).requires_grad_(False)
    return IntegratedCLIP(model)


def forge_model(family: str, real: bool = False, seed: int = 0, name: str | None = None):
    """A Forge engine: "sd1", "sd2" (23 of 24 layers, as Forge loads it), "sdxl", "sdxl_refiner" or "flux"."""
    tokenizer_l, tokenizer_g = tokenizers()
    name = name or f"{family}-standin"
    if family in ("sd1", "flux"):
        holder = integrated_clip(_shape("clip_l", real), len(tokenizer_l), seed)
        if family == "flux":
            engine = importlib.import_module("backend.diffusion_engine.flux").Flux(holder, tokenizer_l)
        else:
            engine = importlib.import_module("backend.diffusion_engine.sd15").StableDiffusion(holder, tokenizer_l)
    elif family == "sd2":
        shape = dict(_shape("clip_h", real), num_hidden_layers=23)
        holder = integrated_clip(shape, len(tokenizer_g), seed)
        engine = importlib.import_module("backend.diffusion_engine.sd15").StableDiffusion2(holder, tokenizer_g)
    else:
        sdxl = importlib.import_module("backend.diffusion_engine.sdxl")
        clip_g = integrated_clip(_shape("clip_g", real), len(tokenizer_g), seed + 1, text_projection=True)
        if family == "sdxl":
            clip_l = integrated_clip(_shape("clip_l", real), len(tokenizer_l), seed)
            engine = sdxl.StableDiffusionXL(clip_l, tokenizer_l, clip_g, tokenizer_g)
        else:
            engine = sdxl.StableDiffusionXLRefiner(clip_g, tokenizer_g)
    engine.sd_checkpoint_info = CheckpointInfo(name)
    return engine


class ReForgeEncoder(torch.nn.Module):
    """The upstream embedder after ``forge_loader`` set its ``tokenizer`` / ``transformer`` (/ ``text_projection``)
    from ldm_patched's CLIP: the fields the ``forge_clip`` wrappers read."""

    def __init__(self, tokenizer, transformer, layer, layer_idx=None, text_projection=None, return_pooled=False):
        super().__init__()
        self.tokenizer, self.transformer, self.layer, self.layer_idx = tokenizer, transformer, layer, layer_idx
        self.return_pooled = return_pooled
        if text_projection is not None:
            self.text_projection = text_projection


def reforge_model(family: str, real: bool = False, seed: int = 0, name: str | None = None):
    """A reForge model: family "sd1", "sd2", "sdxl" or "sdxl_refiner"."""
    from modules import sd_hijack
    from modules_forge import forge_clip
    from standin_common.text_pipeline import EmbeddingsWithFixes, text_model

    tokenizer_l, tokenizer_g = tokenizers()
    name = name or f"{family}-standin"

    def wrap(wrapper_class, encoder, key="clip_l"):
        embeddings = text_model(encoder.transformer).embeddings
        embeddings.token_embedding = EmbeddingsWithFixes(embeddings.token_embedding, sd_hijack.model_hijack, textual_inversion_key=key)
        return wrapper_class(encoder, sd_hijack.model_hijack)

    if family == "sd1":
        clip_l = build_text_model(_shape("clip_l", real), len(tokenizer_l), seed)
        return A1111LatentDiffusion(wrap(forge_clip.CLIP_SD_15_L, ReForgeEncoder(tokenizer_l, clip_l, "last")), name, family)
    if family == "sd2":
        clip_h = build_text_model(_shape("clip_h", real), len(tokenizer_g), seed)
        return A1111LatentDiffusion(wrap(forge_clip.CLIP_SD_21_H, ReForgeEncoder(tokenizer_g, clip_h, "penultimate")), name, family)
    sgm = importlib.import_module("sgm.modules.encoders.modules")
    embedders = []
    if family == "sdxl":
        clip_l = build_text_model(_shape("clip_l", real), len(tokenizer_l), seed)
        embedders.append(wrap(forge_clip.CLIP_SD_XL_L, ReForgeEncoder(tokenizer_l, clip_l, "hidden", 11)))
    shape_g = _shape("clip_g", real)
    clip_g = build_text_model(shape_g, len(tokenizer_g), seed + 1)
    torch.manual_seed(seed + 100)
    projection = torch.nn.Parameter(torch.randn(shape_g["hidden_size"], shape_g["hidden_size"]) * 0.05, requires_grad=False)
    embedders.append(wrap(forge_clip.CLIP_SD_XL_G, ReForgeEncoder(tokenizer_g, clip_g, "penultimate", text_projection=projection,
                                                                   return_pooled=True), "clip_g"))
    conditioner = sgm.GeneralConditioner(embedders)
    model = A1111DiffusionEngine(conditioner, name)
    model.cond_stage_model = embedders[0] if len(embedders) == 1 else conditioner  # forge_loader.py:500-503
    return model


def neo_model(family: str, real: bool = False, seed: int = 0, name: str | None = None):
    """Forge Neo: Forge's engines, without SD 2.x (no ``sd20`` engine; ``backend/loader.py:558-565`` raises)."""
    if family == "sd2":
        raise ValueError("Failed to recognize model type!")
    return forge_model(family, real=real, seed=seed, name=name)


_BUILDERS = {"a1111": a1111_model, "forge": forge_model, "reforge": reforge_model, "neo": neo_model,
             "classic": reforge_model}  # Forge Classic: reForge's wiring, its own forge_clip wrappers


def build_model(host: str, family: str, real: bool = False, seed: int = 0, name: str | None = None):
    return _BUILDERS[host](family, real=real, seed=seed, name=name)


def text_models(sd_model) -> dict:
    """name -> the transformers (or OpenCLIP) module of each text encoder, for layer counting."""
    found = {}
    engines = (("text_processing_engine", None), ("text_processing_engine_l", "clip_l"), ("text_processing_engine_g", "clip_g"))
    for attribute, name in engines:
        engine = getattr(sd_model, attribute, None)
        if engine is not None:
            found[name or engine.embedding_key] = engine.text_encoder.transformer
    if found:
        return found
    conditioner = getattr(sd_model, "conditioner", None)
    wrappers = list(conditioner.embedders) if conditioner is not None else [sd_model.cond_stage_model]
    reforge = {"CLIP_SD_21_H": "clip_h", "CLIP_SD_XL_G": "clip_g"}  # and Forge Classic
    for wrapper in wrappers:
        inner = wrapper.wrapped
        if type(wrapper).__name__ in reforge:
            found[reforge[type(wrapper).__name__]] = inner.transformer
        elif hasattr(inner, "transformer"):
            found["clip_l"] = inner.transformer
        else:
            found["clip_g" if type(inner).__name__.endswith("2") else "clip_h"] = inner.model
    return found
