"""The translation table without a WebUI: every row and family read from text and image files as
each tool writes them, tool detection, host numbering, equivalents, bounded image reading."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
import tool_images as ti
from hypothesis import given, settings
from hypothesis import strategies as st
from tool_cases import CASES, Case

from lib_clipskip import image_sources, imagemeta, params_text, tooltable, translate
from lib_clipskip.numbering import (
    HOST_RANGE,
    Tool,
    comfy_layers,
    diffusers_layers,
    equivalents,
    host_layers,
    host_option_for,
    uniform,
)
from lib_clipskip.values import Family

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
FAMILIES = (Family.SD1, Family.SD2, Family.SDXL)


def detected(case: Case) -> Tool | None:
    if case.label == "Civitai image pages":
        return None  # the page keeps the source tool's keys: that tool is what is detected
    if case.label == "other ComfyUI savers" and case.kind == "image":
        return Tool.COMFYUI  # no Clip skip in their text: the graph decides
    return case.tool


def read_case(case: Case, tmp_path: Path) -> translate.Reading:
    family = Family(case.family)
    if case.kind == "text":
        return translate.read_params(params_text.parse(case.make()), family)
    path = case.make(tmp_path / "image")
    return image_sources.read(imagemeta.read(path), family).reading


# --- one case per row of the table and family ------------------------------------------------------------

def test_every_row_and_family_of_the_table_has_a_case():
    rows = {(row.tool.value, row.label, family.value) for row in tooltable.ROWS for family in row.families}
    cases = {case.key for case in CASES}
    assert rows - cases == set(), "rows without a case"
    assert cases - rows == set(), "cases naming no row"


def test_the_readme_carries_the_table():
    assert tooltable.markdown() in README
    for row in tooltable.ROWS:
        if row.tool is Tool.CLIPSKIP:
            continue  # this repository
        assert "@" in row.source or any(ch.isdigit() for ch in row.source), f"{row.tool}: no commit in {row.source!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_tool_and_family(case, tmp_path):
    family = Family(case.family)
    if case.kind == "diffusers":
        k = case.make()
        assert diffusers_layers(family, k) == case.expected
        assert equivalents(family, case.expected)["diffusers"] == k
        return
    reading = read_case(case, tmp_path)
    assert reading.layers == case.expected, reading.note
    if detected(case) is not None:
        assert reading.tool is detected(case)
    if case.kind == "text":  # the same text as A1111 stores it: a PNG tEXt/iTXt "parameters" chunk
        path = ti.png(tmp_path / "parameters.png", {"parameters": case.make()})
        source = image_sources.read(imagemeta.read(path), family)
        assert source.reading == reading and source.family is family


def test_the_cli_reader_and_the_hosts_parser_agree_on_the_parameters():
    """``params_text.parse`` is the hosts' ``parse_generation_parameters`` without its defaults."""
    text = ti.image_saver_text("sdxl", 1) + ', Civitai resources: [{"type":"lora","weight":0.8}]'
    parsed = params_text.parse(text)
    assert parsed["Clip skip"] == "1" and parsed["Version"] == "ComfyUI" and parsed["Size-1"] == "1024"
    assert list(parsed).index("Clip skip") < list(parsed).index("Prompt")
    assert translate.host_key_written(parsed)
    assert not translate.host_key_written({"Steps": "2", "Prompt": "a", "Clip skip": "1"})  # added by the host's parser


