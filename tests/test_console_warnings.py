"""At generation, the prompt's LoRA / embedding warnings go to the console (Settings toggle)."""

import logging

import compat_files
import pytest

from lib_clipskip import console


@pytest.fixture
def lora_folder(webui, tmp_path):
    lora = tmp_path / "models" / "Lora"
    lora.mkdir(parents=True)
    (tmp_path / "embeddings").mkdir()
    webui.shared.cmd_opts.lora_dir = str(lora)
    webui.shared.cmd_opts.embeddings_dir = str(tmp_path / "embeddings")
    compat_files.write_kohya_lora(lora / "anime.safetensors", family="sd1", clip_skip=2)
    console._recent.clear()
    return lora


def test_warnings_of_the_prompts_loras_reach_the_console_once(webui, lora_folder, caplog):
    webui.load("sd1")
    caplog.set_level(logging.WARNING, logger="sd-webui-clipskip")
    webui.run(webui.txt2img("a cat <lora:anime:0.8> <lora:missing:1>", enabled=True, clip_skip=1))
    text = caplog.text
    assert "anime [trained-clip-skip-mismatch]: trained at clip skip 2" in text
    assert "missing: not found" in text
    caplog.clear()
    webui.run(webui.txt2img("a cat <lora:anime:0.8>", enabled=True, clip_skip=1))
    assert "trained-clip-skip-mismatch" not in caplog.text  # said a moment ago: not repeated for every image
    webui.run(webui.txt2img("a cat <lora:anime:0.8>", enabled=True, clip_skip=2))
    assert "trained-clip-skip-mismatch" not in caplog.text  # trained at 2, generating at 2: nothing to say


def test_no_console_warnings_when_turned_off_or_disabled(webui, lora_folder, caplog):
    webui.load("sd1")
    caplog.set_level(logging.WARNING, logger="sd-webui-clipskip")
    webui.run(webui.txt2img("a cat <lora:anime:0.8>", enabled=False, clip_skip=1))
    webui.shared.opts.clipskip_console_warnings = False
    webui.run(webui.txt2img("a cat <lora:anime:0.8>", enabled=True, clip_skip=1))
    assert "trained-clip-skip-mismatch" not in caplog.text


def test_the_negative_prompts_embeddings_and_lora_tags_are_checked_too(webui, lora_folder, caplog):
    webui.load("sd1")
    embeddings = lora_folder.parent.parent / "embeddings"
    compat_files.write_a1111_pt_embedding(embeddings / "badhands.pt", width=1024)  # an SD2 embedding
    caplog.set_level(logging.WARNING, logger="sd-webui-clipskip")
    webui.run(webui.txt2img("a cat", negative_prompt="badhands, blurry <lora:anime:1>", enabled=True, clip_skip=2,
                            clip_skip_negative="1"))
    text = caplog.text
    assert "negative prompt: badhands [" in text and "an SD2 embedding" in text
    assert "negative prompt: anime: a LoRA tag in the negative prompt is not applied" in text
