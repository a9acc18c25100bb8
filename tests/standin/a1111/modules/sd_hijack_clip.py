"""Mirrors ``modules/sd_hijack_clip.py`` (A1111 v1.10.1): the classes whose ``encode_with_transformers``
decides which CLIP layer conditions SD1 and SDXL CLIP-L.

SD1: ``hidden_states[-N]`` through ``final_layer_norm`` for N > 1, ``last_hidden_state`` for N = 1.
SDXL CLIP-L: ``hidden_states[-N]`` raw when ``opts.sdxl_clip_l_skip``, else ``hidden_states[layer_idx]``.
"""

from __future__ import annotations

import torch
from modules import devices, sd_hijack
from modules.shared import opts
from standin_common.text_pipeline import ChunkPipeline, PromptChunk, PromptChunkFix, text_model  # noqa: F401


class TextConditionalModel(torch.nn.Module, ChunkPipeline):
    def __init__(self):
        super().__init__()
        self.hijack = sd_hijack.model_hijack
        self.chunk_length = 75
        self.is_trainable = False
        self.input_key = "txt"
        self.return_pooled = False
        self.comma_token = None
        self.id_start = None
        self.id_end = None
        self.id_pad = None

    def current_opts(self):
        return opts

    def embedding_lookup(self):
        return self.hijack.embedding_db

    def set_fixes(self, fixes):
        self.hijack.fixes = fixes

    def forward(self, texts):
        zs, used_embeddings = self.encode_chunks(texts)
        if opts.textual_inversion_add_hashes_to_infotext and used_embeddings:
            hashes = [f"{name.replace(':', '').replace(',', '')}: {e.shorthash}" for name, e in used_embeddings.items()]
            if self.hijack.extra_generation_params.get("TI hashes"):
                hashes.append(self.hijack.extra_generation_params.get("TI hashes"))
            self.hijack.extra_generation_params["TI hashes"] = ", ".join(hashes)
        if any(x for x in texts if "(" in x or "[" in x) and opts.emphasis != "Original":
            self.hijack.extra_generation_params["Emphasis"] = opts.emphasis
        if self.return_pooled:
            return torch.hstack(zs), zs[0].pooled
        return torch.hstack(zs)


class FrozenCLIPEmbedderWithCustomWordsBase(TextConditionalModel):
    def __init__(self, wrapped, hijack):
        super().__init__()
        self.hijack = hijack
        self.wrapped = wrapped
        self.is_trainable = getattr(wrapped, "is_trainable", False)
        self.input_key = getattr(wrapped, "input_key", "txt")
        self.return_pooled = getattr(self.wrapped, "return_pooled", False)
        self.legacy_ucg_val = None


class FrozenCLIPEmbedderWithCustomWords(FrozenCLIPEmbedderWithCustomWordsBase):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.tokenizer = wrapped.tokenizer
        self.setup_vocab(self.tokenizer)
        self.id_pad = self.id_end

    def encode_with_transformers(self, tokens):
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=-opts.CLIP_stop_at_last_layers)
        if opts.CLIP_stop_at_last_layers > 1:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
            z = text_model(self.wrapped.transformer).final_layer_norm(z)
        else:
            z = outputs.last_hidden_state
        return z

    def encode_embedding_init_text(self, init_text, nvpt):
        embedding_layer = text_model(self.wrapped.transformer).embeddings
        ids = self.wrapped.tokenizer(init_text, max_length=nvpt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        return embedding_layer.token_embedding.wrapped(ids.to(devices.device)).squeeze(0)


class FrozenCLIPEmbedderForSDXLWithCustomWords(FrozenCLIPEmbedderWithCustomWords):
    def encode_with_transformers(self, tokens):
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if opts.sdxl_clip_l_skip is True:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
        elif self.wrapped.layer == "last":
            z = outputs.last_hidden_state
        else:
            z = outputs.hidden_states[self.wrapped.layer_idx]
        return z
