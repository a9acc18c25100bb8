"""``python -m lib_clipskip check``: output, JSON shape, exit codes, folder scans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from compat_files import (
    emb_params_tensors,
    png_bytes,
    write_empty,
    write_kohya_lora,
    write_png_embedding,
    write_safetensors,
)

from lib_clipskip.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def lora_dir(tmp_path):
    folder = tmp_path / "Lora"
    write_kohya_lora(folder / "anime.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    write_kohya_lora(folder / "nested" / "real.safetensors", "sd1", clip_skip=None)
    (folder / "anime.png").write_bytes(png_bytes())  # a preview: not reported
    write_png_embedding(folder / "ti.png")  # an embedding: reported
    return folder


def test_json_output_shape(capsys, lora_dir):
    code, out, _ = run(capsys, "check", "--json", "--model", "sd1", "--clip-skip", "2", str(lora_dir))
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"model", "clip_skip", "clip_skip_g", "files"}
    assert (data["model"], data["clip_skip"], data["clip_skip_g"]) == ("sd1", 2, None)
    by_name = {os.path.basename(f["path"]): f for f in data["files"]}
    assert sorted(by_name) == ["anime.safetensors", "real.safetensors", "ti.png"]
    anime = by_name["anime.safetensors"]
    assert {
        k: anime[k]
        for k in (
            "kind",
            "format",
            "family",
            "trained_clip_skip",
            "trained_clip_skip_source",
            "error",
        )
    } == {
        "kind": "lora",
        "format": "kohya",
        "family": "sd1",
        "trained_clip_skip": 2,
        "trained_clip_skip_source": "metadata",
        "error": None,
    }
    assert anime["te_layers"] == {"clip_l": list(range(12))}
    assert anime["warnings"] == []
    real = by_name["real.safetensors"]
    assert [w["code"] for w in real["warnings"]] == [
        "trained-clip-skip-mismatch",
        "te-layers-skipped",
    ]
    assert by_name["ti.png"]["kind"] == "embedding"


def test_human_output_and_strict(capsys, lora_dir, tmp_path):
    bad = write_empty(tmp_path / "bad.safetensors")
    code, out, _ = run(capsys, "check", "--clip-skip", "2", str(lora_dir), str(bad))
    assert code == 0
    lines = out.splitlines()
    anime = next(i for i, line in enumerate(lines) if "anime.safetensors" in line)
    assert "kohya LoRA for SD1" in lines[anime] and "trained at clip skip 2 (ss_clip_skip=2)" in lines[anime]
    bad_line = next(i for i, line in enumerate(lines) if "bad.safetensors" in line)
    assert lines[bad_line].endswith(": unreadable")
    assert lines[bad_line + 1] == "  error[unreadable]: an empty file (0 bytes)"
    assert run(capsys, "check", "--strict", "--clip-skip", "2", str(lora_dir))[0] == 1
    clean = write_kohya_lora(
        tmp_path / "clean" / "c.safetensors",
        "sd1",
        clip_skip=2,
        zero_layers={"clip_l": [11]},
    )
    assert run(capsys, "check", "--strict", "--clip-skip", "2", str(clean))[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--clip-skip", "0", "x"],
        ["check", "--clip-skip", "abc", "x"],
        ["check", "--model", "sd3", "x"],
        ["check", "--model", "sd1", "--clip-skip", "13", "x"],
        ["check", "/no/such/path"],
        [],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2


def test_without_path_outside_a_webui(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "check")
    assert code == 2
    assert "name the files or folders to check" in err


def test_without_path_inside_a_webui(capsys, tmp_path, monkeypatch):
    (tmp_path / "webui.py").write_text("")
    write_kohya_lora(tmp_path / "models" / "Lora" / "a.safetensors", "sd1", clip_skip=2)
    write_safetensors(tmp_path / "embeddings" / "e.safetensors", emb_params_tensors(768))
    write_kohya_lora(tmp_path / "elsewhere" / "not_scanned.safetensors", "sd1")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "check", "--json")
    assert code == 0
    names = sorted(os.path.basename(f["path"]) for f in json.loads(out)["files"])
    assert names == ["a.safetensors", "e.safetensors"]


def test_runs_as_a_module_with_torch_blocked(tmp_path):
    """Only numpy needed: with torch unimportable, .pt files are still read (by the
    restricted unpickler), and a broken one says what it is."""
    write_kohya_lora(tmp_path / "a.safetensors", "sd1", clip_skip=2)
    (tmp_path / "ti.pt").write_bytes(b"PK\x03\x04 not really")
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]))
    proc = subprocess.run(
        [sys.executable, "-m", "lib_clipskip", "check", "--json", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    files = {os.path.basename(f["path"]): f for f in json.loads(proc.stdout)["files"]}
    assert files["ti.pt"]["error"] == "a truncated zip (the end of the archive is missing: an interrupted download?)"
    assert files["a.safetensors"]["trained_clip_skip"] == 2
    assert "torch" not in proc.stderr


def test_every_kind_in_json(capsys, tmp_path):
    """Issue 10's kinds through ``check --json --model sd1``, one file each."""
    pytest.importorskip("torch")
    from compat_layout_files import (
        flux_kohya_metadata,
        flux_kohya_tensors,
        write_html_page,
        write_image_embedding,
        write_onetrainer_ti,
        write_parameterdict_ti,
        write_preview_png,
        write_random_bytes,
    )

    folder = tmp_path / "zoo"
    folder.mkdir()
    write_parameterdict_ti(folder / "old_ti.pt")
    write_parameterdict_ti(folder / "old_legacy.pt", legacy=True)
    write_onetrainer_ti(folder / "xl_multi.safetensors", "sdxl", output_vectors=True)
    write_image_embedding(folder / "hidden.webp", name="hidden")
    write_preview_png(folder / "hidden_preview.png")  # skipped: no embedding in it
    write_html_page(folder / "login.safetensors")
    write_random_bytes(folder / "noise.pt")
    write_safetensors(folder / "flux.safetensors", flux_kohya_tensors(), flux_kohya_metadata())
    code, out, _ = run(capsys, "check", "--json", "--model", "sd1", str(folder))
    assert code == 0
    files = {os.path.basename(f["path"]): f for f in json.loads(out)["files"]}
    got = {name: (f["kind"], f["format"], f["family"], [w["code"] for w in f["warnings"]]) for name, f in files.items()}
    assert got == {
        "old_ti.pt": ("embedding", "ti-parameterdict", "sd1", ["host-cannot-load"]),  # A1111: its .format_version entry
        "old_legacy.pt": ("embedding", "ti-parameterdict", "sd1", ["host-cannot-load"]),  # A1111: legacy class pickle
        "xl_multi.safetensors": ("embedding", "onetrainer", "sdxl", ["family-mismatch"]),
        "hidden.webp": ("embedding", "image-embedded", "sd1", []),
        "login.safetensors": ("unknown", None, "unknown", ["unreadable"]),
        "noise.pt": ("unknown", None, "unknown", ["unreadable"]),
        "flux.safetensors": ("lora", "kohya", "flux", ["family-mismatch"]),
    }
    assert files["flux.safetensors"]["family_label"] == "Flux"
    assert files["login.safetensors"]["error"].startswith("an HTML page")
    forge = json.loads(run(capsys, "check", "--json", "--model", "sd1", "--host", "forge", str(folder))[1])["files"]
    assert [w["code"] for f in forge if f["path"].endswith("old_legacy.pt") for w in f["warnings"]] == []
    newer = json.loads(run(capsys, "check", "--json", "--model", "sd1", "--host", "forge", "--torch-version", "2.14",
                           str(folder / "old_legacy.pt"))[1])["files"]
    assert [w["code"] for w in newer[0]["warnings"]] == ["host-cannot-load"]
