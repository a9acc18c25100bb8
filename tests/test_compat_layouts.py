"""Every embedding and LoRA layout in the wild (issue 10 items 1, 2, 5), written by the
library the real tool uses. The expected answers are the hosts': each layout was loaded
through A1111's create_embedding_from_data and safe.check_pt (v1.10.1) to find what the
host makes of it (shape -> model family, or refused)."""

from __future__ import annotations

import numpy as np
import pytest
from compat_files import (
    kohya_lora_tensors,
    kohya_metadata,
    write_a1111_pt_embedding,
    write_safetensors,
)
from compat_layout_files import (
    cascade_tensors,
    flux_diffusers_tensors,
    flux_kohya_metadata,
    flux_kohya_tensors,
    kolors_tensors,
    pixart_diffusers_tensors,
    sd3_kohya_tensors,
    without_newer_torch_entries,
    write_image_embedding,
    write_kohya_ti,
    write_learned_embeds,
    write_onetrainer_ti,
    write_parameterdict_ti,
    write_preview_png,
)

from lib_clipskip.compat import analyze_path, check_files

torch = pytest.importorskip("torch")  # the tools write these files with torch


def codes(report):
    return [w.code for w in report.warnings]


def summary(path):
    report = analyze_path(str(path))
    assert report.error is None, report.error
    return report.kind, report.format, report.family, report.vectors


# ------------------------------------------------------------- item 1: the original TI format


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_parameterdict_textual_inversion_is_read_through_parameters(tmp_path, legacy):
    path = write_parameterdict_ti(tmp_path / "old.pt", width=768, vectors=2, legacy=legacy)
    if not legacy:
        without_newer_torch_entries(path)
    assert summary(path) == ("embedding", "ti-parameterdict", "sd1", 2)
    report = analyze_path(str(path))
    assert report.embedding_name == "old"


def test_parameterdict_as_newer_torch_stores_it(tmp_path):
    # torch >= 1.12 keeps a _keys index besides _parameters: the same answer
    path = write_parameterdict_ti(tmp_path / "new.pt", width=1024, vectors=5, torch_111_state=False)
    assert summary(path) == ("embedding", "ti-parameterdict", "sd2", 5)


def test_what_each_host_loads(tmp_path):
    zip_file = without_newer_torch_entries(write_parameterdict_ti(tmp_path / "zip.pt"))
    legacy = write_parameterdict_ti(tmp_path / "legacy.pt", legacy=True)
    new_zip = write_parameterdict_ti(tmp_path / "newzip.pt")
    two_terms = without_newer_torch_entries(write_parameterdict_ti(tmp_path / "two.pt", terms=2))
    paths = [zip_file, legacy, new_zip, two_terms]
    # with the torch each host installs: A1111 v1.10.1 torch 2.1.2, Forge torch 2.3.1
    a1111 = check_files(paths, "sd1", 1, host="a1111", torch_version=(2, 1))
    forge = check_files(paths, "sd1", 1, host="forge", torch_version=(2, 3))
    assert [codes(r) for r in a1111] == [[], ["host-cannot-load"], ["host-cannot-load"], ["host-cannot-load"]]
    assert [codes(r) for r in forge] == [[], [], [], ["host-cannot-load"]]
    assert "safe.py:27" in a1111[1].warnings[0].message  # its persistent_load takes storages only
    assert a1111[2].warnings[0].message == (
        "an SD1 embedding; A1111 will not load it: its safe loader refuses files holding 'newzip/.format_version', which newer "
        "torch versions write (safe.py:68 does not expect it); re-save the file as .safetensors")
    assert a1111[3].warnings[0].message == (
        "an SD1 embedding; the WebUI will not load it: it has 2 terms in string_to_param; it loads only "
        "embeddings with one tensor ('embedding file has multiple terms in it')")


