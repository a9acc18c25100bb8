"""Bounded whatever the file (issue 10 items 6-8): caps on what a header may hold, thousands
of fake layers, the key memo's bound, one analysis per file however many callers ask."""

from __future__ import annotations

import struct
import tracemalloc

from compat_files import write_kohya_lora
from compat_layout_files import empty_objects_header, zero_layer_header

from lib_clipskip.compat import analyze_path

# ------------------------------------------------------------- item 7: caps on what a header holds


def test_a_header_of_millions_of_empty_objects_is_refused_before_parsing(tmp_path):
    """A 14 MB header of {},{},... would parse into 4.7 million dicts (~350 MB); it is
    refused on a count of its commas and brackets, so the peak is the raw header."""
    path = tmp_path / "objects.safetensors"
    path.write_bytes(empty_objects_header(14))
    tracemalloc.start()
    try:
        report = analyze_path(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.error.startswith("safetensors header holds about 9333333 JSON items, more than the 4000000")
    assert peak < 3 * path.stat().st_size


def test_too_many_tensors_or_metadata_entries(tmp_path, monkeypatch):
    from lib_clipskip.compat import readers

    path = write_kohya_lora(tmp_path / "x.safetensors", "sd1", clip_skip=2)
    monkeypatch.setattr(readers, "MAX_TENSORS", 100)
    assert analyze_path(str(path)).error.startswith("safetensors header lists 219 tensors, more than the 100 limit")
    monkeypatch.setattr(readers, "MAX_TENSORS", 100_000)
    monkeypatch.setattr(readers, "MAX_METADATA_ENTRIES", 3)
    assert "__metadata__ has 9 entries, more than the 3 limit" in analyze_path(str(path)).error


def test_deeply_nested_header(tmp_path):
    body = b'{"a":' * 200_000 + b"1" + b"}" * 200_000
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    assert analyze_path(str(path)).error == "safetensors header nests JSON too deeply to be a safetensors header"


# ------------------------------------------------------------- item 6: thousands of fake layers


def test_fake_text_encoder_layers_are_ignored(tmp_path, monkeypatch):
    from lib_clipskip.compat import trained

    path = tmp_path / "layers.safetensors"
    path.write_bytes(zero_layer_header(3000))
    asked = []
    real = trained.LayerModules.modules_on
    monkeypatch.setattr(trained.LayerModules, "modules_on", lambda self, layer: asked.append(layer) or real(self, layer))
    report = analyze_path(str(path))
    assert report.error is None
    # layers past CLIP-L's 12 on the single encoder: only SD2's 24-layer OpenCLIP-H has them
    assert report.te_layers == {"clip_h": list(range(24))}
    assert report.notes == ["2976 text-encoder modules name layers their encoder does not have: ignored "
                            "(a damaged or synthetic file?)"]
    assert sorted(asked) == list(range(24))  # one pass per real layer at most, not one per fake layer


# ------------------------------------------------------------- item 8: the key memo stays bounded


def test_key_memo_never_exceeds_its_limit(tmp_path, monkeypatch):
    from lib_clipskip.compat import keys

    monkeypatch.setattr(keys, "_key_info", {})
    monkeypatch.setattr(keys, "KEY_INFO_LIMIT", 400)
    sizes = []
    for name, layers in (("a", range(4)), ("b", range(4, 9)), ("c", range(12))):
        analyze_path(str(write_kohya_lora(tmp_path / f"{name}.safetensors", "sd1", metadata=None, layers=layers, unet=False)))
        sizes.append(keys.memo_sizes()[0])
    # a: 72 keys, b: 90 more (162), c: 216 keys is more than a quarter of 400: not memoised
    assert sizes == [72, 162, 162]
    analyze_path(str(write_kohya_lora(tmp_path / "d.safetensors", "sd1", metadata=None, layers=range(5), unet=False)))
    assert keys.memo_sizes()[0] <= 400


# ------------------------------------------------------------- item 7: one analysis per file


def test_concurrent_callers_share_one_analysis(tmp_path, monkeypatch):
    import threading

    from lib_clipskip.compat import ReportCache, cache

    path = str(write_kohya_lora(tmp_path / "x.safetensors", "sd1", clip_skip=2))
    calls, entered, release = [], threading.Event(), threading.Event()
    real = cache.analyze_path

    def slow(p):
        calls.append(p)
        entered.set()
        release.wait(30)
        return real(p)

    monkeypatch.setattr(cache, "analyze_path", slow)
    shared, results = ReportCache(), []
    threads = [threading.Thread(target=lambda: results.append(shared.get(path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert entered.wait(30)
    release.set()
    for thread in threads:
        thread.join(30)
    assert calls == [path]
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert results[0].trained_clip_skip == 2


def test_at_most_two_analyses_run_at_once(tmp_path, monkeypatch):
    import threading
    import time

    from lib_clipskip.compat import ReportCache, cache

    paths = [str(write_kohya_lora(tmp_path / f"{n}.safetensors", "sd1")) for n in range(4)]
    inside, most, release = [], [0], threading.Event()
    lock = threading.Lock()
    real = cache.analyze_path

    def held(p):
        with lock:
            inside.append(p)
            most[0] = max(most[0], len(inside))
        release.wait(30)
        with lock:
            inside.remove(p)
        return real(p)

    monkeypatch.setattr(cache, "analyze_path", held)
    shared = ReportCache()
    threads = [threading.Thread(target=shared.get, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for _ in range(300):  # until two are in (no timing assert: only a bounded wait)
        if len(inside) == 2:
            break
        time.sleep(0.01)
    time.sleep(0.2)  # give the other two every chance to get in, if they could
    with lock:
        running = len(inside)
    release.set()
    for thread in threads:
        thread.join(30)
    assert running == 2 and most[0] == 2
    assert len(shared) == 4


def test_a_generation_never_queues_behind_the_background_reader(tmp_path, monkeypatch):
    """A panel refresh holds one shared slot, the background reader is busy too: a file the
    prompt uses gets the other shared slot (with one pool for all, it would have waited)."""
    import threading

    from lib_clipskip.compat import ReportCache, cache

    other, background_file = (str(write_kohya_lora(tmp_path / f"{n}.safetensors", "sd1")) for n in ("other", "bg"))
    used = str(write_kohya_lora(tmp_path / "used.safetensors", "sd1", clip_skip=2))
    inside, release = [], threading.Event()
    real = cache.analyze_path

    def held(p):
        if p != used:
            inside.append(p)
            release.wait(120)  # longer than the asker is given below
        return real(p)

    monkeypatch.setattr(cache, "analyze_path", held)
    shared = ReportCache()
    busy = [threading.Thread(target=shared.get, args=(other,)),
            threading.Thread(target=shared.get, args=(background_file, True))]
    for thread in busy:
        thread.start()
    try:
        for _ in range(3000):  # until both are inside (a bounded wait, not a timing assert)
            if len(inside) == 2:
                break
            threading.Event().wait(0.01)
        assert len(inside) == 2
        report = []
        asker = threading.Thread(target=lambda: report.append(shared.get(used)))
        asker.start()
        asker.join(10)
        assert not asker.is_alive(), "the used file waited behind files it does not use"
        assert report[0].trained_clip_skip == 2
    finally:
        release.set()
        for thread in busy:
            thread.join(30)
