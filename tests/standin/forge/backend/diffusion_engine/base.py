"""Forge dfdcbab6. Mirrors ``backend/diffusion_engine/base.py``: ``set_clip_skip`` is a no-op by default; flags start False."""


class ForgeDiffusionEngine:
    def __init__(self):
        self.is_sd1 = False
        self.is_sd2 = False
        self.is_sdxl = False
        self.is_sd3 = False
        self.extra_generation_params = {}
        self.sd_checkpoint_info = None

    def set_clip_skip(self, clip_skip):
        pass
