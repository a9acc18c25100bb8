"""Mirrors ``modules/sd_hijack_open_clip.py`` (A1111 v1.10.1, 82a973c04367123ae98bd9abdf80d9eda9b910e2).

The OpenCLIP wrappers: tokens from ``open_clip.tokenizer._tokenizer`` (start / end from its
``encoder``, pad id 0), and ``encode_with_transformers`` that ignores ``CLIP_stop_at_last_layers``:
SD2 returns ``wrapped.encode_with_transformer(tokens)``; OpenCLIP-G returns
``d[wrapped.layer]`` of the upstream dict with ``d["pooled"]`` attached as ``.pooled``.
(The real ``tokenize`` asserts ``not opts.use_old_emphasis_implementation``; the stand-in's
options have no such entry, so it reads it with a default.)
"""

from __future__ import annotations

import open_clip.tokenizer
import torch
from modules import devices, sd_hijack_clip
from modules.shared import opts

tokenizer = open_clip.tokenizer._tokenizer


def _tokenize(texts):
    assert not getattr(opts, "use_old_emphasis_implementation", False), "Old emphasis implementation not supported for Open Clip"
    return [tokenizer.encode(text) for text in texts]


class FrozenOpenCLIPEmbedderWithCustomWords(sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.comma_token = tokenizer.encoder[",</w>"]
        self.id_start = tokenizer.encoder["<start_of_text>"]
        self.id_end = tokenizer.encoder["<end_of_text>"]
        self.id_pad = 0

    def tokenize(self, texts):
        return _tokenize(texts)

    def encode_with_transformers(self, tokens):
        # the real file has a comment to set wrapped.layer_idx from CLIP_stop_at_last_layers here; it never does
        return self.wrapped.encode_with_transformer(tokens)

    def encode_embedding_init_text(self, init_text, nvpt):
        ids = torch.asarray([tokenizer.encode(init_text)], device=devices.device, dtype=torch.int)
        return self.wrapped.model.token_embedding.wrapped(ids).squeeze(0)


class FrozenOpenCLIPEmbedder2WithCustomWords(sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        self.comma_token = tokenizer.encoder[",</w>"]
        self.id_start = tokenizer.encoder["<start_of_text>"]
        self.id_end = tokenizer.encoder["<end_of_text>"]
        self.id_pad = 0

    def tokenize(self, texts):
        return _tokenize(texts)

    def encode_with_transformers(self, tokens):
        d = self.wrapped.encode_with_transformer(tokens)
        z = d[self.wrapped.layer]
        pooled = d.get("pooled")
        if pooled is not None:
            z.pooled = pooled
        return z

    def encode_embedding_init_text(self, init_text, nvpt):
        weight = self.wrapped.model.token_embedding.wrapped.weight
        ids = torch.asarray([tokenizer.encode(init_text)], device=devices.device, dtype=torch.int)
        return self.wrapped.model.token_embedding.wrapped(ids.to(weight.device)).squeeze(0)
