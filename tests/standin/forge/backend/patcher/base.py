"""Forge dfdcbab6. Mirrors ``backend/patcher/base.py`` (``ModelPatcher``: ``clone``, ``add_patches``,
``refresh_loras``) and ``backend/patcher/lora.py`` (``LoraLoader.refresh``) as far as LoRA weights go.

One ``LoraLoader`` per model, shared by every clone of its patcher: ``refresh`` puts the model's
weights back from its backup, then merges the given patches into new ``Parameter`` objects
(``utils.set_attr_raw``).  A clone without the LoRA's patches therefore restores the original
weights the next time it is loaded.  Left out: devices, offloading, online LoRA, non-"diff"
patch types, object patches.
"""

from __future__ import annotations

import torch


def _owner(model, key):
    *path, name = key.split(".")
    module = model
    for part in path:
        module = getattr(module, part)
    return module, name


class LoraLoader:
    def __init__(self, model):
        self.model = model
        self.backup = {}
        self.loaded_hash = str([])

    def refresh(self, lora_patches, offload_device=None):
        hashes = str(list(lora_patches.keys()))
        if hashes == self.loaded_hash:
            return
        for key, weight in self.backup.items():
            module, name = _owner(self.model, key)
            setattr(module, name, torch.nn.Parameter(weight, requires_grad=False))
        self.backup = {}
        merged = {}
        for (_filename, strength_patch, strength_model, _online), this_patches in lora_patches.items():
            for key, patches in this_patches.items():
                for _strength, (kind, delta), _model_strength, _offset, _function in patches:
                    assert kind == "diff"
                    merged.setdefault(key, []).append(strength_patch * delta)
        for key, deltas in merged.items():
            module, name = _owner(self.model, key)
            weight = getattr(module, name)
            self.backup[key] = weight.detach().clone()
            setattr(module, name, torch.nn.Parameter(weight.detach() * strength_model + sum(deltas), requires_grad=False))
        self.loaded_hash = hashes


class ModelPatcher:
    def __init__(self, model):
        self.model = model
        self.lora_patches = {}
        if not hasattr(model, "lora_loader"):
            model.lora_loader = LoraLoader(model)
        self.lora_loader = model.lora_loader

    def clone(self):
        n = ModelPatcher(self.model)
        n.lora_patches = self.lora_patches.copy()
        return n

    def add_patches(self, *, filename, patches, strength_patch=1.0, strength_model=1.0, online_mode=False):
        lora_identifier = (filename, strength_patch, strength_model, online_mode)
        model_keys = {k for k, _ in self.model.named_parameters()}
        this_patches, loaded = {}, set()
        for key, patch in patches.items():
            if key in model_keys:
                loaded.add(key)
                this_patches.setdefault(key, []).append([strength_patch, patch, strength_model, None, None])
        self.lora_patches[lora_identifier] = this_patches
        return loaded

    def refresh_loras(self):
        self.lora_loader.refresh(lora_patches=self.lora_patches)
