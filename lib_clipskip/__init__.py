"""sd-webui-clipskip: per-generation CLIP skip for the Stable Diffusion WebUIs.

This package is the extension's brain. It imports nothing from the WebUI or gradio at module
level, so it can be tested and used (``python -m lib_clipskip``) without a WebUI.
"""

__version__ = "0.1.0"
