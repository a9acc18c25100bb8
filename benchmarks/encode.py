"""Encode time at CLIP skip N as a ratio to the host's full pass, measured in the same process.

    python -m benchmarks.encode [--blocks 10] [--quick] [--json]

Models are the real SD shapes (CLIP ViT-L 12x768, OpenCLIP bigG 32x1280) with random weights, on
the CPU, one 77-token chunk.  The baseline is what the hosts do: a full pass with
``output_hidden_states`` and a pick of ``hidden_states[-N]``.  Each figure is the median of the
per-block ratios (blocks of four back-to-back runs: host, ours, ours, host) with the middle half
of the blocks in brackets; the noise floor is the host's pass timed against itself the same way.
Target: ratio <= 1.03 x (L - N + 1) / L.

Needs only torch and transformers (and this repository).  The whole-generation figures (the
disabled extension, the X/Y/Z grid) run the test suite's stand-in WebUI and so also need gradio;
without it they are skipped and the output says so.  ``--quick``: SD1 only, N = 1 and 2, 6
blocks: a few minutes even on a loaded 2-core machine.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from clip_models import SHAPES, build_text_model, small  # noqa: E402  (torch and transformers only)

from benchmarks.timing import machine, paired_ratios, progress, shown, spread  # noqa: E402
from lib_clipskip.encode import encoder_layers, final_layer_norm, skipping  # noqa: E402
from lib_clipskip.values import pick_layers  # noqa: E402

VOCAB = 49408
#: (key, shape, final LayerNorm, needs the pooled output, label)
ENCODERS = (("sd1", "clip_l", True, False, "SD1.5 CLIP-L"), ("sdxl_l", "clip_l", False, False, "SDXL CLIP-L"),
            ("sdxl_g", "clip_g", False, True, "SDXL OpenCLIP-G"))


def _tokens() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    body = torch.randint(1, VOCAB - 2, (1, 20), generator=generator)
    return torch.cat([torch.tensor([[VOCAB - 2]]), body, torch.full((1, 56), VOCAB - 1)], dim=1)


def _host_pass(model, ids, n, final_ln):
    out = model(input_ids=ids, output_hidden_states=True)
    z = out.hidden_states[-n]
    return final_layer_norm(model)(z) if final_ln else z


def _our_pass(model, ids, n, final_ln, needs_pooled):
    with skipping(model, pick_layers(n, len(encoder_layers(model))), needs_pooled):
        return _host_pass(model, ids, n, final_ln)


def encoder_figures(shape: dict, final_ln: bool, needs_pooled: bool, values, pairs: int, label: str) -> dict:
    """{"noise": A/A spread, "1": ours/host spread at N=1, ...} for one encoder."""
    model = build_text_model(shape, VOCAB)
    ids = _tokens()
    figures = {}
    with torch.no_grad():
        host = lambda: _host_pass(model, ids, 1, final_ln)  # noqa: E731
        figures["noise"] = spread(paired_ratios(host, host, pairs))
        progress(f"  {label}: noise (the host's pass against itself) {shown(figures['noise'])}")
        for n in values:
            figures[str(n)] = spread(paired_ratios(lambda n=n: _host_pass(model, ids, n, final_ln),
                                                   lambda n=n: _our_pass(model, ids, n, final_ln, needs_pooled), pairs))
            progress(f"  {label}: N={n} {shown(figures[str(n)])}")
    return figures


def disabled_overhead(pairs: int) -> dict:
    """What a disabled extension costs a generation (stand-in A1111, SD1 real shape, fresh conds).

    ``hooks``: the time our script's hooks take on a disabled generation, measured directly, as a
    share of the generation: the figure the target is about.  ``end_to_end``: the generation with
    the script in the runner against one without it, paired; ``end_to_end_noise``: the generation
    without it against itself, the same way: an A/B is only meaningful outside that spread.
    """
    from webui import WebUI

    ui = WebUI("a1111")
    try:
        ui.load("sd1", real=True)
        ours = ui.script("txt2img")
        runner_without_us = ui.scripts.ScriptRunner()

        def generate(with_script: bool):
            p = ui.txt2img("a photo of a cat", enabled=False)
            if not with_script:
                p.scripts = runner_without_us
            p.cached_c, p.cached_uc = [None, None], [None, None]  # always encode: a real generation's cost
            return p, ui.run(p)

        without = lambda: generate(False)  # noqa: E731
        end_to_end = spread(paired_ratios(without, lambda: generate(True), pairs))
        noise = spread(paired_ratios(without, without, pairs))
        p, processed = generate(True)
        args = p.script_args[ours.args_from:ours.args_to]
        generation = []
        for _ in range(5):
            start = time.perf_counter()
            generate(True)
            generation.append(time.perf_counter() - start)
        timings = []
        for _ in range(200):
            start = time.perf_counter()
            ours.before_process(p, *args)
            ours.postprocess(p, processed, *args)
            timings.append(time.perf_counter() - start)
    finally:
        ui.close()
    hooks = spread(timings)["median"]
    share = hooks / spread(generation)["median"]
    return {"hooks": round(share, 6), "hooks_us": round(hooks * 1e6, 1), "end_to_end": end_to_end, "end_to_end_noise": noise}


def xyz_grid_figure(pairs: int, k: int = 4) -> dict:
    """A K-cell X/Y/Z grid over ``[CLIP skip] value`` 1..K (SD1 real shape, stand-in A1111) against
    K independent generations at the same values; every run starts with an empty cond cache.
    Encoder passes are counted as calls of the text encoder's first layer."""
    from webui import WebUI

    ui = WebUI("a1111")
    try:
        ui.load("sd1", real=True)
        passes = [0]
        encoder_layers(ui.shared.sd_model.cond_stage_model.wrapped.transformer)[0].register_forward_hook(
            lambda *_: passes.__setitem__(0, passes[0] + 1))

        def fresh(p):
            p.cached_c, p.cached_uc = [None, None], [None, None]  # shallow cell copies share these
            return p

        def independent() -> None:
            for value in range(1, k + 1):
                ui.run(fresh(ui.txt2img("a photo of a cat", enabled=True, clip_skip=value, seed=1)))

        def grid() -> None:
            with contextlib.redirect_stdout(io.StringIO()):  # the plot prints its size per grid, as the host does
                ui.xyz(fresh(ui.txt2img("a photo of a cat", enabled=False, seed=1)), x=("[CLIP skip] value", f"1-{k}"))

        counted = {}
        for name, fn in (("independent", independent), ("grid", grid)):
            passes[0] = 0
            fn()
            counted[name] = passes[0]
        ratio = spread(paired_ratios(independent, grid, pairs))
    finally:
        ui.close()
    return {"k": k, "ratio": ratio, "passes_grid": counted["grid"], "passes_independent": counted["independent"]}


