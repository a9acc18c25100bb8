"""The hostile section of ``python -m benchmarks.scan`` (issue 10, items 6-7).

- Zero-layer files: a well-formed header naming N text-encoder "layers" of zero-size
  tensors (3 keys per layer, as kohya writes a module), at 2k/8k/32k layers. Analysis
  time per MB of header must stay flat: the 32k/2k ratio <= 1.5. A bare header read
  (open, read, json.loads) of the same file in the same process is the baseline.
- A prompt naming a missing LoRA, with such files in the folder: how long the lookup takes
  on a cold index, against listing the folder (the lookup must not analyse anything).
- Peak resident memory, each case in a fresh process, over the process's own baseline:
  a 100 MB header of ``{},{},...``; a 100 MB header that is parsed (a 95 MB metadata
  string); and four threads asking for the second file at once (one analysis, not four).
  Target: <= 1.5 GB.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time

from lib_clipskip.compat import ModelIndex, ReportCache, analyze_path, check_files, keys
from lib_clipskip.compat.cache import _no_cyclic_gc

LAYER_COUNTS = (2_000, 8_000, 32_000)
TARGETS = {"flat_ratio": 1.5, "peak_gb": 1.5}


def zero_layer_file(path: str, layers: int) -> int:
    entries = {}
    for n in range(layers):
        base = f"lora_te_text_model_encoder_layers_{n}_mlp_fc1"
        entries[f"{base}.lora_up.weight"] = {"dtype": "F16", "shape": [0, 4], "data_offsets": [0, 0]}
        entries[f"{base}.lora_down.weight"] = {"dtype": "F16", "shape": [4, 0], "data_offsets": [0, 0]}
        entries[f"{base}.alpha"] = {"dtype": "F16", "shape": [], "data_offsets": [0, 2]}
    header = json.dumps(entries).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header + b"\0\0")
    return len(header)


def bare_read(path: str) -> None:
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        json.loads(fh.read(length))


def _best(runs: int, func) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _cpu(func) -> float:
    """CPU time of one call: on a shared machine far steadier than wall-clock time."""
    start = time.process_time()
    func()
    return time.process_time() - start


def zero_layers(folder: str, runs: int = 9) -> dict:
    rows = []
    for layers in LAYER_COUNTS:
        path = os.path.join(folder, f"layers_{layers}.safetensors")
        header_mb = zero_layer_file(path, layers) / 1e6
        bare, ours, wall = [], [], []
        for _ in range(runs):  # interleaved: both see the same load
            # check_files is what the panel and a generation call; it pauses the cyclic GC
            # while it reads headers, so the bare read runs without it too
            with _no_cyclic_gc():
                bare.append(_cpu(lambda p=path: bare_read(p)))
            keys.forget()  # a hostile file's keys are new: no memo helps (the worst case)
            start = time.perf_counter()
            ours.append(_cpu(lambda p=path: check_files([p], "sd1", 2, cache=ReportCache())))
            wall.append(time.perf_counter() - start)
        report = analyze_path(path)
        rows.append({"layers": layers, "header_mb": round(header_mb, 2), "cpu_ms": round(min(ours) * 1000, 1),
                     "bare_cpu_ms_per_mb": round(min(bare) * 1000 / header_mb, 1),
                     "wall_ms": round(min(wall) * 1000, 1), "cpu_ms_per_mb": round(min(ours) * 1000 / header_mb, 1),
                     "ratio_to_bare": round(min(ours) / min(bare), 2), "error": report.error})
        os.remove(path)
    flat = rows[-1]["cpu_ms_per_mb"] / rows[0]["cpu_ms_per_mb"]
    bare_flat = rows[-1]["bare_cpu_ms_per_mb"] / rows[0]["bare_cpu_ms_per_mb"]
    return {"rows": rows, "flat_ratio_32k_2k": round(flat, 2), "bare_flat_ratio_32k_2k": round(bare_flat, 2)}


def missing_name(folder: str, runs: int = 5) -> dict:
    """A cold index over a folder of zero-layer files; the prompt names no file in it."""
    lora = os.path.join(folder, "Lora")
    os.makedirs(lora, exist_ok=True)
    for n in range(4):
        zero_layer_file(os.path.join(lora, f"big_{n}.safetensors"), 8_000)
    listing, lookup = [], []
    for _ in range(runs):
        listing.append(_best(1, lambda: [os.stat(os.path.join(lora, f)) for f in os.listdir(lora)]))
        cache = ReportCache()
        index = ModelIndex([lora], [], cache=cache)

        def ask(index=index):
            index.resolve_prompt("a cat <lora:not_there:1>")

        lookup.append(_best(1, ask))
        index.wait_until_ready()  # let the background reader finish before the next run
    return {"lookup_ms": round(min(lookup) * 1000, 2), "listing_ms": round(min(listing) * 1000, 2)}


_MEMORY_CASE = r"""
import json, sys, threading
from lib_clipskip.compat import ReportCache, analyze_path

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))

