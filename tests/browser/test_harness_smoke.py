"""Smoke test of the browser harness itself: the same interactions the panel test needs
(accordion, checkbox, slider, textbox -> HTML, button -> inline-SVG plot), on whichever
gradio the running venv has."""

from __future__ import annotations

import html
import math

import pytest

pytestmark = pytest.mark.browser


def _status(enabled: bool, skip: float, prompt: str) -> str:
    return (
        "<div class='smoke-status'>"
        f"enabled: {'yes' if enabled else 'no'} | skip: {int(skip)} | prompt: {html.escape(prompt or '')}"
        "</div>"
    )


def _svg_plot(skip: float) -> str:
    """A tiny line plot as inline SVG, the way the panel draws without matplotlib."""
    xs = list(range(1, 13))
    ys = [math.exp(-0.25 * (x - 1)) for x in xs]
    w, h, pad = 360, 160, 24

    def px(x, y):
        return pad + (x - 1) * (w - 2 * pad) / 11, h - pad - y * (h - 2 * pad)

    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in zip(xs, ys)))
    cx, cy = px(int(skip), ys[int(skip) - 1])
    return (
        f"<svg class='smoke-plot' xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
        f"aria-label='similarity per skip value' style='background:#fff'>"
        "<title>similarity to last layer per skip value</title>"
        f"<polyline points='{pts}' fill='none' stroke='#1f77b4' stroke-width='2'/>"
        f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='5' fill='#d62728'/>"
        f"<text x='{pad}' y='14' font-size='12' fill='#333'>skip {int(skip)} marked</text>"
        "</svg>"
    )


def build_smoke_ui():
    import gradio as gr

    with gr.Accordion("Smoke panel", open=False, elem_id="smoke_acc"):
        enable = gr.Checkbox(label="Enable", value=False, elem_id="smoke_enable")
        skip = gr.Slider(1, 12, value=1, step=1, label="Skip", elem_id="smoke_skip")
        prompt = gr.Textbox(label="Prompt", elem_id="smoke_prompt")
        status = gr.HTML(_status(False, 1, ""), elem_id="smoke_status")
        plot_btn = gr.Button("Draw plot", elem_id="smoke_plot_btn")
        plot = gr.HTML("<p>no plot yet</p>", elem_id="smoke_plot")
    for comp in (enable, skip, prompt):
        comp.change(_status, inputs=[enable, skip, prompt], outputs=[status])
    plot_btn.click(_svg_plot, inputs=[skip], outputs=[plot])


def test_harness_drives_gradio(browser, serve, screenshot, gradio_major):
    browser.open(serve(build_smoke_ui))
    browser.fit_window_to_page()
    screenshot("01_closed")
    assert not browser.is_visible("smoke_enable"), "accordion should start closed"

    browser.open_accordion("smoke_acc")
    browser.wait_visible("smoke_enable")

    browser.set_checkbox("smoke_enable", True)
    browser.wait_for_text("smoke_status", "enabled: yes")

    browser.set_slider("smoke_skip", 3)
    browser.wait_for_text("smoke_status", "skip: 3")
    assert browser.value("smoke_skip") == "3"

    browser.type_text("smoke_prompt", "a man standing <lora:detail:0.5>")
    browser.wait_for_text("smoke_status", "prompt: a man standing <lora:detail:0.5>")
    assert browser.value("smoke_prompt") == "a man standing <lora:detail:0.5>"

    browser.click("smoke_plot_btn")
    # Not a bare "svg": the output's loading spinner is an <svg> inside the same elem_id.
    svg = browser.find_in("smoke_plot", "svg.smoke-plot", visible=True)
    assert svg.get_attribute("aria-label") == "similarity per skip value"
    browser.wait_for_text("smoke_plot", "skip 3 marked")

    browser.fit_window_to_page()
    full = screenshot("02_open_filled")
    plot_png = screenshot("03_plot", elem_id="smoke_plot")
    for p in (full, plot_png):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gradio_major in (3, 4)


def test_wait_for_text_reports_element_text(browser, serve):
    """A timeout must say what the element did contain."""
    browser.open(serve(build_smoke_ui))
    with pytest.raises(AssertionError, match=r"element text was: 'enabled: no"):
        browser.wait_for_text("smoke_status", "never there", timeout=0.5)
