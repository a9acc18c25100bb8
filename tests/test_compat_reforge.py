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
