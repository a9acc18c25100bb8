"""The real panel in a real browser, on whichever gradio the venv has (3.41.2 = A1111, 4.40.0 = Forge).

The app is built the way the WebUI builds the txt2img tab: a prompt box ``#txt2img_prompt``, then
the stand-in's ``ScriptRunner`` running ``scripts/clipskip.py``'s ``ui()``.  The page head gets
what the WebUI injects (``modules/ui_gradio_extensions.py`` patches gradio's template response):
the stand-in ``script.js`` helpers and ``inputAccordion.js``, our ``javascript/*.js`` and ``style.css``.
The loaded model is a small real-CLIP SD1 model with random weights (``tests/webui_models.py``);
the LoRA folder holds a kohya SD1 LoRA trained at clip skip 2 and an unreadable file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
for path in (str(ROOT), str(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

DOCS_IMAGES = ROOT / "docs" / "images"
STANDIN_JS = TESTS / "standin" / "common"
ACCORDION = "script_txt2img_clip_skip_enabled"
SLIDER = "script_txt2img_clip_skip_clip_skip"
SLIDER_G = "script_txt2img_clip_skip_clip_skip_g"
STATUS = "script_txt2img_clip_skip_status"
FILES = "script_txt2img_clip_skip_files"
EXPLORER = "script_txt2img_clip_skip_explorer"
EXPLORE = "script_txt2img_clip_skip_explore"
PLOT = "script_txt2img_clip_skip_plot"


def head_html() -> str:
    scripts = [STANDIN_JS / "script.js", STANDIN_JS / "inputAccordion.js", *sorted((ROOT / "javascript").glob("*.js"))]
    parts = [f"<script>/* {p.name} */\n{p.read_text(encoding='utf-8')}\n</script>" for p in scripts]
    parts.append(f"<style>{(ROOT / 'style.css').read_text(encoding='utf-8')}</style>")
    return "\n".join(parts)


@pytest.fixture
def injected_head():
    """What the WebUI does to get extension JS/CSS into the page: patch gradio's TemplateResponse."""
    import gradio as gr

    original = gr.routes.templates.TemplateResponse
    head = head_html().encode("utf-8")

    def template_response(*args, **kwargs):
        response = original(*args, **kwargs)
        response.body = response.body.replace(b"</head>", head + b"</head>")
        response.init_headers()
        return response

    gr.routes.templates.TemplateResponse = template_response
    yield
    gr.routes.templates.TemplateResponse = original


#: the hosts on each gradio: A1111 and reForge pin 3.41.2, Forge and Forge Neo 4.40.0
HOSTS_ON_GRADIO = {3: ("a1111", "reforge"), 4: ("forge", "neo")}


@pytest.fixture(params=[0, 1], ids=["upstream", "descendant"])
def host_webui(tmp_path, gradio_major, request):
    """The stand-in of a host on this gradio, with an SD1 model and a models folder."""
    import compat_files
    from webui import WebUI

    ui = WebUI(HOSTS_ON_GRADIO[min(gradio_major, 4)][request.param])
    models = tmp_path / "models"
    lora_dir = models / "Lora"
    compat_files.write_kohya_lora(lora_dir / "anime_style.safetensors", family="sd1", clip_skip=2)
    compat_files.write_non_json_header(lora_dir / "broken.safetensors")
    (tmp_path / "embeddings").mkdir()
    ui.shared.models_path = str(models)
    ui.shared.cmd_opts.lora_dir = str(lora_dir)
    ui.shared.cmd_opts.embeddings_dir = str(tmp_path / "embeddings")
    ui.load("sd1")
    yield ui
    ui.close()


def build_app(ui):
    import gradio as gr
    import harness

    with gr.Blocks(theme=harness.offline_theme(), analytics_enabled=False, title="CLIP skip panel") as demo, gr.Row():
        with gr.Column(scale=1):
            gr.Textbox(label="Prompt", elem_id="txt2img_prompt", lines=2, interactive=True)
        with gr.Column(scale=1):
            runner = ui.scripts.ScriptRunner()
            runner.initialize_scripts(False)
            runner.setup_ui()
    ui.runners["txt2img"] = runner
    return demo


def js(browser, script, *args):
    return browser.driver.execute_script(script, *args)


