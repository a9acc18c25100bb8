"""Analysis of real files in every supported format: kind, format, family, trained clip
skip and its source, TE layers per encoder."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from compat_files import (
    emb_params_tensors,
    kohya_lora_tensors,
    kohya_metadata,
    peft_lora_tensors,
    sdxl_embedding_tensors,
    write_a1111_pt_embedding,
    write_diffusers_bin_embedding,
    write_kohya_lora,
    write_png_embedding,
    write_safetensors,
)

from lib_clipskip.compat import ReportCache, analyze_path, check_files
from lib_clipskip.compat import readers as readers_module


def test_kohya_sd1_with_recorded_clip_skip(tmp_path):
    path = write_kohya_lora(tmp_path / "anime.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    report = analyze_path(str(path))
    assert report.error is None
    assert (report.kind, report.format, report.family) == ("lora", "kohya", "sd1")
    assert report.trained_clip_skip == 2
    assert report.trained_clip_skip_source == "metadata"
    assert report.te_layers == {"clip_l": list(range(12))}
    assert report.te_modules["clip_l"][11] == 6
    assert report.te_zero_layers == {"clip_l": [11]}


def test_recorded_none_means_kohya_default_for_sd1(tmp_path):
    path = write_kohya_lora(tmp_path / "real.safetensors", "sd1", clip_skip=None)
    report = analyze_path(str(path))
    assert report.trained_clip_skip == 1
    assert report.trained_clip_skip_source == "metadata"
    assert report.te_zero_layers == {}


@pytest.mark.parametrize("zero_layers, expected", [([11], 2), ([10, 11], 3), ([], None)])
def test_trained_skip_inferred_from_trailing_zero_layers(tmp_path, zero_layers, expected):
    path = write_kohya_lora(
        tmp_path / "x.safetensors",
        "sd1",
        metadata=None,
        zero_layers={"clip_l": zero_layers},
    )
    report = analyze_path(str(path))
    assert report.family == "sd1" and report.family_source == "weights"
    assert report.trained_clip_skip == expected
    assert report.trained_clip_skip_source == ("weights" if expected else None)


def test_all_zero_text_encoder_infers_nothing(tmp_path):
    # A TE that never trained (lr 0) is zero everywhere: no non-zero layer, so no
    # inference.
    path = write_kohya_lora(
        tmp_path / "x.safetensors",
        "sd1",
        metadata=None,
        zero_layers={"clip_l": range(12)},
    )
    report = analyze_path(str(path))
    assert report.trained_clip_skip is None


def test_inference_needs_the_last_layer_present(tmp_path):
    path = write_kohya_lora(
        tmp_path / "x.safetensors",
        "sd1",
        metadata=None,
        layers=range(10),
        zero_layers={"clip_l": [9]},
    )
    report = analyze_path(str(path))
    assert report.te_layers == {"clip_l": list(range(10))}
    assert report.trained_clip_skip is None


def test_zero_test_reads_only_a_few_tensors(tmp_path, monkeypatch):
    path = write_kohya_lora(tmp_path / "x.safetensors", "sd1", metadata=None, zero_layers={"clip_l": [11]})
    tested = []
    original = readers_module.SafetensorsFile.is_all_zero

    def spy(self, name):
        tested.append(name)
        return original(self, name)

    monkeypatch.setattr(readers_module.SafetensorsFile, "is_all_zero", spy)
    report = analyze_path(str(path))
    assert report.trained_clip_skip == 2
    # layer 11: six zero up-weights; layer 10: proven non-zero by its first module
    assert all("layers_11_" in n or "layers_10_" in n for n in tested)
    assert len(tested) <= 6 + 2


def test_sd2_counts_on_24_layers(tmp_path):
    meta_path = write_kohya_lora(tmp_path / "m.safetensors", "sd2", clip_skip=2)
    report = analyze_path(str(meta_path))
    assert report.family == "sd2"
    assert report.te_layers == {"clip_h": list(range(23))}
    # kohya's clip_skip 2 on the 23-layer encoder is hidden_states[-3] of the 24 layers
    assert report.trained_clip_skip == 3

    weights_path = write_kohya_lora(tmp_path / "w.safetensors", "sd2", metadata=None, zero_layers={"clip_h": [22]})
    report = analyze_path(str(weights_path))
    assert report.family == "sd2" and report.family_source == "weights"
    assert (report.trained_clip_skip, report.trained_clip_skip_source) == (3, "weights")


def test_sdxl_recorded_clip_skip_is_only_a_note(tmp_path):
    path = write_kohya_lora(tmp_path / "xl.safetensors", "sdxl", clip_skip=2)
    report = analyze_path(str(path))
    assert report.family == "sdxl"
    assert report.te_layers == {"clip_g": list(range(32)), "clip_l": list(range(12))}
    assert report.trained_clip_skip is None
    assert any("no effect" in n and "ss_clip_skip=2" in n for n in report.notes)


@pytest.mark.parametrize(
    "algo, fmt",
    [
        ("loha", "lycoris-loha"),
        ("lokr", "lycoris-lokr"),
        ("ia3", "lycoris-ia3"),
        ("oft", "lycoris-oft"),
        ("glora", "lycoris-glora"),
        ("full", "lycoris-full"),
    ],
)
def test_lycoris_algorithms(tmp_path, algo, fmt):
    path = write_kohya_lora(
        tmp_path / f"{algo}.safetensors",
        "sd1",
        metadata=None,
        algo=algo,
        zero_layers={"clip_l": [11]},
    )
    report = analyze_path(str(path))
    assert report.error is None
    assert (report.kind, report.format) == ("lycoris", fmt)
    assert report.family == "sd1"  # from the q_proj output width, no metadata
    assert report.te_layers == {"clip_l": list(range(12))}
    assert (report.trained_clip_skip, report.trained_clip_skip_source) == (2, "weights")


def test_locon_through_kohya_wrapper_is_lycoris(tmp_path):
    meta = kohya_metadata("sd1", 2, network_module="lycoris.kohya")
    path = write_safetensors(tmp_path / "locon.safetensors", kohya_lora_tensors("sd1"), meta)
    report = analyze_path(str(path))
    assert (report.kind, report.format) == ("lycoris", "lycoris-locon")


@pytest.mark.parametrize(
    "family, layers",
    [
        ("sd1", {"clip_l": list(range(12))}),
        ("sdxl", {"clip_g": list(range(32)), "clip_l": list(range(12))}),
    ],
)
def test_diffusers_peft_keys(tmp_path, family, layers):
    path = write_safetensors(tmp_path / "peft.safetensors", peft_lora_tensors(family, {"clip_l": [11]}))
    report = analyze_path(str(path))
    assert (report.kind, report.format, report.family) == (
        "lora",
        "diffusers-peft",
        family,
    )
    assert report.te_layers == layers
    assert report.te_key_styles == {"diffusers": sum(6 * len(v) for v in layers.values())}
    if family == "sd1":
        assert (report.trained_clip_skip, report.trained_clip_skip_source) == (
            2,
            "weights",
        )


def test_family_from_metadata_when_weights_say_nothing(tmp_path):
    # no TE keys and shapes that match no family: only the metadata can tell
    tensors = {
        "lora_unet_something.lora_down.weight": np.ones((2, 3), np.float16),
        "lora_unet_something.lora_up.weight": np.ones((3, 2), np.float16),
    }
    meta = {"ss_base_model_version": "sdxl_base_v1-0", "ss_output_name": "nice"}
    report = analyze_path(str(write_safetensors(tmp_path / "m.safetensors", tensors, meta)))
    assert (report.family, report.family_source) == ("sdxl", "metadata")
    assert report.output_name == "nice"
    meta = {"modelspec.architecture": "stable-diffusion-v2-768-v/lora"}
    report = analyze_path(str(write_safetensors(tmp_path / "n.safetensors", tensors, meta)))
    assert report.family == "sd2"
    meta = {"ss_v2": "True"}
    report = analyze_path(str(write_safetensors(tmp_path / "o.safetensors", tensors, meta)))
    assert report.family == "sd2"


def test_pickled_kohya_lora(tmp_path):
    torch = pytest.importorskip("torch")
    tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in kohya_lora_tensors("sd1", {"clip_l": [11]}).items()}
    path = tmp_path / "old.pt"
    torch.save(tensors, str(path))
    report = analyze_path(str(path))
    assert (report.kind, report.format, report.family) == ("lora", "kohya", "sd1")
    assert (report.trained_clip_skip, report.trained_clip_skip_source) == (2, "weights")


# ---------------------------------------------------------------- textual inversion


@pytest.mark.parametrize("width, family", [(768, "sd1"), (1024, "sd2")])
def test_emb_params_safetensors(tmp_path, width, family):
    meta = {
        "modelspec.encoder_layer": "2",
        "modelspec.architecture": "stable-diffusion-v1/textual-inversion",
    }
    path = write_safetensors(tmp_path / "e.safetensors", emb_params_tensors(width, 4), meta)
    report = analyze_path(str(path))
    assert (report.kind, report.format, report.family) == (
        "embedding",
        "emb-params",
        family,
    )
    assert report.vectors == 4
    assert report.te_layers == {}
    if family == "sd1":
        assert (report.trained_clip_skip, report.trained_clip_skip_source) == (
            2,
            "metadata",
        )


def test_sdxl_clip_l_clip_g_embedding(tmp_path):
    path = write_safetensors(tmp_path / "xl.safetensors", sdxl_embedding_tensors(3))
    report = analyze_path(str(path))
    assert (report.kind, report.format, report.family) == (
        "embedding",
        "sdxl-clip-l-g",
        "sdxl",
    )
    assert report.vectors == 3


def test_a1111_pt_embedding(tmp_path):
    pytest.importorskip("torch")
    report = analyze_path(str(write_a1111_pt_embedding(tmp_path / "ti.pt", 768, 5)))
    assert (report.kind, report.format, report.family) == (
        "embedding",
        "a1111-pt",
        "sd1",
    )
    assert report.vectors == 5
    assert report.trained_clip_skip is None  # A1111 TIs do not record it


def test_diffusers_bin_embedding(tmp_path):
    pytest.importorskip("torch")
    report = analyze_path(str(write_diffusers_bin_embedding(tmp_path / "learned_embeds.bin", width=1024)))
    assert (report.kind, report.format, report.family) == (
        "embedding",
        "diffusers-bin",
        "sd2",
    )
    assert report.vectors == 1


@pytest.mark.parametrize("chunk", ["tEXt", "zTXt", "iTXt"])
def test_png_embedded_embedding(tmp_path, chunk):
    report = analyze_path(str(write_png_embedding(tmp_path / "ti.png", 768, chunk)))
    assert report.error is None
    assert (report.kind, report.format, report.family) == (
        "embedding",
        "png-embedded",
        "sd1",
    )
    assert report.vectors == 2


def test_png_without_embedding_is_unknown_not_error(tmp_path):
    from compat_files import png_bytes

    path = tmp_path / "preview.png"
    path.write_bytes(png_bytes())
    report = analyze_path(str(path))
    assert report.kind == "unknown" and report.error is None
    assert report.notes


def test_safetensors_checkpoint_is_unknown(tmp_path):
    tensors = {
        "model.diffusion_model.out.0.weight": np.ones((4,), np.float16),
        "cond_stage_model.transformer.x.weight": np.ones((4,), np.float16),
    }
    report = analyze_path(str(write_safetensors(tmp_path / "ckpt.safetensors", tensors)))
    assert report.kind == "unknown" and report.error is None


def test_header_reader_matches_safetensors_library(tmp_path):
    from safetensors import safe_open

    path = write_kohya_lora(tmp_path / "x.safetensors", "sd1", clip_skip=2)
    with (
        readers_module.SafetensorsFile(str(path)) as ours,
        safe_open(str(path), "np") as theirs,
    ):
        assert set(ours.keys()) == set(theirs.keys())
        assert ours.metadata == theirs.metadata()
        for key in list(theirs.keys())[:20]:
            assert ours.shape(key) == tuple(theirs.get_tensor(key).shape)
            assert ours.is_all_zero(key) == (not theirs.get_tensor(key).any())


def test_negative_zero_counts_as_zero(tmp_path):
    values = np.zeros((4, 4), np.float16)
    values[1, 2] = -0.0
    path = write_safetensors(tmp_path / "z.safetensors", {"a": values, "b": np.eye(4, dtype=np.float32)})
    with readers_module.SafetensorsFile(str(path)) as source:
        assert source.is_all_zero("a")
        assert not source.is_all_zero("b")


def test_zero_test_byte_patterns(tmp_path):
    # 0x0080 as float16 is a tiny non-zero subnormal whose bytes are only 0x00 and 0x80
    subnormal = np.zeros(4, np.uint16)
    subnormal[2] = 0x0080
    ints = np.zeros(4, np.int16)
    ints[1] = -32768  # 0x8000: non-zero for an integer, -0.0 for a float
    path = write_safetensors(
        tmp_path / "z.safetensors",
        {"subnormal": subnormal.view(np.float16), "ints": ints, "int_zero": ints * 0},
    )
    with readers_module.SafetensorsFile(str(path)) as source:
        assert not source.is_all_zero("subnormal")
        assert not source.is_all_zero("ints")
        assert source.is_all_zero("int_zero")


def test_tensor_entry_with_wrong_byte_size_is_unreadable(tmp_path):
    header = json.dumps(
        {
            "lora_te_text_model_encoder_layers_11_mlp_fc1.lora_up.weight": {
                "dtype": "F16",
                "shape": [4, 4],
                "data_offsets": [0, 8],
            },
            "lora_te_text_model_encoder_layers_11_mlp_fc1.lora_down.weight": {
                "dtype": "F16",
                "shape": [2, 2],
                "data_offsets": [8, 16],
            },
        }
    ).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    report = analyze_path(str(path))
    assert report.error and "byte size" in report.error


def test_cache_reuses_reports_until_the_file_changes(tmp_path):
    path = write_kohya_lora(tmp_path / "x.safetensors", "sd1", clip_skip=2)
    cache = ReportCache()
    first = check_files([path], "sd1", 2, cache=cache)[0]
    again = check_files([path], "sd1", 2, cache=cache)[0]
    assert (cache.misses, cache.hits) == (1, 1)
    assert first.trained_clip_skip == again.trained_clip_skip == 2
    write_kohya_lora(path, "sd1", clip_skip=3)
    changed = check_files([path], "sd1", 2, cache=cache)[0]
    assert cache.misses == 2
    assert changed.trained_clip_skip == 3


def test_cache_is_bounded(tmp_path):
    cache = ReportCache(max_entries=3)
    paths = [write_safetensors(tmp_path / f"{i}.safetensors", emb_params_tensors(768, 1, i)) for i in range(5)]
    check_files(paths, "sd1", 1, cache=cache)
    assert len(cache) == 3


def test_cached_report_is_not_mutated_by_warnings(tmp_path):
    path = write_kohya_lora(tmp_path / "x.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    cache = ReportCache()
    with_warning = check_files([path], "sd1", 1, cache=cache)[0]
    assert with_warning.warnings
    assert cache.get(str(path)).warnings == []
    assert check_files([path], "sd1", 2, cache=cache)[0].warnings == []
