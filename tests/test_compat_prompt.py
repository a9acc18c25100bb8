"""Resolving <lora:...>/<lyco:...> tags and embedding words of a prompt to files."""

from __future__ import annotations

import os

from compat_files import (
    emb_params_tensors,
    kohya_metadata,
    write_kohya_lora,
    write_safetensors,
)

from lib_clipskip.compat import (
    ModelIndex,
    check_files,
    parse_lora_names,
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


def test_parse_lora_names():
    prompt = "a <lora:one:0.8> b <lyco:two:1:0.5> <hypernet:x:1> <lora:one:0.2> <lora: three >"
    assert parse_lora_names(prompt) == ["one", "two", "three"]


def test_resolve_by_stem_alias_and_embedding_words(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb])
    refs = index.resolve_prompt(
        "masterpiece, <lora:style_a:0.7>, <lyco:CuteAlias:1>, <lora:missing:1>, EasyNeg, (bad-hands-5:1.2), easynegative, not_easyneg"
    )
    got = [(r.kind, r.name, r.path and os.path.basename(r.path), r.problem) for r in refs]
    assert got == [
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


def test_ambiguous_alias(tmp_path):
    lora, emb = make_webui(tmp_path)
    meta = kohya_metadata("sd1", None, output_name="CuteAlias")
    write_kohya_lora(lora / "other.safetensors", "sd1", metadata=meta)
    [ref] = resolve_prompt_files("<lora:CuteAlias:1>", [lora], [emb])
    assert ref.path is None and "several files" in ref.problem


def test_links_out_of_the_allowed_roots_are_refused(tmp_path):
    lora, emb = make_webui(tmp_path)
    outside = write_kohya_lora(tmp_path / "elsewhere" / "secret.safetensors", "sd1")
    index = ModelIndex([lora], [emb], allowed_roots=[tmp_path / "models"])
    index.refresh()
    index.lora_by_stem["secret"] = str(outside)  # as if a stray entry pointed outside
    [ref] = index.resolve_prompt("<lora:secret:1>")
    assert ref.path is None and "outside" in ref.problem


def test_index_refreshes_after_ttl(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb], ttl=3600)
    assert index.resolve_lora("late").problem == "not found"
    write_kohya_lora(lora / "late.safetensors", "sd1")
    assert index.resolve_lora("late").problem == "not found"  # still the old listing
    index.refresh()
    assert index.resolve_lora("late").path.endswith("late.safetensors")


def test_panel_flow(tmp_path):
    lora, emb = make_webui(tmp_path)
    index = ModelIndex([lora], [emb])
    refs = index.resolve_prompt("<lora:style_a:1> easyneg")
    reports = check_files([r.path for r in refs if r.path], "sd1", 1, allowed_roots=index.allowed_roots)
    assert [r.kind for r in reports] == ["lora", "embedding"]
    assert [w.code for w in reports[0].warnings] == ["trained-clip-skip-mismatch"]
