"""Forge dfdcbab6. Mirrors ``backend/diffusion_engine/base.py``: ``ForgeObjects`` (lines 7-20) and the
engine's three sets of them (``forge_objects``, ``_original``, ``_after_applying_lora``);
``set_clip_skip`` is a no-op by default; flags start False.  The stand-in keeps only ``clip``."""

from backend.patcher.clip import CLIP


class ForgeObjects:
    def __init__(self, unet, clip, vae, clipvision):
        self.unet = unet
        self.clip = clip
        self.vae = vae
        self.clipvision = clipvision

    def shallow_copy(self):
        return ForgeObjects(self.unet, self.clip, self.vae, self.clipvision)


class ForgeDiffusionEngine:
    def __init__(self, text_encoders=None):
        clip = CLIP(model_dict=text_encoders or {})
        self.forge_objects = ForgeObjects(None, clip, None, None)
        self.forge_objects_original = self.forge_objects.shallow_copy()
        self.forge_objects_after_applying_lora = self.forge_objects.shallow_copy()
        self.current_lora_hash = str([])
        self.is_sd1 = False
        self.is_sd2 = False
        self.is_sdxl = False
        self.is_sd3 = False
        self.extra_generation_params = {}
        self.sd_checkpoint_info = None

    def set_clip_skip(self, clip_skip):
        pass
