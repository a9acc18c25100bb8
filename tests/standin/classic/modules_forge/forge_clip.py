"""Mirrors ``modules_forge/forge_clip.py`` of Forge Classic (Haoming02/sd-webui-forge-classic 1f95d717;
lllyasviel's Forge before 0ba9f7f3 "Clip Skip to All Models"): the same wrappers as reForge's, on the same
``transformers`` models, but without ``minimal_clip_skip``: SD1 reads the option (``hidden_states[-N]``
and LayerNorm for N > 1), SD2 and SDXL keep their own layer (``layer_idx``, "penultimate" turned into
``hidden``/-2) whatever the option.  ``move_clip_to_gpu``'s body is left out as in ``../reforge``.
"""

from __future__ import annotations

from modules.sd_hijack_clip import FrozenCLIPEmbedderWithCustomWords
from modules.shared import opts


def move_clip_to_gpu():
    """``forge_clip.py:7``: loads the CLIP patcher on the GPU (CPU here)."""


class CLIP_SD_15_L(FrozenCLIPEmbedderWithCustomWords):
    def encode_with_transformers(self, tokens):
        move_clip_to_gpu()
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(input_ids=tokens, output_hidden_states=-opts.CLIP_stop_at_last_layers)
        if opts.CLIP_stop_at_last_layers > 1:
            z = outputs.hidden_states[-opts.CLIP_stop_at_last_layers]
            z = self.wrapped.transformer.text_model.final_layer_norm(z)
        else:
            z = outputs.last_hidden_state
        return z


class _OpenCLIPLike(FrozenCLIPEmbedderWithCustomWords):
    def __init__(self, wrapped, hijack):
        super().__init__(wrapped, hijack)
        if self.wrapped.layer == "penultimate":
            self.wrapped.layer = "hidden"
            self.wrapped.layer_idx = -2
        # 49406 / 49407 in Classic: the stand-in tokenizer's bos / eos (see ../reforge)
        self.id_start = self.wrapped.tokenizer.bos_token_id
        self.id_end = self.wrapped.tokenizer.eos_token_id
        self.id_pad = 0


class CLIP_SD_21_H(_OpenCLIPLike):
    def encode_with_transformers(self, tokens):
        move_clip_to_gpu()
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if self.wrapped.layer == "last":
            z = outputs.last_hidden_state
        else:
            z = outputs.hidden_states[self.wrapped.layer_idx]
            z = self.wrapped.transformer.text_model.final_layer_norm(z)
        return z


class CLIP_SD_XL_L(FrozenCLIPEmbedderWithCustomWords):
    def encode_with_transformers(self, tokens):
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        if self.wrapped.layer == "last":
            return outputs.last_hidden_state
        return outputs.hidden_states[self.wrapped.layer_idx]


class CLIP_SD_XL_G(_OpenCLIPLike):
    def encode_with_transformers(self, tokens):
        self.wrapped.transformer.text_model.embeddings.to(tokens.device)
        outputs = self.wrapped.transformer(tokens, output_hidden_states=self.wrapped.layer == "hidden")
        z = outputs.last_hidden_state if self.wrapped.layer == "last" else outputs.hidden_states[self.wrapped.layer_idx]
        pooled_output = outputs.pooler_output
        text_projection = self.wrapped.text_projection
        z.pooled = pooled_output.float().to(text_projection.device) @ text_projection.float()
        return z