def test_panel_in_the_browser(browser, serve, screenshot, host_webui, injected_head, gradio_major):
    ui = host_webui
    browser.driver.set_window_size(1280, 1000)
    browser.open(serve(build_app(ui)))
    browser.wait_until(lambda: js(browser, "return typeof clipskip === 'object' && typeof inputAccordionChecked === 'function'"),
                       message="our JS (clipskip) and the InputAccordion stand-in were not injected")
    browser.wait_until(lambda: js(browser, f"return !!document.getElementById('{ACCORDION}-visible-checkbox')"),
                       message="inputAccordion.js did not set up the accordion's header checkbox")
    # the first refresh, asked for by our JS once the UI is loaded (the body is hidden: textContent)
    browser.wait_until(lambda: "Model" in js(browser, f"return document.getElementById('{STATUS}').textContent"),
                       message="the panel never refreshed after the UI loaded")
    screenshot("panel_01_closed")

    # open the accordion: InputAccordion ticks its checkbox, the panel says what applies
    browser.open_accordion(ACCORDION)
    browser.wait_for_text(STATUS, "Applies")
    status = browser.wait_for_text(STATUS, "SD 1.x")
    assert "Settings default" in status  # slider at 0 = auto
    from lib_clipskip.hosts import HOST_LABELS, detect

    assert HOST_LABELS[detect().name] in status  # the host it found by its code
    assert js(browser, f"return document.getElementById('{ACCORDION}-visible-checkbox').checked")
    assert not browser.is_visible(SLIDER_G), "the OpenCLIP-G slider makes no sense on SD1"

    # move the slider: the value and its source follow
    browser.set_slider(SLIDER, 1)
    browser.wait_for_text(STATUS, "CLIP ViT-L 1 panel")

    # a prompt with a LoRA trained at clip skip 2 and an unreadable file
    browser.type_text("txt2img_prompt", "a man standing in a forest <lora:anime_style:0.8> <lora:broken:1>")
    browser.wait_for_text(FILES, "trained at clip skip 2")
    files = browser.wait_for_text(FILES, "unreadable")  # typing refreshes as the prompt grows: wait for the whole prompt's list
    assert "anime_style" in files and "trained-clip-skip-mismatch" in files
    assert "broken" in files and "unreadable" in files  # the bad file shows its reason; the rest still shows
    assert js(browser, f"return document.querySelectorAll('#{FILES} .clipskip-row-warning').length") == 1
    assert js(browser, f"return document.querySelectorAll('#{FILES} .clipskip-row-unreadable').length") == 1
    browser.fit_window_to_page()
    keep_for_docs(screenshot("panel_02_warning", ACCORDION), "panel-sd1.png", gradio_major, ui.host)

    # one click applies the file's trained skip to this generation
    browser.click(FILES, ".clipskip-apply")
    browser.wait_until(lambda: browser.value(SLIDER) == "2", message="the Use 2 button did not set the slider")
    browser.wait_for_text(STATUS, "CLIP ViT-L 2 panel")
    browser.wait_for_no_text(FILES, "trained-clip-skip-mismatch")
    screenshot("panel_03_applied", ACCORDION)

    # the layer explorer: one pass, a plot with the current value marked
    browser.open_accordion(EXPLORER)
    browser.click(EXPLORE)
    browser.find_in(PLOT, "svg.clipskip-plot", timeout=60)
    plot_text = browser.wait_for_text(PLOT, "now: 2")
    assert "cosine similarity" in plot_text and "vs skip 1 (last)" in plot_text and "vs previous value" in plot_text
    points = js(browser, f"return document.querySelectorAll('#{PLOT} svg.clipskip-plot circle').length")
    assert points == 12 + 11  # 12 values vs the last layer, 11 vs their neighbour
    browser.fit_window_to_page()
    keep_for_docs(screenshot("panel_04_explorer", PLOT), "layer-explorer.png", gradio_major, ui.host)

    # the model changes to SDXL: the OpenCLIP-G slider appears; back to SD1: it goes again
    ui.load("sdxl")
    js(browser, "clipskip.refresh('txt2img')")
    browser.wait_for_text(STATUS, "SDXL", timeout=60)
    browser.wait_visible(SLIDER_G)
    # the SD 1.x plot must not sit under an SDXL model line: it goes, and a line says why
    stale = browser.wait_for_text(PLOT, "The plot was drawn for SD 1.x")
    assert "the model is now SDXL" in stale
    assert js(browser, f"return document.querySelectorAll('#{PLOT} svg').length") == 0
    screenshot("panel_05_sdxl", ACCORDION)
    ui.load("sd1")
    js(browser, "clipskip.refresh('txt2img')")
    browser.wait_for_text(STATUS, "SD 1.x")
    browser.wait_until(lambda: not browser.is_visible(SLIDER_G), message="the OpenCLIP-G slider stayed on SD1")

    # typing is debounced: a burst of keys costs one refresh, not one per key
    calls = js(browser, """
        window.clipskipTestCalls = 0;
        const sink = document.querySelector('.clipskip-prompt-sink.clipskip-tab-txt2img textarea');
        sink.addEventListener('input', () => { window.clipskipTestCalls += 1; });
        const box = document.querySelector('#txt2img_prompt textarea');
        const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
        for (const text of ['a', 'a c', 'a ca', 'a cat']) {
            setter.call(box, text);
            box.dispatchEvent(new Event('input', {bubbles: true}));
        }
        return window.clipskipTestCalls;""")
    assert calls == 0
    browser.wait_until(lambda: js(browser, "return window.clipskipTestCalls") == 1, timeout=5)
    browser.wait_for_text(FILES, "No LoRA or embedding")


