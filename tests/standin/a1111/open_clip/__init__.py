"""Mirrors the parts of ``open_clip`` (mlfoundations/open_clip @ bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b,
the commit A1111 v1.10.1 installs; ``open-clip-torch==2.20.0``) that the SD2 / SDXL text towers use.

Kept: the text side of ``open_clip.model.CLIP`` (``token_embedding``, ``positional_embedding``,
``transformer.resblocks`` of ``ResidualAttentionBlock`` run sequence-first (LND), the causal
``attn_mask`` buffer, ``ln_final``, ``text_projection``), ``open_clip.tokenize`` and
``open_clip.tokenizer._tokenizer``.  Replaced: ``create_model_and_transforms`` (which downloads
pretrained weights) by ``build_text_model``, seeded random weights with randomised LayerNorms.
"""

from open_clip import tokenizer  # noqa: F401
from open_clip.model import CLIP, build_text_model  # noqa: F401
from open_clip.tokenizer import tokenize  # noqa: F401
from open_clip.transformer import LayerNorm, ResidualAttentionBlock, Transformer  # noqa: F401
