"""The checker where a user stands: the WebUI folder or the extension's folder, the folders the
WebUI really reads (``webui-user.sh`` / ``.bat`` overrides), and output the way ruff or pip print."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from compat_files import emb_params_tensors, write_empty, write_kohya_lora, write_safetensors

from lib_clipskip.__main__ import main
from lib_clipskip.compat import terminal
from lib_clipskip.compat.webui_folders import find_webui_root, webui_folders

REPO = Path(__file__).resolve().parents[1]


def make_webui(root: Path, forge: bool = False) -> Path:
    """A WebUI folder as git clone leaves it, with this extension installed as the README says."""
    (root / "modules").mkdir(parents=True)
    (root / "webui.py").write_text("")
    (root / "launch.py").write_text("")
    if forge:
        (root / "modules_forge").mkdir()
    extension = root / "extensions" / "sd-webui-clipskip"
    shutil.copytree(REPO / "lib_clipskip", extension / "lib_clipskip", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "clipskip_check.py", extension)
    write_kohya_lora(root / "models" / "Lora" / "anime.safetensors", "sd1", clip_skip=2)
    write_safetensors(root / "embeddings" / "e.safetensors", emb_params_tensors(768))
    write_kohya_lora(root / "elsewhere" / "not_scanned.safetensors", "sd1")
    return root


def names(output: str) -> list[str]:
    return sorted(os.path.basename(f["path"]) for f in json.loads(output)["files"])


def run_python(args, cwd, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COMMANDLINE_ARGS")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_the_readme_commands_from_the_webui_folder_and_from_the_extension_folder(tmp_path):
    """No PYTHONPATH: what a user types, where the README says to type it."""
    root = make_webui(tmp_path / "webui")
    from_root = run_python(["extensions/sd-webui-clipskip/clipskip_check.py", "--json"], cwd=root)
    assert from_root.returncode == 0, from_root.stderr
    assert names(from_root.stdout) == ["anime.safetensors", "e.safetensors"]
    assert json.loads(from_root.stdout)["webui"]["root"] == str(root)
    extension = root / "extensions" / "sd-webui-clipskip"
    from_extension = run_python(["-m", "lib_clipskip", "check", "--json"], cwd=extension)
    assert from_extension.returncode == 0, from_extension.stderr
    assert names(from_extension.stdout) == ["anime.safetensors", "e.safetensors"]
    text = run_python(["extensions/sd-webui-clipskip/clipskip_check.py", "--clip-skip", "2"], cwd=root)
    assert text.stdout.splitlines()[:3] == [
        f"A1111 WebUI in {root}",
        "  LoRA folders: models/Lora (default), models/LyCORIS (default, missing)",
        "  embedding folders: embeddings (default)",
    ]
    assert "\033[" not in text.stdout  # not a terminal: no colour
    assert text.stdout.splitlines()[-1] == "2 files checked: 1 with warnings (1 in all), 1 ok"  # layer 11 at skip 2


def test_the_webui_above_a_symlinked_extension_folder(tmp_path, monkeypatch, capsys):
    root = make_webui(tmp_path / "webui")
    real = tmp_path / "checkout"
    (root / "extensions" / "sd-webui-clipskip").rename(real)
    (root / "extensions" / "sd-webui-clipskip").symlink_to(real)
    logical = str(root / "extensions" / "sd-webui-clipskip")
    monkeypatch.chdir(logical)
    monkeypatch.setenv("PWD", logical)
    assert main(["check", "--json"]) == 0
    assert names(capsys.readouterr().out) == ["anime.safetensors", "e.safetensors"]


def test_outside_a_webui_it_says_where_to_run_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PWD", raising=False)
    assert main(["check"]) == 2
    assert "run this in your WebUI folder or in its extensions/sd-webui-clipskip folder" in capsys.readouterr().err
    assert find_webui_root(str(tmp_path), str(tmp_path / "x")) is None


def test_forge_reads_no_lycoris_folder(tmp_path):
    root = make_webui(tmp_path / "forge", forge=True)
    found = webui_folders(str(root), windows=False, environ={})
    assert found.host == "forge"
    assert [f.path for f in found.lora] == [str(root / "models" / "Lora")]
    assert [f.path for f in found.embeddings] == [str(root / "embeddings")]


def test_folder_options_from_webui_user_sh(tmp_path):
    root = make_webui(tmp_path / "webui")
    (root / "webui-user.sh").write_text(
        '#!/bin/bash\n#export COMMANDLINE_ARGS="--lora-dir /commented/out"\n'
        'BASE=/data\n'
        'export COMMANDLINE_ARGS="--xformers --lora-dir $BASE/loras --embeddings-dir=\'my embeddings\'"\n')
    found = webui_folders(str(root), windows=False, environ={})
    assert [(f.path, f.origin) for f in found.lora] == [
        ("/data/loras", "--lora-dir from webui-user.sh"), (str(root / "models" / "LyCORIS"), "default")]
    assert [(f.path, f.origin) for f in found.embeddings] == [
        (str(root / "my embeddings"), "--embeddings-dir from webui-user.sh")]
    assert found.notes == []


def test_models_and_data_dir_move_the_defaults(tmp_path):
    root = make_webui(tmp_path / "webui")
    (root / "webui-user.sh").write_text('export COMMANDLINE_ARGS="--data-dir /d --models-dir /m"\n')
    found = webui_folders(str(root), windows=False, environ={})
    assert [(f.path, f.origin) for f in found.lora + found.embeddings] == [
        ("/m/Lora", "--models-dir from webui-user.sh"), ("/m/LyCORIS", "--models-dir from webui-user.sh"),
        ("/d/embeddings", "--data-dir from webui-user.sh")]


def test_folder_options_from_webui_user_bat(tmp_path):
    root = make_webui(tmp_path / "webui")
    (root / "webui-user.bat").write_text(
        "@echo off\r\nset PYTHON=\r\nrem set COMMANDLINE_ARGS=--lora-dir C:\\old\r\n"
        "set COMMANDLINE_ARGS=--lora-dir %~dp0loras --embeddings-dir \"D:/my embeddings\"\r\ncall webui.bat\r\n")
    found = webui_folders(str(root), windows=True, environ={})
    assert found.lora[0].path == os.path.normpath(str(root) + os.sep + "loras")
    assert found.lora[0].origin == "--lora-dir from webui-user.bat"
    assert found.embeddings[0].path == os.path.normpath(os.path.join(str(root), "D:/my embeddings"))


def test_a_setting_only_the_shell_knows_is_not_guessed(tmp_path):
    root = make_webui(tmp_path / "webui")
    (root / "webui-user.sh").write_text('export COMMANDLINE_ARGS="--lora-dir $(cat lora_path.txt)"\n')
    found = webui_folders(str(root), windows=False, environ={})
    assert found.lora[0].path == str(root / "models" / "Lora") and found.lora[0].origin == "default"
    assert found.notes and "could not read COMMANDLINE_ARGS in webui-user.sh" in found.notes[0]
    assert found.notes[0].endswith("; using the default folders")


def test_the_environment_is_read_when_the_script_sets_nothing(tmp_path):
    root = make_webui(tmp_path / "webui")
    found = webui_folders(str(root), windows=False, environ={"COMMANDLINE_ARGS": "--lora-dir /env/loras"})
    assert (found.lora[0].path, found.lora[0].origin) == (
        "/env/loras", "--lora-dir from the COMMANDLINE_ARGS environment variable")


# --- output ---------------------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color():
    if os.name != "nt":  # on Windows it also asks the console to take ANSI sequences
        assert terminal.use_colour(Tty(), {})
    assert not terminal.use_colour(io.StringIO(), {})
    assert not terminal.use_colour(Tty(), {"NO_COLOR": "1"})
    assert not terminal.use_colour(Tty(), {"TERM": "dumb"})
    assert terminal.Style(True)("red", "x") == "\033[1;31mx\033[0m" and terminal.Style(False)("red", "x") == "x"


def test_one_line_per_file_details_indented_and_a_summary(capsys, tmp_path):
    folder = tmp_path / "Lora"
    write_kohya_lora(folder / "anime.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    write_kohya_lora(folder / "real.safetensors", "sd1", clip_skip=None)
    write_empty(folder / "bad.safetensors")
    assert main(["check", "--clip-skip", "2", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_file = {line.split(": ")[0].rsplit("/", 1)[-1]: i for i, line in enumerate(lines) if not line.startswith(" ")}
    anime = lines[by_file["anime.safetensors"]]
    assert anime.endswith(": kohya LoRA for SD1, trained at clip skip 2 (ss_clip_skip=2); text encoder layers CLIP-L 0-11")
    assert lines[by_file["bad.safetensors"]].endswith(": unreadable")
    assert lines[by_file["bad.safetensors"] + 1] == "  error[unreadable]: an empty file (0 bytes)"
    real = by_file["real.safetensors"]
    assert lines[real + 1].startswith("  warning[trained-clip-skip-mismatch]: trained at clip skip 1")
    assert lines[real + 2] == ("  warning[te-layers-skipped]: 6 of its 72 CLIP-L modules (layer 11) have no effect at clip skip 2: "
                               "that layer is not run")
    assert lines[-1] == "3 files checked: 1 with warnings (2 in all), 1 unreadable, 1 ok"
    assert "lora, kohya LoRA" not in "\n".join(lines) and ") (" not in "\n".join(lines)


def test_quiet_prints_only_files_with_something_to_say(capsys, tmp_path):
    folder = tmp_path / "Lora"
    write_kohya_lora(folder / "anime.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    write_kohya_lora(folder / "real.safetensors", "sd1", clip_skip=None)
    assert main(["check", "-q", "--clip-skip", "2", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "real.safetensors" in out and "anime.safetensors" not in out and "checked" not in out
    assert main(["check", "--quiet", "--clip-skip", "2", str(folder / "anime.safetensors")]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_an_ordinary_png_is_not_unknown_unknown(capsys, tmp_path, quiet):
    from compat_files import png_bytes

    (tmp_path / "photo.png").write_bytes(png_bytes())
    main(["check", *(["-q"] if quiet else []), str(tmp_path / "photo.png")])
    out = capsys.readouterr().out
    assert "unknown, unknown" not in out
    assert out == "" if quiet else "photo.png: not a LoRA or embedding" in out