def browser_output(name: str, gradio_major: int) -> Path:
    path = Path(__file__).resolve().parent / "output" / str(gradio_major) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def keep_for_docs(path: Path, name: str, gradio_major: int, host: str) -> Path:
    """Keep a picture in output/; with CLIPSKIP_UPDATE_DOCS=1 the gradio 3.41 (A1111) ones also go to docs/images/."""
    kept = browser_output(name if host in ("a1111", "forge") else f"{host}-{name}", gradio_major)
    shutil.copyfile(path, kept)
    if host == "a1111" and os.environ.get("CLIPSKIP_UPDATE_DOCS"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / name)
    return kept


def test_values_remembered_per_checkpoint_in_the_browser(browser, serve, host_webui, injected_head, tmp_path):
    """Remember on one checkpoint, switch away (the panel gets its values back) and back (they load,
    the accordion opens), and a fresh page (a restart) loads them too; the creator's "Use"."""
    import json

    import compat_files
    import numpy as np

    from lib_clipskip.checkpoint_memory import KEY

    ui = host_webui
    folder = tmp_path / "Stable-diffusion"
    anime = compat_files.write_safetensors(folder / "anime.safetensors", {"w": np.zeros((2,), np.float32)},
                                           {"ss_clip_skip": "2"})
    photo = compat_files.write_safetensors(folder / "photo.safetensors", {"w": np.zeros((2,), np.float32)})
    ui.load("sd1", checkpoint=photo)
    url = serve(build_app(ui))
    browser.open(url)
    browser.wait_until(lambda: "Model" in js(browser, f"return document.getElementById('{STATUS}').textContent"),
                       message="the panel never refreshed after the UI loaded")
    browser.open_accordion(ACCORDION)
    browser.set_slider(SLIDER, 3)
    browser.wait_for_text(STATUS, "CLIP ViT-L 3 panel")
    browser.click("script_txt2img_clip_skip_remember")
    # the click's own message, or (on a loaded machine a refresh can replace it first) the line saying what photo.json holds
    browser.wait_until(lambda: any(text in js(browser, f"return document.getElementById('{STATUS}').textContent")
                                   for text in ("Remembered for this checkpoint in photo.json", "remembered CLIP skip 3 in photo.json")),
                       message="the panel never said what Remember wrote")
    assert json.loads((folder / "photo.json").read_text())[KEY]["clip_skip"] == 3

    # another checkpoint: nothing remembered, the creator's value is offered
    ui.load("sd1", checkpoint=anime)

    def refreshed_to(text: str) -> bool:  # the host's checkpoint change refreshes the panel; here a refresh is asked for
        js(browser, "clipskip.refresh('txt2img')")  # until it lands (one asked while Remember's was in flight can be lost)
        return text in js(browser, f"return document.getElementById('{STATUS}').textContent")

    browser.wait_until(lambda: refreshed_to("The creator recorded Clip skip 2"), poll=1.0,
                       message="the panel never showed the new checkpoint")
    browser.click(STATUS, ".clipskip-use-creator")
    browser.wait_until(lambda: browser.value(SLIDER) == "2", message="Use did not set the slider")

    # back: the remembered values load, the source says so; a fresh page (restart) loads them too
    ui.load("sd1", checkpoint=photo)
    js(browser, "clipskip.refresh('txt2img')")
    browser.wait_until(lambda: browser.value(SLIDER) == "3", message="the remembered value did not load")
    browser.wait_for_text(STATUS, "CLIP ViT-L 3 checkpoint")
    browser.open(url)
    # ticking the accordion's checkbox turns the script on without opening it (as A1111's InputAccordion)
    browser.wait_until(lambda: js(browser, f"return document.getElementById('{ACCORDION}-visible-checkbox').checked"),
                       timeout=30, message="loading did not turn the panel on")
    browser.open_accordion(ACCORDION)
    browser.wait_until(lambda: browser.value(SLIDER) == "3", message="not loaded on a fresh page")
    browser.wait_for_text(STATUS, "remembered CLIP skip 3")
