"""Mirrors ``ldm/modules/encoders/modules.py`` of Stability-AI/stablediffusion@cf1d67a (the copy A1111 v1.10.1 pins).

Only the text-encoder wrappers A1111 hijacks: ``FrozenCLIPEmbedder`` (SD1; ``.transformer`` is a
transformers CLIPTextModel) and ``FrozenOpenCLIPEmbedder`` (SD2, an OpenCLIP tower).
"""

from __future__ import annotations

import torch


class FrozenCLIPEmbedder(torch.nn.Module):
    LAYERS = ["last", "pooled", "hidden"]

    def __init__(self, tokenizer, transformer, layer="last", layer_idx=None):
        super().__init__()
        self.tokenizer = tokenizer
        self.transformer = transformer
        self.layer = layer
        self.layer_idx = layer_idx


class FrozenOpenCLIPEmbedder(torch.nn.Module):
    """SD2's text encoder: an OpenCLIP tower stopped ``layer_idx`` blocks before its end, then ``ln_final``.

    Upstream builds ``model`` with ``open_clip.create_model_and_transforms(arch, pretrained=version)``
    and deletes ``model.visual``; the stand-in takes the built text model instead.
    """

    LAYERS = ["last", "penultimate"]

    def __init__(self, model, device="cpu", max_length=77, freeze=True, layer="last"):
        super().__init__()
        assert layer in self.LAYERS
        self.model = model
        self.device = device
        self.max_length = max_length
        if freeze:
            self.freeze()
        self.layer = layer
        if layer == "last":
            self.layer_idx = 0
        elif layer == "penultimate":
            self.layer_idx = 1
        else:
            raise NotImplementedError()

    def freeze(self):
        self.model = self.model.eval()
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, text):
        import open_clip

        return self.encode_with_transformer(open_clip.tokenize(text).to(self.device))

    def encode_with_transformer(self, text):
        x = self.model.token_embedding(text) + self.model.positional_embedding  # NLD
        x = self.text_transformer_forward(x.permute(1, 0, 2), attn_mask=self.model.attn_mask)  # LND in and out
        return self.model.ln_final(x.permute(1, 0, 2))

    def text_transformer_forward(self, x, attn_mask=None):
        blocks = self.model.transformer.resblocks
        stop = len(blocks) - self.layer_idx  # "penultimate": the last block is never run
        for index, block in enumerate(blocks):
            if index == stop:
                break
            x = block(x, attn_mask=attn_mask)
        return x

    def encode(self, text):
        return self(text)
