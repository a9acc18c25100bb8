"""Timing that tells the truth on a busy machine: paired, interleaved runs (ABBA blocks), reported
as the median of the per-block ratios with their spread, next to a measured noise floor (the same code timed
against itself, an A/A pair).  Only the standard library: progress goes to stderr."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def paired_ratios(first: Callable[[], object], second: Callable[[], object], blocks: int) -> list[float]:
    """One ratio per block of four back-to-back runs in the order first, second, second, first:
    ``(both times of second) / (both times of first)``, after one warm-up of each.  Whatever a run
    gains from coming first or second (caches, a turbo clock, a neighbour's burst) hits both sides
    of a block alike, and all four runs of a block see nearly the same machine load."""
    first(), second()
    ratios = []
    for _ in range(blocks):
        took = [0.0, 0.0]
        for which in (0, 1, 1, 0):
            start = time.perf_counter()
            (first, second)[which]()
            took[which] += time.perf_counter() - start
        ratios.append(took[1] / took[0])
    return ratios


def spread(values: list[float]) -> dict[str, float]:
    """Median and the middle half (quartiles) of ``values``, with their count."""
    ordered = sorted(values)
    if len(ordered) >= 4:
        q1, _median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    return {"median": round(statistics.median(ordered), 4), "q1": round(q1, 4), "q3": round(q3, 4), "n": len(ordered)}


def shown(figure: dict[str, float], digits: int = 3) -> str:
    """'0.922 (0.905-0.940)': the median and the middle half of the pairs."""
    return f"{figure['median']:.{digits}f} ({figure['q1']:.{digits}f}-{figure['q3']:.{digits}f})"


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "load_average_1min": load_average()}
