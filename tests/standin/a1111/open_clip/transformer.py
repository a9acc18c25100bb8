"""Mirrors ``src/open_clip/transformer.py`` (open_clip @ bb6e834e): ``LayerNorm``, ``ResidualAttentionBlock``, ``Transformer``.

Blocks take sequence-first input (LND), as ``nn.MultiheadAttention`` without ``batch_first``,
and are called as ``block(x, attn_mask=mask)``; the pre-norm residual layout is
``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))`` with ``mlp = c_fc -> gelu -> c_proj``.
LayerScale, cross-attention and the vision tower are left out.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.LayerNorm):
    """torch LayerNorm whose output is cast back to the input dtype."""

    def forward(self, x: torch.Tensor):
        dtype = x.dtype
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(dtype)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, mlp_ratio: float = 4.0, act_layer=nn.GELU, norm_layer=LayerNorm):
        super().__init__()
        self.ln_1 = norm_layer(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_2 = norm_layer(d_model)
        hidden = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, hidden)),
            ("gelu", act_layer()),
            ("c_proj", nn.Linear(hidden, d_model)),
        ]))

    def attention(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None):
        mask = None if attn_mask is None else attn_mask.to(x.dtype)
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None):
        x = x + self.attention(self.ln_1(x), attn_mask=attn_mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0, act_layer=nn.GELU, norm_layer=LayerNorm):
        super().__init__()
        self.width = width
        self.layers = layers
        self.grad_checkpointing = False
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_ratio, act_layer=act_layer, norm_layer=norm_layer) for _ in range(layers)]
        )

    def get_cast_dtype(self) -> torch.dtype:
        return self.resblocks[0].mlp.c_fc.weight.dtype

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None):
        for block in self.resblocks:  # LND in, LND out
            x = block(x, attn_mask=attn_mask)
        return x