def test_torch_2_6_and_later_refuse_parameterdict_in_both_hosts(tmp_path):
    # torch.load defaults to weights_only=True since 2.6: ParameterDict is not among its types
    path = without_newer_torch_entries(write_parameterdict_ti(tmp_path / "old.pt"))
    plain = without_newer_torch_entries(write_a1111_pt_embedding(tmp_path / "plain.pt"))
    for host in ("a1111", "forge"):
        old, fine = check_files([path, plain], "sd1", 1, host=host, torch_version=(2, 14))
        assert codes(old) == ["host-cannot-load"] and codes(fine) == []
        assert old.warnings[0].message.endswith(
            "will not load it: this WebUI runs torch 2.14, whose torch.load refuses torch.nn.modules.container.ParameterDict "
            "by default (weights_only, since torch 2.6); re-save the file as .safetensors")
    assert codes(check_files([path], "sd1", 1, torch_version=None)[0]) == []  # the CLI, no torch: the hosts' own torch


def test_a1111_pt_embedding_written_by_its_own_torch(tmp_path):
    path = without_newer_torch_entries(write_a1111_pt_embedding(tmp_path / "ti.pt", 1024, 8))
    assert summary(path) == ("embedding", "a1111-pt", "sd2", 8)
    assert codes(check_files([path], "sd2", 2)[0]) == []


# ------------------------------------------------------------- item 2: other trainers


@pytest.mark.parametrize(
    "name, write, expected, refused",
    [
        ("kohya-sd1.safetensors", lambda p: write_kohya_ti(p, "sd1"), ("emb-params", "sd1"), False),
        ("kohya-sd2.pt", lambda p: write_kohya_ti(p, "sd2"), ("emb-params", "sd2"), False),
        ("kohya-sdxl.safetensors", lambda p: write_kohya_ti(p, "sdxl"), ("sdxl-clip-l-g", "sdxl"), False),
        ("kohya-sdxl.pt", lambda p: write_kohya_ti(p, "sdxl"), ("sdxl-clip-l-g", "sdxl"), False),
        ("ot-sd1.safetensors", lambda p: write_onetrainer_ti(p, "sd1"), ("onetrainer", "sd1"), False),
        ("ot-sd1-out.safetensors", lambda p: write_onetrainer_ti(p, "sd1", output_vectors=True), ("onetrainer", "sd1"), True),
        ("ot-sdxl.safetensors", lambda p: write_onetrainer_ti(p, "sdxl"), ("sdxl-clip-l-g", "sdxl"), False),
        ("ot-sdxl-out.safetensors", lambda p: write_onetrainer_ti(p, "sdxl", output_vectors=True), ("onetrainer", "sdxl"), False),
        ("ot-sd3.safetensors", lambda p: write_onetrainer_ti(p, "sd3"), ("onetrainer", "sd3"), False),
        ("ot-flux.safetensors", lambda p: write_onetrainer_ti(p, "flux"), ("onetrainer", "flux"), True),
        ("ot-pixart.safetensors", lambda p: write_onetrainer_ti(p, "pixart"), ("onetrainer", "t5"), False),
        ("ot-cascade.safetensors", lambda p: write_onetrainer_ti(p, "cascade"), ("onetrainer", "stable-cascade"), False),
        ("learned_embeds.bin", lambda p: write_learned_embeds(p), ("diffusers-bin", "sd1"), False),
        ("learned_embeds.safetensors", lambda p: write_learned_embeds(p, width=1024, vectors=3), ("diffusers-bin", "sd2"), False),
        ("learned_embeds_2.safetensors", lambda p: write_learned_embeds(p, width=1280), ("diffusers-bin", "openclip-g"), False),
    ],
)
def test_trainer_layouts(tmp_path, name, write, expected, refused):
    path = tmp_path / name
    write(path)
    if name.endswith((".pt", ".bin")):
        without_newer_torch_entries(path)
    report = analyze_path(str(path))
    assert report.error is None
    assert (report.kind, report.format, report.family) == ("embedding", *expected)
    assert bool(report.host_refuses) == refused


