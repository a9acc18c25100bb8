"""Forge Classic 1f95d717 ``modules_forge`` (only ``forge_clip``, the encoders the extension inspects)."""
