"""The benchmarks measure what they say: paired ratios with their spread, and ``benchmarks.encode``
runs with torch and transformers alone (no gradio, no WebUI stand-in) on every transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.timing import paired_ratios, shown, spread

REPO = Path(__file__).resolve().parents[1]


def test_paired_ratios_are_second_over_first_whatever_the_order():
    calls = []

    def fast():
        calls.append("fast")
        time.sleep(0.01)

    def slow():
        calls.append("slow")
        time.sleep(0.04)

    ratios = paired_ratios(fast, slow, 3)
    assert len(ratios) == 3 and sorted(ratios)[1] > 1.5  # sleeps: even a loaded machine keeps them apart
    assert calls[2:] == ["fast", "slow", "slow", "fast"] * 3  # after the warm-up: blocks that cancel the order


def test_spread_is_the_median_and_the_middle_half():
    figure = spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert figure == {"median": 3.0, "q1": 2.0, "q3": 4.0, "n": 5}
    assert shown(figure) == "3.000 (2.000-4.000)"
    assert spread([0.9, 1.1]) == {"median": 1.0, "q1": 0.9, "q3": 1.1, "n": 2}


def test_encode_benchmark_runs_without_gradio_or_the_standin(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor name in ('gradio', 'webui', 'modules', 'fastapi'):\n    sys.modules[name] = None\n")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.encode", "--quick", "--tiny", "--blocks", "3", "--json"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["sd1"]) == {"noise", "1", "2"}
    assert all(set(figure) == {"median", "q1", "q3", "n"} and figure["n"] == 3 for figure in result["sd1"].values())
    assert "SD1.5 CLIP-L: N=2" in proc.stderr  # progress on stderr, the result alone on stdout
    assert result["skipped"].startswith("the whole-generation figures")
