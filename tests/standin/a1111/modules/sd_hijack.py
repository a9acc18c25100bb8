"""Mirrors ``modules/sd_hijack.py`` (A1111 v1.10.1): ``model_hijack`` and how ``hijack(m)`` wraps text encoders.

SD1: ``cond_stage_model`` -> ``FrozenCLIPEmbedderWithCustomWords``; SD2 -> ``FrozenOpenCLIPEmbedderWithCustomWords``;
SDXL: each ``conditioner.embedders[i]`` by type name; with a single text encoder (the refiner)
``cond_stage_model`` is that wrapper, otherwise the conditioner.
"""

from __future__ import annotations

from standin_common import text_pipeline
from standin_common.text_pipeline import EmbeddingsWithFixes


class EmbeddingDatabase(text_pipeline.EmbeddingDatabase):
    """``modules/textual_inversion/textual_inversion.py:111``: ``register_embedding(embedding, model)``
    tokenises the name with the loaded model's ``cond_stage_model.tokenize``."""

    def token_ids(self, name, model=None):
        return model.cond_stage_model.tokenize([name])[0]

    def register_embedding(self, embedding, model):
        return self.register_embedding_by_name(embedding, embedding.name, model)


class StableDiffusionModelHijack:
    fixes = None
    layers = None
    circular_enabled = False
    clip = None

    def __init__(self):
        self.embedding_db = EmbeddingDatabase()
        self.extra_generation_params = {}
        self.comments = []

    def clear_comments(self):
        self.comments = []
        self.extra_generation_params = {}

    def hijack(self, m):
        from modules import sd_hijack_clip

        def open_clip_wrappers():
            from modules import sd_hijack_open_clip
            return sd_hijack_open_clip

        conditioner = getattr(m, "conditioner", None)
        if conditioner is not None:
            text_cond_models = []
            for index, embedder in enumerate(conditioner.embedders):
                typename = type(embedder).__name__
                if typename == "FrozenOpenCLIPEmbedder":
                    embedder.model.token_embedding = EmbeddingsWithFixes(embedder.model.token_embedding, self)
                    conditioner.embedders[index] = open_clip_wrappers().FrozenOpenCLIPEmbedderWithCustomWords(embedder, self)
                    text_cond_models.append(conditioner.embedders[index])
                if typename == "FrozenCLIPEmbedder":
                    embeddings = text_pipeline.text_model(embedder.transformer).embeddings
                    embeddings.token_embedding = EmbeddingsWithFixes(embeddings.token_embedding, self)
                    conditioner.embedders[index] = sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords(embedder, self)
                    text_cond_models.append(conditioner.embedders[index])
                if typename == "FrozenOpenCLIPEmbedder2":
                    embedder.model.token_embedding = EmbeddingsWithFixes(embedder.model.token_embedding, self, textual_inversion_key="clip_g")
                    conditioner.embedders[index] = open_clip_wrappers().FrozenOpenCLIPEmbedder2WithCustomWords(embedder, self)
                    text_cond_models.append(conditioner.embedders[index])
            m.cond_stage_model = text_cond_models[0] if len(text_cond_models) == 1 else conditioner
            return
        typename = type(m.cond_stage_model).__name__
        if typename == "FrozenCLIPEmbedder":
            embeddings = text_pipeline.text_model(m.cond_stage_model.transformer).embeddings
            embeddings.token_embedding = EmbeddingsWithFixes(embeddings.token_embedding, self)
            m.cond_stage_model = sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords(m.cond_stage_model, self)
        elif typename == "FrozenOpenCLIPEmbedder":
            m.cond_stage_model.model.token_embedding = EmbeddingsWithFixes(m.cond_stage_model.model.token_embedding, self)
            m.cond_stage_model = open_clip_wrappers().FrozenOpenCLIPEmbedderWithCustomWords(m.cond_stage_model, self)


model_hijack = StableDiffusionModelHijack()