@pytest.mark.parametrize("version, tool", [
    ("v1.10.1", Tool.A1111), ("v1.10.1-3-gabcdef12", Tool.A1111), ("1.10.1", Tool.A1111), ("v1.6.0-2-g4afaaf8a", Tool.A1111),
    ("f2.0.1v1.10.1-previous-669-gdfdcbab6", Tool.FORGE), ("f2.0.1v1.10.1", Tool.FORGE),
    ("f0.0.17v1.8.0rc-latest-276-g29be1da7", Tool.FORGE_F0), ("f1.0.0v1.10.0rc-1-ge26abf87", Tool.FORGE_F0),
    ("classic", Tool.FORGE_F0), ("neo", Tool.FORGE), ("f0.0.20.1-v1.10.0RC-latest-1-ge0e73d81", Tool.FORGE_F0),
    ("f0.0.20dev-v1.10.0RC", Tool.FORGE_F0), ("f1.0.2v1.10.1-previous-3-g37386592", Tool.FORGE_CLASSIC),
    ("f1.0.0v2-v1.10.1RC-latest-2510-g3b56b268", Tool.REFORGE), ("f2.0.0-v1.10.1RC", Tool.REFORGE),
    ("f1.7.0-v1.10.1RC-latest-1-gabc", Tool.REFORGE), ("f1.0.0v2dev-v1.10.1RC", Tool.REFORGE),
    ("ComfyUI", Tool.COMFYUI_SAVER), ("Fooocus v2.5.5", Tool.FOOOCUS), ("something else", Tool.UNKNOWN),
])
def test_version_strings(version, tool):
    assert translate.detect({"Steps": "20", "Version": version}).tool is tool


def test_sdnext_by_app_key_and_legacy_key():
    assert translate.detect({"App": "SD.Next", "Version": "431bcc3"}).tool is Tool.SDNEXT
    assert translate.detect({"CLiP-skip": "2"}).tool is Tool.SDNEXT
    assert translate.read_params({"CLiP-skip": "1.5"}, Family.SDXL).layers == uniform(Family.SDXL, 2.5)


# --- the four cases of issue 11, as a paste decides them on each host --------------------------------------

@pytest.mark.parametrize("case_name, host, enable, layers, host_value", [
    ("image saver sdxl (issue case 1)", "a1111", True, {"clip_l": 1.0, "clip_g": 1.0}, None),
    ("image saver sdxl (issue case 1)", "forge", True, {"clip_l": 1.0, "clip_g": 1.0}, None),
    ("a1111 sd2 (issue case 2)", "a1111", False, None, "2"),
    ("a1111 sd2 (issue case 2)", "forge", True, {"clip_h": 2.0}, "1"),
    ("trip sd1 (issue case 3)", "a1111", True, {"clip_l": 1.35}, None),
    ("trip sd1 (issue case 3)", "forge", True, {"clip_l": 1.35}, None),
    ("a1111 sdxl 3 (issue case 4)", "a1111", False, None, "3"),
    ("a1111 sdxl 3 (issue case 4)", "forge", True, {"clip_l": 2.0, "clip_g": 2.0}, "1"),
])
def test_issue_cases_decided_per_host(case_name, host, enable, layers, host_value):
    case = next(c for c in CASES if c.name == case_name)
    family = Family(case.family)
    params = params_text.parse(case.make())
    decision = translate.decide(translate.read_params(params, family), host, family, params.get("Clip skip", "1"))
    assert (decision.enable, decision.layers, decision.host_value) == (enable, layers, host_value)
    assert decision.note and "\n" not in decision.note
    if case_name.endswith("case 4)"):
        assert '"Clip skip SDXL"' in decision.note and "CLIP-L 3, OpenCLIP-G 2" in decision.note


def test_a1111_sdxl_with_clip_skip_sdxl_on_is_corrected_too():
    params = params_text.parse(ti.webui_text("sdxl", 3))
    decision = translate.decide(translate.read_params(params, Family.SDXL), "a1111", Family.SDXL, "3", clip_l_skip=True)
    assert (decision.enable, decision.layers, decision.host_value) == (True, {"clip_l": 2.0, "clip_g": 2.0}, "2")


# --- numbering ------------------------------------------------------------------------------------------

