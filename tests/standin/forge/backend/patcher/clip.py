"""Forge dfdcbab6. Mirrors ``backend/patcher/clip.py``: ``CLIP`` holds the text encoders as one
``JointTextEncoder`` (a ModuleDict keyed "clip_l" / "clip_g" / "clip_h") and their ``ModelPatcher``;
``clone`` shares the modules and copies the patches."""

from __future__ import annotations

import torch
from backend.patcher.base import ModelPatcher


class JointTextEncoder(torch.nn.ModuleDict):
    pass


class CLIP:
    def __init__(self, model_dict=None, no_init=False):
        if no_init:
            return
        self.cond_stage_model = JointTextEncoder(model_dict or {})
        self.patcher = ModelPatcher(self.cond_stage_model)

    def clone(self):
        n = CLIP(no_init=True)
        n.patcher = self.patcher.clone()
        n.cond_stage_model = self.cond_stage_model
        return n

    def add_patches(self, *args, **kwargs):
        return self.patcher.add_patches(*args, **kwargs)
