"""Forge dfdcbab6. Mirrors ``backend/diffusion_engine/sd15.py`` and ``sd20.py``: one CLIP engine, LayerNorm on, minimal skip 1.

The real constructors take ``(estimated_config, huggingface_components)``; the stand-in takes the
built text encoder (an ``IntegratedCLIP``-like object with ``.transformer``) and tokenizer.
"""

from backend import memory_management
from backend.diffusion_engine.base import ForgeDiffusionEngine
from backend.text_processing.classic_engine import ClassicTextProcessingEngine


class StableDiffusion(ForgeDiffusionEngine):
    embedding_key = "clip_l"
    expected_shape = 768

    def __init__(self, text_encoder, tokenizer):
        super().__init__({self.embedding_key: text_encoder})
        self.text_processing_engine = ClassicTextProcessingEngine(
            text_encoder=text_encoder, tokenizer=tokenizer, embedding_key=self.embedding_key,
            embedding_expected_shape=self.expected_shape, text_projection=False, minimal_clip_skip=1, clip_skip=1,
            return_pooled=False, final_layer_norm=True)
        self.is_sd1 = True

    def set_clip_skip(self, clip_skip):
        self.text_processing_engine.clip_skip = clip_skip

    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.forge_objects.clip.patcher)  # applies the CLIP's LoRA patches
        return self.text_processing_engine(prompt)


class StableDiffusion2(StableDiffusion):
    embedding_key = "clip_h"
    expected_shape = 1024

    def __init__(self, text_encoder, tokenizer):
        super().__init__(text_encoder, tokenizer)
        self.is_sd1 = False
        self.is_sd2 = True
