"""Mirrors ``sgm/modules/encoders/modules.py`` of Stability-AI/generative-models@45c443b (the copy A1111 v1.10.1 pins).

``FrozenCLIPEmbedder`` as SDXL configures it (``layer: hidden``, ``layer_idx: 11``), and the
``GeneralConditioner`` holding the embedders.  ``FrozenOpenCLIPEmbedder2`` (OpenCLIP-G) lives
beside it.
"""

from __future__ import annotations

import torch


class FrozenCLIPEmbedder(torch.nn.Module):
    def __init__(self, tokenizer, transformer, layer="hidden", layer_idx=11, always_return_pooled=False):
        super().__init__()
        self.tokenizer = tokenizer
        self.transformer = transformer
        self.layer = layer
        self.layer_idx = layer_idx
        self.return_pooled = always_return_pooled
        self.input_key = "txt"
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.legacy_ucg_val = None


class GeneralConditioner(torch.nn.Module):
    def __init__(self, embedders):
        super().__init__()
        self.embedders = torch.nn.ModuleList(embedders)


class FrozenOpenCLIPEmbedder2(torch.nn.Module):
    """SDXL's OpenCLIP-G (and the refiner's): every block runs; the layers come back as a dict.

    With ``legacy=False`` (what ``sd_xl_base.yaml`` / ``sd_xl_refiner.yaml`` configure, with
    ``layer: penultimate`` and ``always_return_pooled: True``) ``encode_with_transformer`` returns
    ``{"penultimate": raw NLD, "last": raw NLD, "pooled": ln_final(last)[eot] @ text_projection}``.
    Upstream builds ``model`` with ``open_clip.create_model_and_transforms``; the stand-in takes it built.
    """

    LAYERS = ["pooled", "last", "penultimate"]

    def __init__(self, model, device="cpu", max_length=77, freeze=True, layer="last", always_return_pooled=False, legacy=True):
        super().__init__()
        assert layer in self.LAYERS
        self.model = model
        self.device = device
        self.max_length = max_length
        self.return_pooled = always_return_pooled
        self.input_key = "txt"
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.legacy_ucg_val = None
        if freeze:
            self.freeze()
        self.layer = layer
        if layer == "last":
            self.layer_idx = 0
        elif layer == "penultimate":
            self.layer_idx = 1
        else:
            raise NotImplementedError()
        self.legacy = legacy

    def freeze(self):
        self.model = self.model.eval()
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, text):
        import open_clip

        z = self.encode_with_transformer(open_clip.tokenize(text).to(self.device))
        if not self.return_pooled and self.legacy:
            return z
        if self.return_pooled:
            assert not self.legacy
            return z[self.layer], z["pooled"]
        return z[self.layer]

    def encode_with_transformer(self, text):
        x = self.model.token_embedding(text) + self.model.positional_embedding  # NLD
        layers = self.text_transformer_forward(x.permute(1, 0, 2), attn_mask=self.model.attn_mask)
        if self.legacy:
            return self.model.ln_final(layers[self.layer])
        layers["pooled"] = self.pool(self.model.ln_final(layers["last"]), text)  # "last" itself stays raw
        return layers

    def pool(self, x, text):
        # the end token has the highest id, so argmax finds it in every row
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.model.text_projection

    def text_transformer_forward(self, x, attn_mask=None):
        outputs = {}
        blocks = self.model.transformer.resblocks
        for index, block in enumerate(blocks):
            if index == len(blocks) - 1:
                outputs["penultimate"] = x.permute(1, 0, 2)  # LND -> NLD, before the last block
            x = block(x, attn_mask=attn_mask)
        outputs["last"] = x.permute(1, 0, 2)
        return outputs

    def encode(self, text):
        return self(text)
