"""Mirrors the text side of ``open_clip.model.CLIP`` (open_clip @ bb6e834e) as the SD wrappers see it.

The upstream ``FrozenOpenCLIPEmbedder`` / ``FrozenOpenCLIPEmbedder2`` build a ``CLIP`` and delete
its ``visual``; what is left, and what they read, is here: ``token_embedding``,
``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection`` and the causal
``attn_mask`` buffer (``-inf`` above the diagonal).  Weights follow ``CLIP.init_parameters``'
scheme with a seed; ``build_text_model`` (not an open_clip function) also randomises every
LayerNorm, so that a missing or extra final LayerNorm shows in a test.
"""

from __future__ import annotations

import torch
from torch import nn

from open_clip.transformer import LayerNorm, Transformer


def build_attention_mask(context_length: int) -> torch.Tensor:
    mask = torch.empty(context_length, context_length)
    mask.fill_(float("-inf"))
    mask.triu_(1)  # zero on and below the diagonal
    return mask


class CLIP(nn.Module):
    def __init__(self, embed_dim: int, width: int, layers: int, heads: int, vocab_size: int, context_length: int = 77):
        super().__init__()
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.transformer = Transformer(width, layers, heads)
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.register_buffer("attn_mask", build_attention_mask(context_length), persistent=False)
        self.init_parameters()

    def init_parameters(self):
        width, layers = self.transformer.width, self.transformer.layers
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = (width ** -0.5) * ((2 * layers) ** -0.5)
        attn_std = width ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def encode_text(self, text: torch.Tensor, normalize: bool = False):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2), attn_mask=self.attn_mask).permute(1, 0, 2)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return nn.functional.normalize(x, dim=-1) if normalize else x


def build_text_model(width: int, layers: int, heads: int, vocab_size: int, embed_dim: int | None = None,
                     context_length: int = 77, seed: int = 0) -> CLIP:
    """A text-only ``CLIP`` with seeded random weights and random LayerNorm parameters, frozen, in eval mode."""
    torch.manual_seed(seed)
    model = CLIP(embed_dim or width, width, layers, heads, vocab_size, context_length)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    model.requires_grad_(False)
    return model.eval()