def test_multi_tensor_sdxl_embedding_on_sd1_is_a_family_mismatch(tmp_path):
    """The issue's example: four tensors (OneTrainer's clip_l/clip_g with *_out) used to
    come out unknown with no warning."""
    path = write_onetrainer_ti(tmp_path / "xlchar.safetensors", "sdxl", vectors=4, output_vectors=True)
    on_sd1 = check_files([path], "sd1", 1)[0]
    assert (on_sd1.kind, on_sd1.family, on_sd1.vectors) == ("embedding", "sdxl", 4)
    assert [(w.code, w.message) for w in on_sd1.warnings] == [(
        "family-mismatch", "an SDXL embedding: on SD1 the WebUI skips it and its name stays in the prompt as literal text")]
    assert codes(check_files([path], "sdxl", 2)[0]) == []


def test_sd3_and_lone_halves_on_sdxl(tmp_path):
    sd3 = write_onetrainer_ti(tmp_path / "sd3.safetensors", "sd3")
    half = write_learned_embeds(tmp_path / "learned_embeds_2.safetensors", width=1280)
    reports = check_files([sd3, half], "sdxl", 2)
    assert [w.message for w in reports[0].warnings] == [
        "an SD3 embedding: on SDXL the WebUI uses its clip_l/clip_g vectors, which were trained for SD3 "
        "(next to a T5 encoder), not for SDXL"]
    assert [w.message for w in reports[1].warnings] == [
        "an embedding for OpenCLIP-G alone: on SDXL the WebUI skips it and its name stays in the prompt as literal text"]


def test_kohya_ti_records_its_clip_skip(tmp_path):
    path = write_kohya_ti(tmp_path / "e.safetensors", "sd1", clip_skip=2)
    report = check_files([path], "sd1", 1)[0]
    assert (report.trained_clip_skip, report.trained_clip_skip_detail) == (2, "modelspec.encoder_layer=2")
    assert codes(report) == ["trained-clip-skip-mismatch"]


@pytest.mark.parametrize("name, text_chunk", [("pixels.png", False), ("both.png", True), ("converted.webp", False)])
def test_embeddings_in_images(tmp_path, name, text_chunk):
    path = write_image_embedding(tmp_path / name, width=1024, vectors=3, name="stored-name", text_chunk=text_chunk)
    report = analyze_path(str(path))
    assert (report.kind, report.family, report.vectors, report.embedding_name) == ("embedding", "sd2", 3, "stored-name")
    assert report.format == ("png-embedded" if text_chunk else "image-embedded")


def test_previews_are_not_embeddings(tmp_path):
    plain = analyze_path(str(write_preview_png(tmp_path / "x.png")))
    assert (plain.kind, plain.error) == ("unknown", None) and "preview" in plain.notes[0]
    named = analyze_path(str(write_image_embedding(tmp_path / "x.preview.png")))  # data or not: skipped
    assert (named.kind, named.error) == ("unknown", None) and "name.preview" in named.notes[0]
    assert check_files([tmp_path / "x.png"], "sd1", 1)[0].warnings == []


# ------------------------------------------------------------- item 5: networks for other models


