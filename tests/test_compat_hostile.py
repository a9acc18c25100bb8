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
from compat_layout_files import (
    write_html_page,
    write_lfs_pointer,
    write_random_bytes,
    write_truncated,
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
        (png_bytes([(b"zTXt", b"sd-ti-embedding\0\0garbage")]), "a damaged compressed embedding text chunk"),
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


# ------------------------------------------------------------- item 4: say what a file really is


def _saved_safetensors(tmp_path):
    return write_kohya_lora(tmp_path / "real.safetensors", "sd1", clip_skip=2)


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("page.safetensors", lambda p, t: write_html_page(p),
         "an HTML page (a download that failed or needed a login), not a safetensors file"),
        ("page.pt", lambda p, t: write_html_page(p), "an HTML page (a download that failed or needed a login), not a torch .pt file"),
        ("noise.pt", lambda p, t: write_random_bytes(p), "unknown binary data, not a torch .pt file (a damaged or partial download?)"),
        ("noise.safetensors", lambda p, t: write_random_bytes(p), "safetensors header length"),
        ("pointer.safetensors", lambda p, t: write_lfs_pointer(p),
         "a Git LFS pointer (a few lines of text: the model itself was never downloaded), not a safetensors file"),
        ("image.pt", lambda p, t: p.write_bytes(png_bytes()), "a PNG image, not a torch .pt file"),
        ("zeros.ckpt", lambda p, t: p.write_bytes(b"\0" * 4096),
         "only zero bytes (a download or copy that never wrote its data), not a torch .ckpt file"),
        ("named.pt", lambda p, t: p.write_bytes(_saved_safetensors(t).read_bytes()),
         "a safetensors file with a .pt name: the WebUI reads .pt files with torch and fails on it; rename it to .safetensors"),
        ("cut.safetensors", lambda p, t: write_truncated(p, _saved_safetensors(t), 0.6), "truncated: the header promises"),
        ("plain.pt", lambda p, t: p.write_bytes(pickle.dumps({"emb_params": [0.0] * 8})),
         "a plain Python pickle, not a file written by torch.save: the WebUI cannot load it"),
    ],
)
def test_garbage_says_what_it_is(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path, tmp_path)
    report = analyze_path(str(path))
    assert report.error and report.error.startswith(reason), report.error
    assert [w.code for w in check_files([path], "sd1", 1)[0].warnings] == ["unreadable"]


def test_a_truncated_torch_zip(tmp_path):
    torch = pytest.importorskip("torch")
    source = tmp_path / "full.pt"
    torch.save({"emb_params": torch.randn(4, 768)}, str(source))
    path = write_truncated(tmp_path / "cut.pt", source, 0.5)
    report = analyze_path(str(path))
    assert report.error == "a truncated zip (the end of the archive is missing: an interrupted download?)"


def test_types_the_safe_loader_does_not_allow_are_named(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "mask.pt"
    torch.save({"mask": torch.zeros(3, dtype=torch.bool)}, str(path))
    report = analyze_path(str(path))
    assert report.error == ("refused: the pickle asks for torch.BoolStorage, a type the WebUI's safe loader does not allow "
                            "either; nothing in the file was run")


def _legacy_stream(main_pickle: bytes) -> bytes:
    """The legacy torch layout around a hand-made main pickle."""
    head = pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, 2)
    return head + main_pickle + pickle.dumps([], 2)


def test_numpy_arrays_larger_than_the_pickle_are_not_built(tmp_path):
    # numpy.ndarray is allowed (the host allows it); ndarray((10**9,)) would be 8 GB
    bomb = b"\x80\x02cnumpy\nndarray\nq\x00J\x00\xca\x9a;\x85q\x01\x85q\x02Rq\x03."
    path = tmp_path / "bomb.pt"
    path.write_bytes(_legacy_stream(bomb))
    report = analyze_path(str(path))
    assert report.error == "the pickle asks for a numpy array larger than the pickle itself; not built"


def test_code_in_a_legacy_stream_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(_legacy_stream(hostile_pickle_bytes(marker)))
    report = analyze_path(str(path))
    assert report.error.startswith("refused: the pickle asks for io.open, code, not data")
    assert not marker.exists()


def test_zip_with_too_many_entries(tmp_path, monkeypatch):
    import zipfile

    from lib_clipskip.compat import torchfile

    path = tmp_path / "many.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(50):
            archive.writestr(f"archive/data/{n}", b"\0")
    monkeypatch.setattr(torchfile, "MAX_ZIP_ENTRIES", 20)
    assert analyze_path(str(path)).error.startswith("a zip with 50 entries")


def _header_file(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


def _zip_pickle(pickled: bytes) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a/data.pkl", pickled)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("utf.safetensors", _header_file(b'{"a\xff\xfe": 1}'),
         "a damaged safetensors file: its header holds bytes that are not text where text belongs"),
        ("json.safetensors", _header_file(b'{"a": 1,,}'), "a damaged safetensors file: its header holds invalid JSON at byte 8"),
        ("chunk.png", png_bytes([(b"tEXt", b"sd-ti-embedding\0" + base64.b64encode(b"\xff\xfe{"))]),
         "a damaged embedding text chunk (sd-ti-embedding): not valid JSON (bytes that are not text where text belongs)"),
        ("zip.pt", _zip_pickle(b"\x80\x02}q\x00X\x03\x00\x00\x00\xff\xfe\xfdq\x01K\x01s."),
         "a damaged torch file: its pickled data is broken (bytes that are not text where text belongs"),
    ],
)
def test_an_unreadable_file_is_named_in_words_not_by_the_decoder(tmp_path, name, content, expected):
    """What the panel and the checker show for a damaged file: what the file is, never Python's
    "'utf-8' codec can't decode byte 0xff in position 3"."""
    path = tmp_path / name
    path.write_bytes(content)
    report = analyze_path(str(path))
    assert report.error.startswith(expected)
    assert "codec" not in report.error and "0xff" not in report.error