def layers_of(family):
    encoders = {Family.SD1: ["clip_l"], Family.SD2: ["clip_h"], Family.SDXL: ["clip_l", "clip_g"]}[family]
    depth = {"clip_l": 12, "clip_h": 24, "clip_g": 32}
    return st.one_of(
        st.integers(1, 12).map(lambda v: dict.fromkeys(encoders, float(v))),
        st.tuples(*(st.integers(1, depth[e]) for e in encoders)).map(lambda vs: {e: float(v) for e, v in zip(encoders, vs)}),
    )


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FAMILIES).flatmap(lambda f: st.tuples(st.just(f), layers_of(f))))
def test_equivalents_give_the_same_layers_back(family_layers):
    family, layers = family_layers
    eq = equivalents(family, layers)
    if eq["a1111"] is not None:
        assert host_layers(Tool.A1111, family, eq["a1111"]) == layers
    if eq["forge"] is not None:
        assert host_layers(Tool.FORGE, family, eq["forge"]) == layers
    if eq["comfyui"] is not None:
        assert comfy_layers(family, -eq["comfyui"]) == layers
    if eq["diffusers"] is not None:
        assert diffusers_layers(family, eq["diffusers"]) == layers
    if family is Family.SD1:  # every tool can say every SD 1.x layer
        assert None not in eq.values()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tool", [Tool.A1111, Tool.FORGE])
def test_every_host_option_is_its_own_equivalent(family, tool):
    for option in range(HOST_RANGE[0], HOST_RANGE[1] + 1):
        layers = host_layers(tool, family, option)
        back = host_option_for(tool, family, layers, prefer=option)
        assert back == option


# --- reading images: bounded, header-only --------------------------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _ihdr() -> bytes:
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))


class CountingFile(io.FileIO):
    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingFile.read_bytes += len(data)
        return data


def test_pixels_are_skipped_not_read(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    with open(path, "wb") as handle:
        handle.write(imagemeta.PNG_SIGNATURE + _ihdr())
        handle.write(struct.pack(">I", 50_000_000) + b"IDAT")
        handle.seek(50_000_000 + 4, io.SEEK_CUR)  # a sparse 50 MB of pixel data and its CRC
        handle.write(_chunk(b"tEXt", b"parameters\0" + ti.webui_text("sd1", 2).encode()) + _chunk(b"IEND", b""))
    CountingFile.read_bytes = 0
    monkeypatch.setattr(imagemeta, "open", lambda p, mode: CountingFile(p, mode), raising=False)
    meta = imagemeta.read(path)
    assert "Clip skip: 2" in meta.text["parameters"]
    assert CountingFile.read_bytes < 4096


def test_oversized_and_bomb_chunks_are_skipped(tmp_path):
    bomb = b"parameters\0\0" + zlib.compress(b"\0" * (imagemeta.MAX_CHUNK + 1024), 9)
    path = tmp_path / "bomb.png"
    with open(path, "wb") as handle:
        handle.write(imagemeta.PNG_SIGNATURE + _ihdr() + _chunk(b"zTXt", bomb))
        handle.write(struct.pack(">I", imagemeta.MAX_CHUNK + 1) + b"tEXt")
        handle.seek(imagemeta.MAX_CHUNK + 1 + 4, io.SEEK_CUR)
        handle.write(_chunk(b"tEXt", b"prompt\0{}") + _chunk(b"IEND", b""))
    meta = imagemeta.read(path)
    assert "parameters" not in meta.text and meta.text["prompt"] == "{}"
    assert any("compressed 'parameters'" in n for n in meta.notes) and any("past the limit" in n for n in meta.notes)


def test_compressed_and_unicode_text_chunks(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", ti.webui_text("sd1", 2, prompt="猫"))  # not latin-1: Pillow writes iTXt
    info.add_text("prompt", '{"1": {}}', zip=True)  # zTXt
    info.add_itxt("workflow", '{"nodes": []}', zip=True)
    path = tmp_path / "u.png"
    path.write_bytes(ti._pixels("PNG", pnginfo=info))
    meta = imagemeta.read(path)
    assert meta.text["parameters"].startswith("猫") and meta.text["prompt"] == '{"1": {}}'
    assert meta.text["workflow"] == '{"nodes": []}'


def test_exif_user_comment_encodings_and_a_looping_ifd():
    text = "a cat\nSteps: 2, Clip skip: 2"
    assert imagemeta.user_comment(b"UNICODE\0" + text.encode("utf-16-be")) == text
    assert imagemeta.user_comment(b"UNICODE\0" + text.encode("utf-16-le")) == text
    assert imagemeta.user_comment(b"ASCII\0\0\0" + text.encode()) == text
    assert imagemeta.user_comment(text.encode() + b"\0") == text
    looping = b"MM\0\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, 8) + b"\0" * 4
    meta = imagemeta.ImageMeta()
    imagemeta._tiff(looping, meta)
    assert meta.exif == {}


def test_truncated_files_say_so(tmp_path):
    good = ti.png(tmp_path / "a.png", {"parameters": ti.webui_text("sd1", 2)}).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(good[: good.index(b"tEXt") + 20])
    meta = imagemeta.read(cut)
    assert meta.text == {} and meta.notes
    jpeg = ti.a1111_jpeg(tmp_path / "a.jpg", "x").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[:30])
    assert imagemeta.read(tmp_path / "cut.jpg").exif == {}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([imagemeta.PNG_SIGNATURE, b"\xff\xd8", b"RIFF\0\0\0\0WEBP", b""]), st.binary(max_size=400))
