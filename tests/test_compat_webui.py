"""Issue 10's kinds as the panel and the console show them, inside each host's stand-in."""

from __future__ import annotations

import logging

import compat_files
import compat_layout_files
import pytest

from lib_clipskip import console, panel, prompt_files


@pytest.fixture
def folders(webui, tmp_path):
    models = tmp_path / "models"
    lora, embeddings = models / "Lora", tmp_path / "embeddings"
    lora.mkdir(parents=True)
    embeddings.mkdir()
    webui.shared.models_path = str(models)
    webui.shared.cmd_opts.lora_dir = str(lora)
    webui.shared.cmd_opts.embeddings_dir = str(embeddings)
    prompt_files._indexes.clear()
    console._recent.clear()
    compat_files.write_safetensors(lora / "flux_style.safetensors", compat_layout_files.flux_kohya_tensors(),
                                   compat_layout_files.flux_kohya_metadata())
    meta = compat_files.kohya_metadata("sdxl", None, ss_sd_model_name="ponyDiffusionV6XL_v6StartWithThisOne.safetensors")
    compat_files.write_safetensors(lora / "pony_style.safetensors", compat_files.kohya_lora_tensors("sdxl"), meta)
    compat_layout_files.write_html_page(lora / "broken.safetensors")
    compat_layout_files.write_onetrainer_ti(embeddings / "xlchar.safetensors", "sdxl", output_vectors=True)
    compat_files.write_safetensors(embeddings / "sdcat.safetensors", compat_files.emb_params_tensors(768))
    compat_layout_files.write_preview_png(embeddings / "sdcat.png")  # a preview beside it: never the embedding
    return lora, embeddings


PROMPT = "sdcat and xlchar <lora:flux_style:1> <lora:pony_style:0.8> <lora:broken:1>"


def test_the_panel_says_what_each_file_is(webui, folders):
    webui.load("sd1")
    shown = panel.view(True, 1, 0, PROMPT)
    found = {ref.name: (report.format, report.family, [(w.code, w.message) for w in report.warnings]) for ref, report in shown.files}
    assert found == {
        "flux_style": ("kohya", "flux", [("family-mismatch", "a Flux LoRA, the model is SD1: it will not load as intended")]),
        "pony_style": ("kohya", "sdxl", [("family-mismatch", "an SDXL LoRA (trained on Pony Diffusion, an SDXL model), the model "
                                                             "is SD1: its weights do not fit and it will not load as intended")]),
        "broken": (None, "unknown", [("unreadable", "an HTML page (a download that failed or needed a login), not a safetensors file")]),
        "sdcat": ("emb-params", "sd1", []),
        "xlchar": ("onetrainer", "sdxl", [("family-mismatch", "an SDXL embedding: on SD1 the WebUI skips it and its name stays "
                                                              "in the prompt as literal text")]),
    }
    html = panel.files_html(shown, "slider")
    assert "a Flux LoRA, the model is SD1" in html and "an HTML page" in html and "OneTrainer textual inversion" in html


def test_the_console_says_it_at_generation(webui, folders, caplog):
    webui.load("sdxl")
    caplog.set_level(logging.WARNING, logger="sd-webui-clipskip")
    webui.run(webui.txt2img(PROMPT, enabled=True, clip_skip=2))
    text = caplog.text
    assert "flux_style [family-mismatch]: a Flux LoRA, the model is SDXL: it will not load as intended" in text
    assert "broken [unreadable]: an HTML page" in text
    assert "sdcat [family-mismatch]: an SD1 embedding: on SDXL the WebUI skips it" in text
    # both made for SDXL: no family-mismatch (pony_style's CLIP-L layer 11 is unused at 2, and says so)
    assert "xlchar" not in text and "pony_style [family-mismatch]" not in text