@pytest.mark.parametrize(
    "tensors, metadata, family",
    [
        (flux_kohya_tensors(), flux_kohya_metadata(), "flux"),
        (flux_kohya_tensors(), None, "flux"),  # kohya's CLIP-L keys are SDXL's lora_te1: the blocks decide
        (kohya_lora_tensors("sdxl", encoders=("clip_l",), unet=False), flux_kohya_metadata(), "flux"),  # CLIP-L only
        (sd3_kohya_tensors(), None, "sd3"),
        (flux_diffusers_tensors(), None, "flux"),
        (pixart_diffusers_tensors(), None, "pixart"),
        (kolors_tensors(), None, "kolors"),
        (cascade_tensors(), None, "stable-cascade"),
    ],
    ids=["flux-kohya", "flux-kohya-no-metadata", "flux-te-only", "sd3-kohya", "flux-diffusers", "pixart", "kolors", "cascade"],
)
def test_networks_for_other_models(tmp_path, tensors, metadata, family):
    path = write_safetensors(tmp_path / "net.safetensors", tensors, metadata)
    report = analyze_path(str(path))
    assert (report.kind, report.family) == ("lora", family)
    label = {"flux": "a Flux", "sd3": "an SD3", "pixart": "a PixArt", "kolors": "a Kolors", "stable-cascade": "a Stable Cascade"}
    on_sdxl = check_files([path], "sdxl", 2)[0]
    assert [(w.code, w.message) for w in on_sdxl.warnings] == [
        ("family-mismatch", f"{label[family]} LoRA, the model is SDXL: it will not load as intended")]
    alone = check_files([path], None, None)[0]
    assert codes(alone) == ["no-effect-on-model"]


def test_pony_and_illustrious_are_sdxl(tmp_path):
    meta = kohya_metadata("sdxl", 2, ss_sd_model_name="ponyDiffusionV6XL_v6StartWithThisOne.safetensors")
    pony = write_safetensors(tmp_path / "pony.safetensors", kohya_lora_tensors("sdxl"), meta)
    meta = kohya_metadata("sdxl", None, ss_sd_model_name="D:\\models\\illustriousXL_v01.safetensors")
    illustrious = write_safetensors(tmp_path / "ill.safetensors", kohya_lora_tensors("sdxl"), meta)
    reports = check_files([pony, illustrious], "sd1", 1)
    assert [r.warnings[0].message for r in reports] == [
        "an SDXL LoRA (trained on Pony Diffusion, an SDXL model), the model is SD1: its weights do not fit and it will not load "
        "as intended",
        "an SDXL LoRA (trained on Illustrious, an SDXL model), the model is SD1: its weights do not fit and it will not load "
        "as intended",
    ]
    assert reports[1].trained_on == "illustriousXL_v01.safetensors"
    assert ["family-mismatch" in codes(r) for r in check_files([pony, illustrious], "sdxl", 2)] == [False, False]


def test_a_full_checkpoint_in_the_lora_folder(tmp_path):
    tensors = {"model.diffusion_model.out.0.weight": np.ones((4,), np.float16),
               "cond_stage_model.transformer.x.weight": np.ones((4,), np.float16)}
    path = write_safetensors(tmp_path / "ckpt.safetensors", tensors)
    report = analyze_path(str(path))
    what = "a full Stable Diffusion checkpoint, not a LoRA or embedding (it belongs in models/Stable-diffusion)"
    assert report.kind == "unknown" and report.notes == [what]
    assert [(w.code, w.message) for w in check_files([path], "sd1", 1)[0].warnings] == [("host-cannot-load", what)]
    # an unknown layout is not claimed to fail: no warning
    odd = write_safetensors(tmp_path / "odd.safetensors", {"something.weight": np.ones((4,), np.float16)})
    assert check_files([odd], "sd1", 1)[0].warnings == []


def test_pickled_lora_legacy_stream_zero_test(tmp_path):
    """A kohya LoRA saved as a legacy (pre-zip) torch file: the zero test reads its
    storages from the stream (here layer 11's up-weights are zero: trained at skip 2)."""
    tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in kohya_lora_tensors("sd1", {"clip_l": [11]}).items()}
    path = tmp_path / "old.pt"
    torch.save(tensors, str(path), _use_new_zipfile_serialization=False)
    report = analyze_path(str(path))
    assert (report.kind, report.format, report.family) == ("lora", "kohya", "sd1")
    assert (report.trained_clip_skip, report.trained_clip_skip_source) == (2, "weights")
