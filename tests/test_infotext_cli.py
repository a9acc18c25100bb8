"""``python -m lib_clipskip infotext``: output, the ``--json`` shape, exit codes, images, and that it
runs with torch, transformers, gradio and Pillow all unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tool_images as ti
from tool_cases import CASES

from lib_clipskip.__main__ import main

REPO = Path(__file__).resolve().parents[1]
KEYS = {"tool", "recorded", "layers", "apply", "equivalents", "notes"}


def cli(*argv, stdin=None, block=("torch", "transformers", "gradio", "PIL"), tmp=None):
    """The CLI in a fresh interpreter where ``block`` can't be imported."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if block and tmp is not None:
        blocker = Path(tmp) / "blocker"
        blocker.mkdir(exist_ok=True)
        (blocker / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block))
        env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO)])
    return subprocess.run([sys.executable, "-m", "lib_clipskip", "infotext", *map(str, argv)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_issue_case_1_as_json(tmp_path):
    proc = cli("--json", "--model", "sdxl", ti.image_saver_text("sdxl", 1), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == KEYS
    assert data["tool"] == "comfyui-saver" and data["recorded"] == {"Clip skip": 1}
    assert data["layers"] == {"clip_l": 1, "clip_g": 1}
    assert data["apply"] == {"host": "a1111", "model": "sdxl", "enabled": True, "clip_skip": 1, "clip_skip_g": None,
                             "host_clip_skip": None, "layers": {"clip_l": 1, "clip_g": 1}}
    assert data["equivalents"] == {"a1111": None, "forge": None, "reforge": None, "comfyui": -1, "diffusers": None}
    assert any("CLIPSetLastLayer -1" in note for note in data["notes"])


@pytest.mark.parametrize("host, enabled, host_clip_skip", [("a1111", False, 2), ("forge", True, 1), ("reforge", False, 2)])
def test_issue_case_2_per_host(capsys, host, enabled, host_clip_skip):
    assert main(["infotext", "--json", "--model", "sd2", "--host", host, ti.webui_text("sd2", 2)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tool"] == "a1111" and data["layers"] == {"clip_h": 2}
    assert (data["apply"]["enabled"], data["apply"]["host_clip_skip"]) == (enabled, host_clip_skip)
    assert data["apply"]["layers"] == {"clip_h": 2}
    assert data["equivalents"] == {"a1111": 1, "forge": 1, "reforge": 1, "comfyui": -2, "diffusers": 0}


def test_issue_cases_3_and_4(capsys):
    assert main(["infotext", "--json", "--model", "sd1", ti.webui_text("sd1", 2, extra=[("TripClipSkip_value", 1.35),
                                                                                     ("TripClipSkip_type", "lerp")])]) == 0
    trip = json.loads(capsys.readouterr().out)
    assert trip["tool"] == "tripclipskip" and trip["layers"] == {"clip_l": 1.35}
    assert trip["recorded"] == {"TripClipSkip_value": 1.35, "TripClipSkip_type": "lerp", "Clip skip": 2}
    assert trip["equivalents"] == {"a1111": None, "forge": None, "reforge": None, "comfyui": None, "diffusers": None}
    assert main(["infotext", "--json", "--model", "sdxl", "--host", "forge", ti.webui_text("sdxl", 3)]) == 0
    xl = json.loads(capsys.readouterr().out)
    assert xl["layers"] == {"clip_l": 2, "clip_g": 2} and xl["apply"]["enabled"] is True
    assert any("Clip skip SDXL" in note for note in xl["notes"])
    # reForge: its own Clip skip 3 moves both SDXL encoders to 3 (forge_clip.py), so a paste needs no panel
    assert main(["infotext", "--json", "--model", "sdxl", "--host", "reforge", ti.webui_text("sdxl", 3, ti.REFORGE_VERSION)]) == 0
    re_xl = json.loads(capsys.readouterr().out)
    assert re_xl["layers"] == {"clip_l": 3, "clip_g": 3} and re_xl["apply"]["enabled"] is False
    assert re_xl["apply"]["host_clip_skip"] == 3 and re_xl["equivalents"]["reforge"] == 3


def test_human_output(capsys):
    assert main(["infotext", "--model", "sd2", "--host", "forge", ti.webui_text("sd2", 2)]) == 0
    out = capsys.readouterr().out
    assert "tool: AUTOMATIC1111 (Version v1.10.1)" in out and "records: Clip skip: 2" in out
    assert "layers (SD 2.x): 2" in out and "applies on Forge: panel on at 2; Forge's Clip skip 1" in out
    assert ("equivalents: AUTOMATIC1111 Clip skip 1, Forge Clip skip 1, reForge Clip skip 1, ComfyUI CLIPSetLastLayer -2, "
            "diffusers clip_skip 0") in out


def test_every_image_case_through_the_cli(tmp_path):
    """All image cases in one run (one JSON object per line, in argument order), with torch,
    transformers, gradio and Pillow unimportable."""
    images = [c for c in CASES if c.kind == "image" and c.family == "sdxl"]
    paths = [c.make(tmp_path / f"{i}.img") for i, c in enumerate(images)]
    proc = cli("--json", "--model", "sdxl", *paths, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(images)
    for case, row in zip(images, rows):
        assert set(row) == KEYS
        expected = None if case.expected is None else {k: int(v) if v.is_integer() else v for k, v in case.expected.items()}
        assert row["layers"] == expected, case.name
    assert "Traceback" not in proc.stderr


def test_family_from_the_image_and_a_guess_from_the_model_name(capsys, tmp_path):
    png = ti.invokeai_png(tmp_path / "i.png", "sd-2", 1)
    assert main(["infotext", "--json", str(png)]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == {"clip_h": 3}
    assert main(["infotext", "--json", "--model", "sd1", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"] == {"clip_h": 3} and any("records SD 2.x" in n for n in data["notes"])
    assert main(["infotext", "--json", ti.image_saver_text("sdxl", 1).replace("sd_xl_base_1.0", "ponyDiffusionV6XL")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["apply"]["model"] == "sdxl" and any("assumed SDXL" in n for n in data["notes"])
    assert main(["infotext", "--json", ti.webui_text("sd1", 2)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["apply"]["model"] == "sd1" and any("assumed SD 1.x" in n for n in data["notes"])


def test_stdin_text_files_and_images_without_parameters(tmp_path):
    proc = cli("--json", "-", stdin=ti.sdnext_text("sdxl", 1.5), tmp=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["tool"] == "sdnext"
    params = tmp_path / "params.txt"
    params.write_text(ti.webui_text("sd1", 3, ti.FORGE_VERSION))
    blank = ti.png(tmp_path / "blank.png", {})
    proc = cli("--json", params, blank, tmp=tmp_path)
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["tool"] == "forge" and first["layers"] == {"clip_l": 3}
    assert any("read as a parameters text" in n for n in first["notes"])
    assert second["tool"] == "unknown" and second["layers"] is None and proc.returncode == 0


@pytest.mark.parametrize("argv", [
    ["infotext"], ["infotext", "--model", "sd3", "x"], ["infotext", "--host", "comfy", "x"],
    ["infotext", "/no/such/image.png"], ["infotext", "README.md", "/no/such/file"],
])
def test_usage_errors_exit_2(argv):
    os.chdir(REPO)
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2


def test_exit_codes_as_a_process(tmp_path):
    assert cli("/no/such/image.png", tmp=tmp_path).returncode == 2
    assert cli(tmp_path / "missing.webp", ti.png(tmp_path / "a.png", {}), tmp=tmp_path).returncode == 2
    hostile = tmp_path / "hostile.png"
    hostile.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 64)
    proc = cli(hostile, tmp=tmp_path)
    assert proc.returncode == 0 and "ends early" in proc.stdout


def test_a_prompt_without_parameters_is_not_read_as_a_default(capsys):
    assert main(["infotext", "--json", "a cat, masterpiece\nNegative prompt: blurry"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tool"] == "unknown" and data["layers"] is None and data["recorded"] == {}
    assert any("No generation parameters" in note for note in data["notes"])