def test_any_bytes_never_raise(tmp_path_factory, head, body):
    path = tmp_path_factory.mktemp("fuzz") / "f"
    path.write_bytes(head + body)
    meta = imagemeta.read(path)
    image_sources.read(meta, None)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["Clip skip", "Version", "App", "CLiP-skip", "TripClipSkip_value", "TripClipSkip_type",
                                        "Dynamic clip skip", "Backend", "Civitai resources", "Created Date", "ENSD",
                                        "CLIP skip ext", "CLIP skip ext L", "CLIP skip ext G", "Prompt", "Model"]),
                       st.text(max_size=20) | st.sampled_from(["-2", "1.5", "2.0", "99", "nan", "f2.0.1v1.10.1", "ComfyUI",
                                                               "SD.Next", "31337", "Original", "0", "-30"])),
       st.sampled_from([*FAMILIES, Family.SDXL_REFINER, Family.OTHER, None]), st.sampled_from(["a1111", "forge"]))
def test_any_params_never_raise_and_say_at_most_one_line(params, family, host):
    reading = translate.read_params(params, family)
    decision = translate.decide(reading, host, family, params.get("Clip skip", "1"))
    assert "\n" not in decision.note
    assert decision.host_value is None or 1 <= int(decision.host_value) <= 12
    if decision.enable:
        assert all(1 <= v <= 32 for v in decision.layers.values())



def test_our_key_names_are_the_ones_infotext_writes():
    from lib_clipskip import infotext

    assert (translate.OUR_KEY, translate.OUR_KEY_L, translate.OUR_KEY_G) == (infotext.KEY, infotext.KEY_L, infotext.KEY_G)


# --- hostile input: a clear note, bounded, ignored ---------------------------------------------------------

@pytest.mark.parametrize("written", ["abc", "nan", "inf", "1e309", "9" * 40, "2.5.1", "-abc"])
def test_clip_skip_that_is_not_a_number_is_ignored_with_a_note(written):
    params = params_text.parse(ti.webui_text("sd1", 2, ti.FORGE_VERSION).replace("Clip skip: 2", f"Clip skip: {written}"))
    reading = translate.read_params(params, Family.SD1)
    assert reading.layers is None and reading.invalid and "Ignored." in reading.note
    decision = translate.decide(reading, "forge", Family.SD1, params.get("Clip skip"))
    assert (decision.enable, decision.host_value, decision.keep_panel) == (False, None, True)


