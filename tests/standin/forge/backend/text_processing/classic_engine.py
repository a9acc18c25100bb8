"""Forge dfdcbab6. Mirrors ``backend/text_processing/classic_engine.py``.

``encode_with_transformers``: a full pass with ``output_hidden_states=True``; ``z =
hidden_states[-max(clip_skip, minimal_clip_skip)]``; ``final_layer_norm`` iff the engine was
built with it; pooled = ``pooler_output`` (through ``text_projection`` for OpenCLIP-G).  TI use
is reported as "TI: names" in the module global ``last_extra_generation_params``; the comma
backtrack is hard-coded to 20.
"""

from __future__ import annotations

import torch
from modules.shared import opts
from standin_common import text_pipeline
from standin_common.text_pipeline import ChunkPipeline, EmbeddingsWithFixes

last_extra_generation_params = {}


class EmbeddingDatabase(text_pipeline.EmbeddingDatabase):
    """``backend/text_processing/textual_inversion.py:111``: one database per engine, holding its tokenizer."""

    def __init__(self, tokenizer, expected_shape=-1):
        super().__init__()
        self.tokenizer = tokenizer
        self.expected_shape = expected_shape

    def token_ids(self, name, model=None):
        return self.tokenizer([name], truncation=False, add_special_tokens=False)["input_ids"][0]

    def register_embedding(self, embedding):
        return self.register_embedding_by_name(embedding, embedding.name)


class ClassicTextProcessingEngine(ChunkPipeline):
    def __init__(self, text_encoder, tokenizer, chunk_length=75, embedding_dir=None, embedding_key="clip_l",
                 embedding_expected_shape=768, emphasis_name="Original", text_projection=False, minimal_clip_skip=1,
                 clip_skip=1, return_pooled=False, final_layer_norm=True):
        self.embeddings = EmbeddingDatabase(tokenizer, embedding_expected_shape)
        self.embedding_key = embedding_key
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.text_projection = text_projection
        self.minimal_clip_skip = minimal_clip_skip
        self.clip_skip = clip_skip
        self.return_pooled = return_pooled
        self.final_layer_norm = final_layer_norm
        self.chunk_length = chunk_length
        self.setup_vocab(tokenizer)
        self.id_pad = tokenizer.pad_token_id
        model_embeddings = text_pipeline.text_model(text_encoder.transformer).embeddings
        model_embeddings.token_embedding = EmbeddingsWithFixes(model_embeddings.token_embedding, self.embeddings, textual_inversion_key=embedding_key)

    def current_opts(self):
        return opts

    def comma_padding_backtrack(self):
        return 20

    def embedding_lookup(self):
        return self.embeddings

    def set_fixes(self, fixes):
        self.embeddings.fixes = fixes

    def encode_with_transformers(self, tokens):
        outputs = self.text_encoder.transformer(tokens, output_hidden_states=True)
        layer_id = -max(self.clip_skip, self.minimal_clip_skip)
        z = outputs.hidden_states[layer_id]
        if self.final_layer_norm:
            z = text_pipeline.text_model(self.text_encoder.transformer).final_layer_norm(z)
        if self.return_pooled:
            pooled_output = outputs.pooler_output
            if self.text_projection and self.embedding_key != "clip_l":
                pooled_output = self.text_encoder.transformer.text_projection(pooled_output)
            z.pooled = pooled_output
        return z

    def __call__(self, texts):
        global last_extra_generation_params
        zs, used_embeddings = self.encode_chunks(texts)
        if used_embeddings:
            names = ", ".join(name.replace(":", "").replace(",", "") for name in used_embeddings)
            previous = last_extra_generation_params.get("TI")
            last_extra_generation_params["TI"] = f"{previous}, {names}" if previous else names
        if any(x for x in texts if "(" in x or "[" in x) and opts.emphasis != "Original":
            last_extra_generation_params["Emphasis"] = opts.emphasis
        if self.return_pooled:
            return torch.hstack(zs), zs[0].pooled
        return torch.hstack(zs)
