"""Hostile and broken files: each is reported unreadable with a reason, nothing is
executed, and the other files in the same batch are still reported."""

from __future__ import annotations

import base64
import json
import pickle
import struct
import sys
import tracemalloc

import pytest
from compat_files import (
    CodeOnLoad,
    hostile_pickle_bytes,
    png_bytes,
    write_a1111_pt_embedding,
    write_empty,
    write_hostile_pickle,
    write_hostile_torch_zip,
    write_huge_header_length,
    write_kohya_lora,
    write_non_json_header,
    write_offsets_past_end,
)

from lib_clipskip.compat import analyze_path, check_files


def test_payload_really_runs_code_with_plain_pickle(tmp_path):
    # Proves the hostile fixture is dangerous, so the tests below mean something.
    marker = tmp_path / "ran"
    pickle.loads(hostile_pickle_bytes(marker))
    assert marker.exists()


@pytest.mark.parametrize("writer", [write_hostile_pickle, write_hostile_torch_zip])
def test_code_on_load_is_refused_and_not_run(tmp_path, writer):
    pytest.importorskip("torch")
    marker = tmp_path / "ran"
    path = writer(tmp_path / "evil.pt", marker)
    report = analyze_path(str(path))
    assert report.error and report.error.startswith("refused")
    assert report.kind == "unknown"
    assert not marker.exists()


def test_hostile_pickle_inside_a_png_embedding(tmp_path):
    pytest.importorskip("torch")
    import io

    import torch

    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save({"string_to_param": {"*": CodeOnLoad(marker)}}, buffer)
    text = base64.b64encode(buffer.getvalue())
    path = tmp_path / "evil.png"
    path.write_bytes(png_bytes([(b"tEXt", b"sd-ti-embedding\0" + text)]))
    report = analyze_path(str(path))
    assert report.error and report.error.startswith("refused")
    assert not marker.exists()


@pytest.mark.parametrize(
    "writer, reason",
    [
        (write_huge_header_length, "exceeds"),
        (write_non_json_header, "not a JSON object"),
        (write_offsets_past_end, "truncated: the header promises 12288 bytes of tensor data but only 16 follow it"),
        (write_empty, "an empty file (0 bytes)"),
    ],
)
def test_broken_safetensors(tmp_path, writer, reason):
    path = writer(tmp_path / "bad.safetensors")
    report = analyze_path(str(path))
    assert report.error and reason in report.error
    warnings = check_files([path], "sd1", 2)[0].warnings
    assert [w.code for w in warnings] == ["unreadable"]
    assert reason in warnings[0].message


def test_huge_header_length_allocates_nothing_big(tmp_path):
    path = write_huge_header_length(tmp_path / "bad.safetensors")
    tracemalloc.start()
    try:
        analyze_path(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


@pytest.mark.parametrize(
    "body, reason",
    [
        (struct.pack("<Q", 64) + b"{}", "past the end"),  # header length past EOF
        (b"\x01\x02\x03", "truncated"),  # shorter than the length prefix
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 7) + b'{"a":1}', "malformed"),
    ],
)
def test_more_broken_headers(tmp_path, body, reason):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(body)
    report = analyze_path(str(path))
    assert report.error and reason in report.error


def test_empty_pickle_and_png(tmp_path):
    for name in ("e.pt", "e.bin", "e.png", "e.webp"):
        report = analyze_path(str(write_empty(tmp_path / name)))
        assert report.error == "an empty file (0 bytes)"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"not a png at all", "not a PNG"),
        (png_bytes([(b"tEXt", b"sd-ti-embedding\0!!!notbase64-json")]), "not base64"),
        (
            png_bytes([(b"tEXt", b"sd-ti-embedding\0" + base64.b64encode(b"{nope"))]),
            "not valid JSON",
        ),
        (
            png_bytes([(b"tEXt", b"sd-ti-embedding\0" + base64.b64encode(b'{"a": 1}'))]),
            "no embedding the WebUI could load",
        ),
        (png_bytes([(b"zTXt", b"sd-ti-embedding\0\0garbage")]), "corrupt compressed"),
        (png_bytes()[:40], "truncated"),
    ],
)
def test_broken_png(tmp_path, content, reason):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    report = analyze_path(str(path))
    assert report.error and reason in report.error


