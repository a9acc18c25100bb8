"""Run by the WebUI's launcher before the extension loads.

sd-webui-clipskip needs nothing beyond what every WebUI already ships (torch, transformers,
safetensors, gradio, numpy), so there is nothing to install — and installing any of those here
could replace the WebUI's own pinned versions.
"""
