"""Forge Classic (Haoming02/sd-webui-forge-classic, branch ``classic``, 1f95d717).

Classic archives Forge before gradio 4 on A1111's ``modules``; only ``modules_forge/forge_clip.py`` is
its own here, every module comes from the A1111 stand-in (``../a1111/modules``).
"""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "a1111" / "modules"))  # noqa: F821 (a package's __path__)
