"""Forge dfdcbab6. Mirrors ``backend/diffusion_engine/flux.py`` as far as CLIP goes: only CLIP-L's pooled output conditions the image."""

import torch
from backend.diffusion_engine.base import ForgeDiffusionEngine
from backend.text_processing.classic_engine import ClassicTextProcessingEngine


class Flux(ForgeDiffusionEngine):
    def __init__(self, clip_l, tokenizer_l):
        super().__init__({"clip_l": clip_l})
        self.text_processing_engine_l = ClassicTextProcessingEngine(
            text_encoder=clip_l, tokenizer=tokenizer_l, embedding_key="clip_l", embedding_expected_shape=768,
            text_projection=False, minimal_clip_skip=1, clip_skip=1, return_pooled=True, final_layer_norm=True)

    def set_clip_skip(self, clip_skip):
        self.text_processing_engine_l.clip_skip = clip_skip

    def get_learned_conditioning(self, prompt):
        _, pooled_l = self.text_processing_engine_l(prompt)
        return dict(crossattn=torch.zeros(len(prompt), 256, 8), vector=pooled_l)