def schedule_figure(pairs: int, steps: int = 30) -> dict:
    """A ``3..1`` ramp over ``steps`` sampling steps against the host's own generation (one full
    pass per prompt), both in the stand-in A1111 at the real SD1 shape with empty cond caches: every
    step's conditioning (anchors at 3, 2, 1 from one pass, each step's blend) over one full pass.
    The stand-in's sampler costs next to nothing, so the encoder and our per-step work are what is timed."""
    from webui import WebUI

    ui = WebUI("a1111")
    try:
        ui.load("sd1", real=True)

        def generation(**ours):
            def run_one():
                p = ui.txt2img("a photo of a cat", steps=steps, seed=1, **ours)
                p.cached_c, p.cached_uc = [None, None], [None, None]  # never the host's cache: a full pass each
                ui.run(p)

            return run_one

        ratio = spread(paired_ratios(generation(enabled=False), generation(enabled=True, clip_skip=0, schedule="3..1"),
                                     pairs))
    finally:
        ui.close()
    return {"steps": steps, "ratio": ratio}


def target(depth: int, n: int) -> float:
    return round(1.03 * (depth - n + 1) / depth, 3)


def have_the_standin() -> bool:
    return importlib.util.find_spec("gradio") is not None


def run(pairs: int, quick: bool, tiny: bool = False) -> dict:
    started = time.perf_counter()
    result: dict = {"pairs": pairs, "quick": quick, "tiny": tiny, "machine_before": machine(), "torch": torch.__version__,
                    "transformers": __import__("transformers").__version__}
    values = (1, 2) if quick else (1, 2, 3, 4)
    for key, shape_name, final_ln, needs_pooled, label in ENCODERS[:1] if quick else ENCODERS:
        progress(f"{label} ({SHAPES[shape_name]['num_hidden_layers']} layers): {pairs} blocks of 4 runs per figure")
        shape = small(shape_name) if tiny else dict(SHAPES[shape_name])
        result[key] = encoder_figures(shape, final_ln, needs_pooled, values, pairs, label)
    if quick or tiny:
        result["skipped"] = f"the whole-generation figures (not with --{'quick' if quick else 'tiny'})"
    elif not have_the_standin():
        result["skipped"] = "the whole-generation figures: they run the test suite's stand-in WebUI, which needs gradio"
    else:
        progress("the disabled extension in a whole stand-in generation")
        result["disabled"] = disabled_overhead(pairs)
        progress("an X/Y/Z grid of 4 values against 4 generations")
        result["xyz_grid"] = xyz_grid_figure(max(3, pairs // 4))
        progress("a 30-step schedule 3..1 against the host's own generation")
        result["schedule_detail"] = schedule_figure(max(3, pairs // 2))
        result["schedule"] = result["schedule_detail"]["ratio"]["median"]  # target <= 1.05
    result["machine_after"] = machine()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def report(result: dict) -> list[str]:
    load = (result["machine_before"]["load_average_1min"], result["machine_after"]["load_average_1min"])
    shapes = "small widths (--tiny)" if result.get("tiny") else "real SD shapes"
    lines = [f"Encode time at CLIP skip N / the host's full pass: median of {result['pairs']} blocks of 4 paired runs "
             f"(middle half in brackets), CPU, {shapes}, random weights",
             f"torch {result['torch']}, transformers {result['transformers']}, {result['machine_before']['cpus']} CPUs, "
             f"load average {load[0]} before, {load[1]} after, {result['seconds']} s"]
    for key, shape_name, _ln, _pooled, label in ENCODERS:
        if key not in result:
            continue
        figures = result[key]
        depth = SHAPES[shape_name]["num_hidden_layers"]
        lines.append(f"{label:16} noise (host vs host) {shown(figures['noise'])}")
        for n in (k for k in figures if k != "noise"):
            goal = "~1: the pooled output needs every layer" if key == "sdxl_g" else f"target <= {target(depth, int(n)):.3f}"
            lines.append(f"{'':16} N={n}: {shown(figures[n])}   {goal}")
    if "disabled" in result:
        d = result["disabled"]
        lines.append(f"disabled extension: its hooks take {d['hooks_us']:.0f} us = {d['hooks'] * 100:.3f} % of a generation "
                     "(target <= 1 %)")
        lines.append(f"  whole generation with / without the script: {shown(d['end_to_end'])}; "
                     f"without / without (noise): {shown(d['end_to_end_noise'])}")
    if "xyz_grid" in result:
        grid = result["xyz_grid"]
        lines.append(f"X/Y/Z grid of {grid['k']} values / {grid['k']} separate generations: {shown(grid['ratio'])}; encoder "
                     f"passes {grid['passes_grid']} vs {grid['passes_independent']} (one per distinct prompt: positive + negative)")
    if "schedule_detail" in result:
        figure = result["schedule_detail"]
        lines.append(f"schedule 3..1 over {figure['steps']} steps / the host's own generation (one full pass per prompt): "
                     f"{shown(figure['ratio'])}   target <= 1.05")
    if "skipped" in result:
        lines.append(f"skipped: {result['skipped']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=None,
                        help="blocks of 4 paired runs (host, ours, ours, host) per figure (default 10; --quick 6)")
    parser.add_argument("--quick", action="store_true", help="SD1 at N = 1 and 2 only, 6 blocks: a short check")
    parser.add_argument("--tiny", action="store_true", help="small widths instead of the real shapes (the test suite's check)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    pairs = max(3, args.blocks or (6 if args.quick else 10))
    result = run(pairs, args.quick, args.tiny)
    print(json.dumps(result) if args.json else "\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
