"""reForge main (Panchovix/stable-diffusion-webui-reForge 3b56b268ad9158ee8b30900973b6ccda4ec22241).

reForge is A1111 v1.10's ``modules`` with a few files changed; this package holds only the
files whose reForge version differs in what the extension meets, and finds every other module in
the A1111 stand-in (``../a1111/modules``), which mirrors the code reForge kept.
"""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "a1111" / "modules"))  # noqa: F821 (a package's __path__)
