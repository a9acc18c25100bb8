"""Resolving <lora:...>/<lyco:...> tags and embedding words of a prompt to files, by the
hosts' rules (A1111 networks.py / textual_inversion.py; Forge's copies are the same)."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from compat_files import (
    emb_params_tensors,
    kohya_metadata,
    sdxl_embedding_tensors,
    write_kohya_lora,
    write_safetensors,
)
from compat_layout_files import (
    write_image_embedding,
    write_preview_png,
)

from lib_clipskip.compat import (
    ModelIndex,
    check_files,
    parse_lora_names,
    prompt,
    resolve_prompt_files,
)


def make_webui(tmp_path):
    lora = tmp_path / "models" / "Lora"
    emb = tmp_path / "embeddings"
    write_kohya_lora(lora / "style_a.safetensors", "sd1", clip_skip=2, zero_layers={"clip_l": [11]})
    meta = kohya_metadata("sd1", None, output_name="CuteAlias")
    write_kohya_lora(lora / "sub" / "char-v2.safetensors", "sd1", metadata=meta)
    write_safetensors(emb / "easyneg.safetensors", emb_params_tensors(768))
    write_safetensors(emb / "bad-hands-5.safetensors", emb_params_tensors(768))
    (lora / "style_a.png").write_bytes(b"preview, not a model")
    return lora, emb


def brief(refs):
    return [(r.kind, r.name, r.path and os.path.basename(r.path), r.problem) for r in refs]


def test_parse_lora_names():
    prompt_text = "a <lora:one:0.8> b <lyco:two:1:0.5> <hypernet:x:1> <lora:one:0.2> <lora: three >"
    assert parse_lora_names(prompt_text) == ["one", "two", "three"]


def test_resolve_by_stem_alias_and_embedding_words(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb])
    refs = index.resolve_prompt(
        "masterpiece, <lora:style_a:0.7>, <lyco:CuteAlias:1>, <lora:missing:1>, EasyNeg, (bad-hands-5:1.2), easynegative, not_easyneg",
        wait=None,
    )
    assert brief(refs) == [
        ("lora", "style_a", "style_a.safetensors", None),
        ("lora", "CuteAlias", "char-v2.safetensors", None),
        ("lora", "missing", None, "not found"),
        ("embedding", "easyneg", "easyneg.safetensors", None),
        ("embedding", "bad-hands-5", "bad-hands-5.safetensors", None),
    ]


def test_embedding_names_inside_lora_tags_do_not_count(tmp_path):
    lora, emb = make_webui(tmp_path)
    refs = resolve_prompt_files("<lora:easyneg:1>", [lora], [emb])
    assert [(r.kind, r.problem) for r in refs] == [("lora", "not found")]


def test_two_files_with_one_alias_resolve_to_neither(tmp_path):
    # networks.py:668: the second claim of an alias makes it "forbidden"; by that name the
    # host then looks among file stems only, and there is no such stem
    lora, emb = make_webui(tmp_path)
    meta = kohya_metadata("sd1", None, output_name="CuteAlias")
    write_kohya_lora(lora / "other.safetensors", "sd1", metadata=meta)
    [ref] = resolve_prompt_files("<lora:CuteAlias:1>", [lora], [emb])
    assert ref.path is None and "several LoRAs answer to 'CuteAlias'" in ref.problem
    [ref] = resolve_prompt_files("<lora:cutealias:1>", [lora], [emb])  # the host lower-cases forbidden names
    assert ref.path is None and "several" in ref.problem


def test_a_stem_beats_another_files_alias(tmp_path):
    lora = tmp_path / "Lora"
    write_kohya_lora(lora / "a_first.safetensors", "sd1", metadata=kohya_metadata("sd1", 2, output_name="zeta"))
    write_kohya_lora(lora / "zeta.safetensors", "sdxl", metadata=kohya_metadata("sdxl", None))
    [ref] = resolve_prompt_files("<lora:zeta>", [lora], [])
    assert os.path.basename(ref.path) == "zeta.safetensors"
    [ref] = resolve_prompt_files("<lora:a_first>", [lora], [])
    assert os.path.basename(ref.path) == "a_first.safetensors"


def test_duplicate_stems_resolve_to_the_last_in_the_hosts_order(tmp_path):
    # util.walk_files: directories in natural order (sub2 before sub10), the last stem wins
    lora = tmp_path / "Lora"
    for folder in ("sub10", "sub2", ""):
        write_kohya_lora(lora / folder / "same.safetensors", "sd1")
    [ref] = resolve_prompt_files("<lora:same>", [lora], [])
    assert ref.path == str(lora / "sub10" / "same.safetensors")
    assert ref.note and "also same.safetensors" in ref.note


def test_lyco_backcompat_folder_comes_after_the_lora_folder(tmp_path):
    lora, lyco = tmp_path / "Lora", tmp_path / "LyCORIS"
    write_kohya_lora(lora / "x.safetensors", "sd1")
    write_kohya_lora(lyco / "x.safetensors", "sdxl")
    [ref] = resolve_prompt_files("<lyco:x>", [lora, lyco], [])
    assert ref.path == str(lyco / "x.safetensors")


def test_a_preview_image_never_shadows_the_embedding(tmp_path):
    """Issue 10 item 3: embeddings/name.png (a plain preview) beside name.safetensors or
    name.pt: the hosts skip images without an embedding, and *.preview.* always."""
    lora, emb = tmp_path / "Lora", tmp_path / "embeddings"
    lora.mkdir()
    write_safetensors(emb / "sd1cat.safetensors", emb_params_tensors(768))
    write_preview_png(emb / "sd1cat.png")
    write_preview_png(emb / "sd1cat.preview.png")
    write_safetensors(emb / "xlcat.safetensors", sdxl_embedding_tensors())
    write_preview_png(emb / "xlcat.png")
    index = ModelIndex([lora], [emb])
    refs = index.resolve_prompt("sd1cat, xlcat", wait=None)
    assert brief(refs) == [("embedding", "sd1cat", "sd1cat.safetensors", None),
                           ("embedding", "xlcat", "xlcat.safetensors", None)]
    reports = check_files([r.path for r in refs], "sdxl", 2)
    assert [[w.code for w in r.warnings] for r in reports] == [["family-mismatch"], []]


def test_an_image_embedding_answers_to_the_name_stored_in_it(tmp_path):
    # textual_inversion.py:168-173: name = data.get('name', name)
    emb = tmp_path / "embeddings"
    emb.mkdir()
    write_image_embedding(emb / "download (3).png", name="pixelcat")
    write_image_embedding(emb / "converted.webp", name="webpcat")
    index = ModelIndex([], [emb])
    assert brief(index.resolve_prompt("a pixelcat and a webpcat, download", wait=None)) == [
        ("embedding", "pixelcat", "download (3).png", None),
        ("embedding", "webpcat", "converted.webp", None),
    ]


def test_empty_files_are_skipped_as_the_hosts_skip_them(tmp_path):
    emb = tmp_path / "embeddings"
    write_safetensors(emb / "a" / "cat.safetensors", emb_params_tensors(768))
    (emb / "b").mkdir()
    (emb / "b" / "cat.pt").write_bytes(b"")
    [ref] = ModelIndex([], [emb]).resolve_prompt("cat", wait=None)
    assert os.path.basename(ref.path) == "cat.safetensors" and ref.note is None


def test_links_out_of_the_allowed_roots_are_refused(tmp_path):
    lora, emb = make_webui(tmp_path)
    outside = write_kohya_lora(tmp_path / "elsewhere" / "secret.safetensors", "sd1")
    index = ModelIndex([lora], [emb], allowed_roots=[tmp_path / "models"])
    index.refresh()
    index.lora_by_stem["secret"] = str(outside)  # as if a stray entry pointed outside
    index._listing.lora_stems["secret"] = [str(outside)]
    [ref] = index.resolve_prompt("<lora:secret:1>")
    assert ref.path is None and "outside" in ref.problem


def test_index_refreshes_after_ttl(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb], ttl=3600)
    assert index.resolve_lora("late", wait=None).problem == "not found"
    write_kohya_lora(lora / "late.safetensors", "sd1")
    assert index.resolve_lora("late", wait=None).problem == "not found"  # still the old listing
    index.refresh()
    assert index.resolve_lora("late").path.endswith("late.safetensors")


def test_panel_flow(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb])
    refs = index.resolve_prompt("<lora:style_a:1> easyneg")
    reports = check_files([r.path for r in refs if r.path], "sd1", 1, allowed_roots=index.allowed_roots)
    assert [r.kind for r in reports] == ["lora", "embedding"]
    assert [w.code for w in reports[0].warnings] == ["trained-clip-skip-mismatch"]


# --- a prompt never waits for files it does not use (issue 10 item 6) ----------------------


def test_a_missing_name_does_not_wait_for_the_folder_to_be_read(tmp_path, monkeypatch):
    lora, emb = make_webui(tmp_path)
    release = threading.Event()
    real = prompt.analyze_file

    def slow(path, cache=None, background=False):
        release.wait(30)  # the background reader is stuck on the folder's files
        return real(path, cache, background)

    monkeypatch.setattr(prompt, "analyze_file", slow)
    index = ModelIndex([lora], [emb])
    answers = []
    asker = threading.Thread(target=lambda: answers.append(index.resolve_prompt("<lora:CuteAlias> <lora:style_a> easyneg")))
    asker.start()
    asker.join(10)
    try:
        assert not asker.is_alive(), "the prompt waited for the background reader"
        assert brief(answers[0]) == [
            ("lora", "CuteAlias", None, prompt.STILL_READING),
            ("lora", "style_a", "style_a.safetensors", None),  # a file stem needs no reading
            ("embedding", "easyneg", "easyneg.safetensors", None),
        ]
    finally:
        release.set()
    assert index.wait_until_ready(30)
    [ref] = index.resolve_prompt("<lora:CuteAlias>")
    assert os.path.basename(ref.path) == "char-v2.safetensors"


def test_parallel_refreshes_and_lookups_never_collide(tmp_path):
    """Issue 10 item 9: refresh() refilled the dict that _alias_map iterated ('dictionary
    changed size during iteration'; this loop hit it on every run of the old code).
    Listings are now built whole and published by one assignment."""
    lora = tmp_path / "Lora"
    for n in range(200):
        write_kohya_lora(lora / f"l{n:03d}.safetensors", "sd1", layers=range(1), unet=False)
    index = ModelIndex([lora], [], ttl=3600)
    index.refresh()
    errors, done = [], threading.Event()

    def refresher():
        try:
            for _ in range(40):
                index.refresh()
        except Exception as exc:  # the failure this test exists to catch
            errors.append(exc)

    def looker():
        try:
            while not done.is_set():
                index.resolve_lora("missing")
                index.embeddings_in("l001 missing")
        except Exception as exc:
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        refreshers = [threading.Thread(target=refresher) for _ in range(2)]
        lookers = [threading.Thread(target=looker) for _ in range(2)]
        for thread in refreshers + lookers:
            thread.start()
        for thread in refreshers:
            thread.join(120)
        done.set()
        for thread in lookers:
            thread.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert index.wait_until_ready(60)
    assert index.resolve_lora("missing").problem == "not found"
    assert index.resolve_lora("l199").path.endswith("l199.safetensors")


@pytest.mark.parametrize("name", ["none", "None"])
def test_none_never_resolves_as_an_alias(tmp_path, name):
    # networks.py:684 forbids "none" from the start (kohya writes ss_output_name "None")
    lora = tmp_path / "Lora"
    write_kohya_lora(lora / "x.safetensors", "sd1", metadata=kohya_metadata("sd1", None, output_name="None"))
    [ref] = resolve_prompt_files(f"<lora:{name}>", [lora], [])
    assert ref.path is None


def test_a_folder_given_twice_is_listed_once(tmp_path):
    lora = tmp_path / "Lora"
    write_kohya_lora(lora / "x.safetensors", "sd1")
    [ref] = resolve_prompt_files("<lora:x>", [lora, lora, str(lora) + "/"], [])
    assert ref.path == str(lora / "x.safetensors") and ref.note is None


def test_a_changed_folder_stops_the_older_reader(tmp_path, monkeypatch):
    lora = tmp_path / "Lora"
    for n in range(5):
        write_kohya_lora(lora / f"l{n}.safetensors", "sd1", layers=range(1), unet=False)
    gate, read = threading.Event(), []
    real = prompt.analyze_file

    def gated(path, cache=None, background=False):
        read.append(os.path.basename(path))
        gate.wait(30)
        return real(path, cache, background)

    monkeypatch.setattr(prompt, "analyze_file", gated)
    index = ModelIndex([lora], [])
    index.refresh()
    first = index._names
    write_kohya_lora(lora / "late.safetensors", "sd1", metadata=kohya_metadata("sd1", None, output_name="LateAlias"))
    index.refresh()  # the folder changed: a new reader starts, the old one must stop
    gate.set()
    assert first.done.wait(30) and first.error == "superseded"
    assert index.wait_until_ready(30)
    assert index.resolve_lora("LateAlias").path.endswith("late.safetensors")
    assert read.count("l4.safetensors") == 1  # the superseded reader stopped before reaching it
