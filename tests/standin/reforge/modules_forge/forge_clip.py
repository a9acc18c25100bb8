"""Mirrors ``modules_forge/forge_clip.py`` (reForge 3b56b268): the text-encoder wrappers
``modules_forge/forge_loader.py:460-502`` puts in place of A1111's, on ``transformers`` CLIPTextModels.

Each overrides ``encode_with_transformers``: option N > ``minimal_clip_skip`` gives
``hidden_states[-N]`` (LayerNorm on SD1 and SD2 only), otherwise the wrapper's own layer (SD1 the
last; SD2 and SDXL ``layer_idx``, "penultimate" turned into ``hidden``/-2).  bigG's pooled output is
``pooler_output @ text_projection``.  Left out: ``move_clip_to_gpu`` loads the CLIP patcher on the
GPU (``ldm_patched.modules.model_management``); here everything is on the CPU already.
"""

from __future__ import annotations

from modules.sd_hijack_clip import FrozenCLIPEmbedderWithCustomWords
from modules.shared import opts


def move_clip_to_gpu():
    """``forge_clip.py:7``: ``model_management.load_model_gpu(sd_model.forge_objects.clip.patcher)``."""


class CLIP_SD_15_L(FrozenCLIPEmbedderWithCustomWords):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.minimal_clip_skip = 1

    def encode_with_transformers(self, tokens):
        move_clip_to_gpu()
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=-opts.CLIP_stop_at_last_layers)
        if opts.CLIP_stop_at_last_layers > self.minimal_clip_skip:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
            z = self.wrapped.transformer.text_model.final_layer_norm(z)
        else:
            z = outputs.last_hidden_state
        return z


class _OpenCLIPLike(FrozenCLIPEmbedderWithCustomWords):
    """SD2's ViT-H and SDXL's bigG: "penultimate" -> ``hidden``/-2, OpenCLIP's special ids, minimum 2."""

    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        if self.wrapped.layer == "penultimate":
            self.wrapped.layer = "hidden"
            self.wrapped.layer_idx = -2
        # 49406 / 49407 in reForge: the CLIP vocabulary's start and end ids, which the stand-in's small
        # test vocabulary numbers as its tokenizer's bos / eos
        self.id_start = self.wrapped.tokenizer.bos_token_id
        self.id_end = self.wrapped.tokenizer.eos_token_id
        self.id_pad = 0
        self.minimal_clip_skip = 2


class CLIP_SD_21_H(_OpenCLIPLike):
    def encode_with_transformers(self, tokens):
        move_clip_to_gpu()
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if opts.CLIP_stop_at_last_layers > self.minimal_clip_skip:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
            z = self.wrapped.transformer.text_model.final_layer_norm(z)
        elif self.wrapped.layer == "last":
            z = outputs.last_hidden_state
        else:
            z = outputs.hidden_states[self.wrapped.layer_idx]
            z = self.wrapped.transformer.text_model.final_layer_norm(z)
        return z


class CLIP_SD_XL_L(FrozenCLIPEmbedderWithCustomWords):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.minimal_clip_skip = 2

    def encode_with_transformers(self, tokens):
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if opts.CLIP_stop_at_last_layers > self.minimal_clip_skip:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
        elif self.wrapped.layer == "last":
            z = outputs.last_hidden_state
        else:
            z = outputs.hidden_states[self.wrapped.layer_idx]
        return z


class CLIP_SD_XL_G(_OpenCLIPLike):
    def encode_with_transformers(self, tokens):
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if opts.CLIP_stop_at_last_layers > self.minimal_clip_skip:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
        elif self.wrapped.layer == "last":
            z = outputs.last_hidden_state
        else:
            z = outputs.hidden_states[self.wrapped.layer_idx]
        pooled_output = outputs.pooler_output
        text_projection = self.wrapped.text_projection
        pooled_output = pooled_output.float().to(text_projection.device) @ text_projection.float()
        z.pooled = pooled_output
        return z
