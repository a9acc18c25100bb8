"""reForge 3b56b268 ``modules_forge`` (only ``forge_clip``, the encoders the extension inspects)."""
