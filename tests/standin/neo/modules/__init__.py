"""Forge Neo (Haoming02/sd-webui-forge-classic, neo; the copy papaioannou-themistoklis/WebUI-Neo-Forge
7862a96 of 2025-10-05).

Neo keeps Forge's ``backend/`` and its ``modules``; this package holds only the files whose Neo
version differs in what the extension meets, and finds every other module in the Forge stand-in
(``../forge/modules``).  ``prompt_parser``, ``script_callbacks``, ``scripts``, ``ui_components`` and
``ui_loadsave`` are byte for byte Forge's (line endings aside).
"""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "forge" / "modules"))  # noqa: F821 (a package's __path__)