def test_zip_bomb_text_chunk_is_bounded(tmp_path):
    import zlib

    from lib_clipskip.compat import images

    bomb = zlib.compress(b"A" * (images.MAX_TI_PAYLOAD_BYTES + 1024), 9)
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes([(b"zTXt", b"sd-ti-embedding\0\0" + bomb)]))
    report = analyze_path(str(path))
    assert report.error and "inflates past" in report.error


def test_one_bad_file_never_hides_the_others(tmp_path):
    pytest.importorskip("torch")
    good = write_kohya_lora(tmp_path / "good.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    marker = tmp_path / "ran"
    paths = [
        write_huge_header_length(tmp_path / "a.safetensors"),
        good,
        write_hostile_pickle(tmp_path / "b.pt", marker),
        write_empty(tmp_path / "c.safetensors"),
        tmp_path / "missing.safetensors",
        write_a1111_pt_embedding(tmp_path / "ti.pt"),
        write_offsets_past_end(tmp_path / "d.safetensors"),
    ]
    reports = check_files(paths, "sd1", 2)
    assert [r.path for r in reports] == [str(p) for p in paths]
    assert [r.error is None for r in reports] == [
        False,
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert reports[1].trained_clip_skip == 2 and reports[1].warnings == []
    assert reports[5].kind == "embedding"
    assert "No such file" in reports[4].error
    assert not marker.exists()


def test_pickles_are_read_without_torch(tmp_path, monkeypatch):
    pytest.importorskip("torch")  # to write the file
    path = write_a1111_pt_embedding(tmp_path / "ti.pt", 768, 4)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    report = analyze_path(str(path))
    assert report.error is None
    assert (report.kind, report.format, report.family, report.vectors) == ("embedding", "a1111-pt", "sd1", 4)


def test_a_pickle_larger_than_its_limit_is_not_unpickled(tmp_path, monkeypatch):
    from lib_clipskip.compat import pickles

    pytest.importorskip("torch")
    path = write_a1111_pt_embedding(tmp_path / "ti.pt", 768, 4)
    monkeypatch.setattr(pickles, "MAX_PICKLE_STREAM_BYTES", 64)
    report = analyze_path(str(path))
    assert report.error and "larger than the 64 byte limit" in report.error


def test_files_outside_allowed_roots_are_not_read(tmp_path):
    inside = tmp_path / "models" / "Lora"
    good = write_kohya_lora(inside / "ok.safetensors", "sd1", clip_skip=1)
    outside = write_kohya_lora(tmp_path / "secret.safetensors", "sd1", clip_skip=1)
    sneaky = inside / ".." / ".." / "secret.safetensors"
    reports = check_files([good, outside, sneaky], "sd1", 1, allowed_roots=[inside])
    assert reports[0].error is None
    assert "not under the WebUI model folders" in reports[1].error
    assert "not under the WebUI model folders" in reports[2].error
    assert reports[1].kind == "unknown"


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": ["F16"], "shape": [4], "data_offsets": [0, 8]},
        {"dtype": "F16", "shape": [-4], "data_offsets": [0, 8]},
        {"dtype": "F16", "shape": "4", "data_offsets": [0, 8]},
        {"dtype": "Q4", "shape": [4], "data_offsets": [0, 8]},
        {"dtype": "F16", "shape": [4], "data_offsets": [8, 0]},
    ],
)
def test_malformed_entry_of_a_tensor_that_is_read(tmp_path, entry):
    # The zero test reads layer 11's up-weight: its header entry is validated then.
    up = "lora_te_text_model_encoder_layers_11_self_attn_q_proj.lora_up.weight"
    down = "lora_te_text_model_encoder_layers_11_self_attn_q_proj.lora_down.weight"
    header = json.dumps({up: entry, down: {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\1" * 16)
    report = analyze_path(str(path))
    assert report.error and f"tensor {up!r}" in report.error