@pytest.mark.parametrize("chunks", [
    {"prompt": '{"3": {"inputs": {"positive": ["6", 0]}, "class_type": "KSampler"}, "6": '},  # cut short
    {"prompt": "[" * 200_000},  # nested past the recursion limit
    {"prompt": json.dumps({"3": {"inputs": {"positive": ["6", 0]}}, "6": {"inputs": {"clip": ["10", 0]}},
                           "10": {"inputs": {"clip": ["10", 0], "stop_at_clip_layer": -2}, "class_type": "CLIPSetLastLayer"}})},
    {"prompt": json.dumps({"3": {"inputs": {"positive": ["6", 0]}}, "6": {"inputs": {"conditioning": ["6", 0]}}})},
    {"workflow": '{"nodes": [{"type": "CLIPSetLastLayer", "widgets_values": ["-2"]}]}'},
    {"invokeai_metadata": '{"clip_skip": "x", "model": [1]}'},
    {"invokeai_metadata": "not json"},
    {"parameters": '{"version": "Fooocus v2.5.5", "clip_skip": {"a": 1}', "fooocus_scheme": "fooocus"},
    {"Software": "NovelAI", "Source": "\0" * 1000, "Comment": "{"},
    {"parameters": "Steps: 1, Steps: 2, Clip skip: 3, Version: " + "v" * 100_000},
])
def test_corrupt_metadata_is_read_without_raising(tmp_path, chunks):
    path = ti.png(tmp_path / "c.png", chunks)
    source = image_sources.read(imagemeta.read(path), None)
    assert source.reading.layers is None or all(1 <= v <= 32 for v in source.reading.layers.values())
    assert "\n" not in source.reading.note


def test_a_looping_comfy_graph_is_read_in_bounded_steps(tmp_path):
    graph = json.dumps({"3": {"inputs": {"positive": ["6", 0]}, "class_type": "KSampler"},
                        "6": {"inputs": {"clip": ["10", 0]}, "class_type": "CLIPTextEncode"},
                        "10": {"inputs": {"clip": ["11", 0], "stop_at_clip_layer": -3}, "class_type": "CLIPSetLastLayer"},
                        "11": {"inputs": {"clip": ["10", 0]}, "class_type": "LoraLoader"}})
    source = image_sources.read(imagemeta.read(ti.png(tmp_path / "loop.png", {"prompt": graph})), Family.SD1)
    assert source.reading.layers == {"clip_l": 3.0}


def test_a_100_mb_text_chunk_is_skipped_quickly(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.write(imagemeta.PNG_SIGNATURE + _ihdr())
        handle.write(struct.pack(">I", 100 * 1024 * 1024) + b"tEXt" + b"parameters\0")
        handle.seek(100 * 1024 * 1024 - len(b"parameters\0") + 4, io.SEEK_CUR)  # sparse
        handle.write(_chunk(b"tEXt", b"parameters\0" + ti.webui_text("sd1", 3).encode()) + _chunk(b"IEND", b""))
    started = time.monotonic()
    meta = imagemeta.read(path)
    assert time.monotonic() - started < 2
    assert "Clip skip: 3" in meta.text["parameters"] and any("past the limit" in n for n in meta.notes)


def test_the_host_range_is_the_adapters():
    from lib_clipskip.hosts.base import HOST_OPTION_RANGE

    assert HOST_RANGE == HOST_OPTION_RANGE


def test_a_host_clip_skip_in_forge_classics_parse_order_is_read():
    """Forge Classic's parser puts Prompt and Negative prompt before the text's keys (1f95d717
    ``modules/infotext_utils.py:274-277``); its added default ``"1"`` still comes after them."""
    written = {"Prompt": "a cat", "Negative prompt": "", "Steps": "4", "Clip skip": "2", "Version": "classic"}
    assert translate.host_key_written(written)
    reading = translate.read_params(written, Family.SD1)
    assert reading.layers == {"clip_l": 2.0}
    defaulted = {"Prompt": "a cat", "Negative prompt": "", "Steps": "4", "Version": "classic", "Clip skip": "1"}
    assert not translate.host_key_written(defaulted)
    assert translate.read_params(defaulted, Family.SD1).layers == {"clip_l": 1.0}
