"""The checker against reForge's loaders (3b56b268): its LoRA loader reads .pt files with torch's
weights-only loader at any torch (``ldm_patched/modules/utils.py:83``), its embeddings go through a
plain ``torch.load`` (``modules/textual_inversion/textual_inversion.py:192``; A1111's ``safe.py`` is
kept but no longer replaces ``torch.load``), and its folder is recognised by ``modules_forge/forge_clip.py``."""

from __future__ import annotations

import numpy as np
import torch
from compat_files import kohya_lora_tensors
from compat_layout_files import write_parameterdict_ti
from test_compat_cli_webui import make_webui
from test_compat_layouts import codes, without_newer_torch_entries

from lib_clipskip.compat import check_files
from lib_clipskip.compat.webui_folders import webui_folders


def write_lora_pt_with_parameterdict(path):
    """A kohya-keyed LoRA saved with ``torch.save`` whose extra entry is an ``nn.ParameterDict``."""
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in kohya_lora_tensors("sd1").items()}
    tensors["lora_te_extra"] = torch.nn.ParameterDict({"alpha": torch.nn.Parameter(torch.ones(1))})
    torch.save(tensors, path)
    return path


def test_reforges_lora_loader_is_weights_only_at_any_torch(tmp_path):
    path = write_lora_pt_with_parameterdict(tmp_path / "style.pt")
    (reforge,) = check_files([path], "sd1", 1, host="reforge", torch_version=(2, 3))
    assert codes(reforge) == ["host-cannot-load"]
    assert reforge.warnings[0].message == (
        "an SD1 LoRA; reForge will not load it: its LoRA loader reads .pt files with torch's weights-only loader, "
        "which refuses torch.nn.modules.container.ParameterDict; re-save the file as .safetensors")
    (forge,) = check_files([path], "sd1", 1, host="forge", torch_version=(2, 3))
    assert codes(forge) == []  # Forge's own unpickler reads it


def test_reforges_embeddings_follow_its_torch_not_a1111s_safe_loader(tmp_path):
    new_zip = write_parameterdict_ti(tmp_path / "newzip.pt")  # A1111's safe.py refuses its .format_version entry
    old = without_newer_torch_entries(write_parameterdict_ti(tmp_path / "old.pt"))
    assert [codes(r) for r in check_files([new_zip, old], "sd1", 1, host="reforge", torch_version=(2, 3))] == [[], []]
    assert codes(check_files([new_zip], "sd1", 1, host="a1111", torch_version=(2, 3))[0]) == ["host-cannot-load"]
    late = check_files([old], "sd1", 1, host="reforge", torch_version=(2, 7))[0]
    assert codes(late) == ["host-cannot-load"] and "reForge will not load it: this WebUI runs torch 2.7" in late.warnings[0].message


def test_a_reforge_folder_is_recognised_and_reads_no_lycoris_folder(tmp_path):
    root = make_webui(tmp_path / "reforge", forge=True)
    (root / "modules_forge" / "forge_clip.py").write_text("        self.minimal_clip_skip = 2\n")
    found = webui_folders(str(root), windows=False, environ={})
    assert found.host == "reforge"
    assert [f.path for f in found.lora] == [str(root / "models" / "Lora")]


def test_a_forge_classic_folder_is_told_by_its_encoders_code(tmp_path):
    root = make_webui(tmp_path / "classic", forge=True)
    (root / "modules_forge" / "forge_clip.py").write_text("class CLIP_SD_XL_L:\n    def encode_with_transformers(self, tokens): ...\n")
    assert webui_folders(str(root), windows=False, environ={}).host == "forge-classic"
    path = write_lora_pt_with_parameterdict(tmp_path / "style.pt")
    (found,) = check_files([path], "sd1", 1, host="forge-classic", torch_version=(2, 3))
    assert codes(found) == ["host-cannot-load"] and found.warnings[0].message.startswith("an SD1 LoRA; Forge Classic will not load it")


def _host_files(root, launch_utils: str, cmd_args: str):
    (root / "modules" / "launch_utils.py").write_text(launch_utils)
    (root / "modules" / "cmd_args.py").write_text(cmd_args)


def test_reference_checkout_folders_are_the_hosts_own(tmp_path):
    """``--forge-ref-a1111-home``: each host's configure_forge_reference_checkout names its own folders
    (reForge 3b56b268 ``models/Lora``; Forge Classic 1f95d717 ``models/embeddings`` and ``models/Lora``)."""
    a1111 = tmp_path / "a1"
    for sub in ("embeddings", "models/Lora", "models/embeddings"):
        (a1111 / sub).mkdir(parents=True)
    environ = {"COMMANDLINE_ARGS": f"--forge-ref-a1111-home {a1111}"}
    reforge = make_webui(tmp_path / "reforge", forge=True)
    (reforge / "modules_forge" / "forge_clip.py").write_text("        self.minimal_clip_skip = 2\n")
    _host_files(reforge, '        ModelRef(arg_name="--embeddings-dir", relative_path="embeddings"),\n'
                         '        ModelRef(arg_name="--lora-dir", relative_path="models/Lora"),\n',
                '    parser.add_argument("--embeddings-dir", type=str, default=os.path.join(data_path, "embeddings"))\n')
    found = webui_folders(str(reforge), windows=False, environ=environ)
    assert [f.path for f in found.lora] == [str(a1111 / "models" / "Lora")]
    assert [f.path for f in found.embeddings] == [str(a1111 / "embeddings")]
    classic = make_webui(tmp_path / "classic", forge=True)
    (classic / "modules_forge" / "forge_clip.py").write_text("")
    _host_files(classic, '        ModelRef("--embeddings-dir", "models/embeddings"),\n        ModelRef("--lora-dir", "models/Lora"),\n',
                'parser.add_argument("--embeddings-dir", type=normalized_filepath, default=os.path.join(models_path, "embeddings"))\n')
    found = webui_folders(str(classic), windows=False, environ=environ)
    assert found.host == "forge-classic"
    assert [f.path for f in found.lora] == [str(a1111 / "models" / "Lora")]
    assert [f.path for f in found.embeddings] == [str(a1111 / "models" / "embeddings")]


def test_forge_classic_and_neo_keep_embeddings_in_the_models_folder(tmp_path):
    classic = make_webui(tmp_path / "classic", forge=True)
    (classic / "modules_forge" / "forge_clip.py").write_text("")
    _host_files(classic, "", 'parser.add_argument("--embeddings-dir", default=os.path.join(models_path, "embeddings"))\n')
    found = webui_folders(str(classic), windows=False, environ={})
    assert [f.path for f in found.embeddings] == [str(classic / "models" / "embeddings")]
    moved = webui_folders(str(classic), windows=False, environ={"COMMANDLINE_ARGS": f"--model-ref {tmp_path / 'm'}"})
    origin = "--model-ref from the COMMANDLINE_ARGS environment variable"
    assert [(f.path, f.origin) for f in moved.embeddings] == [(str(tmp_path / "m" / "embeddings"), origin)]
    assert [f.path for f in moved.lora] == [str(tmp_path / "m" / "Lora")]
