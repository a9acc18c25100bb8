"""Forge dfdcbab6. Mirrors ``backend/diffusion_engine/sdxl.py``: CLIP-L and OpenCLIP-G engines, both minimal skip 2 and no LayerNorm; G pooled through ``text_projection``.

The size/crop embedder is replaced by a constant vector of the same role.
"""

import torch
from backend import memory_management
from backend.diffusion_engine.base import ForgeDiffusionEngine
from backend.text_processing.classic_engine import ClassicTextProcessingEngine


def _engine_g(text_encoder, tokenizer):
    return ClassicTextProcessingEngine(
        text_encoder=text_encoder, tokenizer=tokenizer, embedding_key="clip_g", embedding_expected_shape=2048,
        text_projection=True, minimal_clip_skip=2, clip_skip=2, return_pooled=True, final_layer_norm=False)


class StableDiffusionXL(ForgeDiffusionEngine):
    def __init__(self, clip_l, tokenizer_l, clip_g, tokenizer_g):
        super().__init__({"clip_l": clip_l, "clip_g": clip_g})
        self.text_processing_engine_l = ClassicTextProcessingEngine(
            text_encoder=clip_l, tokenizer=tokenizer_l, embedding_key="clip_l", embedding_expected_shape=2048,
            text_projection=False, minimal_clip_skip=2, clip_skip=2, return_pooled=False, final_layer_norm=False)
        self.text_processing_engine_g = _engine_g(clip_g, tokenizer_g)
        self.is_sdxl = True

    def set_clip_skip(self, clip_skip):
        self.text_processing_engine_l.clip_skip = clip_skip
        self.text_processing_engine_g.clip_skip = clip_skip

    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.forge_objects.clip.patcher)
        cond_l = self.text_processing_engine_l(prompt)
        cond_g, clip_pooled = self.text_processing_engine_g(prompt)
        flat = torch.ones(clip_pooled.shape[0], 6, dtype=clip_pooled.dtype)
        if getattr(prompt, "is_negative_prompt", False) and all(x == "" for x in prompt):
            clip_pooled, cond_l, cond_g = torch.zeros_like(clip_pooled), torch.zeros_like(cond_l), torch.zeros_like(cond_g)
        return dict(crossattn=torch.cat([cond_l, cond_g], dim=2), vector=torch.cat([clip_pooled, flat], dim=1))


class StableDiffusionXLRefiner(ForgeDiffusionEngine):
    def __init__(self, clip_g, tokenizer_g):
        super().__init__({"clip_g": clip_g})
        self.text_processing_engine_g = _engine_g(clip_g, tokenizer_g)
        self.is_sdxl = True

    def set_clip_skip(self, clip_skip):
        self.text_processing_engine_g.clip_skip = clip_skip

    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.forge_objects.clip.patcher)
        cond_g, clip_pooled = self.text_processing_engine_g(prompt)
        flat = torch.ones(clip_pooled.shape[0], 5, dtype=clip_pooled.dtype)
        return dict(crossattn=cond_g, vector=torch.cat([clip_pooled, flat], dim=1))
