"""The panel: built from the WebUI's own components; gradio is imported only when it is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AUTO_INFO = "0 = auto: the Settings default for the loaded model"


@dataclass
class Panel:
    enabled: Any
    clip_skip: Any
    clip_skip_g: Any
    status: Any
    extra: list[Any] = field(default_factory=list)

    @property
    def inputs(self) -> list[Any]:
        """The script args, in the order the API's ``alwayson_scripts`` args use."""
        return [self.enabled, self.clip_skip, self.clip_skip_g]


def build(elem_id: Callable[[str], str], input_accordion: Callable[..., Any], title: str) -> Panel:
    import gradio as gr

    with input_accordion(False, label=title, elem_id=elem_id("enabled")) as enabled:
        with gr.Row(elem_classes=["clipskip-row"]):
            clip_skip = gr.Slider(
                minimum=0, maximum=12, step=0.05, value=0, label="CLIP skip",
                info=f"1 = last layer, 2 = penultimate; fractions blend neighbouring layers. {AUTO_INFO}",
                elem_id=elem_id("clip_skip"), elem_classes=["clipskip-slider"])
            clip_skip_g = gr.Slider(
                minimum=0, maximum=32, step=0.05, value=0, label="SDXL OpenCLIP-G",
                info="0 = same as CLIP skip (or the Settings default when that is auto)",
                elem_id=elem_id("clip_skip_g"), elem_classes=["clipskip-slider"])
        status = gr.HTML(value="", elem_id=elem_id("status"), elem_classes=["clipskip-status"])
    return Panel(enabled, clip_skip, clip_skip_g, status)
