"""The only code that knows AUTOMATIC1111 from Forge.

``detect()`` picks an adapter by feature, never by version string: Forge's text encoders run
in ``backend.text_processing`` and its ``sd_model`` carries ``text_processing_engine*`` (so do
Forge Classic and Forge Neo, Haoming02's descendants of that backend); reForge keeps A1111's
pipeline but replaces the encoders with ``modules_forge.forge_clip`` classes; A1111 wraps the
encoders in ``modules.sd_hijack_clip`` classes.  WebUI modules are imported
inside functions only, so this package imports without a WebUI.
"""

from __future__ import annotations

import functools
import importlib.util

from lib_clipskip.hosts.base import EncoderHandle, HostAdapter, LoadedModel

#: what the user calls each host
HOST_LABELS = {"a1111": "AUTOMATIC1111", "forge": "Forge", "reforge": "reForge", "forge-classic": "Forge Classic"}


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def is_forge() -> bool:
    """Forge's ``backend/`` (Forge main, Forge Classic, Forge Neo): ``ClassicTextProcessingEngine``."""
    return _has_module("backend.text_processing.classic_engine")


def is_reforge() -> bool:
    """reForge and Forge Classic (the old-backend Forge both grew from): ``modules_forge/forge_clip.py`` encoders."""
    return _has_module("modules_forge.forge_clip")


def detect() -> HostAdapter:
    if is_forge():
        from lib_clipskip.hosts.forge import ForgeAdapter

        return ForgeAdapter()
    if is_reforge():
        from lib_clipskip.hosts.reforge import ForgeClassicAdapter, ReForgeAdapter, follows_option_everywhere

        return ReForgeAdapter() if follows_option_everywhere() else ForgeClassicAdapter()
    from lib_clipskip.hosts.a1111 import A1111Adapter

    return A1111Adapter()


@functools.lru_cache(maxsize=1)
def current() -> HostAdapter:
    """The running host's adapter (detected once per process)."""
    return detect()


def loaded_model_info():
    """What the running host has loaded now (``plan.ModelInfo``)."""
    adapter = current()
    return adapter.inspect(adapter.current_model()).info


__all__ = ["HOST_LABELS", "EncoderHandle", "HostAdapter", "LoadedModel", "current", "detect", "is_forge", "is_reforge", "loaded_model_info"]
