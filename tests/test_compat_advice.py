"""Warnings for a target family, value(s) and host, on real files and on hand-built
reports.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from compat_files import (
    emb_params_tensors,
    kohya_lora_tensors,
    peft_lora_tensors,
    sdxl_embedding_tensors,
    write_kohya_lora,
    write_safetensors,
)
from hypothesis import given
from hypothesis import strategies as st

from lib_clipskip.compat import FileReport, check_files, last_used_layer, warnings_for


def codes(report):
    return [w.code for w in report.warnings]


def one(paths, *args, **kwargs):
    return check_files(paths, *args, **kwargs)[0]


def sd1_report(layers=range(12), modules=6, zero=(), trained=None, source=None):
    return FileReport(
        path="x",
        kind="lora",
        format="kohya",
        family="sd1",
        te_modules={"clip_l": dict.fromkeys(layers, modules)},
        te_zero_layers={"clip_l": list(zero)} if zero else {},
        trained_clip_skip=trained,
        trained_clip_skip_source=source,
        trained_clip_skip_detail="ss_clip_skip=2" if trained else None,
    )


def test_te_layers_skipped_message():
    report = FileReport(
        path="x",
        kind="lora",
        format="kohya",
        family="sd1",
        te_modules={"clip_l": {**dict.fromkeys(range(11), 6), 11: 4}},
    )
    # 11 * 6 + 4 = 70 modules, 4 of them on layer 11
    [warning] = warnings_for(report, "sd1", 2)
    assert warning.code == "te-layers-skipped"
    assert warning.message == "4 of its 70 CLIP-L modules (layer 11) have no effect at clip skip 2: that layer is not run"


@pytest.mark.parametrize(
    "value, skipped",
    [
        (1, None),
        (1.5, None),
        (2, "layer 11"),
        (2.5, "layer 11"),
        (3, "layers 10-11"),
        (12, "layers 1-11"),
    ],
)
def test_skipped_layers_follow_the_value(value, skipped):
    found = [w for w in warnings_for(sd1_report(), "sd1", value) if w.code == "te-layers-skipped"]
    if skipped is None:
        assert found == []
    else:
        assert f"({skipped})" in found[0].message


def test_known_zero_layers_are_not_counted():
    report = sd1_report(zero=[11])
    assert [w.code for w in warnings_for(report, "sd1", 2)] == []
    [warning] = warnings_for(report, "sd1", 3)
    assert warning.message == "6 of its 72 CLIP-L modules (layer 10) have no effect at clip skip 3: that layer is not run"


@given(st.integers(1, 12), st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_last_used_layer_matches_hidden_state_indexing(n, frac):
    value = min(n + frac, 12)
    hidden_states = list(range(13))  # index h = output of layer h - 1 (0 = embeddings)
    neighbours = {math.floor(value), math.ceil(value)}
    deepest = max(hidden_states[-k] for k in neighbours) - 1
    assert last_used_layer("clip_l", value) == deepest


def test_sdxl_encoders_have_their_own_values(tmp_path):
    path = write_kohya_lora(
        tmp_path / "xl.safetensors",
        "sdxl",
        clip_skip=None,
        zero_layers={"clip_l": [11]},
    )
    default = one([path], "sdxl", 2, 2)
    assert codes(default) == []  # CLIP-L 11 is zero; bigG 31 feeds the pooled vector
    report = one([path], "sdxl", 3, 4)
    messages = [w.message for w in report.warnings if w.code == "te-layers-skipped"]
    # 32 layers at G 4: hidden_states[-4] is layer 28's output, so 29-30 stop reaching the tokens
    # (31 never did: at the default 2 it feeds only the pooled vector); 6 modules a layer
    assert messages == [
        "6 of its 72 CLIP-L modules (layer 10) have no effect at clip skip L 3: that layer is not run",
        "12 of its 192 OpenCLIP-G modules (layers 29-30) no longer reach the per-token conditioning at clip skip G 4: "
        "they change only the pooled vector",
    ]
    # clip_skip_g defaults to clip_skip
    assert len(one([path], "sdxl", 3).warnings) == 2


def test_sdxl_has_no_trained_skip_mismatch(tmp_path):
    path = write_kohya_lora(tmp_path / "xl.safetensors", "sdxl", clip_skip=2, zero_layers={"clip_l": [11]})
    report = one([path], "sdxl", 1, 1)
    assert "trained-clip-skip-mismatch" not in codes(report)
    assert any("no effect" in n for n in report.notes)


def test_sd2_counts_layers_on_24(tmp_path):
    path = write_kohya_lora(tmp_path / "v2.safetensors", "sd2", clip_skip=None)
    assert codes(one([path], "sd2", 2)) == []  # trained at 2 (kohya default), all 23 used
    report = one([path], "sd2", 4)
    assert codes(report) == ["trained-clip-skip-mismatch", "te-layers-skipped"]
    assert "(layers 21-22)" in report.warnings[1].message
    assert report.warnings[1].message == ("12 of its 138 OpenCLIP-H modules (layers 21-22) have no effect at clip skip 4: "
                                          "those layers are not run")


def test_trained_skip_mismatch_names_the_source(tmp_path):
    meta_file = write_kohya_lora(tmp_path / "m.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    report = one([meta_file], "sd1", 1)
    assert codes(report) == ["trained-clip-skip-mismatch"]
    assert report.warnings[0].message == ("trained at clip skip 2 (ss_clip_skip=2), generating at 1")
    assert codes(one([meta_file], "sd1", 2)) == []

    weights_file = write_kohya_lora(
        tmp_path / "w.safetensors",
        "sd1",
        metadata=None,
        zero_layers={"clip_l": [10, 11]},
    )
    report = one([weights_file], "sd1", 2)
    assert codes(report) == ["trained-clip-skip-mismatch"]
    assert "inferred from the weights" in report.warnings[0].message
    assert "generating at 2" in report.warnings[0].message


def test_fractional_value_differs_from_integer_training():
    report = sd1_report(zero=[11], trained=2, source="metadata")
    assert [w.code for w in warnings_for(report, "sd1", 2.5)] == ["trained-clip-skip-mismatch"]
    assert "generating at 2.5" in warnings_for(report, "sd1", 2.5)[0].message


def test_family_mismatch_for_embeddings_and_loras(tmp_path):
    sd1_ti = write_safetensors(tmp_path / "ti.safetensors", emb_params_tensors(768))
    xl_ti = write_safetensors(tmp_path / "xlti.safetensors", sdxl_embedding_tensors())
    xl_lora = write_kohya_lora(tmp_path / "xl.safetensors", "sdxl", clip_skip=2, zero_layers={"clip_l": [11]})
    reports = check_files([sd1_ti, xl_ti, xl_lora], "sdxl", 2)
    assert codes(reports[0]) == ["family-mismatch"]
    assert reports[0].warnings[0].message == (
        "an SD1 embedding: on SDXL the WebUI skips it and its name stays in the prompt as literal text")
    assert codes(reports[1]) == []
    assert codes(reports[2]) == []
    reports = check_files([xl_ti, xl_lora], "sd1", 2)
    assert [codes(r) for r in reports] == [["family-mismatch"], ["family-mismatch"]]


def test_without_model_each_file_is_checked_against_its_own_family(tmp_path):
    sd1 = write_kohya_lora(tmp_path / "a.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    xl = write_kohya_lora(tmp_path / "b.safetensors", "sdxl", clip_skip=2, zero_layers={"clip_l": [11]})
    reports = check_files([sd1, xl], None, None)
    # SD1 default is 1: the skip-2 LoRA mismatches; SDXL's default 2 is its training
    assert codes(reports[0]) == ["trained-clip-skip-mismatch"]
    assert codes(reports[1]) == []


def test_diffusers_te_keys_ignored_by_a1111_not_forge(tmp_path):
    path = write_safetensors(tmp_path / "peft.safetensors", peft_lora_tensors("sd1", {"clip_l": [11]}))
    a1111 = one([path], "sd1", 2, host="a1111")
    assert codes(a1111) == ["te-keys-ignored-by-host"]
    assert a1111.warnings[0].message.startswith("A1111 ignores this file's text-encoder part (72 modules named the diffusers/PEFT way")
    # the part is ignored: "layer 11 has no effect at clip skip 2" would be a second, misleading story
    assert "te-layers-skipped" not in codes(one([path], "sd1", 3, host="a1111"))
    assert "te-layers-skipped" in codes(one([path], "sd1", 3, host="forge"))
    assert codes(one([path], "sd1", 2, host="forge")) == []


def test_forge_drops_sd2_layer_23(tmp_path):
    tensors = kohya_lora_tensors("sd2", layers=range(24), unet=False)
    path = write_safetensors(tmp_path / "v2full.safetensors", tensors, {"ss_base_model_version": "sd_v2"})
    forge = one([path], "sd2", 1, host="forge")
    assert "te-keys-ignored-by-host" in codes(forge)
    assert "te-keys-ignored-by-host" not in codes(one([path], "sd2", 1, host="a1111"))


def test_no_effect_on_other_models(tmp_path):
    path = write_kohya_lora(tmp_path / "a.safetensors", "sd1", clip_skip=2)
    report = one([path], "flux", 2)
    assert codes(report) == ["no-effect-on-model"]
    flux_tensors = {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": np.ones((8, 2), np.float16),
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": np.ones((2, 8), np.float16),
    }
    flux_lora = write_safetensors(
        tmp_path / "f.safetensors",
        flux_tensors,
        {"ss_base_model_version": "flux1", "ss_clip_skip": "2"},
    )
    report = one([flux_lora], None, None)
    assert report.family == "flux" and report.base_model == "flux1"
    assert [(w.code, w.message) for w in report.warnings] == [
        ("no-effect-on-model", "a Flux LoRA: clip skip does not change Flux models")]
    assert report.trained_clip_skip is None  # ss_clip_skip means nothing on Flux
    on_sd1 = one([flux_lora], "sd1", 2)
    assert [(w.code, w.message) for w in on_sd1.warnings] == [
        ("family-mismatch", "a Flux LoRA, the model is SD1: it will not load as intended")]
    # a base model nobody knows yet: named as the metadata names it
    other = write_safetensors(tmp_path / "o.safetensors", {
        "lora_unet_mystery_0.lora_up.weight": np.ones((8, 2), np.float16),
        "lora_unet_mystery_0.lora_down.weight": np.ones((2, 8), np.float16)}, {"ss_base_model_version": "zeta9"})
    assert [w.message for w in one([other], "sdxl", 2).warnings] == [
        "made for zeta9, the model is SDXL: it will not load as intended"]


def test_unknown_files_get_no_warnings():
    assert warnings_for(FileReport(path="x"), "sd1", 2) == []


def test_unreadable_carries_the_reason():
    report = FileReport(path="x", error="empty file")
    [warning] = warnings_for(report, "sd1", 2)
    assert (warning.code, warning.message) == ("unreadable", "empty file")