# The peak of this address space from here on: ru_maxrss would carry the parent's peak
# over the fork, so reset the kernel's high-water mark (clear_refs 5) and read VmHWM.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
path, case = sys.argv[1], sys.argv[2]
base = status("VmRSS")
analyses = 0
if case == "threads":
    from lib_clipskip.compat import cache as cache_module
    real = cache_module.analyze_path
    def counted(p):
        global analyses
        analyses += 1
        return real(p)
    cache_module.analyze_path = counted
    shared = ReportCache()
    threads = [threading.Thread(target=shared.get, args=(path,)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    error = shared.get(path).error
elif case == "bare":
    import struct
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        json.loads(fh.read(length))
    analyses, error = 0, None
else:
    analyses, error = 1, analyze_path(path).error
print(json.dumps({"peak_mb": round((status("VmHWM") - base) / 1024, 1), "analyses": analyses, "error": error}))
"""


def _write_objects_header(path: str, megabytes: int) -> None:
    count = (megabytes * 1_000_000 - 16) // 3  # the whole header within the 100 MB limit
    header = b'{"x":[' + b"{}," * (count - 1) + b"{}]}"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)


def _write_big_metadata(path: str, megabytes: int) -> None:
    tensors = {f"lora_te_text_model_encoder_layers_{n}_mlp_fc1.lora_up.weight":
               {"dtype": "F16", "shape": [4, 2], "data_offsets": [16 * n, 16 * n + 16]} for n in range(12)}
    tensors["__metadata__"] = {"ss_tag_frequency": "x" * (megabytes * 1_000_000 - 5000), "ss_base_model_version": "sd_v1"}
    header = json.dumps(tensors).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header + b"\1" * 16 * 12)


def peak_memory(folder: str, megabytes: int = 100) -> dict:
    objects, metadata = os.path.join(folder, "objects.safetensors"), os.path.join(folder, "metadata.safetensors")
    _write_objects_header(objects, megabytes)
    _write_big_metadata(metadata, megabytes)
    results = {}
    cases = (("objects", objects, "one"), ("parsed", metadata, "one"), ("parsed_bare", metadata, "bare"),
             ("four_threads", metadata, "threads"))
    for name, path, case in cases:
        out = subprocess.run([sys.executable, "-c", _MEMORY_CASE, path, case], capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        results[name] = json.loads(out.stdout)
    for path in (objects, metadata):
        os.remove(path)
    return results


def run(folder: str) -> dict:
    return {"zero_layers": zero_layers(folder), "missing_name": missing_name(folder), "memory": peak_memory(folder),
            "targets": TARGETS, "load": round(os.getloadavg()[0], 2)}


def print_report(result: dict) -> None:
    print("\nhostile files")
    for row in result["zero_layers"]["rows"]:
        print(f"zero-layer file, {row['layers']:>6} layers ({row['header_mb']:5.2f} MB header): CPU {row['cpu_ms']:7.1f} ms "
              f"(wall {row['wall_ms']:7.1f} ms), {row['cpu_ms_per_mb']:5.1f} ms/MB, {row['ratio_to_bare']:.2f}x a bare header read")
    print(f"CPU time per MB, 32k layers / 2k layers: {result['zero_layers']['flat_ratio_32k_2k']:.2f} "
          f"(target <= {TARGETS['flat_ratio']}; the bare read alone: {result['zero_layers']['bare_flat_ratio_32k_2k']:.2f})")
    missing = result["missing_name"]
    print(f"prompt naming a missing LoRA, cold index over 4 such files: {missing['lookup_ms']:.2f} ms "
          f"(listing the folder: {missing['listing_ms']:.2f} ms; nothing is analysed on the caller's thread)")
    bare = result["memory"]["parsed_bare"]["peak_mb"]
    for name, label in (("objects", "100 MB header of {},{},... (refused unparsed)"),
                        ("parsed", "100 MB header, parsed (95 MB metadata string)"),
                        ("four_threads", "the same, four threads at once")):
        row = result["memory"][name]
        print(f"peak memory, {label}: {row['peak_mb']:7.1f} MB over the process baseline "
              f"({row['peak_mb'] / bare:.2f}x a bare read+json.loads of the parsed file, {bare:.0f} MB), "
              f"{row['analyses']} analysis{'es' if row['analyses'] != 1 else ''} (target <= {TARGETS['peak_gb']} GB)")
    print(f"machine load (1-min average) during the run: {result['load']}")
